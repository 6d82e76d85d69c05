"""w8a8_int8 on the GPU (issue 5): w8a8_int8_mm and w8a8_int8_linear against the CPU
reference ops (csrc/cpu/linear.cpp int8_mm) and against float64.

Tolerance: none. The CUDA kernel sums int8 x int8 products exactly in s32 (|acc| <= 128^2 K,
exact for K <= 2^17), then computes ((float(acc) * a_scale) * b_scale) + bias in fp32, one
rounding per step in the reference's order (no FMA contraction), and rounds once to the
output dtype. The reference does the same, so the results must be bitwise equal
(torch.equal). w8a8_int8_linear quantizes x per token inside (quantize_int8_per_token, the
same definition on both devices) and then does the same product, so it too must match bitwise.

Outputs are poisoned: the caching allocator is emptied, then blocks of the output's size are
filled with 0xFF bytes (NaN in bf16 and in fp16) and freed, so an element the kernel never
writes reads NaN and fails torch.equal.
"""

import pytest
import torch

import lowbit_ext
from lowbit_ext import ops

from samples import (BF16, FP16, assert_linear_compiles_and_replays, poison_allocator, raises_with, rand_x, to_cuda)

pytestmark = pytest.mark.cuda
I8 = torch.int8
FP8 = torch.float8_e4m3fn

# (M, N, K): N and K not multiples of 128 (nor N of 64 where avoidable), K a multiple of 16;
# K = 16 is the smallest legal K (one 16-byte row).
# (The large-M ones never split K, so they go out by TMA stores where N % 8 == 0: ragged tiles in
# both dimensions; N = 1030 takes the generic stores.)
SHAPES = [(1, 40, 144), (3, 200, 272), (17, 264, 1040), (64, 136, 400), (65, 200, 528), (100, 40, 16),
          (256, 392, 1008), (300, 520, 2064), (1000, 1048, 512), (384, 1030, 256),
          # small M on 9..66 weight tiles: K split in clusters of 4 or 2 CTAs at 17..64 tokens, exact
          # s32 partials (test_cuda_fp8.py's KSPLIT_SHAPES; empty ranks under the ksplit variants)
          (1, 4100, 1040), (5, 1100, 1152), (17, 5000, 656), (64, 2100, 2064), (33, 8200, 512),
          (200, 4100, 640),  # (normal layout on 66 tiles, unsplit: int8 splits from 96 K blocks)
          (80, 600, 12304)]  # (normal layout, 5 tiles, 97 K blocks, the last partial: split in clusters of 2)
GRANULARITY = {"row-row": (True, True), "tensor-tensor": (False, False), "row-tensor": (True, False)}


# ---------------------------------------------------------------- helpers




def scale(rows, per_row, gen):
    """Positive fp32 scales, per row (rows,) or per tensor (1,)."""
    n = rows if per_row else 1
    return (torch.rand(n, generator=gen) * 0.01 + 1e-3).float()


def int8_operands(M, N, K, per_row_a=True, per_row_b=True, seed=0):
    """Full-range int8 operands (-128 included) and fp32 scales."""
    gen = torch.Generator().manual_seed(seed)
    a = torch.randint(-128, 128, (M, K), generator=gen, dtype=I8)
    b = torch.randint(-128, 128, (N, K), generator=gen, dtype=I8)
    return a, scale(M, per_row_a, gen), b, scale(N, per_row_b, gen)


def assert_bitwise(y, ref, what=""):
    y = y.cpu()
    assert y.dtype == ref.dtype and y.shape == ref.shape, \
        f"{what}: {y.dtype} {tuple(y.shape)} vs {ref.dtype} {tuple(ref.shape)}"
    assert not torch.isnan(y).any(), f"{what}: {int(torch.isnan(y).sum())} NaN outputs (unwritten elements?)"
    if not torch.equal(y, ref):
        diff = y.float() != ref.float()
        i = int(diff.reshape(-1).nonzero()[0])
        m, n = divmod(i, y.shape[1])
        raise AssertionError(f"{what}: {int(diff.sum())} of {diff.numel()} elements differ; first at ({m}, {n}): "
                             f"y {y[m, n].item()}, ref {ref[m, n].item()}")


# ---------------------------------------------------------------- tests
def test_int8_ops_have_cuda_kernels():
    have = set(lowbit_ext.cuda_ops())
    assert {"w8a8_int8_mm", "w8a8_int8_linear"} <= have, sorted(have)


@pytest.mark.parametrize("M,N,K", SHAPES)
@pytest.mark.parametrize("granularity", list(GRANULARITY))
@pytest.mark.parametrize("out_dtype", [BF16, FP16], ids=["bf16", "fp16"])
def test_w8a8_int8_mm_matches_reference(M, N, K, granularity, out_dtype):
    per_row_a, per_row_b = GRANULARITY[granularity]
    a, sa, b, sb = int8_operands(M, N, K, per_row_a, per_row_b, seed=M * 7 + N)
    bias = torch.randn(N, generator=torch.Generator().manual_seed(K)).to(out_dtype)
    ref = ops.w8a8_int8_mm(a, sa, b, sb, bias, out_dtype)
    poison_allocator(M * N * 2)
    y = ops.w8a8_int8_mm(*to_cuda(a, sa, b, sb, bias), out_dtype)
    assert y.is_cuda
    assert_bitwise(y, ref, f"M{M} N{N} K{K} {granularity} {out_dtype}")


@pytest.mark.parametrize("out_dtype", [BF16, FP16], ids=["bf16", "fp16"])
def test_w8a8_int8_mm_largest_sums(out_dtype):
    # a all -128, K = 16384: rows of b all -128 give acc = 128 * 128 * 16384 = 2^28, rows all
    # 127 give -2^21 * 127, random rows something in between; all exact in s32. The scales
    # (about 2^-20 per side product) keep the result in fp16's range.
    M, N, K = 4, 40, 16384
    gen = torch.Generator().manual_seed(21)
    a = torch.full((M, K), -128, dtype=I8)
    b = torch.randint(-128, 128, (N, K), generator=gen, dtype=I8)
    b[0::3] = -128
    b[1::3] = 127
    sa = (torch.rand(M, generator=gen) + 0.5) * 2.0 ** -10
    sb = (torch.rand(N, generator=gen) + 0.5) * 2.0 ** -10
    acc64 = a.double() @ b.double().t()  # every product and partial sum is an integer < 2^53: exact
    acc = acc64.to(torch.int64)
    assert acc.abs().max().item() == 2 ** 28 and acc64.abs().max().item() < 2 ** 31
    # The reference definition applied to the exact sums, in fp32 step by step.
    expect = ((acc.float() * sa.reshape(-1, 1)) * sb.reshape(1, -1)).to(out_dtype)
    ref = ops.w8a8_int8_mm(a, sa, b, sb, None, out_dtype)
    assert torch.equal(ref, expect)
    poison_allocator(M * N * 2)
    y = ops.w8a8_int8_mm(*to_cuda(a, sa, b, sb), None, out_dtype)
    assert_bitwise(y, expect, "largest sums")
    # per-tensor scales of one: y is the sum itself, 2^28 exactly (representable in bf16).
    if out_dtype == BF16:
        one = torch.ones(1)
        y = ops.w8a8_int8_mm(a.cuda(), one.cuda(), b[0::3].contiguous().cuda(), one.cuda(), None, BF16)
        assert torch.equal(y.cpu(), torch.full_like(y.cpu(), 2.0 ** 28))


@pytest.mark.parametrize("M", [1, 16, 64, 200])
@pytest.mark.parametrize("has_bias", [True, False], ids=["bias", "nobias"])
@pytest.mark.parametrize("dtype", [BF16, FP16], ids=["bf16", "fp16"])
def test_w8a8_int8_linear_matches_reference(M, has_bias, dtype):
    gen = torch.Generator().manual_seed(100 + M)
    N, K = 264, 528
    x = rand_x(M, K, dtype, gen=gen)
    w, ws = ops.quantize_int8_per_token(torch.randn(N, K, generator=gen) * 0.05)
    bias = torch.randn(N, generator=gen).to(dtype) if has_bias else None
    ref = ops.w8a8_int8_linear(x, w, ws, bias)
    poison_allocator(M * N * 2)
    y = ops.w8a8_int8_linear(*to_cuda(x, w, ws, bias))
    assert_bitwise(y, ref, f"linear M{M} {dtype} bias={has_bias}")


def test_repeatable_bitwise():
    # A moving result would be a race: the same inputs must give the same bits.
    for M, N, K in ((300, 520, 2064), (5, 4096, 8192)):
        a, sa, b, sb = to_cuda(*int8_operands(M, N, K, seed=9))
        ys = [ops.w8a8_int8_mm(a, sa, b, sb) for _ in range(2)]
        assert torch.equal(ys[0], ys[1])
    x = rand_x(64, 1024).cuda()
    w, ws = to_cuda(*ops.quantize_int8_per_token(torch.randn(512, 1024) * 0.05))
    assert torch.equal(ops.w8a8_int8_linear(x, w, ws), ops.w8a8_int8_linear(x, w, ws))


def test_cuda_graph_and_compile_reduce_overhead():
    gen = torch.Generator().manual_seed(7)
    N, K = 512, 1024
    w, ws = to_cuda(*ops.quantize_int8_per_token(torch.randn(N, K, generator=gen) * 0.05))
    bias = torch.randn(N, generator=gen).to(BF16).cuda()
    assert_linear_compiles_and_replays(lambda x: ops.w8a8_int8_linear(x, w, ws, bias), K, BF16, gen)


def test_int8_opcheck_cuda():
    # No fp8 operand, so every opcheck utility runs (test_op_contract.py skips test_schema
    # only for fp8 inputs).
    a, sa, b, sb = to_cuda(*int8_operands(3, 40, 256, seed=4))
    bias = torch.randn(40).to(BF16).cuda()
    torch.library.opcheck(torch.ops.lowbit.w8a8_int8_mm.default, (a, sa, b, sb, bias, BF16))
    x = rand_x(3, 256).cuda()
    torch.library.opcheck(torch.ops.lowbit.w8a8_int8_linear.default, (x, b, sb, bias))


def test_int8_bad_inputs_cuda():
    # The CUDA ops run the same contract (csrc/include/lowbit/contracts.h) as the CPU ones.
    a, sa, b, sb = to_cuda(*int8_operands(3, 40, 256, seed=5))
    mm = ops.w8a8_int8_mm
    # K not a multiple of 16
    a24, _, b24, _ = to_cuda(*int8_operands(3, 40, 24, seed=6))
    raises_with(lambda: mm(a24, sa, b24, sb), "w8a8_int8_mm: K must be a multiple of 16")
    # b (the weight) of fp8 instead of int8
    raises_with(lambda: mm(a, sa, b.float().to(FP8), sb), "w8a8_int8_mm: b must be Char, got Float8_e4m3fn")
    # scales of the wrong shape
    raises_with(lambda: mm(a, sa[:2].contiguous(), b, sb), "a_scale must have shape (3,) (one per row)")
    raises_with(lambda: mm(a, sa, b, sb[:7].contiguous()), "b_scale must have shape (40,) (one per row)")
    # a on CUDA, b on the CPU
    raises_with(lambda: mm(a, sa, b.cpu(), sb), "b is on cpu but the first operand is on cuda")
    raises_with(lambda: mm(a, sa, b.cpu(), sb), "all tensors must be on one device")
    raises_with(lambda: mm(a, sa, b, sb.cpu()), "all tensors must be on one device")

    lin = ops.w8a8_int8_linear
    x = rand_x(3, 256).cuda()
    raises_with(lambda: lin(rand_x(3, 24).cuda(), b24, sb), "w8a8_int8_linear: K must be a multiple of 16")
    raises_with(lambda: lin(x, b.float().to(FP8), sb), "w8a8_int8_linear: w must be Char, got Float8_e4m3fn")
    raises_with(lambda: lin(x, b, sb[:7].contiguous()), "w_scale must have shape (40,) (one per row)")
    raises_with(lambda: lin(x, b.cpu(), sb), "w is on cpu but the first operand is on cuda")
