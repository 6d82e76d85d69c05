"""Activation quantizers in plain torch ops, for torch.compile to fuse into their producer.

Why this exists. Eagerly, the 8-bit-activation formats (w8a8_fp8 per token, w8a8_int8,
fp8_block) run one fused op per linear (``lowbit.w8a8_fp8_linear`` ...) that launches our
quantizer kernel, then the GEMM. Under torch.compile that quantizer is an opaque extra pass
over the activations, after the RMSNorm / SiLU*mul before it has written them in bf16. Written
in torch ops instead, inductor emits the quantizer inside the producer's kernel, and the
formats call the GEMM on pre-quantized operands (``lowbit.w8a8_fp8_mm`` ...). The formats'
``_linear2d`` does so while ``torch.compiler.is_compiling()``, unless the knob below says no.

The spec is the ops ``lowbit.quantize_fp8_per_token``, ``quantize_int8_per_token`` and
``quantize_fp8_1x128`` (csrc/cpu/quantize.cpp and csrc/include/lowbit/quant_rules.h): per
block (a row, or 128 consecutive elements of a row),
    amax  = max |x| in fp32;  a block holding NaN or +-Inf: scale NaN, every code 0
    amax' = max(amax, 1e-12);  scale = amax' / QMAX,  inv = QMAX / amax'  (each correctly rounded)
    code  = e4m3_rne_saturating(x * inv)   (QMAX 448)
            clamp(round_half_even(x * inv), -127, 127)   (int8, QMAX 127)
and these functions return the same codes and scales bit for bit (tests/test_act_quant.py on
the CPU, eager and inductor; tests/test_cuda_act_quant.py against the CUDA quantizers).

Division. Inductor lowers an fp32 true division on CUDA to Triton's ``/``, which Triton's
NVIDIA backend lowers to ``llvm.nvvm.div.full`` (div.full.f32, up to 2 ulp), not IEEE
division: Triton's ElementwiseOpToLLVM.cpp FDivOpConversion (fp64 goes to
``llvm.nvvm.div.rn.d``), triton-lang/triton#10661. Inductor emits ``tl.div_rn`` only under
``torch._inductor.config.eager_numerics.division_rounding`` (env
TORCHINDUCTOR_EMULATE_DIVISION_ROUNDING=1, off by default: torch/_inductor/codegen/triton.py,
``truediv``), and on CUDA it rewrites a division by a constant into a multiplication by its
reciprocal (lowering.py, ``div_prim``), as eager CUDA does for a Python-number divisor. So
the two divisions are done in fp64 and rounded to fp32 once. A quotient a/b of fp32 numbers
(24-bit significands A, B) is never an fp32 rounding midpoint (a midpoint's 25-bit odd
significand would have to divide A's odd part), and it differs from one by more than
1/(2^25 * 2^24) = 2^-49 relative; fp64 division (one rounding, <= 2^-53) or a multiplication by
the rounded fp64 reciprocal (two, < 2^-52, what a constant divisor becomes on CUDA) stays
closer to a/b than that, so rounding the fp64 result to fp32 gives the correctly rounded fp32
quotient on every backend (scales and inverses here are normal fp32 numbers: amax' lies in
[1e-12, 3.4e38]). It costs one fp64 division per block, not per element. The element products
x * inv are single fp32 multiplications, correctly rounded everywhere, and nothing is added to
them (no FMA contraction can apply). Rounding: torch.round is half to even on every backend
(Triton: libdevice nearbyint), and the fp32 -> e4m3 conversion is round to nearest even
(Triton on sm_90: cvt.rn.satfinite); the clamp before it makes torch's conversion saturate.

What inductor computes x from. Fused into a bf16 / fp16 producer, inductor by default keeps the
producer's fp32 value instead of rounding it to bf16 first (``torch._inductor.config.
emulate_precision_casts`` False; see its comment in torch/_inductor/config.py), so a compiled
model quantizes a slightly more accurate x than eager, and compiled != eager bitwise there
(as for any inductor-fused chain of 16-bit ops). Given the same x, the codes and scales are
exactly the ops'.

Off by default; ``LOWBIT_COMPILE_ACT_QUANT=1`` (environment, read once at import) turns it on.
Why off: measured on the H100 (bench/NOTES.md session 13, `s13-call3`; Llama-3-8B, every block
compiled, torch 2.11) it gained nothing: inductor emits the fused norm + quantizer and SiLU*mul +
quantizer as looped reductions (rows of 4096 / 14336 elements) that read their input once for
amax and again to quantize, so they cost what our separate quantizer kernel did (w8a8_fp8
prefill 37.97 ms with, 37.73 without; w8a8_int8 32.21 / 32.59; decode B = 1 within +-2%).
"""
import os
from typing import Tuple

import torch
from torch import Tensor

FP8 = torch.float8_e4m3fn
E4M3_MAX = 448.0
INT8_MAX = 127.0
AMAX_FLOOR = 1e-12          # lowbit::kAmaxFloor, a float: applied to the fp32 amax
K_8BIT = 16                 # csrc contract::kK8bit
BLOCK = 128                 # csrc contract::kKBlock (1x128 activation blocks)
_INPUT_DTYPES = (torch.bfloat16, torch.float16, torch.float32)

# LOWBIT_COMPILE_ACT_QUANT=1: under torch.compile, the formats call these functions + the *_mm
# ops instead of the fused *_linear ops (quantizer kernel + GEMM). Off by default (see above).
COMPILE_ACT_QUANT = os.environ.get("LOWBIT_COMPILE_ACT_QUANT", "0") == "1"


def use_under_compile() -> bool:
    """Whether a format's linear should quantize x with this module and call the *_mm op:
    while dynamo traces it (``torch.compiler.is_compiling()``) and the knob allows it."""
    return COMPILE_ACT_QUANT and torch.compiler.is_compiling()


def quantized_mm(quantize, mm, x: Tensor, w: Tensor, w_scale: Tensor, bias) -> Tensor:
    """A format's linear under torch.compile (use_under_compile): x quantized by ``quantize``
    (one of this module's, which inductor fuses into x's producer), then the GEMM op ``mm``
    (``ops.w8a8_fp8_mm`` ...) on the codes, output in x's dtype."""
    xq, xs = quantize(x)
    return mm(xq, xs, w, w_scale, bias, x.dtype)


def _check(op: str, x: Tensor, k_multiple: int, why: str) -> None:
    # The same contract as the ops' (contract::quantizer_input), on metadata only, so it
    # traces; raised at trace time under torch.compile, where no real op has run yet.
    if x.dim() != 2:
        raise ValueError(f"{op}: x must be 2-D (M, K); flatten leading dimensions first, got shape "
                         f"{tuple(x.shape)}")
    if x.dtype not in _INPUT_DTYPES:
        raise ValueError(f"{op}: x must be bfloat16, float16 or float32, got {str(x.dtype)[6:]}")
    K = x.shape[1]
    if K <= 0 or K % k_multiple:
        raise ValueError(f"{op}: K must be a positive multiple of {k_multiple} ({why}), got K = {K}")


def _absmax_quantize(xb: Tensor, qmax: float, fp8: bool) -> Tuple[Tensor, Tensor]:
    """Blocks along the last dim of xb (..., n) (any float dtype) -> (codes (..., n) e4m3 or
    int8, fp32 scales (...))."""
    xf = xb.float()                                            # exact upcast
    mag = xf.abs()
    # NaN counts as +inf, so one max tells a non-finite block (no reliance on how a backend's
    # max reduction treats NaN)
    mag = torch.where(torch.isnan(mag), torch.full_like(mag, float("inf")), mag)
    amax = mag.amax(dim=-1)
    bad = torch.isinf(amax)
    a64 = amax.clamp_min(AMAX_FLOOR).double()                 # floor in fp32, as the spec
    q64 = torch.full_like(a64, qmax)
    scale = (a64 / q64).float()                                # in fp64, then one rounding
    inv = (q64 / a64).float()                                  # to fp32: see the docstring
    y = xf * inv.unsqueeze(-1)
    if fp8:
        # torch's fp32 -> e4m3 conversion rounds to nearest even but gives NaN past 448; the
        # clamp makes it saturate (|x * inv| can exceed 448 by an ulp)
        y = y.clamp(-E4M3_MAX, E4M3_MAX)
    else:
        y = torch.round(y).clamp(-INT8_MAX, INT8_MAX)          # round: half to even
    y = torch.where(bad.unsqueeze(-1), torch.zeros_like(y), y)
    codes = y.to(FP8 if fp8 else torch.int8)
    scale = torch.where(bad, torch.full_like(scale, float("nan")), scale)
    return codes, scale


def fp8_per_token(x: Tensor) -> Tuple[Tensor, Tensor]:
    """x (M, K) bf16 / fp16 / fp32, K % 16 == 0 -> (e4m3 codes (M, K), fp32 scale (M,)):
    ``lowbit.quantize_fp8_per_token``."""
    _check("fp8_per_token", x, K_8BIT, "fp8 rows of 16-byte chunks")
    return _absmax_quantize(x, E4M3_MAX, fp8=True)


def int8_per_token(x: Tensor) -> Tuple[Tensor, Tensor]:
    """x (M, K) bf16 / fp16 / fp32, K % 16 == 0 -> (int8 codes (M, K), fp32 scale (M,)):
    ``lowbit.quantize_int8_per_token``."""
    _check("int8_per_token", x, K_8BIT, "int8 rows of 16-byte chunks")
    return _absmax_quantize(x, INT8_MAX, fp8=False)


def fp8_1x128(x: Tensor) -> Tuple[Tensor, Tensor]:
    """x (M, K) bf16 / fp16 / fp32, K % 128 == 0 -> (e4m3 codes (M, K), fp32 scales
    (M, K/128)), one per 128 consecutive elements of a row: ``lowbit.quantize_fp8_1x128``."""
    _check("fp8_1x128", x, BLOCK, "one scale per 128 elements")
    M, K = x.shape
    codes, scale = _absmax_quantize(x.reshape(M, K // BLOCK, BLOCK), E4M3_MAX, fp8=True)
    return codes.reshape(M, K), scale
