"""a16w4 on the GPU (issue 4): a16w4_linear, prepack_w4 and unpack_w4 against the CPU
reference ops (the spec, csrc/cpu/linear.cpp: w = (q - z) * s in fp32, z = 8 when zeros
is None) and against float64.

The CUDA a16w4_linear has three paths, chosen by M and shape (LOWBIT_A16W4_PATH=gemv|dequant
and LOWBIT_A16W4_LARGE force one, read once per process; these tests reach each through M and
full-tile shapes; tests/test_cuda_variants.py runs the knobs):
- M <= 32, tensor-core GEMV: integer codes exact through the MMA, fp32 accumulation,
  scales and zeros applied in fp32 per group; the fp32 value differs from the reference's
  only by summation order, then is rounded once to the output dtype. (v8, the default at
  M <= 16 on full 16-row tiles and 128-element blocks, feeds base + q (bf16 128 + q, fp16
  1024 + q) and takes (z + base) sum x off per group: its fp32 sums are up to ~16x / ~128x
  larger before that subtraction, rounding errors of ~2^-24 * 143 / 1039 per group of |x| |q|,
  still far inside the 2^-9 A term below.)
- M > 32 with N, K multiples of 128 (to M = 256 / 1024 by group size), and from 9 tokens on
  such shapes (session 8; LOWBIT_W4_WGMMA_MIN_TOKENS moves it), the mixed-input wgmma GEMM: each
  weight q s - z s is built once in the 16-bit dtype (one fma), fp32 sums over K. (The tests
  below with M <= 32 on full tiles: repeatable, graph, the wgmma accuracy at M = 16.)
- otherwise, dequantize to bf16/fp16 + cuBLAS: each weight (q - z) * s is rounded once to
  the 16-bit dtype (relative error <= 2^-8 in bf16, 2^-11 in fp16), then an fp32-accumulated GEMM.

Tolerances, and why (elementwise vs the CPU reference; A = |x| @ |w|^T in float64 from the
dequantized weight, the scale of the rounding errors of a dot product, which |ref| is not
where terms cancel):
- GEMV path: |y - ref| <= 2^-7 |ref| + 2^-9 A. y and ref round two fp32 values that differ
  by the summation order only (worst case K * 2^-24 * A, <= 2^-10 A for K <= 16384) to
  the same 16-bit grid: at most one ulp apart, and one bf16 ulp is <= 2^-7 of the value
  (unit roundoff 2^-8; fp16 is finer). 2^-9 A bounds the fp32 order difference with room.
- wgmma and dequant paths: |y - ref| <= 2^-7 |ref| + 2^-7 A: the same one-ulp term, plus the weight
  rounding (<= 2^-8 A in bf16) and whatever the 16-bit GEMM's reduction adds (cuBLAS may
  reduce in reduced precision where torch allows it), together within 2^-7 A.
- vs float64 at K = 16384 (test_a16w4_large_k_accuracy), GEMV path, normwise relative
  error: <= 3e-3 in bf16 (one output rounding, RMS ~1.6e-3 of the value) and <= 5e-4 in
  fp16 (RMS ~2e-4); fp32 accumulation adds ~1e-6.

Outputs are poisoned: the caching allocator is emptied, then blocks of the output's size
(and of a dequantized weight's) are filled with 0xFF bytes (NaN in bf16 and in fp16) and
freed, so an element the kernel never writes reads NaN.
"""
import itertools

import pytest
import torch

import lowbit_ext
from lowbit_ext import ops

from samples import (BF16, FP16, GEMV_RING_TAIL_KS, assert_close_elementwise, assert_linear_compiles_and_replays,
                     bitwise_repeatable, pairwise_cases, poison_allocator, raises_with, rand_x, to_cuda, w4_plain)

pytestmark = pytest.mark.cuda

GEMV_MAX_M = 32  # M <= 32: GEMV kernel; M > 32: mixed-input wgmma (full tiles, to 512) or dequantize + cuBLAS
M_VALUES = (1, 3, 8, 16, 17, 32, 33, 100, 256)
# (N, K): none but the last a multiple of the tiles; K = 4160 has K % 128 = 64 (a partial last
# 128-block of the w4 layout), K = 160 a partial block of 32. (192, 640): full 16-row tiles and
# 128-element blocks, the shapes the GEMV v8 takes (w4_gemv_stream.cuh); N % 64 == 0 also lets its
# x-through-the-ring variant take it (LOWBIT_A16W4_STREAM_X=ring: the CTA's four tiles in one split).
NK_SHAPES = ((40, 128), (200, 384), (264, 1024), (72, 4160), (136, 160), (192, 640),
             (256, 1536))  # (N % 64 == 0, full blocks: v8 over 12 blocks, the CTA's four tiles in one split)
GROUPS = (32, 64, 128, -1)
DTYPES = (BF16, FP16)
DTYPE_NAME = {BF16: "bf16", FP16: "fp16"}


def path_of(M):
    return "gemv" if M <= GEMV_MAX_M else "dequant"


def group_ok(K, g):
    return g == -1 or K % g == 0


# ---------------------------------------------------------------- the parametrization
# The full product (M x shape x group x sym x bias x dtype, ~1200 valid cases) is too many.
# Chosen greedily instead: every (M, shape) pair three times, every pair of values of any two
# factors at least once, and the combinations that decide what a kernel does: (path, shape,
# group, sym), (path, dtype, sym), (path, dtype, group), (path, bias, sym).
_FACTORS = ("M", "NK", "g", "sym", "bias", "dtype")
_COMBOS = (("path", "NK", "g", "sym"), ("path", "dtype", "sym"), ("path", "dtype", "g"), ("path", "bias", "sym"))


def _describe(case):
    M, NK, g, sym, bias, dtype = case
    return dict(M=M, NK=NK, g=g, sym=sym, bias=bias, dtype=DTYPE_NAME[dtype], path=path_of(M))


def _select_cases(per_m_shape=3):
    valid = [c for c in itertools.product(M_VALUES, NK_SHAPES, GROUPS, (True, False), (True, False), DTYPES)
             if group_ok(c[1][1], c[2])]
    return pairwise_cases(valid, _describe, _FACTORS, _COMBOS, per_m_shape)


def _case_params():
    params = []
    for i, (M, (N, K), g, sym, bias, dtype) in enumerate(_select_cases()):
        cid = (f"M{M}-{N}x{K}-g{g if g > 0 else 'ch'}-{'sym' if sym else 'asym'}-"
               f"{'bias' if bias else 'nobias'}-{DTYPE_NAME[dtype]}")
        params.append(pytest.param(M, N, K, g, sym, bias, dtype, 1000 + i, id=cid))
    return params


CASES = _case_params()


# ---------------------------------------------------------------- helpers
def a16w4_operands(N, K, g, symmetric, dtype, gen):
    """Fresh random w (w4 layout, int32), scales and (HQQ-like float) zeros; never zeros."""
    w = ops.prepack_w4(w4_plain(N, K, gen=gen))
    groups = 1 if g == -1 else K // g
    scales = ((torch.rand(N, groups, generator=gen) + 0.5) * 0.01).to(dtype)
    zeros = None if symmetric else (torch.rand(N, groups, generator=gen) * 15).to(dtype)
    return w, scales, zeros


def dequant64(w, scales, zeros, g):
    """The reference weight (N, K) in float64: codes from the CPU unpack_w4 (element 2i in
    the low nibble), w = (q - z) * s with the 16-bit scales and zeros taken exactly."""
    plain = ops.unpack_w4(w.cpu())
    q = torch.stack([plain & 0xF, plain >> 4], -1).reshape(plain.shape[0], -1).double()
    gs = q.shape[1] if g == -1 else g
    s = scales.cpu().double().repeat_interleave(gs, 1)
    z = 8.0 if zeros is None else zeros.cpu().double().repeat_interleave(gs, 1)
    return (q - z) * s






def rel64(y, ref64):
    return ((y.cpu().double() - ref64).norm() / ref64.norm()).item()


# ---------------------------------------------------------------- tests
def test_a16w4_ops_have_cuda_kernels():
    have = set(lowbit_ext.cuda_ops())
    assert {"a16w4_linear", "prepack_w4", "unpack_w4"} <= have, sorted(have)


@pytest.mark.parametrize("M,N,K,g,symmetric,has_bias,dtype,seed", CASES)
def test_a16w4_matches_reference(M, N, K, g, symmetric, has_bias, dtype, seed):
    gen = torch.Generator().manual_seed(seed)
    x = rand_x(M, K, dtype, gen=gen)
    w, scales, zeros = a16w4_operands(N, K, g, symmetric, dtype, gen)
    bias = torch.randn(N, generator=gen).to(dtype) if has_bias else None
    ref = ops.a16w4_linear(x, w, scales, zeros, g, bias)
    xc, wc, sc, zc, bc = to_cuda(x, w, scales, zeros, bias)
    poison_allocator(M * N * 2, N * K * 2)
    y = ops.a16w4_linear(xc, wc, sc, zc, g, bc)
    assert y.is_cuda and y.dtype == dtype and y.shape == (M, N)
    abs_coef = 2.0 ** -9 if path_of(M) == "gemv" else 2.0 ** -7
    assert_close_elementwise(y, ref, x, dequant64(w, scales, zeros, g), abs_coef, path_of(M))


# Full 128-row tiles and 128-element blocks (N % 128 == 0, K % 128 == 0): the shapes the
# mixed-input wgmma path takes (by default M = 33..512, every group; the knobs force it or the
# dequantize path for every M, or its promotion variant: tests/test_cuda_variants.py).
# M: partial token tiles of 128 and several tiles; 9 and 16: 16 tokens per CTA, in 256-row CTAs where
# N % 256 == 0 (g128 / per channel; 128-row elsewhere), x permuted in shared memory.
@pytest.mark.parametrize("g,symmetric,dtype", [(128, False, BF16), (64, True, FP16), (32, False, BF16),
                                               (-1, False, FP16)])
@pytest.mark.parametrize("N,K", [(128, 512), (256, 1024), (384, 4096), (1280, 2048)])
@pytest.mark.parametrize("M", [9, 16, 33, 64, 100, 129, 300])
def test_a16w4_large_m_full_tiles(M, N, K, g, symmetric, dtype):
    gen = torch.Generator().manual_seed(M * 7 + N + K)
    x = rand_x(M, K, dtype, gen=gen)
    w, scales, zeros = a16w4_operands(N, K, g, symmetric, dtype, gen)
    bias = torch.randn(N, generator=gen).to(dtype)
    ref = ops.a16w4_linear(x, w, scales, zeros, g, bias)
    poison_allocator(M * N * 2, N * K * 2)
    y = ops.a16w4_linear(*to_cuda(x, w, scales, zeros), g, bias.cuda())
    assert y.is_cuda and y.dtype == dtype and y.shape == (M, N)
    assert_close_elementwise(y, ref, x, dequant64(w, scales, zeros, g), 2.0 ** -7, "large M")


# One row of wide CTAs (128 rows x 256 tokens) on an unsplit grid of at least a wave (224 CTAs on the
# H100's 132 SMs): x is copied into 256 whole rows first (w4_ops.cpp pad_x; a partly out-of-bounds x
# box was slow there). Also the 224-CTA grid's ragged last wave.
@pytest.mark.parametrize("M", [136, 200, 255])
def test_a16w4_wide_padded_x(M):
    N, K, g = 28672, 256, 128
    gen = torch.Generator().manual_seed(M)
    x = rand_x(M, K, BF16, gen=gen)
    w, scales, zeros = a16w4_operands(N, K, g, False, BF16, gen)
    ref = ops.a16w4_linear(x, w, scales, zeros, g, None)
    poison_allocator(M * N * 2, N * K * 2)
    y = ops.a16w4_linear(*to_cuda(x, w, scales, zeros), g, None)
    assert_close_elementwise(y, ref, x, dequant64(w, scales, zeros, g), 2.0 ** -7, "large M")


W4_SHAPES = [(1, 32), (3, 96), (40, 128), (7, 160), (64, 224), (200, 384), (33, 480), (264, 1024),
             (72, 4160), (256, 4096)]  # full 128-blocks only, and partial last blocks of 32, 64, 96


@pytest.mark.parametrize("N,K", W4_SHAPES)
def test_prepack_unpack_cuda_matches_cpu(N, K):
    # why exact: a layout conversion; any differing bit is a bug.
    plain = w4_plain(N, K, gen=torch.Generator().manual_seed(N * 131 + K))
    ref = ops.prepack_w4(plain)
    plain_c = plain.cuda()
    poison_allocator(N * K // 2)
    packed = ops.prepack_w4(plain_c)
    assert packed.is_cuda and packed.dtype == torch.int32 and packed.shape == (N, K // 8)
    assert torch.equal(packed.cpu(), ref)
    poison_allocator(N * K // 2)
    back = ops.unpack_w4(packed)
    assert back.is_cuda and back.dtype == torch.uint8 and back.shape == (N, K // 2)
    assert torch.equal(back.cpu(), plain)
    assert torch.equal(ops.unpack_w4(ref.cuda()).cpu(), plain)  # CPU-packed weights read on the GPU


@pytest.mark.parametrize("N,K,g", [(264, 4160, 64), (4096, 8192, 128)])  # the second: many K blocks per output
@pytest.mark.parametrize("M", [1, 16, 64])
def test_a16w4_repeatable_bitwise(M, N, K, g):
    # A moving result would be a race (e.g. split-K partials combined by atomics).
    gen = torch.Generator().manual_seed(M + N)
    x = rand_x(M, K, gen=gen).cuda()
    w, scales, zeros = to_cuda(*a16w4_operands(N, K, g, False, BF16, gen))
    bias = torch.randn(N, generator=gen).to(BF16).cuda()
    bitwise_repeatable(lambda: ops.a16w4_linear(x, w, scales, zeros, g, bias))


# GEMV v8's ring at many blocks a warp (samples.GEMV_RING_TAIL_KS says why these K), also with 2 or 4
# blocks a copy forced (LOWBIT_A16W4_STREAM_COPY, tests/test_cuda_variants.py, with
# LOWBIT_A16W4_STREAM_WARPS=1 there too: long per-warp streams that wrap the ring). M = 1 / 5 (v8's
# 8-token tile with its prefetch), N = 1024 (64 tiles); test_cuda_mxfp4.py has mxfp4's.
@pytest.mark.parametrize("K", GEMV_RING_TAIL_KS)
@pytest.mark.parametrize("M,g,symmetric,dtype", [(1, 128, False, BF16), (5, 32, True, FP16), (1, -1, False, FP16),
                                                 (5, 64, False, BF16)])
def test_a16w4_gemv_ring_tails(M, g, symmetric, dtype, K):
    N = 1024
    gen = torch.Generator().manual_seed(K + M)
    x = rand_x(M, K, dtype, gen=gen)
    w, scales, zeros = a16w4_operands(N, K, g, symmetric, dtype, gen)
    ref = ops.a16w4_linear(x, w, scales, zeros, g, None)
    xc, wc, sc, zc = to_cuda(x, w, scales, zeros)
    poison_allocator(M * N * 2)
    y = ops.a16w4_linear(xc, wc, sc, zc, g, None)
    assert_close_elementwise(y, ref, x, dequant64(w, scales, zeros, g), 2.0 ** -9, "gemv ring tails")


def check_gemv_with_bias(M, N, K, g, symmetric, dtype, seed, what):
    """One GEMV case with a bias on fresh operands: against the reference (the bound of
    test_a16w4_matches_reference), a poisoned output, and bit-for-bit repeatable."""
    gen = torch.Generator().manual_seed(seed)
    x = rand_x(M, K, dtype, gen=gen)
    w, scales, zeros = a16w4_operands(N, K, g, symmetric, dtype, gen)
    bias = torch.randn(N, generator=gen).to(dtype)
    ref = ops.a16w4_linear(x, w, scales, zeros, g, bias)
    xc, wc, sc, zc, bc = to_cuda(x, w, scales, zeros, bias)
    poison_allocator(M * N * 2)
    y = ops.a16w4_linear(xc, wc, sc, zc, g, bc)
    assert_close_elementwise(y, ref, x, dequant64(w, scales, zeros, g), 2.0 ** -9, what)
    bitwise_repeatable(lambda: ops.a16w4_linear(xc, wc, sc, zc, g, bc))


# GEMV v8 at 1..8 tokens on split shapes as the models have them (N % 64 == 0): on a 132-SM card
# N = 4096 gives 256 tiles and 8 K splits (K = 1024: one block a split; K = 1920: two, the last
# split one), N = 8192 512 tiles and 4 splits, N = 14336 896 tiles and 2; with bias, stored once
# by the split-0 warp of the CTA holding the tile's 2, 4 or 8 splits (w4_ops.cpp gemv_stream_minor;
# with it off, the tile's last warp to arrive: the variant a16w4-gemv-stream-minor-off). N = 6144
# (384 tiles) and N = 12288 (768) at K = 1536 are planned at 6 and 3 splits of 2 and 4 blocks, taken
# down to 4 and 2 splits inside the CTA. (Session 21 first ran these as the tests of a cluster
# reduction of the splits, measured slower at 4 and 8 splits and removed: bench/NOTES.md.)
@pytest.mark.parametrize("N,K", [(4096, 1024), (4096, 1920), (8192, 512), (14336, 1024), (6144, 1536), (12288, 1536)])
@pytest.mark.parametrize("M,g,symmetric,dtype", [(1, 128, False, BF16), (3, -1, True, FP16), (8, 64, False, BF16),
                                                 (2, 32, False, FP16)])
def test_a16w4_gemv_splits(M, g, symmetric, dtype, N, K):
    check_gemv_with_bias(M, N, K, g, symmetric, dtype, N + K + M, "gemv splits")


# GEMV v8 with x staged in shared memory (w4_ops.cpp gemv_stream_xstage; by default int4 at
# M = 1..2 in one split with its sums per group; the knob stages it at 1..8 tokens wherever the
# CTA's warps cover all of K and the rows fit): N = 28672 is one split (1792 tiles, whole 4-warp
# CTAs), N = 4096 / 8192 8 / 4 splits inside the CTA; M = 8 at K = 512 fits (8.7 KB), K = 3072 at
# M = 8 does not (49 KB: x from global as before); K = 1152 / 2176: 9 / 17 blocks, one split. The
# variants a16w4-gemv-stream-xstage0 / 1 / 2 run the same with it off, x only and with the sums
# wherever x fits.
@pytest.mark.parametrize("N,K", [(28672, 512), (4096, 1024), (8192, 512), (8192, 3072), (28672, 1152),
                                 (28672, 2176)])
@pytest.mark.parametrize("M,g,symmetric,dtype", [(1, 128, False, BF16), (2, -1, True, FP16), (5, 32, False, BF16),
                                                 (8, 64, True, FP16)])
def test_a16w4_gemv_x_staged(M, g, symmetric, dtype, N, K):
    check_gemv_with_bias(M, N, K, g, symmetric, dtype, N + K + 3 * M, "gemv x staged")


# GEMVs back to back, each one's x the output of the one before (a decode step's chain without the
# glue), enqueued without a sync, eagerly and replayed from one CUDA graph. With LOWBIT_A16W4_PDL=1
# (variant a16w4-gemv-pdl) each may start while the one before runs: an x read before
# griddep_wait would see the one before's output unwritten (poisoned: NaN) or half written. Each
# layer is checked against the reference on the x it was given; the same bound as above.
@pytest.mark.parametrize("M,g,N,dtype", [(1, 128, 2048, BF16), (2, -1, 4096, FP16), (5, 64, 2048, BF16),
                                         (1, 128, 28672, BF16)])
def test_a16w4_gemv_chain(M, g, N, dtype):
    gen = torch.Generator().manual_seed(N + 5 * M)
    K = 2048
    # N x K, then K x N, then N x K again (the middle one's x is the first one's output)
    shapes = [(N, K), (K, N), (N, K)]
    layers = [a16w4_operands(n, k, g, False, dtype, gen) for n, k in shapes]
    x = rand_x(M, K, dtype, gen=gen)
    cuda_layers = [to_cuda(w, s, z) for w, s, z in layers]

    def chain(xc):
        ys = [xc]
        for wc, sc, zc in cuda_layers:
            ys.append(ops.a16w4_linear(ys[-1], wc, sc, zc, g, None))
        return ys

    w64s = [dequant64(w, s, z, g) for w, s, z in layers]

    def check(ys, what):
        for (w, s, z), w64, xin, y in zip(layers, w64s, ys[:-1], ys[1:]):
            xin = xin.cpu()
            ref = ops.a16w4_linear(xin, w, s, z, g, None)
            assert_close_elementwise(y, ref, xin, w64, 2.0 ** -9, what)

    xc = x.cuda()
    poison_allocator(*[M * n * 2 for n, _ in shapes])
    check(chain(xc), "gemv chain")
    # one graph: the three launches captured back to back, replayed on a fresh x
    chain(xc)  # (warm-up outside the capture)
    graph = torch.cuda.CUDAGraph()
    x_static = xc.clone()
    with torch.cuda.graph(graph):
        ys_static = chain(x_static)
    x_static.copy_(rand_x(M, K, dtype, gen=gen).cuda())
    graph.replay()
    torch.cuda.synchronize()
    check([y.clone() for y in ys_static], "gemv chain, graph replay")


@pytest.mark.parametrize("dtype", DTYPES)
def test_a16w4_cuda_graph_and_compile(dtype):
    gen = torch.Generator().manual_seed(7)
    N, K, g = 512, 1024, 128
    w, scales, zeros = to_cuda(*a16w4_operands(N, K, g, False, dtype, gen))
    bias = torch.randn(N, generator=gen).to(dtype).cuda()
    # GEMV: warm-up, capture, replay; then a new shape on the large-M path
    assert_linear_compiles_and_replays(lambda x: ops.a16w4_linear(x, w, scales, zeros, g, bias), K, dtype, gen)


@pytest.mark.parametrize("M,symmetric,dtype", [(3, True, BF16), (3, False, FP16), (40, False, BF16),
                                               (40, True, FP16)])
def test_a16w4_opcheck_cuda(M, symmetric, dtype):
    gen = torch.Generator().manual_seed(M)
    N, K, g = 40, 256, 64
    x = rand_x(M, K, dtype, gen=gen)
    w, scales, zeros = a16w4_operands(N, K, g, symmetric, dtype, gen)
    bias = torch.randn(N, generator=gen).to(dtype)
    args = to_cuda(x, w, scales, zeros, g, bias)
    torch.library.opcheck(torch.ops.lowbit.a16w4_linear.default, args)


def test_prepack_unpack_opcheck_cuda():
    plain = w4_plain(40, 416, gen=torch.Generator().manual_seed(2)).cuda()  # K = 416: 3 full blocks + 32
    torch.library.opcheck(torch.ops.lowbit.prepack_w4.default, (plain,))
    torch.library.opcheck(torch.ops.lowbit.unpack_w4.default, (ops.prepack_w4(plain),))


def test_a16w4_m_zero_cuda():
    gen = torch.Generator().manual_seed(0)
    w, scales, zeros = to_cuda(*a16w4_operands(40, 256, 128, False, BF16, gen))
    y = ops.a16w4_linear(rand_x(0, 256).cuda(), w, scales, zeros, 128)
    assert y.shape == (0, 40) and y.is_cuda and y.dtype == BF16


def test_a16w4_bad_inputs_cuda():
    # The CUDA op runs the same contract (csrc/include/lowbit/contracts.h) as the CPU one.
    gen = torch.Generator().manual_seed(5)
    N, K, g = 40, 256, 128
    x = rand_x(3, K, gen=gen).cuda()
    w, s, z = to_cuda(*a16w4_operands(N, K, g, False, BF16, gen))
    bias = torch.randn(N, generator=gen).to(BF16).cuda()
    op = ops.a16w4_linear

    # K not a multiple of group_size (K = 96 is a valid w4 K, 96 % 64 != 0)
    x96 = rand_x(3, 96, gen=gen).cuda()
    w96 = ops.prepack_w4(w4_plain(8, 96, gen=gen)).cuda()
    s96 = torch.ones(8, 1, dtype=BF16, device="cuda")
    raises_with(lambda: op(x96, w96, s96, None, 64, None), "K must be a multiple of group_size; K = 96, group_size = 64")
    raises_with(lambda: op(x, w, s, z, 48, None), "group_size must be 32, 64, 128 or -1")
    # scales / zeros
    raises_with(lambda: op(x, w, s[:, :1].contiguous(), z, g, None), "scales (one per group) must have shape [40, 2]")
    raises_with(lambda: op(x, w, s.half(), z, g, None), "scales must be BFloat16")
    raises_with(lambda: op(x, w, s, z.float(), g, None), "zeros must be BFloat16, got Float")
    raises_with(lambda: op(x, w, s, z[:, :1].contiguous(), g, None), "zeros (one per group) must have shape")
    # w in the plain uint8 layout instead of the w4 kernel layout
    raises_with(lambda: op(x, ops.unpack_w4(w), s, z, g, None), "w must be int32 (N, K/8) in the w4 kernel layout")
    raises_with(lambda: op(x, ops.unpack_w4(w), s, z, g, None), "prepack_w4")
    raises_with(lambda: op(x, w[:, :16].contiguous(), s, z, g, None), "so w must be (N, K/8)")
    # x
    raises_with(lambda: op(x.float(), w, s, z, g, None), "x must be bfloat16 or float16")
    base = rand_x(1, 4 * K, gen=gen).cuda().reshape(-1)
    raises_with(lambda: op(base[1:1 + 3 * K].view(3, K), w, s, z, g, None), "16-byte aligned")
    # bias
    raises_with(lambda: op(x, w, s, z, g, bias.half()), "bias must be BFloat16")
    raises_with(lambda: op(x, w, s, z, g, bias[:5]), "bias must have shape [40]")
    # devices: x on CUDA, another operand on the CPU
    raises_with(lambda: op(x, w.cpu(), s, z, g, None), "all tensors must be on one device")
    raises_with(lambda: op(x, w, s.cpu(), z, g, None), "all tensors must be on one device")
    raises_with(lambda: op(x, w, s, z.cpu(), g, None), "all tensors must be on one device")
    raises_with(lambda: op(x, w, s, z, g, bias.cpu()), "all tensors must be on one device")


# The mixed-input wgmma path (M > 32, full tiles) folds scale and zero point into the 16-bit
# operand: w = q s - z s rounded once to x's dtype (relative error up to 2^-9 in bf16, 2^-11 in
# fp16, random in sign), then fp32 sums over K. Bounds: the weight rounding's RMS (~1.1e-3 /
# 2.8e-4) plus the output rounding, with a 2x margin: 4e-3 / 1e-3 at K = 16384.
# (M = 16: full tiles from 9 tokens take the wgmma path too, 16 tokens per CTA)
@pytest.mark.parametrize("dtype,bound", [(BF16, 4e-3), (FP16, 1e-3)])
@pytest.mark.parametrize("symmetric", [False, True])
@pytest.mark.parametrize("M", [16, 64])
def test_a16w4_wgmma_large_k_accuracy(M, symmetric, dtype, bound):
    gen = torch.Generator().manual_seed(29 + M)
    N, K, g = 256, 16384, 128
    x = rand_x(M, K, dtype, gen=gen)
    w, scales, zeros = a16w4_operands(N, K, g, symmetric, dtype, gen)
    ref64 = x.double() @ dequant64(w, scales, zeros, g).t()
    y = ops.a16w4_linear(*to_cuda(x, w, scales, zeros), g)
    assert rel64(y, ref64) <= bound


@pytest.mark.parametrize("dtype,bound", [(BF16, 3e-3), (FP16, 5e-4)])
@pytest.mark.parametrize("symmetric", [False, True])
@pytest.mark.parametrize("M", [1, 8])  # the GEMV (full tiles take the wgmma from 9 tokens)
def test_a16w4_large_k_accuracy(M, symmetric, dtype, bound):
    # why these bounds: see the top of the file (one output rounding dominates).
    gen = torch.Generator().manual_seed(11 + M)
    N, K, g = 256, 16384, 128
    x = rand_x(M, K, dtype, gen=gen)
    w, scales, zeros = a16w4_operands(N, K, g, symmetric, dtype, gen)
    ref64 = x.double() @ dequant64(w, scales, zeros, g).t()
    y = ops.a16w4_linear(*to_cuda(x, w, scales, zeros), g)
    assert rel64(y, ref64) <= bound
