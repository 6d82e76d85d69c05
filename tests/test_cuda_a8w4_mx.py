"""a8w4_mx and mxfp8 on the GPU (issue 6): a8w4_mx_mm (MXFP8 a x MXFP4 b), mxfp8_mm (MXFP8 x
MXFP8) and their linears (x quantized to MXFP8 in the op) against the CPU reference ops (csrc/cpu/linear.cpp mx_mm: both operands
dequantized exactly to fp32, an fp32 GEMM, one rounding) and float64.

The CUDA ops dequantize the activations (e4m3 x 2^(e - 127): exact in fp32, and in bf16 down
to 2^-133) to bf16 when the output is bf16, else fp32. a8w4_mx then runs the mxfp4 paths on
them: the mixed-input wgmma GEMM from 9 to 512 tokens (bf16, full tiles), the GEMV for the
other M <= 32 (bf16 output), the weight dequantized + cuBLAS above (bf16), or an fp32 GEMM (fp16
output: a bf16 kernel's rounded output would be rounded again). mxfp8 with bf16 output: the
mixed-input wgmma on the e4m3 rows to M = 512 (full tiles, from 1 token), the 8-bit-row GEMV for
other shapes at M <= 32; else both operands
dequantized the same way (bf16 operands and cuBLAS; fp16 output: fp32 operands, an fp32 GEMM).

Tolerances (elementwise vs the CPU reference; A = |a| @ |w|^T from the exact operands in
float64, the scale of a dot product's rounding errors):
- GEMV and fp32 paths: |y - ref| <= 2^-7 |ref| + 2^-9 A: one output ulp apart at most (the
  fp32 values differ by summation order only, <= K 2^-24 A, under 2^-10 A for K <= 16384).
- M > 32 with bf16 output (wgmma or dequantize path): 2^-7 A, as tests/test_cuda_mxfp4.py's
  (cuBLAS's reduction; the wgmma paths' fp32 sums are within it).
Outputs are poisoned (samples.poison_allocator).
"""
import itertools

import pytest
import torch

import lowbit_ext
from lowbit_ext import ops
from lowbit_ext.formats._base import e8m0_to_float

from samples import (BF16, FP16, assert_close_elementwise, assert_linear_compiles_and_replays, bitwise_repeatable,
                     poison_allocator, raises_with, rand_x, to_cuda)
from test_cuda_mxfp4 import dequant64, mx4_operands
from test_op_contract import run_opcheck

pytestmark = pytest.mark.cuda

MX_BLOCK = 32
M_VALUES = (1, 3, 17, 32, 33, 100)
NK_SHAPES = ((40, 128), (136, 384), (256, 1024))


def mx8_operand(M, K, gen, src):
    """MXFP8 (e4m3 codes (M, K), E8M0 scales (M, K/32)): the spec's quantizer on random x, or
    random finite codes with scales in 112..118 (|values| <= 448 * 2^-9: sums stay finite in
    fp16 outputs)."""
    if src == "quantized":
        return ops.quantize_mxfp8(rand_x(M, K, BF16, gen=gen))
    codes = torch.randint(0, 256, (M, K), generator=gen, dtype=torch.uint8)
    codes[(codes & 0x7F) == 0x7F] = 0x3C  # no NaN codes
    scale = torch.randint(112, 119, (M, K // MX_BLOCK), generator=gen, dtype=torch.uint8)
    return codes.view(torch.float8_e4m3fn), scale


def mx4_operand(N, K, gen):
    """MXFP4 weights: random codes, scales in 120..124 (|w| <= 6 * 2^-3: fp16 sums stay finite)."""
    return mx4_operands(N, K, gen, scale_range=(120, 125))


def a64(a, s):
    return a.float().double() * e8m0_to_float(s).double().repeat_interleave(MX_BLOCK, dim=1)


def coef(M, out_dtype):
    return 2.0 ** -7 if (M > 32 and out_dtype == BF16) else 2.0 ** -9


def test_a8w4_mx_has_cuda_kernels():
    assert {"a8w4_mx_mm", "a8w4_mx_linear"} <= set(lowbit_ext.cuda_ops())


@pytest.mark.parametrize("M,NK,out_dtype", list(itertools.product(M_VALUES, NK_SHAPES, (BF16, FP16))))
def test_a8w4_mx_mm_matches_reference(M, NK, out_dtype):
    N, K = NK
    gen = torch.Generator().manual_seed(M * 100 + N)
    src = "quantized" if (M + N) % 2 else "codes"
    a, sa = mx8_operand(M, K, gen, src)
    w, sw = mx4_operand(N, K, gen)
    bias = torch.randn(N, generator=gen).to(out_dtype) if M % 2 else None
    ref = ops.a8w4_mx_mm(a, sa, w, sw, bias, out_dtype)
    assert torch.isfinite(ref).all()
    ac, sac, wc, swc, bc = to_cuda(a, sa, w, sw, bias)
    poison_allocator(M * N * 2, N * K * 4, M * K * 4)
    y = ops.a8w4_mx_mm(ac, sac, wc, swc, bc, out_dtype)
    assert y.is_cuda and y.dtype == out_dtype and y.shape == (M, N)
    a_exact = a64(a, sa)
    assert_close_elementwise(y, ref, a_exact, dequant64(w, sw), coef(M, out_dtype), f"mm {src}")


@pytest.mark.parametrize("dtype", [BF16, FP16])
@pytest.mark.parametrize("M", [1, 16, 40, 130])
def test_a8w4_mx_linear_matches_reference(M, dtype):
    gen = torch.Generator().manual_seed(M)
    N, K = 200, 512
    x = rand_x(M, K, dtype, gen=gen)
    w, sw = mx4_operand(N, K, gen)
    bias = torch.randn(N, generator=gen).to(dtype)
    ref = ops.a8w4_mx_linear(x, w, sw, bias)
    poison_allocator(M * N * 2, N * K * 4, M * K * 4)
    y = ops.a8w4_mx_linear(*to_cuda(x, w, sw, bias))
    assert y.is_cuda and y.dtype == dtype and y.shape == (M, N)
    aq, sa = ops.quantize_mxfp8(x)  # the CPU quantizer: bit-exact with the CUDA one (tests/test_cuda_ops.py)
    assert_close_elementwise(y, ref, a64(aq, sa), dequant64(w, sw), coef(M, dtype), "linear")


def test_a8w4_mx_cuda_graph_and_compile():
    gen = torch.Generator().manual_seed(7)
    N, K = 256, 1024
    w, sw = to_cuda(*mx4_operand(N, K, gen))
    assert_linear_compiles_and_replays(lambda x: ops.a8w4_mx_linear(x, w, sw), K, BF16, gen)


def test_a8w4_mx_opcheck_cuda():
    gen = torch.Generator().manual_seed(3)
    a, sa = mx8_operand(3, 256, gen, "quantized")
    w, sw = mx4_operand(40, 256, gen)
    bias = torch.randn(40, generator=gen).to(BF16)
    # fp8 operand: run_opcheck swaps test_schema (no float8 compare on CUDA either) for
    # its own no-mutation / no-alias check.
    run_opcheck("a8w4_mx_mm", to_cuda(a, sa, w, sw, bias) + (BF16,), {})
    x = rand_x(40, 256, FP16, gen=gen)
    torch.library.opcheck(torch.ops.lowbit.a8w4_mx_linear.default, to_cuda(x, w, sw, bias.half()))


def test_a8w4_mx_m_zero_and_bad_inputs_cuda():
    gen = torch.Generator().manual_seed(5)
    w, sw = to_cuda(*mx4_operand(40, 256, gen))
    y = ops.a8w4_mx_linear(rand_x(0, 256).cuda(), w, sw)
    assert y.shape == (0, 40) and y.is_cuda
    x = rand_x(3, 256, gen=gen).cuda()
    raises_with(lambda: ops.a8w4_mx_linear(x.float(), w, sw), "x must be bfloat16 or float16")
    raises_with(lambda: ops.a8w4_mx_linear(x, w, sw[:, :4].contiguous()), "w_scale")
    raises_with(lambda: ops.a8w4_mx_linear(x, w.cpu(), sw), "all tensors must be on one device")


# ---------------------------------------------------------------- mxfp8
def mx8_weight(N, K, gen):
    """MXFP8 weights: random finite e4m3 codes, scales in 116..120 (|w| <= 448 * 2^-7)."""
    codes = torch.randint(0, 256, (N, K), generator=gen, dtype=torch.uint8)
    codes[(codes & 0x7F) == 0x7F] = 0x3C
    scale = torch.randint(116, 121, (N, K // MX_BLOCK), generator=gen, dtype=torch.uint8)
    return codes.view(torch.float8_e4m3fn), scale


def test_mxfp8_has_cuda_kernels():
    assert {"mxfp8_mm", "mxfp8_linear"} <= set(lowbit_ext.cuda_ops())


# M <= 32 with bf16 output: the 8-bit-row GEMV on the e4m3 weights (scales applied in
# registers; the full-tile shape (256, 1024) takes the wgmma on the e4m3 rows instead); else both
# operands dequantized + cuBLAS / an fp32 GEMM. (72, 160): K a multiple
# of 32 but not of the GEMV's 64-element chunk.
@pytest.mark.parametrize("M,NK,out_dtype",
                         list(itertools.product((1, 17, 32, 100), NK_SHAPES + ((72, 160),), (BF16, FP16))))
def test_mxfp8_mm_matches_reference(M, NK, out_dtype):
    N, K = NK
    gen = torch.Generator().manual_seed(M * 100 + N + 1)
    a, sa = mx8_operand(M, K, gen, "quantized" if M % 2 else "codes")
    b, sb = mx8_weight(N, K, gen)
    bias = torch.randn(N, generator=gen).to(out_dtype)
    ref = ops.mxfp8_mm(a, sa, b, sb, bias, out_dtype)
    assert torch.isfinite(ref).all()
    poison_allocator(M * N * 2, N * K * 4, M * K * 4)
    y = ops.mxfp8_mm(*to_cuda(a, sa, b, sb, bias), out_dtype)
    assert y.is_cuda and y.dtype == out_dtype and y.shape == (M, N)
    tol = 2.0 ** -7 if out_dtype == BF16 else 2.0 ** -9
    assert_close_elementwise(y, ref, a64(a, sa), a64(b, sb), tol, "mxfp8 mm")


@pytest.mark.parametrize("dtype", [BF16, FP16])
@pytest.mark.parametrize("M", [1, 40])
def test_mxfp8_linear_matches_reference(M, dtype):
    gen = torch.Generator().manual_seed(M + 3)
    N, K = 136, 384
    x = rand_x(M, K, dtype, gen=gen)
    b, sb = mx8_weight(N, K, gen)
    ref = ops.mxfp8_linear(x, b, sb)
    y = ops.mxfp8_linear(*to_cuda(x, b, sb))
    assert y.is_cuda and y.dtype == dtype and y.shape == (M, N)
    aq, sa = ops.quantize_mxfp8(x)
    assert_close_elementwise(y, ref, a64(aq, sa), a64(b, sb), 2.0 ** -7 if dtype == BF16 else 2.0 ** -9, "mxfp8")


# Full 128-row tiles and 128-element blocks: M > 32 (to 512) with bf16 output takes the mixed-input
# wgmma GEMM on the e4m3 rows (scales folded exactly, sums chained in fp32); with
# LOWBIT_ROWS8_LARGE=dequant or LOWBIT_MXFP8_PATH=dequant the dequantize path.
@pytest.mark.parametrize("N,K", [(128, 512), (256, 1024), (384, 4096)])
@pytest.mark.parametrize("M", [33, 129, 300])
def test_mxfp8_large_m_full_tiles(M, N, K):
    gen = torch.Generator().manual_seed(M * 5 + N + K)
    a, sa = mx8_operand(M, K, gen, "quantized")
    b, sb = mx8_weight(N, K, gen)
    bias = torch.randn(N, generator=gen).to(BF16)
    ref = ops.mxfp8_mm(a, sa, b, sb, bias, BF16)
    poison_allocator(M * N * 2, N * K * 4, M * K * 4)
    y = ops.mxfp8_mm(*to_cuda(a, sa, b, sb, bias), BF16)
    assert y.is_cuda and y.dtype == BF16 and y.shape == (M, N)
    assert_close_elementwise(y, ref, a64(a, sa), a64(b, sb), 2.0 ** -7, "mxfp8 large M")


@pytest.mark.parametrize("M", [1, 8, 32])
def test_mxfp8_gemv_split_k_repeatable(M):
    # K = 8192: many 64-element chunks, so the GEMV splits K across CTAs and reduces the
    # partials in the last CTA; a result that moves between runs would be a race.
    gen = torch.Generator().manual_seed(M + 11)
    N, K = 264, 8192
    a, sa = mx8_operand(M, K, gen, "quantized")
    b, sb = mx8_weight(N, K, gen)
    bias = torch.randn(N, generator=gen).to(BF16)
    ref = ops.mxfp8_mm(a, sa, b, sb, bias, BF16)
    args = to_cuda(a, sa, b, sb, bias)
    y0 = bitwise_repeatable(lambda: ops.mxfp8_mm(*args, BF16))
    assert_close_elementwise(y0, ref, a64(a, sa), a64(b, sb), 2.0 ** -7, "mxfp8 split K")


@pytest.mark.parametrize("M", [1, 40])
def test_mxfp8_nan_scales_and_codes(M):
    # NaN propagates as the reference has it: a weight block with the NaN scale 0xFF or a NaN
    # code (S.1111.111) makes its output column NaN, an activation block with the NaN scale its
    # output row; nothing else is NaN. M = 1: the GEMV; M = 40: the dequantize path.
    gen = torch.Generator().manual_seed(M + 23)
    N, K = 72, 256
    a, sa = mx8_operand(M, K, gen, "codes")
    b, sb = mx8_weight(N, K, gen)
    sb[5, 3] = 0xFF
    codes = b.view(torch.uint8).clone()
    codes[60, 200] = 0x7F
    codes[61, 17] = 0xFF
    b = codes.view(torch.float8_e4m3fn)
    sa[M - 1, 1] = 0xFF
    ref = ops.mxfp8_mm(a, sa, b, sb, None, BF16)
    y = ops.mxfp8_mm(*to_cuda(a, sa, b, sb), None, BF16).cpu()
    assert torch.equal(torch.isnan(y), torch.isnan(ref))
    assert torch.isnan(ref[:, [5, 60, 61]]).all() and torch.isnan(ref[M - 1]).all()
    finite = ~torch.isnan(ref)
    assert_close_elementwise(y, ref, a64(a, sa).nan_to_num(0.0), a64(b, sb).nan_to_num(0.0), 2.0 ** -7,
                             "mxfp8 NaN", mask=finite)



@pytest.mark.parametrize("dtype", [BF16, FP16])
@pytest.mark.parametrize("M", [1, 16, 40, 130])
def test_mx_linears_round_x_as_quantize_then_mm(M, dtype):
    # The _linear ops round x to MXFP8 and back in one kernel (no codes); the _mm ops take the
    # codes of quantize_mxfp8 and dequantize them. Same activations, same GEMM: equal bit for bit,
    # with a block holding Inf (its NaN scale makes its output row NaN in both), one holding a
    # NaN, blocks at the bf16 extremes (saturation, subnormal e4m3 codes) and zero blocks.
    gen = torch.Generator().manual_seed(M + 101)
    N, K = 256, 1024
    x = rand_x(M, K, dtype, gen=gen)
    x[0, 64:96] = 0.0
    x[M - 1, 128:160] *= 2.0 ** -20
    x[M // 2, 32] = float("inf")
    x[M // 2, 300] = float("nan")
    if dtype == BF16:
        x[0, 200:232] *= 2.0 ** 100
    w4, sw4 = to_cuda(*mx4_operand(N, K, gen))
    w8, sw8 = to_cuda(*mx8_weight(N, K, gen))
    xc = x.cuda()
    q, s = ops.quantize_mxfp8(xc)
    for linear, mm, w, sw in ((ops.a8w4_mx_linear, ops.a8w4_mx_mm, w4, sw4),
                              (ops.mxfp8_linear, ops.mxfp8_mm, w8, sw8)):
        y_linear = linear(xc, w, sw).cpu()
        y_mm = mm(q, s, w, sw, None, dtype).cpu()
        assert torch.equal(torch.isnan(y_linear), torch.isnan(y_mm)), linear.__name__
        assert torch.isnan(y_mm[M // 2]).all()
        assert torch.equal(y_linear.nan_to_num(0.0), y_mm.nan_to_num(0.0)), linear.__name__
