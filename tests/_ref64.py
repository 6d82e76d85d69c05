"""Independent numpy reference of the lowbit_ext number formats and quantizers.

Written from the spec comments in csrc/cpu/quantize.cpp and csrc/cpu/linear.cpp, not from
their code: decoders are table/formula lookups in float64, e4m3 encoding is torch's own
fp32 -> float8_e4m3fn conversion (an RNE implementation independent of lowbit's) after
clamping to +-448, e2m1 encoding is a nearest-value search, shared exponents come from
np.frexp. Nothing here calls a torch.ops.lowbit op.
"""
import numpy as np
import torch

E4M3_MAX = 448.0
E2M1_MAG = np.array([0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0])
E8M0_NAN = 0xFF
AMAX_FLOOR = np.float32(1e-12)


# ---------------------------------------------------------------- element formats
def e4m3_encode(v) -> np.ndarray:
    """float32 array -> e4m3fn bytes: RNE, saturating to +-448 (clamp first, then torch's
    RNE conversion, which would map > 464 to NaN). NaN stays NaN (torch's NaN byte)."""
    v = np.clip(np.asarray(v, dtype=np.float32), -E4M3_MAX, E4M3_MAX)
    return torch.from_numpy(np.ascontiguousarray(v)).to(torch.float8_e4m3fn).view(torch.uint8).numpy()


def e4m3_decode(b) -> np.ndarray:
    """e4m3fn bytes -> float64 by the format's formula (bias 7, subnormals m/8 * 2^-6)."""
    b = np.asarray(b, dtype=np.uint8).astype(np.int64)
    sign = np.where(b & 0x80, -1.0, 1.0)
    e, m = (b >> 3) & 0xF, b & 7
    mag = np.where(e == 0, m / 8.0 * 2.0**-6, (1.0 + m / 8.0) * np.exp2(e - 7.0))
    mag = np.where((e == 15) & (m == 7), np.nan, mag)
    return sign * mag


def e2m1_encode(v) -> np.ndarray:
    """float array -> e2m1 codes (0..15, sign in bit 3): nearest of the 8 magnitudes after
    saturating to 6, ties to the even code; the sign bit follows the input's sign bit."""
    v = np.asarray(v, dtype=np.float64)
    a = np.minimum(np.abs(v), 6.0)
    d = np.abs(a[..., None] - E2M1_MAG)               # (..., 8)
    best = d.min(axis=-1, keepdims=True)
    cand = d == best                                   # one or two candidates (a tie)
    even = cand & (np.arange(8) % 2 == 0)
    code = np.where(even.any(-1), even.argmax(-1), cand.argmax(-1))
    return (code + 8 * np.signbit(v)).astype(np.uint8)


def e2m1_decode(c) -> np.ndarray:
    c = np.asarray(c).astype(np.int64)
    return np.where(c & 8, -1.0, 1.0) * E2M1_MAG[c & 7]


def e8m0_decode(s) -> np.ndarray:
    s = np.asarray(s).astype(np.int64)
    return np.where(s == E8M0_NAN, np.nan, np.exp2(s - 127.0))


# ---------------------------------------------------------------- 4-bit layout
W4_INTERLEAVE = [0, 2, 4, 6, 1, 3, 5, 7]


def pack_nibbles(codes) -> np.ndarray:
    """codes uint8 (R, K) in 0..15 -> plain layout uint8 (R, K/2), element 2i in the low nibble."""
    codes = np.asarray(codes, dtype=np.uint8)
    return (codes[:, 0::2] | (codes[:, 1::2] << 4)).astype(np.uint8)


def unpack_nibbles(plain) -> np.ndarray:
    plain = np.asarray(plain, dtype=np.uint8)
    out = np.empty((plain.shape[0], plain.shape[1] * 2), dtype=np.uint8)
    out[:, 0::2], out[:, 1::2] = plain & 0xF, plain >> 4
    return out


def _w4_word_order(words: int) -> np.ndarray:
    """Layout steps 1-2 (the whole layout in version 2): stored position inside its row of
    each logical word of a row with `words` words. Each full block of 16 words (128 elements)
    holds its words as a 4 x 4 matrix stored transposed (stored 4c + j = logical 4j + c); a
    partial last block keeps logical order."""
    pos = np.arange(words)
    full = words // 16 * 16
    blocks = pos[:full].reshape(-1, 4, 4)              # [block, j, c] = logical 16b + 4j + c
    pos[:full] = blocks.transpose(0, 2, 1).reshape(-1)  # stored 16b + 4c + j
    return pos


def _w4_store(word) -> np.ndarray:
    """Layout version 3: logical words (R, W) (word L of row n at [n, L]) -> the stored
    (R, W) array, whose flat order is the memory order.
    Full tiles of 16 rows: each tile's 16 * W words are contiguous, first the full blocks
    b = 0 .. W/16 - 1, each a chunk of 256 words ordered [row i, quad thread c, j] (word
    16 i + 4 c + j = logical word 16 b + 4 j + c of row i: the v2 transpose, rows one after
    the other), then the partial last block of the 16 rows (P = W % 16 words each), row
    after row in logical order. Rows of the last partial tile (R % 16) keep the per-row v2
    order at their own rows."""
    word = np.asarray(word)
    R, W = word.shape
    T, fb = R // 16, W // 16
    out = np.empty_like(word)
    tiles = word[:16 * T].reshape(T, 16, W)
    full = tiles[:, :, :16 * fb].reshape(T, 16, fb, 4, 4)      # [t, i, b, j, c]
    full = full.transpose(0, 2, 1, 4, 3).reshape(T, 256 * fb)  # [t, b, i, c, j]
    part = tiles[:, :, 16 * fb:].reshape(T, 16 * (W - 16 * fb))  # [t, i, l]
    out[:16 * T] = np.concatenate([full, part], axis=1).reshape(16 * T, W)
    out[16 * T:, _w4_word_order(W)] = word[16 * T:]
    return out


def w4_kernel_layout(codes) -> np.ndarray:
    """codes uint8 (R, K) -> int32 (R, K/8), w4 layout version 3: logical word L nibble p =
    element 8L + W4_INTERLEAVE[p]; words placed by _w4_store (16-row tiles contiguous)."""
    codes = np.asarray(codes, dtype=np.uint8).astype(np.uint32)
    R, K = codes.shape
    g = codes.reshape(R, K // 8, 8)
    word = np.zeros((R, K // 8), dtype=np.uint32)
    for p, e in enumerate(W4_INTERLEAVE):
        word |= g[:, :, e] << np.uint32(4 * p)
    return _w4_store(word).view(np.int32)


def w4_kernel_codes(w) -> np.ndarray:
    """Inverse of w4_kernel_layout: int32 (R, K/8) -> codes uint8 (R, K)."""
    stored = np.asarray(w, dtype=np.int32).view(np.uint32)
    R, words = stored.shape
    src = _w4_store(np.arange(R * words).reshape(R, words))  # flat logical index at each stored slot
    word = np.empty(R * words, dtype=np.uint32)
    word[src.reshape(-1)] = stored.reshape(-1)
    word = word.reshape(R, words)                            # logical order
    codes = np.empty((R, words, 8), dtype=np.uint8)
    for p, e in enumerate(W4_INTERLEAVE):
        codes[:, :, e] = (word >> np.uint32(4 * p)) & 0xF
    return codes.reshape(R, words * 8)


# ---------------------------------------------------------------- quantizers
def _f32(x) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.float().numpy()
    return np.asarray(x, dtype=np.float32)


def absmax_quantize(x, block, kind):
    """Symmetric absmax quantizer (spec in csrc/cpu/quantize.cpp). kind 'int8' or 'fp8'.
    Returns (codes (M, K) int8 or e4m3 bytes uint8, scales float32 (M, K/block))."""
    x = _f32(x)
    M, K = x.shape
    qmax = np.float32(127.0 if kind == "int8" else E4M3_MAX)
    xb = x.reshape(M, K // block, block)
    amax = np.abs(xb).max(axis=-1) if M else np.zeros((0, K // block), np.float32)
    bad = ~np.isfinite(amax)
    a = np.maximum(np.where(bad, np.float32(1), amax), AMAX_FLOOR).astype(np.float32)
    scale = np.where(bad, np.float32(np.nan), a / qmax).astype(np.float32)
    inv = np.where(bad, np.float32(0), qmax / a).astype(np.float32)
    with np.errstate(invalid="ignore"):
        prod = (xb * inv[..., None]).astype(np.float32)   # one fp32 multiply each
    if kind == "int8":
        codes = np.clip(np.rint(prod), -127, 127)
        codes = np.where(bad[..., None], 0, codes).astype(np.int8)
    else:
        codes = np.where(bad[..., None], np.uint8(0), e4m3_encode(prod)).astype(np.uint8)
    return codes.reshape(M, K), scale


def fp8_per_tensor(x, scale=None):
    """Per-tensor e4m3: dynamic (absmax over the tensor) or static (inv = 1 / scale)."""
    x = _f32(x)
    if scale is None:
        codes, s = absmax_quantize(x.reshape(1, -1), x.size, "fp8")
        return codes.reshape(x.shape), np.float32(s.item())
    s = np.float32(scale)
    inv = np.float32(1) / s
    return e4m3_encode((x * inv).astype(np.float32)), s


def mx_quantize(x, four_bit):
    """OCP MX v1.0, FLOOR rule, blocks of 32. Returns (codes (M, K) uint8: e4m3 bytes or
    e2m1 codes one per element, unpacked; scale bytes uint8 (M, K/32))."""
    x = _f32(x).astype(np.float64)
    M, K = x.shape
    emax = 2 if four_bit else 8
    xb = x.reshape(M, K // 32, 32)
    amax = np.abs(xb).max(axis=-1) if M else np.zeros((0, K // 32))
    bad = ~np.isfinite(amax)
    safe = np.where(bad | (amax == 0), 1.0, amax)
    e = np.frexp(safe)[1] - 1 - emax                          # floor(log2 amax) - emax
    e = np.where(amax == 0, -127, np.clip(e, -127, 127))
    sbyte = np.where(bad, E8M0_NAN, e + 127).astype(np.uint8)
    scaled = np.where(bad[..., None], 0.0, xb * np.exp2(-e.astype(np.float64))[..., None])  # exact
    if four_bit:
        codes = e2m1_encode(scaled)
    else:
        codes = e4m3_encode(scaled.astype(np.float32))
    codes = np.where(bad[..., None], 0, codes).astype(np.uint8)
    return codes.reshape(M, K), sbyte


# ---------------------------------------------------------------- checks
def f64(t: torch.Tensor) -> np.ndarray:
    return t.detach().to(torch.float64).numpy()


def assert_matmul_close(y: torch.Tensor, ref: np.ndarray, absdot: np.ndarray, K: int, what=""):
    """y (out dtype) against the float64 ref.

    Allowed error, elementwise: one unit in the last place of the output dtype at |ref|
    (the single final rounding, plus a possible flip of it when the fp32 result sits
    next to a rounding boundary) + (K + 8) * 2^-24 * absdot, where absdot = sum_k |a b|
    (+ |bias|) in float64: the worst-case fp32 error of the dequantize-multiply-sum in
    any order (Higham's gamma_K) plus a few roundings of scales and bias."""
    dt = y.dtype
    assert y.shape == ref.shape, (y.shape, ref.shape)
    yv = f64(y)
    p, tiny = (7, 2.0**-133) if dt == torch.bfloat16 else (10, 2.0**-24)
    with np.errstate(divide="ignore"):
        ulp = np.where(ref == 0, tiny, np.exp2(np.floor(np.log2(np.abs(ref))) - p))
    ulp = np.maximum(ulp, tiny)
    tol = ulp + (K + 8) * 2.0**-24 * absdot
    nan_ref = np.isnan(ref)
    assert np.array_equal(np.isnan(yv), nan_ref), f"{what}: NaN pattern differs"
    err = np.abs(yv - ref)
    bad = ~nan_ref & ~(err <= tol)
    assert not bad.any(), (
        f"{what}: {bad.sum()} of {bad.size} outside tolerance; worst err {err[bad].max():.3g} "
        f"tol there {tol[bad][np.argmax(err[bad])]:.3g}")
