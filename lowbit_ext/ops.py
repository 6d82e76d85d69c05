"""Typed wrappers of every ``torch.ops.lowbit`` op, and their fake (meta) implementations.

Conventions (see csrc/torch_bindings.cpp): ``y = x @ W^T`` with x ``(M, K)`` and W
``(N, K)``; 16-bit activations are bf16 or fp16; scales are fp32 except where said;
MX scales are E8M0 bytes (uint8), one per 32 elements along K; 4-bit weights are int32
``(N, K/8)`` in the w4 kernel layout made by :func:`prepack_w4`.

The semantics of each op (rounding, saturation, NaN/Inf, scale rules) are defined by its
CPU implementation in ``csrc/cpu/``; its docstring there is the specification.

The fake implementations give output shapes and dtypes only: they never depend on tile
configurations, and they do not repeat the argument checks (those run in every real
backend through ``csrc/include/lowbit/contracts.h``).
"""
from typing import Optional, Tuple

import torch
from torch import Tensor

lowbit = torch.ops.lowbit
FP8 = torch.float8_e4m3fn
MX_BLOCK = 32
FP8_BLOCK = 128

OP_NAMES = [
    "quantize_int8_per_token", "quantize_fp8_per_token", "quantize_fp8_per_tensor",
    "quantize_fp8_1x128", "quantize_mxfp8", "quantize_mxfp4",
    "silu_mul_quantize_int8_per_token", "silu_mul_quantize_fp8_per_token",
    "rms_norm_quantize_int8_per_token", "rms_norm_quantize_fp8_per_token",
    "add_rms_norm_quantize_int8_per_token", "add_rms_norm_quantize_fp8_per_token",
    "prepack_w4", "unpack_w4",
    "w8a8_int8_mm", "w8a8_fp8_mm", "fp8_block_mm", "mxfp8_mm", "a8w4_mx_mm",
    "a16w4_linear", "a16w8_linear", "mxfp4_linear", "w8a8_int8_linear", "w8a8_fp8_linear",
    "fp8_block_linear", "mxfp8_linear", "a8w4_mx_linear",
]


def _check_one_device(name, args):
    devices = {a.device for a in args if isinstance(a, Tensor)}
    if len(devices) > 1:
        raise RuntimeError(f"{name}: all tensors must be on one device, got {sorted(map(str, devices))}")


def _fake(name):
    """register_fake for lowbit::<name>; the fake checks only that all tensors share a
    device (the one check a fake must make so tracing rejects what no backend runs)."""
    def deco(fn):
        def fake(*args, **kwargs):
            _check_one_device(name, list(args) + list(kwargs.values()))
            return fn(*args, **kwargs)
        torch.library.register_fake(f"lowbit::{name}")(fake)
        return fn
    return deco


# ---------------------------------------------------------------- quantizers
def quantize_int8_per_token(x: Tensor) -> Tuple[Tensor, Tensor]:
    """x (M, K) -> (int8 codes (M, K), fp32 scale (M,)); x ~= codes * scale[:, None].

    Symmetric absmax per row: scale = max(amax, 1e-12) / 127, codes = clamp(round_half_even(
    x * (127 / max(amax, 1e-12))), -127, 127). A row holding NaN/Inf gets scale NaN, codes 0."""
    return lowbit.quantize_int8_per_token(x)


def quantize_fp8_per_token(x: Tensor) -> Tuple[Tensor, Tensor]:
    """x (M, K) -> (e4m3 codes (M, K), fp32 scale (M,)); absmax per row with QMAX = 448,
    conversion round-to-nearest-even, saturating."""
    return lowbit.quantize_fp8_per_token(x)


def quantize_fp8_per_tensor(x: Tensor, scale: Optional[Tensor] = None) -> Tuple[Tensor, Tensor]:
    """x (M, K) -> (e4m3 codes, fp32 scale (1,)). Dynamic (absmax of the whole tensor)
    unless a static one-element ``scale`` is given."""
    return lowbit.quantize_fp8_per_tensor(x, scale)


def quantize_fp8_1x128(x: Tensor) -> Tuple[Tensor, Tensor]:
    """x (M, K) -> (e4m3 codes (M, K), fp32 scale (M, K/128)): DeepSeek-V3 activation blocks."""
    return lowbit.quantize_fp8_1x128(x)


def quantize_mxfp8(x: Tensor) -> Tuple[Tensor, Tensor]:
    """x (M, K) -> (e4m3 codes (M, K), E8M0 scales uint8 (M, K/32)), OCP MX v1.0 (FLOOR rule)."""
    return lowbit.quantize_mxfp8(x)


def quantize_mxfp4(x: Tensor) -> Tuple[Tensor, Tensor]:
    """x (M, K) -> (e2m1 codes uint8 (M, K/2), low nibble first; E8M0 scales uint8 (M, K/32))."""
    return lowbit.quantize_mxfp4(x)


def silu_mul_quantize_int8_per_token(gate: Tensor, up: Tensor) -> Tuple[Tensor, Tensor]:
    """gate, up (M, K) bf16 / fp16 -> quantize_int8_per_token(h) for h = silu(gate) * up, computed
    in fp32 (SiLU through the library's own exp, identical on CPU and CUDA) and rounded once to
    gate's dtype; h is never written to memory. gate and up may be views with longer rows (the
    halves of a fused gate-up projection: ``gate, up = gate_up.chunk(2, dim=-1)``)."""
    return lowbit.silu_mul_quantize_int8_per_token(gate, up)


def silu_mul_quantize_fp8_per_token(gate: Tensor, up: Tensor) -> Tuple[Tensor, Tensor]:
    """As :func:`silu_mul_quantize_int8_per_token`, with quantize_fp8_per_token's codes."""
    return lowbit.silu_mul_quantize_fp8_per_token(gate, up)


def rms_norm_quantize_int8_per_token(x: Tensor, weight: Tensor, eps: float) -> Tuple[Tensor, Tensor]:
    """x (M, K) bf16 / fp16, weight (K,) of x's dtype -> quantize_int8_per_token(x') for the RMSNorm
    x' = x * rsqrt(mean(x^2) + eps) * weight (sum of squares in fp64, rsqrt in fp64 rounded to
    fp32, the products in fp32), rounded once to x's dtype; x' is never written to memory."""
    return lowbit.rms_norm_quantize_int8_per_token(x, weight, eps)


def rms_norm_quantize_fp8_per_token(x: Tensor, weight: Tensor, eps: float) -> Tuple[Tensor, Tensor]:
    """As :func:`rms_norm_quantize_int8_per_token`, with quantize_fp8_per_token's codes."""
    return lowbit.rms_norm_quantize_fp8_per_token(x, weight, eps)


def add_rms_norm_quantize_int8_per_token(x: Tensor, residual: Tensor, weight: Tensor,
                                         eps: float) -> Tuple[Tensor, Tensor, Tensor]:
    """x, residual (M, K) bf16 / fp16 of one dtype, weight (K,) -> (codes, scales, sum): sum =
    x + residual (in fp32, rounded once to x's dtype: what ``x + residual`` gives), and
    :func:`rms_norm_quantize_int8_per_token` of sum, in one kernel. A decoder block's residual
    stream: ``q, s, h = add_rms_norm_quantize_int8_per_token(attn_out, h, norm.weight, norm.eps)``
    reads both once and runs no separate add."""
    return lowbit.add_rms_norm_quantize_int8_per_token(x, residual, weight, eps)


def add_rms_norm_quantize_fp8_per_token(x: Tensor, residual: Tensor, weight: Tensor,
                                        eps: float) -> Tuple[Tensor, Tensor, Tensor]:
    """As :func:`add_rms_norm_quantize_int8_per_token`, with quantize_fp8_per_token's codes."""
    return lowbit.add_rms_norm_quantize_fp8_per_token(x, residual, weight, eps)


@_fake("quantize_int8_per_token")
def _(x):
    return x.new_empty(x.shape, dtype=torch.int8), x.new_empty(x.shape[:1], dtype=torch.float32)


@_fake("quantize_fp8_per_token")
def _(x):
    return x.new_empty(x.shape, dtype=FP8), x.new_empty(x.shape[:1], dtype=torch.float32)


@_fake("quantize_fp8_per_tensor")
def _(x, scale=None):
    return x.new_empty(x.shape, dtype=FP8), x.new_empty((1,), dtype=torch.float32)


@_fake("quantize_fp8_1x128")
def _(x):
    M, K = x.shape
    return x.new_empty((M, K), dtype=FP8), x.new_empty((M, K // FP8_BLOCK), dtype=torch.float32)


@_fake("silu_mul_quantize_int8_per_token")
def _(gate, up):
    return gate.new_empty(gate.shape, dtype=torch.int8), gate.new_empty(gate.shape[:1], dtype=torch.float32)


@_fake("silu_mul_quantize_fp8_per_token")
def _(gate, up):
    return gate.new_empty(gate.shape, dtype=FP8), gate.new_empty(gate.shape[:1], dtype=torch.float32)


@_fake("rms_norm_quantize_int8_per_token")
def _(x, weight, eps):
    return x.new_empty(x.shape, dtype=torch.int8), x.new_empty(x.shape[:1], dtype=torch.float32)


@_fake("rms_norm_quantize_fp8_per_token")
def _(x, weight, eps):
    return x.new_empty(x.shape, dtype=FP8), x.new_empty(x.shape[:1], dtype=torch.float32)


@_fake("add_rms_norm_quantize_int8_per_token")
def _(x, residual, weight, eps):
    return (x.new_empty(x.shape, dtype=torch.int8), x.new_empty(x.shape[:1], dtype=torch.float32),
            x.new_empty(x.shape))


@_fake("add_rms_norm_quantize_fp8_per_token")
def _(x, residual, weight, eps):
    return x.new_empty(x.shape, dtype=FP8), x.new_empty(x.shape[:1], dtype=torch.float32), x.new_empty(x.shape)


@_fake("quantize_mxfp8")
def _(x):
    M, K = x.shape
    return x.new_empty((M, K), dtype=FP8), x.new_empty((M, K // MX_BLOCK), dtype=torch.uint8)


@_fake("quantize_mxfp4")
def _(x):
    M, K = x.shape
    return x.new_empty((M, K // 2), dtype=torch.uint8), x.new_empty((M, K // MX_BLOCK), dtype=torch.uint8)


# ---------------------------------------------------------------- 4-bit layout
def prepack_w4(w: Tensor) -> Tensor:
    """Plain 4-bit codes uint8 (N, K/2) (element 2i in the low nibble) -> w4 kernel layout
    int32 (N, K/8), layout version 3 (spec in csrc/include/lowbit/w4_layout.h): each word
    holds 8 consecutive elements with nibbles interleaved; within each full 128-element
    block of a row the 16 words are stored as a transposed 4 x 4 matrix (a partial last
    block keeps logical order); and each full tile of 16 rows is stored contiguously,
    block by block (one 1 KB chunk per 128-element block of the 16 rows, then the partial
    blocks row after row), while the rows of a last partial tile (N % 16) keep the per-row
    order. So the result is not row-major: slicing its rows does not give the packing of
    a row subset. Version 1 and 2 tensors are not valid input to the ops; re-pack them
    from the plain codes."""
    return lowbit.prepack_w4(w)


def unpack_w4(w: Tensor) -> Tensor:
    """w4 kernel layout int32 (N, K/8) -> plain uint8 (N, K/2). Inverse of prepack_w4."""
    return lowbit.unpack_w4(w)


@_fake("prepack_w4")
def _(w):
    return w.new_empty((w.shape[0], w.shape[1] // 4), dtype=torch.int32)


@_fake("unpack_w4")
def _(w):
    return w.new_empty((w.shape[0], w.shape[1] * 4), dtype=torch.uint8)


# ---------------------------------------------------------------- matmuls on quantized operands
def _mm_out(a, b, out_dtype):
    return a.new_empty((a.shape[0], b.shape[0]), dtype=out_dtype)


def w8a8_int8_mm(a, a_scale, b, b_scale, bias=None, out_dtype=torch.bfloat16) -> Tensor:
    """int8 a (M, K) x int8 b (N, K): y = (float(int32 acc) * a_scale) * b_scale + bias."""
    return lowbit.w8a8_int8_mm(a, a_scale, b, b_scale, bias, out_dtype)


def w8a8_fp8_mm(a, a_scale, b, b_scale, bias=None, out_dtype=torch.bfloat16) -> Tensor:
    """e4m3 a (M, K) x e4m3 b (N, K), scales per row / per tensor, fp32 accumulation."""
    return lowbit.w8a8_fp8_mm(a, a_scale, b, b_scale, bias, out_dtype)


def fp8_block_mm(a, a_scale, b, b_scale, bias=None, out_dtype=torch.bfloat16) -> Tensor:
    """e4m3 a (M, K) with 1x128 scales (M, K/128) x e4m3 b (N, K) with 128x128 scales
    (ceil(N/128), K/128): the DeepSeek-V3 recipe."""
    return lowbit.fp8_block_mm(a, a_scale, b, b_scale, bias, out_dtype)


def mxfp8_mm(a, a_scale, b, b_scale, bias=None, out_dtype=torch.bfloat16) -> Tensor:
    """MXFP8 a (M, K) + E8M0 (M, K/32) x MXFP8 b (N, K) + E8M0 (N, K/32)."""
    return lowbit.mxfp8_mm(a, a_scale, b, b_scale, bias, out_dtype)


def a8w4_mx_mm(a, a_scale, b, b_scale, bias=None, out_dtype=torch.bfloat16) -> Tensor:
    """MXFP8 a (M, K) x MXFP4 b: int32 (N, K/8) w4 layout + E8M0 (N, K/32)."""
    return lowbit.a8w4_mx_mm(a, a_scale, b, b_scale, bias, out_dtype)


for _name in ("w8a8_int8_mm", "w8a8_fp8_mm", "fp8_block_mm", "mxfp8_mm", "a8w4_mx_mm"):
    _fake(_name)(lambda a, a_scale, b, b_scale, bias, out_dtype: _mm_out(a, b, out_dtype))


# ---------------------------------------------------------------- linears (the ops users call)
def _linear_out(x, w):
    return x.new_empty((x.shape[0], w.shape[0]), dtype=x.dtype)


def a16w4_linear(x, w, scales, zeros=None, group_size=128, bias=None) -> Tensor:
    """x (M, K) bf16/fp16 x int4 w (int32 (N, K/8), w4 layout), groups along K:
    w = (q - zeros) * scales (asymmetric) or (q - 8) * scales (zeros=None).
    group_size 32, 64, 128 or -1 (per channel)."""
    return lowbit.a16w4_linear(x, w, scales, zeros, group_size, bias)


def a16w8_linear(x, w, w_scale, bias=None) -> Tensor:
    """x (M, K) bf16/fp16 x int8 w (N, K): y = (x @ q^T) * w_scale (fp32 (N,)) + bias."""
    return lowbit.a16w8_linear(x, w, w_scale, bias)


def mxfp4_linear(x, w, w_scale, bias=None) -> Tensor:
    """x (M, K) bf16/fp16 x MXFP4 w: int32 (N, K/8) w4 layout of e2m1 codes + E8M0 (N, K/32)."""
    return lowbit.mxfp4_linear(x, w, w_scale, bias)


def w8a8_int8_linear(x, w, w_scale, bias=None) -> Tensor:
    """x quantized per token to int8 inside the op, times int8 w (N, K) with fp32 w_scale (N,)."""
    return lowbit.w8a8_int8_linear(x, w, w_scale, bias)


def w8a8_fp8_linear(x, w, w_scale, bias=None, act_per_token=True) -> Tensor:
    """x quantized to e4m3 inside the op (per token, or per tensor when act_per_token=False),
    times e4m3 w (N, K) with fp32 w_scale (N,) or (1,)."""
    return lowbit.w8a8_fp8_linear(x, w, w_scale, bias, act_per_token)


def fp8_block_linear(x, w, w_scale, bias=None) -> Tensor:
    """x quantized to e4m3 in 1x128 blocks inside the op, times 128x128-block e4m3 w."""
    return lowbit.fp8_block_linear(x, w, w_scale, bias)


def mxfp8_linear(x, w, w_scale, bias=None) -> Tensor:
    """x quantized to MXFP8 inside the op, times MXFP8 w (N, K) + E8M0 (N, K/32)."""
    return lowbit.mxfp8_linear(x, w, w_scale, bias)


def a8w4_mx_linear(x, w, w_scale, bias=None) -> Tensor:
    """x quantized to MXFP8 inside the op, times MXFP4 w (int32 (N, K/8) + E8M0 (N, K/32))."""
    return lowbit.a8w4_mx_linear(x, w, w_scale, bias)


@_fake("a16w4_linear")
def _(x, w, scales, zeros, group_size, bias=None):
    return _linear_out(x, w)


@_fake("w8a8_fp8_linear")
def _(x, w, w_scale, bias=None, act_per_token=True):
    return _linear_out(x, w)


for _name in ("a16w8_linear", "mxfp4_linear", "w8a8_int8_linear", "fp8_block_linear", "mxfp8_linear",
              "a8w4_mx_linear"):
    _fake(_name)(lambda x, w, w_scale, bias=None: _linear_out(x, w))
