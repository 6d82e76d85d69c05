"""a16w8 on the GPU (issue 5): a16w8_linear against the CPU reference op (the spec,
csrc/cpu/linear.cpp: y = (x @ q^T in fp32) * s + bias, one rounding) and against float64.

Three paths, chosen by M and shape:
- M <= 32, tensor-core GEMV: int8 codes exact through the MMA (|q| <= 128 is exact in bf16
  and fp16), fp32 sums, the scale applied once; the fp32 value differs from the reference's
  only by summation order, then is rounded once to the output dtype.
- M = 1..1024 with N and K multiples of 128 (from 1 token since session 8; the GEMV keeps the
  other shapes): the mixed-input wgmma GEMM on the int8 rows, exact products, fp32 sums, the
  scale applied once (held to the GEMV's bound).
- otherwise M > 32, dequantize (q * s rounded once to x's dtype: relative error <= 2^-8 in
  bf16, 2^-11 in fp16) + cuBLAS.

Tolerances (elementwise vs the CPU reference; A = |x| @ |q s|^T in float64, the scale of a
dot product's rounding errors, which |ref| is not where terms cancel):
- GEMV and wgmma: |y - ref| <= 2^-7 |ref| + 2^-9 A: one output ulp (<= 2^-7 of the value in bf16)
  plus the fp32 summation-order difference (<= K 2^-24 A, under 2^-10 A for K <= 16384).
- dequant: |y - ref| <= 2^-7 |ref| + 2^-7 A: the same ulp, the weight rounding (<= 2^-8 A)
  and cuBLAS's reduction.
- vs float64 at K = 16384 (GEMV): normwise relative error <= 3e-3 in bf16, 5e-4 in fp16 (one
  output rounding: RMS ~1.6e-3 / ~2e-4 of the value).
Outputs are poisoned (samples.poison_allocator): an element never written reads NaN.
"""
import itertools
import os

import pytest
import torch

import lowbit_ext
from lowbit_ext import ops

from samples import (BF16, FP16, assert_close_elementwise, assert_linear_compiles_and_replays, bitwise_repeatable,
                     poison_allocator, raises_with, rand_x, to_cuda)

pytestmark = pytest.mark.cuda

GEMV_MAX_M = 32
M_VALUES = (1, 3, 8, 9, 16, 17, 32, 33, 100)
# (N, K): K a multiple of 16 (the contract) but mostly not of the 64-element chunk or of the
# 4-chunk unroll; N not a multiple of the 128-row CTA (N = 40: one partial CTA). (96, 640): full
# 16-row tiles and 128-byte blocks.
NK_SHAPES = ((40, 16), (200, 48), (136, 1040), (264, 4096), (72, 4160), (96, 640))
DTYPES = (BF16, FP16)


def operands(M, N, K, dtype, has_bias, gen):
    """Fresh random x, int8 codes over the whole range (never zeros), scales, bias."""
    x = rand_x(M, K, dtype, gen=gen)
    w = torch.randint(-127, 128, (N, K), generator=gen, dtype=torch.int8)
    w_scale = (torch.rand(N, generator=gen) + 0.5) * 1e-3
    bias = torch.randn(N, generator=gen).to(dtype) if has_bias else None
    return x, w, w_scale, bias


def w64(w, w_scale):
    return w.cpu().double() * w_scale.cpu().double()[:, None]


def test_a16w8_has_cuda_kernel():
    assert "a16w8_linear" in set(lowbit_ext.cuda_ops())


@pytest.mark.parametrize("M,NK,dtype,has_bias",
                         [pytest.param(M, NK, dt, b, id=f"M{M}-{NK[0]}x{NK[1]}-{'bf16' if dt == BF16 else 'fp16'}-"
                                       f"{'bias' if b else 'nobias'}")
                          for M, NK, dt, b in itertools.product(M_VALUES, NK_SHAPES, DTYPES, (True, False))])
def test_a16w8_matches_reference(M, NK, dtype, has_bias):
    N, K = NK
    gen = torch.Generator().manual_seed(M * 1000 + N + K)
    x, w, w_scale, bias = operands(M, N, K, dtype, has_bias, gen)
    ref = ops.a16w8_linear(x, w, w_scale, bias)
    xc, wc, sc, bc = to_cuda(x, w, w_scale, bias)
    poison_allocator(M * N * 2, N * K * 2)
    y = ops.a16w8_linear(xc, wc, sc, bc)
    assert y.is_cuda and y.dtype == dtype and y.shape == (M, N)
    # (LOWBIT_A16W8_PATH=dequant sends every M through the large-M path: tests/test_cuda_variants.py)
    gemv = M <= GEMV_MAX_M and os.environ.get("LOWBIT_A16W8_PATH") != "dequant"
    assert_close_elementwise(y, ref, x, w64(w, w_scale), 2.0 ** -9 if gemv else 2.0 ** -7,
                             "gemv" if gemv else "dequant")


# Full 128-row CTAs and 128-element blocks (N % 128 == 0, K % 128 == 0): the shapes the mixed-
# input wgmma GEMM on 8-bit rows takes (by default up to 1024 tokens; LOWBIT_ROWS8_LARGE=dequant
# or LOWBIT_A16W8_PATH=dequant send them to the dequantize path: tests/test_cuda_variants.py).
# Its products are exact and its sums chain in fp32 with the scale applied once, so it is held to
# the GEMV's bound. M: partial token tiles of 128 and several tiles.
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("N,K", [(128, 512), (256, 1024), (384, 4096), (1280, 2048)])
@pytest.mark.parametrize("M", [33, 64, 100, 129, 300])
def test_a16w8_large_m_full_tiles(M, N, K, dtype):
    gen = torch.Generator().manual_seed(M * 7 + N + K)
    x, w, w_scale, bias = operands(M, N, K, dtype, True, gen)
    ref = ops.a16w8_linear(x, w, w_scale, bias)
    poison_allocator(M * N * 2, N * K * 2)
    y = ops.a16w8_linear(*to_cuda(x, w, w_scale, bias))
    assert y.is_cuda and y.dtype == dtype and y.shape == (M, N)
    wgmma = "dequant" not in (os.environ.get("LOWBIT_ROWS8_LARGE"), os.environ.get("LOWBIT_A16W8_PATH"))
    assert_close_elementwise(y, ref, x, w64(w, w_scale), 2.0 ** -9 if wgmma else 2.0 ** -7,
                             "wgmma" if wgmma else "dequant")


@pytest.mark.parametrize("dtype,bound", [(BF16, 3e-3), (FP16, 5e-4)])
@pytest.mark.parametrize("M", [1, 16, 32])
def test_a16w8_large_k_accuracy(M, dtype, bound):
    gen = torch.Generator().manual_seed(M)
    N, K = 256, 16384
    x, w, w_scale, _ = operands(M, N, K, dtype, False, gen)
    ref64 = x.double() @ w64(w, w_scale).t()
    y = ops.a16w8_linear(*to_cuda(x, w, w_scale)).cpu().double()
    assert ((y - ref64).norm() / ref64.norm()).item() <= bound


@pytest.mark.parametrize("M", [1, 16, 32, 64])
def test_a16w8_repeatable_bitwise(M):
    # K split across CTAs with a last-CTA reduction: a moving result would be a race.
    gen = torch.Generator().manual_seed(M)
    x, w, w_scale, bias = to_cuda(*operands(M, 4096, 8192, BF16, True, gen))
    bitwise_repeatable(lambda: ops.a16w8_linear(x, w, w_scale, bias))


@pytest.mark.parametrize("dtype", DTYPES)
def test_a16w8_cuda_graph_and_compile(dtype):
    gen = torch.Generator().manual_seed(7)
    N, K = 512, 1024
    _, w, w_scale, bias = to_cuda(*operands(1, N, K, dtype, True, gen))
    assert_linear_compiles_and_replays(lambda x: ops.a16w8_linear(x, w, w_scale, bias), K, dtype, gen)


@pytest.mark.parametrize("M,dtype", [(3, BF16), (3, FP16), (40, BF16)])
def test_a16w8_opcheck_cuda(M, dtype):
    gen = torch.Generator().manual_seed(M)
    args = to_cuda(*operands(M, 40, 256, dtype, True, gen))
    torch.library.opcheck(torch.ops.lowbit.a16w8_linear.default, args)


def test_a16w8_m_zero_cuda():
    gen = torch.Generator().manual_seed(0)
    _, w, w_scale, _ = to_cuda(*operands(1, 40, 256, BF16, False, gen))
    y = ops.a16w8_linear(rand_x(0, 256).cuda(), w, w_scale)
    assert y.shape == (0, 40) and y.is_cuda and y.dtype == BF16


def test_a16w8_bad_inputs_cuda():
    # The CUDA op runs the same contract (csrc/include/lowbit/contracts.h) as the CPU one.
    gen = torch.Generator().manual_seed(5)
    x, w, s, bias = to_cuda(*operands(3, 40, 256, BF16, True, gen))
    op = ops.a16w8_linear
    raises_with(lambda: op(x.float(), w, s), "x must be bfloat16 or float16")
    raises_with(lambda: op(x, w.to(torch.uint8), s), "w must be Char")
    raises_with(lambda: op(x, w[:, :128].contiguous(), s), "must be (N, K) with the same K")
    raises_with(lambda: op(x, w, s.half()), "w_scale must be Float")
    raises_with(lambda: op(x, w, s[:5]), "w_scale (one per output channel) must have shape [40]")
    raises_with(lambda: op(x, w, s, bias.half()), "bias must be BFloat16")
    x24, w24 = rand_x(3, 24, gen=gen).cuda(), torch.zeros(40, 24, dtype=torch.int8, device="cuda")
    raises_with(lambda: op(x24, w24, s), "multiple of 16")
    base = rand_x(1, 4 * 256, gen=gen).cuda().reshape(-1)
    raises_with(lambda: op(base[1:1 + 3 * 256].view(3, 256), w, s), "16-byte aligned")
    raises_with(lambda: op(x, w.cpu(), s), "all tensors must be on one device")
    raises_with(lambda: op(x, w, s.cpu()), "all tensors must be on one device")
