"""mxfp4_linear on the GPU (issue 6), against the CPU reference op (the spec,
csrc/cpu/linear.cpp: w[n, k] = e2m1(q[n, k]) * 2^(w_scale[n, k/32] - 127) in fp32, an fp32
matmul, + bias, one rounding to x's dtype; numerics.h: E8M0 0xFF = NaN, 0 = 2^-127).

The CUDA op has three paths, chosen by M and shape (these tests reach each through M and
full-tile shapes):
- M <= 32, tensor-core GEMV: every e2m1 value enters the MMA exactly, the E8M0 scale is
  applied per 32 in fp32; the fp32 value differs from the reference's only by summation
  order, then is rounded once to the output dtype.
- M = 33..512 (and 9..32 since session 8), bf16 x, N and K multiples of 128: the mixed-input
  wgmma GEMM, every e2m1 value times its E8M0 scale exact in the bf16 operand, fp32 sums over K
  (within the GEMV's bound as well: the products are exact).
- otherwise M > 32: bf16 x: the weight dequantized to bf16 (exact: e2m1 has 2 significant bits and
  bf16 fp32's exponent range) + cuBLAS with fp32 accumulation; fp16 x: computed in fp32
  (fp16 cannot hold the weight's range), then rounded once.

Tolerances (elementwise vs the CPU reference, A = |x| @ |w|^T in float64 from the exact
dequantized weight: the scale of a dot product's rounding errors, which |ref| is not where
terms cancel):
- GEMV, and the fp16 dequant path: |y - ref| <= 2^-7 |ref| + 2^-9 A: one ulp of the 16-bit
  output (<= 2^-7 of the value in bf16) plus the fp32 summation-order difference
  (<= K * 2^-24 * A, below 2^-10 A for the K here).
- bf16 wgmma and dequant paths: |y - ref| <= 2^-7 |ref| + 2^-7 A: cuBLAS may reduce in
  reduced precision where torch allows it (the wgmma path's fp32 sums are within it).

Outputs are poisoned (samples.poison_allocator: blocks of the output's size and of a
dequantized weight's are filled with 0xFF bytes, NaN in bf16/fp16, then freed), so an
element the kernel never writes reads NaN.
"""
import itertools
import os

import pytest
import torch

import lowbit_ext
from lowbit_ext import ops
from lowbit_ext.formats._base import e2m1_to_float, e8m0_to_float, pack_nibbles, unpack_nibbles

from samples import (BF16, FP16, GEMV_RING_TAIL_KS, assert_close_elementwise, assert_linear_compiles_and_replays,
                     bitwise_repeatable, pairwise_cases, poison_allocator, raises_with, rand_x, to_cuda, w4_plain, weight)

pytestmark = pytest.mark.cuda

GEMV_MAX_M = 32  # M <= 32: GEMV kernel; M > 32: mixed-input wgmma (full tiles) or dequantize + cuBLAS
WGMMA_MAX_M = 512  # the wgmma path's last M for mxfp4 (csrc/gemm/w4/w4_ops.cpp kWgmmaMaxTokensMx)
MX_BLOCK = 32
M_VALUES = (1, 3, 8, 16, 17, 32, 33, 100)
# (N, K): none but the last a multiple of the tiles; K = 4160 has K % 128 = 64 (a partial last
# 128-block of the w4 layout), K = 160 a partial block of 32. (192, 640): full 16-row tiles and
# 128-element blocks, the shapes the GEMV v8 takes (w4_gemv_stream.cuh); N % 64 == 0 also lets its
# x-through-the-ring variant take it (LOWBIT_A16W4_STREAM_X=ring: the CTA's four tiles in one split).
NK_SHAPES = ((40, 128), (200, 384), (264, 1024), (72, 4160), (136, 160), (192, 640),
             (256, 1536))  # (N % 64 == 0, full blocks: v8 over 12 blocks, the CTA's four tiles in one split)
DTYPES = (BF16, FP16)
DTYPE_NAME = {BF16: "bf16", FP16: "fp16"}
SOURCES = ("codes", "quantized")  # random plain codes + random scales 120..130, or ops.quantize_mxfp4(W)


def path_of(M):
    return "gemv" if M <= GEMV_MAX_M else "dequant"


def abs_coef(M, dtype):
    return 2.0 ** -7 if (path_of(M) == "dequant" and dtype == BF16) else 2.0 ** -9


# ---------------------------------------------------------------- the parametrization
# The full product (8 M x 5 shapes x bias x dtype x source = 320) is too many. Chosen greedily:
# every (M, shape) pair twice, every pair of values of any two factors at least once, and the
# combinations that decide what a kernel does: (path, shape, dtype), (path, dtype, bias),
# (path, dtype, source).
_FACTORS = ("M", "NK", "bias", "dtype", "src")
_COMBOS = (("path", "NK", "dtype"), ("path", "dtype", "bias"), ("path", "dtype", "src"))


def _describe(case):
    M, NK, bias, dtype, src = case
    return dict(M=M, NK=NK, bias=bias, dtype=DTYPE_NAME[dtype], src=src, path=path_of(M))


def _select_cases(per_m_shape=2):
    valid = list(itertools.product(M_VALUES, NK_SHAPES, (True, False), DTYPES, SOURCES))
    return pairwise_cases(valid, _describe, _FACTORS, _COMBOS, per_m_shape)


def _case_params():
    params = []
    for i, (M, (N, K), bias, dtype, src) in enumerate(_select_cases()):
        cid = f"M{M}-{N}x{K}-{'bias' if bias else 'nobias'}-{DTYPE_NAME[dtype]}-{src}"
        params.append(pytest.param(M, N, K, bias, dtype, src, 2000 + i, id=cid))
    return params


CASES = _case_params()


# ---------------------------------------------------------------- helpers
def mx4_operands(N, K, gen, src="codes", scale_range=(120, 131)):
    """(w in the w4 layout int32 (N, K/8), E8M0 scales uint8 (N, K/32)), on the CPU.
    "codes": random plain codes (any nibble) and random scales in scale_range (by default
    120..130: weights up to 6 * 2^3); "quantized": ops.quantize_mxfp4 of a random weight (the
    spec's quantizer)."""
    if src == "codes":
        plain = w4_plain(N, K, gen=gen)
        scale = torch.randint(*scale_range, (N, K // MX_BLOCK), generator=gen, dtype=torch.uint8)
    else:
        plain, scale = ops.quantize_mxfp4(weight(N, K, gen=gen))
    return ops.prepack_w4(plain), scale


def codes_of(w):
    """w4 layout int32 (N, K/8) -> e2m1 codes uint8 (N, K) (CPU unpack_w4)."""
    return unpack_nibbles(ops.unpack_w4(w.cpu()))


def w4_from_codes(codes):
    return ops.prepack_w4(pack_nibbles(codes))


def dequant64(w, w_scale):
    """The spec's weight (N, K) in float64, exactly: e2m1(code) * 2^(s - 127); NaN for s = 0xFF."""
    vals = e2m1_to_float(codes_of(w)).double()
    return vals * e8m0_to_float(w_scale.cpu()).double().repeat_interleave(MX_BLOCK, dim=1)


def run_cuda(x, w, s, bias=None):
    """The CUDA op on copies of CPU operands, with the output (and a dequantized weight's
    worth of memory, for the dequant path) poisoned first."""
    M, K = x.shape
    N = w.shape[0]
    xc, wc, sc, bc = to_cuda(x, w, s, bias)
    poison_allocator(M * N * 2, N * K * 2, N * K * 4)
    y = ops.mxfp4_linear(xc, wc, sc, bc)
    assert y.is_cuda and y.dtype == x.dtype and y.shape == (M, N)
    return y


# ---------------------------------------------------------------- tests
def test_mxfp4_linear_has_cuda_kernel():
    have = set(lowbit_ext.cuda_ops())
    assert "mxfp4_linear" in have, sorted(have)


@pytest.mark.parametrize("M,N,K,has_bias,dtype,src,seed", CASES)
def test_mxfp4_matches_reference(M, N, K, has_bias, dtype, src, seed):
    gen = torch.Generator().manual_seed(seed)
    x = rand_x(M, K, dtype, gen=gen)
    w, s = mx4_operands(N, K, gen, src)
    bias = torch.randn(N, generator=gen).to(dtype) if has_bias else None
    ref = ops.mxfp4_linear(x, w, s, bias)
    assert torch.isfinite(ref).all()
    y = run_cuda(x, w, s, bias)
    assert_close_elementwise(y, ref, x, dequant64(w, s), abs_coef(M, dtype), f"{path_of(M)} {src}")


def wgmma_takes(M):
    """Whether mx4_matmul runs bf16 x at full tiles through the mixed-input wgmma GEMM
    (csrc/gemm/w4/w4_ops.cpp wgmma_applies: M = 33..512 unless a knob forces a path)."""
    knob = os.environ.get("LOWBIT_A16W4_LARGE", "")
    if knob == "dequant" or os.environ.get("LOWBIT_A16W4_PATH") == "dequant":
        return False
    return knob == "wgmma" or GEMV_MAX_M < M <= WGMMA_MAX_M


# Full 128-row tiles and 128-element blocks: the shapes of the mixed-input wgmma path (bf16 x,
# M = 33..512 by default; every M with LOWBIT_A16W4_LARGE=wgmma, none with =dequant:
# tests/test_cuda_variants.py). Its sums are exact products chained in fp32, so it is held to
# the GEMV's bound.
@pytest.mark.parametrize("src", ["codes", "quantized"])
@pytest.mark.parametrize("N,K", [(128, 512), (256, 1024), (384, 4096), (1280, 2048)])
@pytest.mark.parametrize("M", [9, 16, 33, 64, 100, 129, 300, 600])  # (9, 16: 256-row CTAs where N % 256 == 0)
def test_mxfp4_large_m_full_tiles(M, N, K, src):
    gen = torch.Generator().manual_seed(M * 7 + N + K)
    x = rand_x(M, K, BF16, gen=gen)
    w, s = mx4_operands(N, K, gen, src)
    bias = torch.randn(N, generator=gen).to(BF16)
    ref = ops.mxfp4_linear(x, w, s, bias)
    y = run_cuda(x, w, s, bias)
    wgmma = wgmma_takes(M)
    assert_close_elementwise(y, ref, x, dequant64(w, s), 2.0 ** -9 if wgmma else abs_coef(M, BF16),
                             "wgmma" if wgmma else "dequant")


# One row of wide CTAs on an unsplit grid of at least a wave: x copied into 256 whole rows first
# (w4_ops.cpp pad_x).
@pytest.mark.parametrize("M", [136, 255])
def test_mxfp4_wide_padded_x(M):
    N, K = 28672, 256
    gen = torch.Generator().manual_seed(M)
    x = rand_x(M, K, BF16, gen=gen)
    w, s = mx4_operands(N, K, gen, "codes")
    ref = ops.mxfp4_linear(x, w, s, None)
    y = run_cuda(x, w, s, None)
    assert_close_elementwise(y, ref, x, dequant64(w, s), 2.0 ** -9, "wgmma")


EDGE = pytest.mark.parametrize("M,dtype", [(1, BF16), (1, FP16), (40, BF16), (40, FP16)])


@EDGE
def test_mxfp4_nan_scale(M, dtype):
    # E8M0 0xFF is NaN: every element of its block is NaN, whatever the code (zero codes
    # included), so every output of that weight row is NaN, and only those.
    gen = torch.Generator().manual_seed(31 + M)
    N, K = 64, 256  # full 16-row tiles: GEMV v8 at M = 1 (LOWBIT_A16W4_GEMV=smem: v6)
    x = rand_x(M, K, dtype, gen=gen)
    w, s = mx4_operands(N, K, gen)
    codes = codes_of(w)
    codes[7, 64:96] = 0   # row 7: the NaN block holds +0 codes only
    codes[29, 224:] = 8   # row 29: -0 codes only, in the last block
    w = w4_from_codes(codes)
    nan_rows = [0, 7, 29, 39]
    s[0, 0] = s[7, 2] = s[29, 7] = s[39, 3] = 0xFF
    bias = torch.randn(N, generator=gen).to(dtype)
    ref = ops.mxfp4_linear(x, w, s, bias)
    is_nan_row = torch.zeros(N, dtype=torch.bool)
    is_nan_row[nan_rows] = True
    assert torch.isnan(ref[:, is_nan_row]).all() and not torch.isnan(ref[:, ~is_nan_row]).any()
    y = run_cuda(x, w, s, bias).cpu()
    assert torch.isnan(y[:, is_nan_row]).all(), "a NaN-scale row gave a non-NaN output"
    assert not torch.isnan(y[:, ~is_nan_row]).any(), "NaN outside the NaN-scale rows"
    w64 = dequant64(w, s).nan_to_num(0.0)
    mask = (~is_nan_row).expand(M, N)
    assert_close_elementwise(y, ref, x, w64, abs_coef(M, dtype), "NaN scale", mask=mask)


@EDGE
def test_mxfp4_codes_decode_exactly(M, dtype):
    # One-hot x picks single weights: y[m, n] = e2m1(code[n, k_m]) * 2^(s - 127), exactly
    # (every such value is representable in bf16 and in fp16 for the scales used). All 16
    # codes occur, among them the subnormal +-0.5 (1, 9) and the zeros 0 and 8 (-0).
    gen = torch.Generator().manual_seed(41 + M)
    N, K = 64, 256  # full 16-row tiles: GEMV v8 at M = 1 (LOWBIT_A16W4_GEMV=smem: v6)
    n_idx = torch.arange(N).unsqueeze(1)
    k_idx = torch.arange(K).unsqueeze(0)
    codes = ((n_idx + 3 * k_idx) % 16).to(torch.uint8)
    w = w4_from_codes(codes)
    s = torch.randint(122, 133, (N, K // MX_BLOCK), generator=gen, dtype=torch.uint8)
    ks = torch.randperm(K, generator=gen)[:M]
    x = torch.zeros(M, K, dtype=dtype)
    x[torch.arange(M), ks] = 1.0
    w64 = dequant64(w, s)
    exact = w64[:, ks].t()
    ref = ops.mxfp4_linear(x, w, s)
    assert torch.equal(ref.double(), exact)
    y = run_cuda(x, w, s).cpu()
    assert torch.equal(y.double(), exact), f"{int((y.double() != exact).sum())} decoded values differ"

    # Full sums of the small codes only (0, +-0.5, -0): x in {-1, 1}, scale 2^0: every partial
    # sum is a multiple of 0.5 below 2^7, exact in fp32 and in the output, whatever the order.
    small = torch.tensor([0, 1, 8, 9], dtype=torch.uint8)
    codes = small[torch.randint(0, 4, (N, K), generator=gen)]
    w = w4_from_codes(codes)
    s = torch.full((N, K // MX_BLOCK), 127, dtype=torch.uint8)
    x = (torch.randint(0, 2, (M, K), generator=gen) * 2 - 1).to(dtype)
    exact = x.double() @ dequant64(w, s).t()
    assert torch.equal(ops.mxfp4_linear(x, w, s).double(), exact)
    y = run_cuda(x, w, s).cpu()
    assert torch.equal(y.double(), exact), f"{int((y.double() != exact).sum())} sums of +-0.5 / +-0 codes differ"


@pytest.mark.parametrize("M", [1, 40])
def test_mxfp4_every_scale_decodes_exactly(M):
    # Every E8M0 scale 1..254 (numerics.h e8m0x4_to_float: the byte moved into the exponent field
    # where a row's four scales of a block hold no 0x00 / 0xFF) with every code: one-hot x picks
    # single weights, y[m, n] = e2m1 * 2^(s - 127), exact in bf16 (2 significant bits, fp32's
    # exponent range). Blocks at 253 / 254 keep |v| <= 1.5: 2 * 2^127 is inf in the spec's fp32
    # weight, and then 0 * inf makes the reference's whole row NaN (test_mxfp4_extreme_scales).
    gen = torch.Generator().manual_seed(67 + M)
    N, K = 64, 256  # full 16-row tiles: GEMV v8 at M = 1; the wgmma GEMM at 40
    blocks = K // MX_BLOCK
    s = ((torch.arange(N).unsqueeze(1) * blocks + torch.arange(blocks).unsqueeze(0)) % 254 + 1).to(torch.uint8)
    assert set(s.flatten().tolist()) == set(range(1, 255))
    codes = ((5 * torch.arange(N).unsqueeze(1) + torch.arange(K).unsqueeze(0)) % 16).to(torch.uint8)
    top = s.repeat_interleave(MX_BLOCK, dim=1) >= 253
    codes = torch.where(top, codes & 0b1011, codes)  # magnitudes 0, .5, 1, 1.5 there, sign kept
    w = w4_from_codes(codes)
    # one k in every block (so every scale is read), M tokens a call
    R = max(M, blocks)
    ks = (torch.arange(R) % blocks) * MX_BLOCK + torch.randint(0, MX_BLOCK, (R,), generator=gen)
    x = torch.zeros(R, K, dtype=BF16)
    x[torch.arange(R), ks] = 1.0
    exact = dequant64(w, s)[:, ks].t()
    ref = ops.mxfp4_linear(x, w, s)
    assert torch.equal(ref.double(), exact)
    y = torch.cat([run_cuda(x[r:r + M], w, s).cpu() for r in range(0, R, M)])
    assert torch.equal(y.double(), exact), f"{int((y.double() != exact).sum())} decoded values differ"


@EDGE
@pytest.mark.parametrize("extreme", ["min", "max"])
def test_mxfp4_extreme_scales(M, dtype, extreme):
    # E8M0 0 is 2^-127 (an fp32 subnormal, not zero) and 254 is 2^127. Rows 0 and 1: every
    # block at the extreme scale; rows 2 and 3: one block at it, the rest ordinary.
    # "max": codes of those blocks kept to |v| <= 1.5 (2 * 2^127 overflows fp32, the spec's
    # weight type) and x small (~2^-10), so the fp32 result is finite; fp16 outputs overflow
    # to inf there, in the reference too, and must match it where it is finite and equal it
    # (same signed inf) where it is not.
    gen = torch.Generator().manual_seed(53 + M)
    N, K = 64, 256  # full 16-row tiles: GEMV v8 at M = 1 (LOWBIT_A16W4_GEMV=smem: v6)
    x = rand_x(M, K, dtype, gen=gen)
    if extreme == "max":
        x = (x.float() * 2.0 ** -10).to(dtype)
    w, s = mx4_operands(N, K, gen)
    codes = codes_of(w)
    e = 0 if extreme == "min" else 254
    s[0:2, :] = e
    s[2, 1] = e
    s[3, K // MX_BLOCK - 1] = e
    if extreme == "max":
        small = codes & 0b1011  # magnitude codes 0..3 (0, .5, 1, 1.5), sign kept
        blk = (s.repeat_interleave(MX_BLOCK, dim=1) == 254)
        codes = torch.where(blk, small, codes)
        w = w4_from_codes(codes)
    ref = ops.mxfp4_linear(x, w, s)  # no bias: it would hide the 2^-121 outputs of "min"
    w64 = dequant64(w, s)
    assert torch.isfinite(w64.float()).all()
    y = run_cuda(x, w, s).cpu()
    finite = torch.isfinite(ref)
    if dtype == BF16 or extreme == "min":
        assert finite.all()
    else:
        assert not finite[:, :2].any()  # ~2^121: beyond fp16 in the reference too
        assert torch.equal(y[~finite], ref[~finite]), "overflowed outputs differ from the reference's inf"
    if extreme == "min" and dtype == BF16:
        assert (ref[:, :2] != 0).all()  # ~2^-121: representable in bf16, so 2^-127 must not be taken as 0
    assert_close_elementwise(y, ref, x, w64, abs_coef(M, dtype), f"scale {e}", mask=finite)


# GEMV v8's ring tails (samples.GEMV_RING_TAIL_KS says why these K)
@pytest.mark.parametrize("K", GEMV_RING_TAIL_KS)
@pytest.mark.parametrize("M,dtype", [(1, BF16), (5, FP16)])
def test_mxfp4_gemv_ring_tails(M, dtype, K):
    gen = torch.Generator().manual_seed(K + M)
    x = rand_x(M, K, dtype, gen=gen)
    w, s = mx4_operands(1024, K, gen, "codes")
    ref = ops.mxfp4_linear(x, w, s, None)
    y = run_cuda(x, w, s)
    assert_close_elementwise(y, ref, x, dequant64(w, s), abs_coef(M, dtype), "gemv ring tails")


@pytest.mark.parametrize("N,K", [(264, 4160), (4096, 8192)])  # the second: many K blocks per output
@pytest.mark.parametrize("M", [1, 16, 64])
def test_mxfp4_repeatable_bitwise(M, N, K):
    # A moving result would be a race (e.g. split-K partials combined by atomics).
    gen = torch.Generator().manual_seed(M + N)
    x = rand_x(M, K, gen=gen).cuda()
    w, s = to_cuda(*mx4_operands(N, K, gen))
    bias = torch.randn(N, generator=gen).to(BF16).cuda()
    bitwise_repeatable(lambda: ops.mxfp4_linear(x, w, s, bias))


@pytest.mark.parametrize("dtype", DTYPES)
def test_mxfp4_cuda_graph_and_compile(dtype):
    gen = torch.Generator().manual_seed(7)
    N, K = 512, 1024
    w, s = to_cuda(*mx4_operands(N, K, gen))
    bias = torch.randn(N, generator=gen).to(dtype).cuda()
    # GEMV: warm-up, capture, replay; then a new shape on the large-M path
    assert_linear_compiles_and_replays(lambda x: ops.mxfp4_linear(x, w, s, bias), K, dtype, gen, graph_ms=(8, 40))


@pytest.mark.parametrize("M,dtype", [(3, BF16), (40, FP16)])
def test_mxfp4_opcheck_cuda(M, dtype):
    gen = torch.Generator().manual_seed(M)
    N, K = 64, 256  # full 16-row tiles: GEMV v8 at M = 1 (LOWBIT_A16W4_GEMV=smem: v6)
    x = rand_x(M, K, dtype, gen=gen)
    w, s = mx4_operands(N, K, gen)
    bias = torch.randn(N, generator=gen).to(dtype)
    torch.library.opcheck(torch.ops.lowbit.mxfp4_linear.default, to_cuda(x, w, s, bias))


def test_mxfp4_m_zero_cuda():
    w, s = to_cuda(*mx4_operands(40, 256, torch.Generator().manual_seed(0)))
    y = ops.mxfp4_linear(rand_x(0, 256).cuda(), w, s)
    assert y.shape == (0, 40) and y.is_cuda and y.dtype == BF16


def test_mxfp4_bad_inputs_cuda():
    # The CUDA op runs the same contract (csrc/include/lowbit/contracts.h, linear_mx) as the CPU one.
    gen = torch.Generator().manual_seed(5)
    N, K = 40, 256
    x = rand_x(3, K, gen=gen).cuda()
    w, s = to_cuda(*mx4_operands(N, K, gen))
    op = ops.mxfp4_linear

    # K not a multiple of 32: w (8, 6) int32 holds K = 48
    x48 = rand_x(3, 48, gen=gen).cuda()
    w48 = torch.zeros(8, 6, dtype=torch.int32, device="cuda")
    s48 = torch.full((8, 1), 127, dtype=torch.uint8, device="cuda")
    raises_with(lambda: op(x48, w48, s48, None), "K must be a multiple of 32 (MX scales cover blocks of 32 along K)")
    # w_scale
    raises_with(lambda: op(x, w, s[:, :1].contiguous(), None), "w_scale must have shape [40, 8], got [40, 1]")
    raises_with(lambda: op(x, w, s[:20].contiguous(), None), "w_scale must have shape [40, 8]")
    raises_with(lambda: op(x, w, s.int(), None), "w_scale must be uint8 (E8M0 exponents), got Int")
    raises_with(lambda: op(x, w, s.float(), None), "w_scale must be uint8 (E8M0 exponents)")
    # w in the plain uint8 layout instead of the w4 kernel layout
    raises_with(lambda: op(x, ops.unpack_w4(w), s, None), "w must be int32 (N, K/8) in the w4 kernel layout")
    raises_with(lambda: op(x, ops.unpack_w4(w), s, None), "prepack_w4")
    # devices: x on CUDA, another operand on the CPU
    raises_with(lambda: op(x, w, s.cpu(), None), "all tensors must be on one device")
