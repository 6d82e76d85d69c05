"""The CPU reference ops (csrc/cpu/) against independent float64 / numpy math (tests/_ref64.py).

Expected values never come from a lowbit op. Tolerances:
  quantizers (codes and scales), prepack/unpack: exact    # why: the spec defines every bit
  w8a8_int8_mm / w8a8_int8_linear: bit-exact              # why: int32 acc is exact and the spec
                                                          #   fixes each fp32 epilogue step
  every other matmul / linear vs a float64 formula: |y - ref| <= ulp_out(|ref|)
      + (K + 8) * 2^-24 * sum_k |a b| (+ |bias|)           # why: one rounding to bf16/fp16 (a flip
      #   of it allowed) plus the worst-case fp32 dequantize/product/sum error in any order;
      #   measured worst case is about 0.5 of this bound (the final half-ulp rounding).
"""
import zlib

import numpy as np
import pytest
import torch

import lowbit_ext  # noqa: F401  (loads the library)
from lowbit_ext import ops

import _ref64 as R

FP8 = torch.float8_e4m3fn
DT16 = [torch.bfloat16, torch.float16]
DT_NAME = {torch.bfloat16: "bf16", torch.float16: "fp16", torch.float32: "fp32"}
MS = [1, 3, 17, 100]
NKS = [(24, 128), (200, 384)]          # N not a multiple of 8 / 128
NAN, INF = float("nan"), float("inf")


def rng_for(*key) -> torch.Generator:
    """A fresh, reproducible generator per test case."""
    g = torch.Generator().manual_seed(zlib.crc32(repr(key).encode()))
    return g


def rand16(g, M, K, dtype, wide=False):
    """Random activations: normal values with a per-row magnitude 2^U(-4, 4); wide=True also
    spreads each element over 2^U(-12, 4) (small codes, subnormal e4m3/e2m1 results, zeros)."""
    x = torch.randn(M, K, generator=g, dtype=torch.float64)
    x *= torch.exp2(torch.rand(M, 1, generator=g, dtype=torch.float64) * 8 - 4)
    if wide:
        x *= torch.exp2(torch.rand(M, K, generator=g, dtype=torch.float64) * 16 - 12)
    return x.to(dtype)


def rand_e4m3(g, R_, C, sigma=2.0):
    """Random e4m3 codes (never NaN): normal values through torch's conversion."""
    v = (torch.randn(R_, C, generator=g) * sigma).clamp(-448, 448)
    return v.to(FP8)


def rand_e8m0(g, R_, C, lo=120, hi=134):
    return torch.randint(lo, hi, (R_, C), generator=g, dtype=torch.uint8)


def rand_bias(g, N, dtype, use):
    return (torch.randn(N, generator=g) * 4).to(dtype) if use else None


def u8(t: torch.Tensor) -> np.ndarray:
    return t.view(torch.uint8).numpy() if t.dtype == FP8 else t.numpy()


def add_bias(ref, absdot, bias):
    if bias is None:
        return ref, absdot
    b = R.f64(bias)
    return ref + b, absdot + np.abs(b)


def mm64(a, b):
    """float64 A (M, K) x B (N, K)^T and sum_k |a b|."""
    return a @ b.T, np.abs(a) @ np.abs(b).T


# ==================================================================== 1. quantizers, random inputs
QDTYPES = DT16 + [torch.float32]


@pytest.mark.parametrize("dtype", QDTYPES, ids=DT_NAME.get)
@pytest.mark.parametrize("M", MS)
@pytest.mark.parametrize("K", [48, 128, 384])
def test_quantize_int8_per_token(dtype, M, K):
    x = rand16(rng_for("i8", dtype, M, K), M, K, dtype)
    q, s = ops.quantize_int8_per_token(x)
    eq, es = R.absmax_quantize(x, K, "int8")
    assert q.dtype == torch.int8 and s.dtype == torch.float32 and s.shape == (M,)
    np.testing.assert_array_equal(q.numpy(), eq)
    np.testing.assert_array_equal(s.numpy(), es.reshape(M))


@pytest.mark.parametrize("dtype", QDTYPES, ids=DT_NAME.get)
@pytest.mark.parametrize("M", MS)
@pytest.mark.parametrize("K", [48, 128, 384])
def test_quantize_fp8_per_token(dtype, M, K):
    x = rand16(rng_for("f8t", dtype, M, K), M, K, dtype, wide=(M % 2 == 1))
    q, s = ops.quantize_fp8_per_token(x)
    eq, es = R.absmax_quantize(x, K, "fp8")
    assert q.dtype == FP8 and s.shape == (M,)
    np.testing.assert_array_equal(u8(q), eq)
    np.testing.assert_array_equal(s.numpy(), es.reshape(M))


@pytest.mark.parametrize("dtype", QDTYPES, ids=DT_NAME.get)
@pytest.mark.parametrize("M", MS)
@pytest.mark.parametrize("K", [128, 384])
def test_quantize_fp8_1x128(dtype, M, K):
    x = rand16(rng_for("f8b", dtype, M, K), M, K, dtype, wide=True)
    q, s = ops.quantize_fp8_1x128(x)
    eq, es = R.absmax_quantize(x, 128, "fp8")
    assert s.shape == (M, K // 128)
    np.testing.assert_array_equal(u8(q), eq)
    np.testing.assert_array_equal(s.numpy(), es)


@pytest.mark.parametrize("dtype", QDTYPES, ids=DT_NAME.get)
@pytest.mark.parametrize("M", MS)
@pytest.mark.parametrize("K", [48, 384])
@pytest.mark.parametrize("static", [False, True], ids=["dynamic", "static"])
def test_quantize_fp8_per_tensor(dtype, M, K, static):
    g = rng_for("f8pt", dtype, M, K, static)
    x = rand16(g, M, K, dtype)
    sc = float(torch.rand(1, generator=g)) * 0.05 + 0.003 if static else None   # clips some values
    q, s = ops.quantize_fp8_per_tensor(x, torch.tensor([sc], dtype=torch.float32) if static else None)
    eq, es = R.fp8_per_tensor(x, sc)
    assert s.shape == (1,) and s.dtype == torch.float32
    np.testing.assert_array_equal(u8(q), eq)
    np.testing.assert_array_equal(s.numpy(), np.array([es], np.float32))


@pytest.mark.parametrize("four_bit", [False, True], ids=["mxfp8", "mxfp4"])
@pytest.mark.parametrize("dtype", QDTYPES, ids=DT_NAME.get)
@pytest.mark.parametrize("M", MS)
@pytest.mark.parametrize("K", [32, 128, 384])
def test_quantize_mx(four_bit, dtype, M, K):
    x = rand16(rng_for("mx", four_bit, dtype, M, K), M, K, dtype, wide=(M != 3))
    q, s = (ops.quantize_mxfp4 if four_bit else ops.quantize_mxfp8)(x)
    ec, es = R.mx_quantize(x, four_bit)
    assert s.dtype == torch.uint8 and s.shape == (M, K // 32)
    np.testing.assert_array_equal(s.numpy(), es)
    if four_bit:
        assert q.dtype == torch.uint8 and q.shape == (M, K // 2)
        np.testing.assert_array_equal(q.numpy(), R.pack_nibbles(ec))
    else:
        assert q.dtype == FP8 and q.shape == (M, K)
        np.testing.assert_array_equal(u8(q), ec)


# ==================================================================== 2. MX edge cases, by hand
def one_block(vals, dtype=torch.bfloat16, fill=0.0, K=32):
    row = list(vals) + [fill] * (K - len(vals))
    return torch.tensor([row], dtype=torch.float64).to(dtype)


def mx8(x):
    q, s = ops.quantize_mxfp8(x)
    return list(u8(q)[0]), list(s.numpy()[0])


def mx4(x):
    q, s = ops.quantize_mxfp4(x)
    return list(q.numpy()[0]), list(s.numpy()[0])


@pytest.mark.parametrize("dtype", DT16, ids=DT_NAME.get)
def test_mx_all_zero_block(dtype):
    x = torch.zeros(1, 64, dtype=dtype)
    x[0, 32] = 1.0      # second block: e = 0 - 8 (mxfp8) / 0 - 2 (mxfp4); 1 -> 256 (0x78) / 4 (code 6)
    assert mx8(x) == ([0] * 32 + [0x78] + [0] * 31, [0, 127 - 8])
    assert mx4(x) == ([0] * 16 + [0x06] + [0] * 15, [0, 127 - 2])


@pytest.mark.parametrize("dtype", DT16, ids=DT_NAME.get)
def test_mx_negative_zero(dtype):
    # amax of a block of -0.0 is 0: scale byte 0 (e = -127); the codes are RNE of -0, i.e. -0.
    x = one_block([-0.0] * 32, dtype)
    assert mx8(x) == ([0x80] * 32, [0])
    assert mx4(x) == ([0x88] * 16, [0])
    # -0 next to a non-zero element: still the -0 code (1 scales to 256 = 0x78 / 4 = code 6)
    assert mx8(one_block([1.0, -0.0], dtype)) == ([0x78, 0x80] + [0] * 30, [119])
    assert mx4(one_block([1.0, -0.0], dtype)) == ([0x86] + [0] * 15, [125])


@pytest.mark.parametrize("dtype", DT16, ids=DT_NAME.get)
def test_mxfp8_element_max_exact(dtype):
    # amax 448: floor(log2 448) = 8, e = 8 - 8 = 0 -> byte 127; 448 -> 0x7E (S.1111.110)
    x = one_block([448.0, 1.0, -2.0, 0.5, -448.0], dtype)
    assert mx8(x) == ([0x7E, 0x38, 0xC0, 0x30, 0xFE] + [0] * 27, [127])
    # same block times 2^-10: only the scale moves (byte 117)
    x = one_block([448.0 / 1024, 1.0 / 1024], dtype)
    assert mx8(x) == ([0x7E, 0x38] + [0] * 30, [117])


@pytest.mark.parametrize("dtype", DT16, ids=DT_NAME.get)
def test_mxfp8_floor_clips(dtype):
    # amax 480: floor(log2 480) = 8, e = 0 (byte 127); 480 and 464 saturate to 448 (0x7E),
    # 240 = 1.875 * 2^7 -> 0x77, 3 = 1.5 * 2 -> 0x44, -500 -> 0xFE
    x = one_block([480.0, 240.0, 3.0, 464.0, -500.0], dtype)
    assert mx8(x) == ([0x7E, 0x77, 0x44, 0x7E, 0xFE] + [0] * 27, [127])


@pytest.mark.parametrize("dtype", DT16, ids=DT_NAME.get)
def test_mxfp4_element_max_and_clip(dtype):
    # amax 6: e = 2 - 2 = 0 (byte 127); 6 -> 7, -4 -> 0xE, 0.5 -> 1, 1.5 -> 3, 3 -> 5
    x = one_block([6.0, -4.0, 0.5, 1.5, 3.0], dtype)
    assert mx4(x) == ([0xE7, 0x31, 0x05] + [0] * 13, [127])
    # amax 7: e = 0; 7 clips to 6 (code 7); 5 is a tie of 4 and 6 -> even code 6 (4.0)
    x = one_block([7.0, 5.0, -7.5], dtype)
    assert mx4(x) == ([0x67, 0x0F] + [0] * 14, [127])


@pytest.mark.parametrize("dtype", DT16, ids=DT_NAME.get)
@pytest.mark.parametrize("k", [-3, 0, 5])
def test_mxfp4_ties_to_even(dtype, k):
    # anchor 4 * 2^k gives e = k; the others are exact ties at 2^k scale:
    # 0.25->0 (0 vs .5), .75->2 (.5 vs 1), 1.25->2 (1 vs 1.5), 1.75->4 (1.5 vs 2),
    # 2.5->4 (2 vs 3), 3.5->6 (3 vs 4), 5->6 (4 vs 6); negatives add bit 3 (-0.25 -> -0 = 8)
    t = [4.0, 0.25, 0.75, 1.25, 1.75, 2.5, 3.5, 5.0, -0.25, -0.75, -1.25, -1.75, -2.5, -3.5, -5.0]
    x = one_block([v * 2.0**k for v in t], dtype)
    assert mx4(x) == ([0x06, 0x22, 0x44, 0x66, 0xA8, 0xCA, 0xEC, 0x0E] + [0] * 8, [127 + k])


@pytest.mark.parametrize("dtype", DT16, ids=DT_NAME.get)
def test_mxfp8_ties_to_even(dtype):
    # amax 256 -> e = 0. 1 + 1/16 ties 1 (0x38) and 1.125 (0x39) -> 0x38; 1.1875 ties 1.125
    # and 1.25 (0x3A) -> 0x3A; 2^-10 ties 0 and 2^-9 -> 0x00; 3 * 2^-10 ties 2^-9 and 2^-8 -> 0x02;
    # 2^-10 * 5 ties 2 * 2^-9 and 3 * 2^-9 -> 0x02; 240 + 8 = 248 ties 240 (0x77) and 256 (0x78) -> 0x78
    x = one_block([256.0, 1.0625, 1.1875, 2.0**-10, 3 * 2.0**-10, 5 * 2.0**-10, 248.0, -1.0625], dtype)
    assert mx8(x) == ([0x78, 0x38, 0x3A, 0x00, 0x02, 0x02, 0x78, 0xB8] + [0] * 24, [127])


@pytest.mark.parametrize("dtype", DT16, ids=DT_NAME.get)
def test_mx_subnormal_elements(dtype):
    # amax 1: e = 0 - 8 = -8 (byte 119), x * 2^8; 1 -> 256 = 0x78. 2^-14 -> 2^-6 = min normal 0x08;
    # 2^-15 -> 2^-7 = 4 * 2^-9 -> 0x04; 2^-17 -> 2^-9 -> 0x01; -2^-17 -> 0x81;
    # 7 * 2^-17 -> 7 * 2^-9 -> 0x07; 2^-19 -> 2^-11 rounds to +0; -2^-19 -> -0 (0x80)
    x = one_block([1.0, 2.0**-14, 2.0**-15, 2.0**-17, -(2.0**-17), 7 * 2.0**-17, 2.0**-19, -(2.0**-19)], dtype)
    assert mx8(x) == ([0x78, 0x08, 0x04, 0x01, 0x81, 0x07, 0x00, 0x80] + [0] * 24, [119])
    # e2m1: amax 4 -> e = 0. 0.5 -> 1 (the subnormal); 0.3 -> 1; 0.2 -> 0; -0.5 -> 9; 0.25 -> 0 (tie)
    x = one_block([4.0, 0.5, 0.3, 0.2, -0.5, 0.25], dtype)
    assert mx4(x) == ([0x16, 0x01, 0x09] + [0] * 13, [127])


def test_mx_scale_clamped_at_minus_127():
    # bf16 subnormals (also fp32 subnormals): amax = 3 * 2^-128 -> floor(log2) = -127,
    # e = -135 (e4m3) / -129 (e2m1), both clamped to -127 -> byte 0; x * 2^127:
    # 2^-127 -> 1 (0x38 / code 2), 3 * 2^-128 -> 1.5 (0x3C / code 3), 2^-133 -> 2^-6 (0x08 / 0)
    x = one_block([2.0**-127, 3 * 2.0**-128, 2.0**-133, -(2.0**-127)], torch.bfloat16)
    assert x[0, 2].item() == 2.0**-133, "bf16 keeps the subnormal"
    assert mx8(x) == ([0x38, 0x3C, 0x08, 0xB8] + [0] * 28, [0])
    assert mx4(x) == ([0x32, 0xA0] + [0] * 14, [0])
    # and the same values in fp32
    x = x.float()
    assert mx8(x) == ([0x38, 0x3C, 0x08, 0xB8] + [0] * 28, [0])


@pytest.mark.parametrize("dtype", DT16, ids=DT_NAME.get)
@pytest.mark.parametrize("bad", [NAN, INF, -INF], ids=["nan", "inf", "-inf"])
def test_mx_nonfinite_block(dtype, bad):
    x = torch.zeros(3, 64, dtype=dtype)
    x[:, :] = 1.0
    x[1, 40] = bad                                   # row 1, block 1 is non-finite
    q8, s8 = ops.quantize_mxfp8(x)
    q4, s4 = ops.quantize_mxfp4(x)
    assert s8.numpy().tolist() == [[119, 119], [119, 0xFF], [119, 119]]
    assert s4.numpy().tolist() == [[125, 125], [125, 0xFF], [125, 125]]
    # 1.0 in a block of amax 1: 256 (0x78) for e4m3, 4 (code 6) for e2m1
    assert (u8(q8)[1, 32:] == 0).all() and (u8(q8)[1, :32] == 0x78).all()
    assert (q4.numpy()[1, 16:] == 0).all() and (q4.numpy()[1, :16] == 0x66).all()
    # through the matmuls: the NaN scale makes row 1 NaN, the other rows exact (2 * K * 1 * 1)
    b = torch.ones(24, 64).to(FP8)
    bs = torch.full((24, 2), 127, dtype=torch.uint8)
    y = ops.mxfp8_mm(q8, s8, b, bs, None, torch.bfloat16)
    assert torch.isnan(y[1]).all() and (y[[0, 2]] == 64.0).all()
    bw = torch.from_numpy(R.w4_kernel_layout(np.full((24, 64), 2, np.uint8)))  # e2m1 1.0
    y = ops.a8w4_mx_mm(q8, s8, bw, bs, None, torch.float16)
    assert torch.isnan(y[1]).all() and (y[[0, 2]] == 64.0).all()
    # and the fused linears
    for f, w in ((ops.mxfp8_linear, b), (ops.a8w4_mx_linear, bw)):
        y = f(x, w, bs)
        assert torch.isnan(y[1]).all() and (y[[0, 2]] == 64.0).all()


def test_mx_nan_weight_scale():
    # a NaN E8M0 byte on the weight side: that column of y is NaN
    a, as_ = torch.ones(2, 32).to(FP8), torch.full((2, 1), 127, dtype=torch.uint8)
    b, bs = torch.ones(3, 32).to(FP8), torch.tensor([[127], [0xFF], [127]], dtype=torch.uint8)
    y = ops.mxfp8_mm(a, as_, b, bs, None, torch.bfloat16)
    assert torch.isnan(y[:, 1]).all() and (y[:, [0, 2]] == 32.0).all()
    x = torch.ones(2, 32, dtype=torch.bfloat16)
    w = torch.from_numpy(R.w4_kernel_layout(np.full((3, 32), 2, np.uint8)))
    y = ops.mxfp4_linear(x, w, bs)
    assert torch.isnan(y[:, 1]).all() and (y[:, [0, 2]] == 32.0).all()


# ==================================================================== 3. symmetric quantizer edges
SYM = {
    "int8_per_token": (lambda x: ops.quantize_int8_per_token(x), 127.0, "row"),
    "fp8_per_token": (lambda x: ops.quantize_fp8_per_token(x), 448.0, "row"),
    "fp8_1x128": (lambda x: ops.quantize_fp8_1x128(x), 448.0, "block"),
    "fp8_per_tensor": (lambda x: ops.quantize_fp8_per_tensor(x), 448.0, "tensor"),
}


@pytest.mark.parametrize("name", list(SYM))
@pytest.mark.parametrize("dtype", DT16, ids=DT_NAME.get)
def test_symmetric_zero_row(name, dtype):
    f, qmax, _ = SYM[name]
    x = torch.zeros(2, 256, dtype=dtype)
    q, s = f(x)
    tiny = np.float32(1e-12) / np.float32(qmax)       # amax floor 1e-12, one fp32 division
    assert (q.view(torch.uint8) == 0).all()
    assert (s.numpy() == tiny).all()
    if name != "fp8_per_tensor":                      # one zero row among non-zero rows
        x[1] = torch.linspace(-3, 5, 256).to(dtype)
        q, s = f(x)
        assert (q[0].view(torch.uint8) == 0).all()
        assert (s[0].numpy() == tiny).all() and (s[1].numpy() > tiny).all()


@pytest.mark.parametrize("name", list(SYM))
@pytest.mark.parametrize("dtype", DT16, ids=DT_NAME.get)
@pytest.mark.parametrize("bad", [NAN, INF, -INF], ids=["nan", "inf", "-inf"])
def test_symmetric_nonfinite(name, dtype, bad):
    f, qmax, kind = SYM[name]
    x = torch.linspace(-2, 3, 3 * 256).reshape(3, 256).to(dtype)
    x[1, 200] = bad                                   # row 1, 1x128 block 1
    q, s = f(x)
    q, s = q.view(torch.uint8).numpy(), s.numpy()
    if kind == "tensor":
        assert np.isnan(s).all() and (q == 0).all()
    elif kind == "row":
        assert np.isnan(s[1]) and (q[1] == 0).all()
        assert np.isfinite(s[[0, 2]]).all() and (q[[0, 2]] != 0).any()
    else:
        assert np.isnan(s[1, 1]) and (q[1, 128:] == 0).all()
        assert np.isfinite(s[1, 0]) and np.isfinite(s[[0, 2]]).all() and (q[1, :128] != 0).any()


@pytest.mark.parametrize("dtype", DT16, ids=DT_NAME.get)
def test_int8_round_half_even(dtype):
    # amax 127 -> inv = 127/127 = 1 exactly: codes are RNE of x itself
    x = one_block([127.0, 0.5, 1.5, 2.5, -0.5, -2.5, 126.5, -3.5], dtype, K=32)
    q, s = ops.quantize_int8_per_token(x)
    assert q.numpy()[0, :8].tolist() == [127, 0, 2, 2, 0, -2, 126, -4]
    assert s.item() == 1.0
    # amax 254 -> inv = 0.5 exactly: 1, 3, 5, -7 -> .5, 1.5, 2.5, -3.5 -> 0, 2, 2, -4
    x = one_block([254.0, 1.0, 3.0, 5.0, -7.0], dtype, K=32)
    q, s = ops.quantize_int8_per_token(x)
    assert q.numpy()[0, :5].tolist() == [127, 0, 2, 2, -4]
    assert s.item() == 2.0


@pytest.mark.parametrize("dtype", DT16, ids=DT_NAME.get)
def test_fp8_round_half_even(dtype):
    # amax 448 -> inv = 1: e4m3 ties 1.0625 -> 0x38, 1.1875 -> 0x3A, 2^-10 -> 0, 3 * 2^-10 -> 0x02
    x = one_block([448.0, 1.0625, 1.1875, 2.0**-10, 3 * 2.0**-10, -1.1875], dtype, K=32)
    for q, s in (ops.quantize_fp8_per_token(x), ops.quantize_fp8_per_tensor(x)):
        assert u8(q)[0, :6].tolist() == [0x7E, 0x38, 0x3A, 0x00, 0x02, 0xBA]
        assert s.item() == 1.0


def test_fp8_per_tensor_static_edges():
    # static scale: inv = 1 / scale, saturation at 448; no non-finite rule: NaN input gives
    # the NaN code 0x7F, +-Inf saturates to +-448 (spec comment in csrc/cpu/quantize.cpp)
    x = torch.tensor([[1.0, 1000.0, -1000.0, NAN, INF, -INF, -0.0] + [0.0] * 9], dtype=torch.bfloat16)
    q, s = ops.quantize_fp8_per_tensor(x, torch.tensor([0.5]))
    assert u8(q)[0, :7].tolist() == [0x40, 0x7E, 0xFE, 0x7F, 0x7E, 0xFE, 0x80] and s.item() == 0.5
    # a NaN static scale zeroes the codes and is returned as given
    q, s = ops.quantize_fp8_per_tensor(x, torch.tensor([NAN]))
    assert (u8(q) == 0).all() and torch.isnan(s).all()


# ==================================================================== 4. w4 layout
# K: one partial block (32, 96), full blocks only (128, 256, 384), full + partial (160, 224);
# N: full 16-row tiles only (16, 32), full tiles + a partial one (17, 24, 40, 200), a partial
# tile only (1, 2, 3, 4, 5, 7)
W4_SHAPES = sorted({(N, K) for N in (16, 32, 17, 40, 3) for K in (32, 128, 160, 256, 384, 224)} |
                   {(1, 32), (7, 96), (24, 128), (2, 128), (4, 256), (3, 160), (5, 224), (200, 384)})


@pytest.mark.parametrize("N,K", W4_SHAPES)
def test_w4_round_trip(N, K):
    g = rng_for("w4", N, K)
    plain = torch.randint(0, 256, (N, K // 2), generator=g, dtype=torch.uint8)
    packed = ops.prepack_w4(plain)
    assert packed.dtype == torch.int32 and packed.shape == (N, K // 8)
    codes = R.unpack_nibbles(plain.numpy())
    np.testing.assert_array_equal(packed.numpy(), R.w4_kernel_layout(codes))
    np.testing.assert_array_equal(R.w4_kernel_codes(packed.numpy()), codes)
    assert torch.equal(ops.unpack_w4(packed), plain)


def test_w4_word_by_hand():
    # elements 0..7 = 0..7 and 8..15 = 8..15 of one row; plain bytes: low nibble = element 2i
    plain = torch.tensor([[0x10, 0x32, 0x54, 0x76, 0x98, 0xBA, 0xDC, 0xFE] + [0] * 8], dtype=torch.uint8)
    packed = ops.prepack_w4(plain)
    # nibble p of word j holds element 8j + [0,2,4,6,1,3,5,7][p]:
    # word 0 nibbles (low first) 0,2,4,6,1,3,5,7 -> 0x75316420; word 1: 8,10,12,14,9,11,13,15 -> 0xFDB9ECA8
    words = packed.numpy().view(np.uint32)[0].tolist()
    assert words == [0x75316420, 0xFDB9ECA8, 0, 0]
    # the mask 0x000F000F picks elements (0, 1) into the two 16-bit halves
    assert (words[0] & 0x000F000F) == (1 << 16) | 0 and ((words[0] >> 4) & 0x000F000F) == (3 << 16) | 2
    back = torch.tensor([[0x75316420, 0x12345678, 0, 0]], dtype=torch.int32)
    # 0x12345678: nibbles p=0..7 = 8,7,6,5,4,3,2,1 -> elements [0,2,4,6,1,3,5,7] get them:
    # e0=8 e2=7 e4=6 e6=5 e1=4 e3=3 e5=2 e7=1 -> bytes 0x48, 0x37, 0x26, 0x15
    assert ops.unpack_w4(back).numpy()[0].tolist() == [0x10, 0x32, 0x54, 0x76, 0x48, 0x37, 0x26, 0x15] + [0] * 8


def _word_of(L):
    """A word whose 8 elements are all code L % 16 and, to tell words 0..15 from 16..31, whose
    first element is 15 - L // 16: recognizable after any permutation of words."""
    codes = [L % 16] * 8
    codes[0] = 15 - L // 16
    return codes


def test_w4_block_transpose_by_hand():
    # K = 160: one full block (logical words 0..15) and a partial one (words 16..19).
    # One row (N < 16: a partial row tile, so the per-row layout of steps 1-2, as in v2):
    # in the full block stored word 4c + j = logical word 4j + c, i.e. the 16
    # words read as a 4 x 4 matrix (row j = logical words 4j .. 4j+3) stored transposed;
    # the partial block keeps logical order.
    K = 160
    codes = np.array([sum((_word_of(L) for L in range(K // 8)), [])], dtype=np.uint8)
    plain = torch.from_numpy(R.pack_nibbles(codes))
    stored = ops.prepack_w4(plain).numpy().view(np.uint32)[0]

    def logical_word(s):  # which logical word stored word s holds, from its nibbles
        e0 = int(s) & 0xF                           # nibble 0 = element 0
        rest = (int(s) >> 4) & 0xF                  # nibble 1 = element 2 = L % 16
        return (15 - e0) * 16 + rest

    got = [logical_word(s) for s in stored]
    assert got[:16] == [0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15]
    assert got[16:] == [16, 17, 18, 19]
    # explicitly: thread c of an mma quad loads stored words 4c .. 4c+3 = logical c, 4+c, 8+c, 12+c
    for c in range(4):
        assert got[4 * c:4 * c + 4] == [c, 4 + c, 8 + c, 12 + c]
    # whole words, nibbles interleaved as before: logical word 1 (codes 15,1,1,...) at stored 4
    assert stored[4] == 0x1111111F and stored[1] == 0x4444444F and stored[16] == 0x0000000E
    assert torch.equal(ops.unpack_w4(ops.prepack_w4(plain)), plain)
    # unpack reads the transposed positions: a word put at stored position 1 is logical word 4,
    # i.e. elements 32 .. 39
    w = np.zeros((1, K // 8), np.uint32)
    w[0, 1] = 0x76543210   # nibbles p = 0..7 hold elements [0,2,4,6,1,3,5,7] of the word
    back = R.unpack_nibbles(ops.unpack_w4(torch.from_numpy(w.view(np.int32))).numpy())[0]
    assert back[32:40].tolist() == [0, 4, 1, 5, 2, 6, 3, 7] and not back[:32].any() and not back[40:].any()


def _tagged_plain(N, K):
    """Plain codes (N, K/2) whose logical word L of row n has element 0 = n % 16, element 6 =
    n // 16, element 2 = L % 16, element 4 = L // 16 (others 0), and a decoder of a stored
    word -> (n, L)."""
    codes = np.zeros((N, K // 8, 8), np.uint8)
    codes[:, :, 0] = np.arange(N)[:, None] % 16
    codes[:, :, 6] = np.arange(N)[:, None] // 16
    codes[:, :, 2] = np.arange(K // 8)[None, :] % 16
    codes[:, :, 4] = np.arange(K // 8)[None, :] // 16
    plain = torch.from_numpy(R.pack_nibbles(codes.reshape(N, K)))

    def who(s):  # nibble p holds element [0, 2, 4, 6, 1, 3, 5, 7][p]
        s = int(s)
        return ((s & 0xF) + 16 * ((s >> 12) & 0xF), ((s >> 4) & 0xF) + 16 * ((s >> 8) & 0xF))
    return plain, who


def test_w4_row_tile_by_hand():
    # N = 16, K = 128: one full 16-row tile of one full block, W = 16 words a row; the tile is
    # one 1 KB chunk where quad thread c of row i loads the 4 words at 128 (i / 8) + 16 (i % 8)
    # + 4 c, i.e. logical words c, 4 + c, 8 + c, 12 + c of row i (the v2 transpose)
    N, K = 16, 128
    plain, who = _tagged_plain(N, K)
    stored = ops.prepack_w4(plain).numpy().reshape(-1).view(np.uint32)
    got = [who(s) for s in stored]
    assert got[0] == (0, 0)      # row 0 logical word 0
    assert got[1] == (0, 4)      # row 0 logical word 4 (thread 0's second word)
    assert got[4] == (0, 1)      # row 0 thread 1's first word
    assert got[16] == (1, 0)     # row 1 starts after row 0's 16 words
    assert got[128] == (8, 0)    # rows 8..15: the second 512 bytes
    assert got[255] == (15, 15)  # 128 + 16 * 7 + 4 * 3 + 3
    assert got[128 + 16 * 7 + 4 * 2 + 1] == (15, 6)   # row 15, thread c = 2, j = 1: logical 4 j + c
    for i in range(16):
        for c in range(4):
            at = 128 * (i // 8) + 16 * (i % 8) + 4 * c
            assert got[at:at + 4] == [(i, c), (i, 4 + c), (i, 8 + c), (i, 12 + c)]
    # unpack reads the tiled positions: a word put at flat index 128 is row 8's logical word 0
    w = np.zeros(N * K // 8, np.uint32)
    w[128] = 0x76543210   # nibbles p = 0..7 hold elements [0,2,4,6,1,3,5,7] of the word
    back = R.unpack_nibbles(ops.unpack_w4(torch.from_numpy(w.view(np.int32).reshape(N, K // 8))).numpy())
    assert back[8, :8].tolist() == [0, 4, 1, 5, 2, 6, 3, 7]
    assert back.sum() == sum(range(8))
    assert torch.equal(ops.unpack_w4(ops.prepack_w4(plain)), plain)


def test_w4_row_tile_partial_block_by_hand():
    # N = 16, K = 160: W = 20 words a row, one full block (256 words: as for K = 128) then the
    # partial block of the tile, row after row in logical order: row i's 4 words at 256 + 4 i
    N, K = 16, 160
    plain, who = _tagged_plain(N, K)
    stored = ops.prepack_w4(plain).numpy().reshape(-1).view(np.uint32)
    got = [who(s) for s in stored]
    assert got[0] == (0, 0) and got[1] == (0, 4) and got[16] == (1, 0) and got[255] == (15, 15)
    for i in range(16):
        assert got[256 + 4 * i:256 + 4 * i + 4] == [(i, 16), (i, 17), (i, 18), (i, 19)]
    assert len(got) == 320
    # N = 17: the same tile, then row 16 (a partial tile) per row at 16 W = 320, v2 order
    plain17, who17 = _tagged_plain(17, K)
    stored17 = ops.prepack_w4(plain17).numpy().reshape(-1).view(np.uint32)
    np.testing.assert_array_equal(stored17[:320], stored)
    assert [who17(s) for s in stored17[320:]] == [(16, L) for L in [0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14,
                                                                    3, 7, 11, 15, 16, 17, 18, 19]]
    assert torch.equal(ops.unpack_w4(ops.prepack_w4(plain17)), plain17)


# ==================================================================== 5. matmuls
OUTS = DT16
BIAS = [False, True]


@pytest.mark.parametrize("M", MS)
@pytest.mark.parametrize("N,K", NKS)
@pytest.mark.parametrize("out", OUTS, ids=DT_NAME.get)
@pytest.mark.parametrize("use_bias", BIAS, ids=["nobias", "bias"])
@pytest.mark.parametrize("per_tensor", [False, True], ids=["rowscale", "tensorscale"])
def test_w8a8_int8_mm_bit_exact(M, N, K, out, use_bias, per_tensor):
    g = rng_for("i8mm", M, N, K, out, use_bias, per_tensor)
    a = torch.randint(-128, 128, (M, K), generator=g, dtype=torch.int8)
    b = torch.randint(-128, 128, (N, K), generator=g, dtype=torch.int8)
    sa = torch.rand(1 if per_tensor else M, generator=g) * 1e-3 + 1e-4
    sb = torch.rand(1 if per_tensor else N, generator=g) * 1e-3 + 1e-4
    bias = rand_bias(g, N, out, use_bias)
    y = ops.w8a8_int8_mm(a, sa, b, sb, bias, out)
    # the spec's epilogue step by step: exact int accumulation, then fp32 ops in order
    acc = a.numpy().astype(np.int64) @ b.numpy().astype(np.int64).T
    ref = (acc.astype(np.float32) * sa.numpy().reshape(-1, 1)) * sb.numpy().reshape(1, -1)
    if bias is not None:
        ref = ref + bias.float().numpy().reshape(1, -1)
    assert ref.dtype == np.float32
    expect = torch.from_numpy(ref).to(out)            # RNE to the output dtype
    assert y.dtype == out and y.shape == (M, N)
    assert torch.equal(y, expect), "w8a8_int8_mm must match the fp32 epilogue bit for bit"


@pytest.mark.parametrize("M", MS)
@pytest.mark.parametrize("N,K", NKS)
@pytest.mark.parametrize("out", OUTS, ids=DT_NAME.get)
@pytest.mark.parametrize("use_bias", BIAS, ids=["nobias", "bias"])
@pytest.mark.parametrize("per_tensor", [False, True], ids=["rowscale", "tensorscale"])
def test_w8a8_fp8_mm(M, N, K, out, use_bias, per_tensor):
    g = rng_for("f8mm", M, N, K, out, use_bias, per_tensor)
    a, b = rand_e4m3(g, M, K, 30.0), rand_e4m3(g, N, K, 30.0)
    sa = torch.rand(1 if per_tensor else M, generator=g) * 1e-3 + 1e-4
    sb = torch.rand(1 if per_tensor else N, generator=g) * 1e-3 + 1e-4
    bias = rand_bias(g, N, out, use_bias)
    y = ops.w8a8_fp8_mm(a, sa, b, sb, bias, out)
    A, B = R.e4m3_decode(u8(a)), R.e4m3_decode(u8(b))
    s2 = R.f64(sa).reshape(-1, 1) * R.f64(sb).reshape(1, -1)
    ref, absdot = mm64(A, B)
    ref, absdot = add_bias(ref * s2, absdot * s2, bias)
    assert y.dtype == out
    R.assert_matmul_close(y, ref, absdot, K, "w8a8_fp8_mm")


def fp8_block_ref(A, SA, B, SB):
    """DeepSeek-V3: sum over 128-blocks kb of sa[m,kb] * sb[n//128,kb] * partial(kb)."""
    M, K = A.shape
    N = B.shape[0]
    ref, absdot = np.zeros((M, N)), np.zeros((M, N))
    sbn = np.repeat(SB, 128, axis=0)[:N]               # (N, K/128)
    for kb in range(K // 128):
        sl = slice(kb * 128, (kb + 1) * 128)
        part, apart = mm64(A[:, sl], B[:, sl])
        s = SA[:, kb:kb + 1] * sbn[:, kb][None, :]
        ref += s * part
        absdot += s * apart
    return ref, absdot


@pytest.mark.parametrize("M", MS)
@pytest.mark.parametrize("N,K", NKS + [(136, 256)])
@pytest.mark.parametrize("out", OUTS, ids=DT_NAME.get)
@pytest.mark.parametrize("use_bias", BIAS, ids=["nobias", "bias"])
def test_fp8_block_mm(M, N, K, out, use_bias):
    g = rng_for("blk", M, N, K, out, use_bias)
    a, b = rand_e4m3(g, M, K, 30.0), rand_e4m3(g, N, K, 30.0)
    sa = torch.rand(M, K // 128, generator=g) * 1e-3 + 1e-4
    sb = torch.rand((N + 127) // 128, K // 128, generator=g) * 1e-3 + 1e-4
    bias = rand_bias(g, N, out, use_bias)
    y = ops.fp8_block_mm(a, sa, b, sb, bias, out)
    ref, absdot = fp8_block_ref(R.e4m3_decode(u8(a)), R.f64(sa), R.e4m3_decode(u8(b)), R.f64(sb))
    ref, absdot = add_bias(ref, absdot, bias)
    R.assert_matmul_close(y, ref, absdot, K, "fp8_block_mm")


def mx_operand64(codes_u8, scale_u8, four_bit):
    """codes (R, K) (e4m3 bytes or e2m1 codes) and E8M0 bytes (R, K/32) -> float64 (R, K)."""
    v = R.e2m1_decode(codes_u8) if four_bit else R.e4m3_decode(codes_u8)
    return v * np.repeat(R.e8m0_decode(scale_u8), 32, axis=1)


@pytest.mark.parametrize("M", MS)
@pytest.mark.parametrize("N,K", NKS)
@pytest.mark.parametrize("out", OUTS, ids=DT_NAME.get)
@pytest.mark.parametrize("use_bias", BIAS, ids=["nobias", "bias"])
@pytest.mark.parametrize("four_bit", [False, True], ids=["mxfp8_mm", "a8w4_mx_mm"])
def test_mx_mm(M, N, K, out, use_bias, four_bit):
    g = rng_for("mxmm", M, N, K, out, use_bias, four_bit)
    a, sa = rand_e4m3(g, M, K, 60.0), rand_e8m0(g, M, K // 32, 116, 125)   # keeps fp16 outputs finite
    sb = rand_e8m0(g, N, K // 32, 116, 125)
    if four_bit:
        codes = torch.randint(0, 16, (N, K), generator=g, dtype=torch.uint8).numpy()
        b = torch.from_numpy(R.w4_kernel_layout(codes))
        B = mx_operand64(codes, sb.numpy(), True)
    else:
        b = rand_e4m3(g, N, K, 60.0)
        B = mx_operand64(u8(b), sb.numpy(), False)
    bias = rand_bias(g, N, out, use_bias)
    y = (ops.a8w4_mx_mm if four_bit else ops.mxfp8_mm)(a, sa, b, sb, bias, out)
    ref, absdot = add_bias(*mm64(mx_operand64(u8(a), sa.numpy(), False), B), bias)
    R.assert_matmul_close(y, ref, absdot, K, "a8w4_mx_mm" if four_bit else "mxfp8_mm")


# ---------------------------------------------------------------- weight-only linears
@pytest.mark.parametrize("M", MS)
@pytest.mark.parametrize("N,K", NKS)
@pytest.mark.parametrize("dtype", DT16, ids=DT_NAME.get)
@pytest.mark.parametrize("group", [32, 64, 128, -1])
@pytest.mark.parametrize("sym", [False, True], ids=["asym", "sym"])
@pytest.mark.parametrize("use_bias", BIAS, ids=["nobias", "bias"])
def test_a16w4_linear(M, N, K, dtype, group, sym, use_bias):
    g = rng_for("a16w4", M, N, K, dtype, group, sym, use_bias)
    G = K if group == -1 else group
    x = rand16(g, M, K, dtype)
    codes = torch.randint(0, 16, (N, K), generator=g, dtype=torch.uint8).numpy()
    w = torch.from_numpy(R.w4_kernel_layout(codes))
    scales = (torch.rand(N, K // G, generator=g) * 0.02 + 0.005).to(dtype)
    zeros = None if sym else (torch.rand(N, K // G, generator=g) * 4 + 5.5).to(dtype)   # float zeros (HQQ)
    bias = rand_bias(g, N, dtype, use_bias)
    y = ops.a16w4_linear(x, w, scales, zeros, group, bias)
    z = np.full((N, K // G), 8.0) if sym else R.f64(zeros)
    W = (codes - np.repeat(z, G, axis=1)) * np.repeat(R.f64(scales), G, axis=1)
    ref, absdot = add_bias(*mm64(R.f64(x), W), bias)
    assert y.dtype == dtype and y.shape == (M, N)
    R.assert_matmul_close(y, ref, absdot, K, "a16w4_linear")


@pytest.mark.parametrize("M", MS)
@pytest.mark.parametrize("N,K", NKS)
@pytest.mark.parametrize("dtype", DT16, ids=DT_NAME.get)
@pytest.mark.parametrize("use_bias", BIAS, ids=["nobias", "bias"])
def test_a16w8_linear(M, N, K, dtype, use_bias):
    g = rng_for("a16w8", M, N, K, dtype, use_bias)
    x = rand16(g, M, K, dtype)
    w = torch.randint(-128, 128, (N, K), generator=g, dtype=torch.int8)
    ws = torch.rand(N, generator=g) * 0.002 + 0.0005          # fp32 per channel, in the epilogue
    bias = rand_bias(g, N, dtype, use_bias)
    y = ops.a16w8_linear(x, w, ws, bias)
    # y = (sum_k x q) * w_scale + bias
    ref, absdot = mm64(R.f64(x), w.numpy().astype(np.float64))
    s = R.f64(ws)[None, :]
    ref, absdot = add_bias(ref * s, absdot * s, bias)
    assert y.dtype == dtype and y.shape == (M, N)
    R.assert_matmul_close(y, ref, absdot, K, "a16w8_linear")


@pytest.mark.parametrize("M", MS)
@pytest.mark.parametrize("N,K", NKS)
@pytest.mark.parametrize("dtype", DT16, ids=DT_NAME.get)
@pytest.mark.parametrize("use_bias", BIAS, ids=["nobias", "bias"])
def test_mxfp4_linear(M, N, K, dtype, use_bias):
    g = rng_for("mxfp4lin", M, N, K, dtype, use_bias)
    x = rand16(g, M, K, dtype)
    codes = torch.randint(0, 16, (N, K), generator=g, dtype=torch.uint8).numpy()
    w = torch.from_numpy(R.w4_kernel_layout(codes))
    ws = rand_e8m0(g, N, K // 32, 120, 124)
    bias = rand_bias(g, N, dtype, use_bias)
    y = ops.mxfp4_linear(x, w, ws, bias)
    ref, absdot = add_bias(*mm64(R.f64(x), mx_operand64(codes, ws.numpy(), True)), bias)
    R.assert_matmul_close(y, ref, absdot, K, "mxfp4_linear")


# ---------------------------------------------------------------- fused linears = quantize + mm
@pytest.mark.parametrize("M", MS)
@pytest.mark.parametrize("N,K", NKS)
@pytest.mark.parametrize("dtype", DT16, ids=DT_NAME.get)
@pytest.mark.parametrize("use_bias", BIAS, ids=["nobias", "bias"])
def test_w8a8_int8_linear_bit_exact(M, N, K, dtype, use_bias):
    g = rng_for("i8lin", M, N, K, dtype, use_bias)
    x = rand16(g, M, K, dtype)
    w = torch.randint(-127, 128, (N, K), generator=g, dtype=torch.int8)
    ws = torch.rand(N, generator=g) * 1e-3 + 1e-4
    bias = rand_bias(g, N, dtype, use_bias)
    y = ops.w8a8_int8_linear(x, w, ws, bias)
    xq, xs = R.absmax_quantize(x, K, "int8")
    acc = xq.astype(np.int64) @ w.numpy().astype(np.int64).T
    ref = (acc.astype(np.float32) * xs.reshape(-1, 1)) * ws.numpy().reshape(1, -1)
    if bias is not None:
        ref = ref + bias.float().numpy().reshape(1, -1)
    assert torch.equal(y, torch.from_numpy(ref).to(dtype))


@pytest.mark.parametrize("M", MS)
@pytest.mark.parametrize("N,K", NKS)
@pytest.mark.parametrize("dtype", DT16, ids=DT_NAME.get)
@pytest.mark.parametrize("use_bias", BIAS, ids=["nobias", "bias"])
@pytest.mark.parametrize("per_token", [True, False], ids=["act_token", "act_tensor"])
def test_w8a8_fp8_linear(M, N, K, dtype, use_bias, per_token):
    g = rng_for("f8lin", M, N, K, dtype, use_bias, per_token)
    x = rand16(g, M, K, dtype)
    w = rand_e4m3(g, N, K, 30.0)
    ws = torch.rand(N if per_token else 1, generator=g) * 1e-3 + 1e-4   # (N,) and (1,) weight scales
    bias = rand_bias(g, N, dtype, use_bias)
    y = ops.w8a8_fp8_linear(x, w, ws, bias, per_token)
    if per_token:
        xq, xs = R.absmax_quantize(x, K, "fp8")
        xs = xs.astype(np.float64).reshape(-1, 1)
    else:
        xq, xs = R.fp8_per_tensor(x)
        xs = np.float64(xs)
    s2 = xs * R.f64(ws).reshape(1, -1)
    ref, absdot = mm64(R.e4m3_decode(xq), R.e4m3_decode(u8(w)))
    ref, absdot = add_bias(ref * s2, absdot * s2, bias)
    R.assert_matmul_close(y, ref, absdot, K, "w8a8_fp8_linear")


@pytest.mark.parametrize("M", MS)
@pytest.mark.parametrize("N,K", NKS)
@pytest.mark.parametrize("dtype", DT16, ids=DT_NAME.get)
@pytest.mark.parametrize("use_bias", BIAS, ids=["nobias", "bias"])
def test_fp8_block_linear(M, N, K, dtype, use_bias):
    g = rng_for("blklin", M, N, K, dtype, use_bias)
    x = rand16(g, M, K, dtype)
    w = rand_e4m3(g, N, K, 30.0)
    ws = torch.rand((N + 127) // 128, K // 128, generator=g) * 1e-3 + 1e-4
    bias = rand_bias(g, N, dtype, use_bias)
    y = ops.fp8_block_linear(x, w, ws, bias)
    xq, xs = R.absmax_quantize(x, 128, "fp8")
    ref, absdot = fp8_block_ref(R.e4m3_decode(xq), xs.astype(np.float64), R.e4m3_decode(u8(w)), R.f64(ws))
    ref, absdot = add_bias(ref, absdot, bias)
    R.assert_matmul_close(y, ref, absdot, K, "fp8_block_linear")


@pytest.mark.parametrize("M", MS)
@pytest.mark.parametrize("N,K", NKS)
@pytest.mark.parametrize("dtype", DT16, ids=DT_NAME.get)
@pytest.mark.parametrize("use_bias", BIAS, ids=["nobias", "bias"])
@pytest.mark.parametrize("four_bit", [False, True], ids=["mxfp8_linear", "a8w4_mx_linear"])
def test_mx_linear(M, N, K, dtype, use_bias, four_bit):
    g = rng_for("mxlin", M, N, K, dtype, use_bias, four_bit)
    x = rand16(g, M, K, dtype)
    ws = rand_e8m0(g, N, K // 32, 118, 126)
    if four_bit:
        codes = torch.randint(0, 16, (N, K), generator=g, dtype=torch.uint8).numpy()
        w = torch.from_numpy(R.w4_kernel_layout(codes))
        W = mx_operand64(codes, ws.numpy(), True)
    else:
        w = rand_e4m3(g, N, K, 20.0)
        W = mx_operand64(u8(w), ws.numpy(), False)
    bias = rand_bias(g, N, dtype, use_bias)
    y = (ops.a8w4_mx_linear if four_bit else ops.mxfp8_linear)(x, w, ws, bias)
    xq, xs = R.mx_quantize(x, False)
    ref, absdot = add_bias(*mm64(mx_operand64(xq, xs, False), W), bias)
    R.assert_matmul_close(y, ref, absdot, K, "a8w4_mx_linear" if four_bit else "mxfp8_linear")


# ---------------------------------------------------------------- M = 0
def _empty_cases():
    N, K = 24, 128
    g = rng_for("empty")
    i8 = torch.randint(-127, 128, (N, K), generator=g, dtype=torch.int8)
    f8 = rand_e4m3(g, N, K)
    w4 = torch.from_numpy(R.w4_kernel_layout(np.ones((N, K), np.uint8)))
    e8 = rand_e8m0(g, N, K // 32)
    sN = torch.rand(N, generator=g) + 0.5
    bsb = torch.rand(1, K // 128, generator=g) + 0.5
    a8, af8 = torch.empty(0, K, dtype=torch.int8), torch.empty(0, K).to(FP8)
    e0 = torch.empty(0, K // 32, dtype=torch.uint8)
    s0 = torch.empty(0)
    return {
        "w8a8_int8_mm": lambda o, b: ops.w8a8_int8_mm(a8, s0, i8, sN, b, o),
        "w8a8_fp8_mm": lambda o, b: ops.w8a8_fp8_mm(af8, s0, f8, sN, b, o),
        "fp8_block_mm": lambda o, b: ops.fp8_block_mm(af8, torch.empty(0, K // 128), f8, bsb, b, o),
        "mxfp8_mm": lambda o, b: ops.mxfp8_mm(af8, e0, f8, e8, b, o),
        "a8w4_mx_mm": lambda o, b: ops.a8w4_mx_mm(af8, e0, w4, e8, b, o),
        "a16w4_linear": lambda o, b: ops.a16w4_linear(torch.empty(0, K, dtype=o), w4, torch.ones(N, 1, dtype=o),
                                                      None, -1, b),
        "a16w8_linear": lambda o, b: ops.a16w8_linear(torch.empty(0, K, dtype=o), i8, sN, b),
        "mxfp4_linear": lambda o, b: ops.mxfp4_linear(torch.empty(0, K, dtype=o), w4, e8, b),
        "w8a8_int8_linear": lambda o, b: ops.w8a8_int8_linear(torch.empty(0, K, dtype=o), i8, sN, b),
        "w8a8_fp8_linear": lambda o, b: ops.w8a8_fp8_linear(torch.empty(0, K, dtype=o), f8, sN, b),
        "w8a8_fp8_linear_tensor": lambda o, b: ops.w8a8_fp8_linear(torch.empty(0, K, dtype=o), f8, sN, b, False),
        "fp8_block_linear": lambda o, b: ops.fp8_block_linear(torch.empty(0, K, dtype=o), f8, bsb, b),
        "mxfp8_linear": lambda o, b: ops.mxfp8_linear(torch.empty(0, K, dtype=o), f8, e8, b),
        "a8w4_mx_linear": lambda o, b: ops.a8w4_mx_linear(torch.empty(0, K, dtype=o), w4, e8, b),
    }


EMPTY = _empty_cases()


@pytest.mark.parametrize("name", list(EMPTY))
@pytest.mark.parametrize("out", OUTS, ids=DT_NAME.get)
@pytest.mark.parametrize("use_bias", BIAS, ids=["nobias", "bias"])
def test_m0_gives_empty(name, out, use_bias):
    bias = torch.ones(24, dtype=out) if use_bias else None
    y = EMPTY[name](out, bias)
    assert y.shape == (0, 24) and y.dtype == out


@pytest.mark.parametrize("name", ["quantize_int8_per_token", "quantize_fp8_per_token", "quantize_fp8_1x128",
                                  "quantize_fp8_per_tensor", "quantize_mxfp8", "quantize_mxfp4"])
def test_quantizers_m0(name):
    q, s = getattr(ops, name)(torch.empty(0, 128, dtype=torch.bfloat16))
    assert q.shape[0] == 0
    assert s.shape[0] == (1 if name == "quantize_fp8_per_tensor" else 0)
