"""lowbit_ext.formats on the CPU: quantizers (shapes, dtypes, scale rules, error bounds),
linear vs the dequantized weight, tensors()/options() round trips, bad inputs.

Error bounds are derived from each format's rounding rule (see the `# why` comments) and
checked elementwise, not as loose global tolerances.
"""
import json

import pytest
import torch

import lowbit_ext
from lowbit_ext import formats, ops

N, K = 200, 256
FP8 = torch.float8_e4m3fn

BRIEF_ORDER = ["a16w4", "a16w8", "w8a8_int8", "w8a8_fp8", "fp8_block", "mxfp8", "mxfp4", "a8w4_mx"]

# (format, quantize options): every format, the a16w4 group-size sweep, both fp8 granularities.
CASES = (
    [("a16w4", dict(group_size=g, symmetric=s)) for g in (32, 64, 128, -1) for s in (False, True)]
    + [("a16w4", dict(dtype=torch.float16)),
       ("a16w8", {}),
       ("w8a8_int8", {}),
       ("w8a8_fp8", {}), ("w8a8_fp8", dict(granularity="tensor")),
       ("w8a8_fp8", dict(granularity="row", act_per_token=False)),
       ("fp8_block", {}), ("mxfp8", {}), ("mxfp4", {}), ("a8w4_mx", {})]
)


def case_id(c):
    name, opts = c
    return name + "".join(f"-{k}={str(v).replace('torch.', '')}" for k, v in opts.items())


def make_w(n=N, k=K, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, k, generator=g) * 0.02


def make_x(shape, dtype=torch.bfloat16, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g).to(dtype)


def act_dtype(opts):
    return opts.get("dtype", torch.bfloat16)


_QW = {}


def quantized(case):
    """Quantize once per case (module-level cache: the tests only read it)."""
    key = case_id(case)
    if key not in _QW:
        name, opts = case
        _QW[key] = formats.get(name).quantize(make_w(), **opts)
    return _QW[key]


# ---------------------------------------------------------------- independent block statistics
def block_amax(t, rows, cols):
    """|t| max over blocks of rows x cols (None: the whole dimension), broadcast back to
    t's shape. Partial last blocks cover what exists. Loops over row blocks: written
    independently of the formats' reshapes on purpose."""
    R, C = t.shape
    rows, cols = rows or R, cols or C
    a = t.abs().double()
    out = torch.empty_like(a)
    for r0 in range(0, R, rows):
        blk = a[r0:r0 + rows]
        per_col_block = blk.reshape(blk.shape[0], C // cols, cols).amax(dim=(0, 2))   # (C / cols,)
        out[r0:r0 + rows] = per_col_block.repeat_interleave(cols)
    return out


def mx_exponent(t):
    """OCP MX shared exponent per 32-block, broadcast: floor(log2(amax)) - emax is applied
    by the caller; here floor(log2(amax)) via frexp (amax = m 2^E, m in [0.5, 1))."""
    amax = block_amax(t.float(), 1, 32)
    _, E = torch.frexp(amax)
    return (E - 1).double(), amax == 0


# ---------------------------------------------------------------- elementwise error bounds
def int_rtn_bound(scale):
    # why: q = round(v) of v = w / scale (or w * inv), no clipping within range, so
    # |q * scale - w| <= scale / 2; fp32 evaluation of v (one or two correctly rounded ops on
    # |v| <= 127) moves v by < 2^-16, hence the 2^-15 slack.
    return scale * (0.5 + 2.0 ** -15)


def minifloat_bound(v, u, sub_half, vmax):
    """|RNE_saturate(v) - v| for an element format with unit roundoff u (2^-mantissa_bits-1),
    half the subnormal spacing sub_half, and max finite vmax, elementwise in element units."""
    # why: RNE moves a normal |v| by at most half an ulp = u * 2^floor(log2|v|) <= u |v|;
    # in the subnormal range the spacing is fixed, so by at most sub_half; above vmax the
    # value saturates to vmax, moving it by |v| - vmax.
    v = v.abs()
    return torch.where(v > vmax, v - vmax, torch.maximum(u * v, torch.full_like(v, sub_half)))


E4M3 = dict(u=2.0 ** -4, sub_half=2.0 ** -10, vmax=448.0)   # 3 mantissa bits, subnormal step 2^-9
E2M1 = dict(u=2.0 ** -2, sub_half=0.25, vmax=6.0)           # 1 mantissa bit, values 0, .5, 1, ...


def fp8_absmax_bound(t, amax):
    """Error of the e4m3 absmax quantizer (scale = amax' / 448) elementwise, given the
    block amax broadcast to t's shape."""
    s = amax.clamp_min(1e-12) / 448
    # why: codes = RNE_sat(w * inv) with |w * inv| <= 448 (so no saturation beyond fp32
    # rounding); |code - w*inv| <= max(2^-4 |w*inv|, 2^-10); times s. inv * s = 1 up to
    # 2^-22 (two correctly rounded fp32 ops), which adds 2^-20 (|w| + s) of slack.
    return minifloat_bound(t.double() / s, **E4M3) * s + 2.0 ** -20 * (t.double().abs() + s)


def mx_bound(t, elem):
    """Error of the OCP MX quantizer (FLOOR rule) elementwise for elem = E4M3 or E2M1."""
    emax = 8 if elem is E4M3 else 2
    lg, zero = mx_exponent(t)
    e = (lg - emax).clamp(-127, 127)
    # why: x * 2^-e and code * 2^e are exact (powers of two), so the only error is the
    # element rounding of v = |x| 2^-e, whose block max lies in [2^emax, 2^(emax+1)): the
    # largest elements may clip at vmax (FLOOR rule), the rest round as minifloat_bound says.
    b = minifloat_bound(t.double() * torch.exp2(-e), **elem) * torch.exp2(e)
    return torch.where(zero, torch.zeros_like(b), b)


def weight_bound(name, opts, W, qw):
    """Elementwise bound on |dequantize(qw) - W|, checking each format's stored scales
    against an independent computation on the way."""
    W64 = W.double()
    if name == "a16w4":
        g = K if opts.get("group_size", 128) == -1 else opts.get("group_size", 128)
        s = qw.scales.double().repeat_interleave(g, dim=1)
        wg = W64.reshape(N, K // g, g)
        if opts.get("symmetric", False):
            need = wg.abs().amax(-1) / 7
        else:
            need = (wg.amax(-1).clamp_min(0) - wg.amin(-1).clamp_max(0)) / 15
        # why: the scale is (max - min)/15 (or amax/7) rounded *up* to the storage dtype,
        # so it is >= that and within one ulp of it (relative 2^-7 bf16, 2^-10 fp16).
        ulp = 2.0 ** -7 if act_dtype(opts) == torch.bfloat16 else 2.0 ** -10
        assert torch.all(qw.scales.double() >= need)
        assert torch.all(qw.scales.double() <= need * (1 + ulp))
        if qw.zeros is not None:
            z = qw.zeros.double()
            assert torch.equal(z, z.round()) and z.min() >= 0 and z.max() <= 15
        # why: with scale >= range/15 and zero = round(-lo/scale), every w of the group
        # maps to w/scale + zero in [-0.5, 15.5] (symmetric: w/scale in [-7, 7]), so the
        # clamp never moves a code by more than the rounding did: |w_hat - w| <= scale/2.
        return int_rtn_bound(s)
    if name in ("a16w8", "w8a8_int8"):
        s32 = W.abs().amax(dim=1).clamp_min(1e-12) / 127                    # fp32, as the spec
        assert torch.equal(qw.w_scale, s32)
        return int_rtn_bound(s32.double())[:, None].expand(N, K)
    if name == "w8a8_fp8":
        per_tensor = opts.get("granularity", "row") == "tensor"
        amax = block_amax(W, None, None) if per_tensor else block_amax(W, 1, None)
        want = (amax[:1, 0] if per_tensor else amax[:, 0]).float().clamp_min(1e-12) / 448
        assert torch.equal(qw.w_scale, want)
        return fp8_absmax_bound(W, amax)
    if name == "fp8_block":
        amax = block_amax(W, 128, 128)
        assert torch.equal(qw.w_scale, amax[::128, ::128].float().clamp_min(1e-12) / 448)
        return fp8_absmax_bound(W, amax)
    elem = E4M3 if name == "mxfp8" else E2M1
    lg, zero = mx_exponent(W)
    e = (lg - (8 if elem is E4M3 else 2)).clamp(-127, 127)
    want_bytes = torch.where(zero, torch.zeros_like(e), e + 127)[:, ::32]
    assert torch.equal(qw.w_scale, want_bytes.to(torch.uint8))
    return mx_bound(W, elem)


def act_quant_bound(name, opts, x2):
    """Elementwise bound on |x_hat - x| for the formats that quantize x inside the op."""
    if name in ("a16w4", "a16w8", "mxfp4"):
        return torch.zeros_like(x2, dtype=torch.float64)
    if name == "w8a8_int8":
        return int_rtn_bound(block_amax(x2, 1, None).clamp_min(1e-12) / 127)
    if name == "w8a8_fp8":
        apt = opts.get("act_per_token", opts.get("granularity", "row") == "row")
        return fp8_absmax_bound(x2, block_amax(x2, 1 if apt else None, None))
    if name == "fp8_block":
        return fp8_absmax_bound(x2, block_amax(x2, 1, 128))
    return mx_bound(x2, E4M3)                                             # mxfp8, a8w4_mx


def act_quantized(name, opts, x2):
    """x as the op quantizes it (through the lowbit quantizer ops), dequantized in float64."""
    if name in ("a16w4", "a16w8", "mxfp4"):
        return x2.double()
    if name == "w8a8_int8":
        q, s = ops.quantize_int8_per_token(x2)
        return q.double() * s.double()[:, None]
    if name == "w8a8_fp8":
        apt = opts.get("act_per_token", opts.get("granularity", "row") == "row")
        q, s = ops.quantize_fp8_per_token(x2) if apt else ops.quantize_fp8_per_tensor(x2)
        return q.double() * s.double().reshape(-1, 1)
    if name == "fp8_block":
        q, s = ops.quantize_fp8_1x128(x2)
        return q.double() * s.double().repeat_interleave(128, dim=1)
    q, s = ops.quantize_mxfp8(x2)
    return q.double() * torch.exp2(s.double() - 127).repeat_interleave(32, dim=1)


# ---------------------------------------------------------------- registry
def test_names_and_get():
    assert formats.names() == BRIEF_ORDER
    for name in BRIEF_ORDER:
        fmt = formats.get(name)
        assert fmt.name == name
        assert hasattr(torch.ops.lowbit, fmt.op_name)
        assert fmt.has_cuda_kernel() == lowbit_ext.has_cuda_kernel(fmt.op_name)
    with pytest.raises(KeyError, match="valid formats: a16w4, a16w8"):
        formats.get("int4")


# ---------------------------------------------------------------- quantizers
EXPECTED_TENSORS = {  # name -> {tensor: (dtype, shape)} for N, K and the case's options
    "a16w8": lambda o: {"w": (torch.int8, (N, K)), "w_scale": (torch.float32, (N,))},
    "w8a8_int8": lambda o: {"w": (torch.int8, (N, K)), "w_scale": (torch.float32, (N,))},
    "w8a8_fp8": lambda o: {"w": (FP8, (N, K)),
                           "w_scale": (torch.float32, (1,) if o.get("granularity") == "tensor" else (N,))},
    "fp8_block": lambda o: {"w": (FP8, (N, K)), "w_scale": (torch.float32, (2, K // 128))},
    "mxfp8": lambda o: {"w": (FP8, (N, K)), "w_scale": (torch.uint8, (N, K // 32))},
    "mxfp4": lambda o: {"w": (torch.int32, (N, K // 8)), "w_scale": (torch.uint8, (N, K // 32))},
    "a8w4_mx": lambda o: {"w": (torch.int32, (N, K // 8)), "w_scale": (torch.uint8, (N, K // 32))},
}


def expected_tensors(name, opts):
    if name == "a16w4":
        g = opts.get("group_size", 128)
        G = 1 if g == -1 else K // g
        t = {"w": (torch.int32, (N, K // 8)), "scales": (act_dtype(opts), (N, G))}
        if not opts.get("symmetric", False):
            t["zeros"] = (act_dtype(opts), (N, G))
        return t
    return EXPECTED_TENSORS[name](opts)


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_quantize_shapes_dtypes(case):
    name, opts = case
    qw = quantized(case)
    assert qw.format == name and qw.shape == (N, K)
    want = expected_tensors(name, opts)
    got = {k: (t.dtype, tuple(t.shape)) for k, t in qw.tensors().items()}
    assert got == want
    assert qw.nbytes() == sum(t.numel() * t.element_size() for t in qw.tensors().values())
    W_hat = formats.get(name).dequantize(qw)
    assert W_hat.dtype == torch.float32 and W_hat.shape == (N, K)
    # every option the format has is reported, JSON-serializable, and quantizes alike
    assert set(qw.options()) == set(formats.get(name).defaults)
    json.dumps(qw.options())


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_dequantize_error_bound(case):
    name, opts = case
    W = make_w()
    qw = quantized(case)
    err = (formats.get(name).dequantize(qw).double() - W.double()).abs()
    bound = weight_bound(name, opts, W, qw)
    worst = (err - bound).max().item()
    assert worst <= 0, f"{case_id(case)}: error exceeds the bound by {worst:.3e}"
    # and the bound is not vacuous: the error uses a good part of it somewhere
    assert (err / bound.clamp_min(1e-30)).max() > 0.25


def test_a16w4_asymmetric_by_hand():
    # One row of 32 (one group). min = -0.25, max = 0.6875: range 0.9375 = 15/16, so
    # scale = 1/16 = 0.0625 (exact in bf16: no rounding up), zero = round(0.25 / 0.0625) = 4,
    # q = clamp(round(w / 0.0625 + 4), 0, 15), ties to even.
    w = [-0.25, 0.6875, 0.0, 0.03125,  # 0 (the min), 15 (the max), 4, 4.5 -> 4 (tie to even)
         0.09375, 0.1, -0.1, 0.3,      # 5.5 -> 6 (tie to even), 5.6 -> 6, 2.4 -> 2, 8.8 -> 9
         -0.2, 0.5, 0.65, -0.15625]    # 0.8 -> 1, 12, 14.4 -> 14, 1.5 -> 2 (tie to even)
    q = [0, 15, 4, 4, 6, 6, 2, 9, 1, 12, 14, 2]
    w += [(j - 4) * 0.0625 for j in range(16)]  # exactly on the grid: q = j
    q += list(range(16))
    w += [0.01, -0.01, 0.04, 0.6]  # 4.16 -> 4, 3.84 -> 4, 4.64 -> 5, 13.6 -> 14
    q += [4, 4, 5, 14]
    fmt = formats.get("a16w4")
    qw = fmt.quantize(torch.tensor([w]), group_size=32)
    assert qw.scales.tolist() == [[0.0625]] and qw.zeros.tolist() == [[4.0]]
    plain = ops.unpack_w4(qw.w)[0].tolist()
    # bytes: element 2i in the low nibble: (0, 15) -> 0xF0, (4, 4) -> 0x44, (6, 6) -> 0x66,
    # (2, 9) -> 0x92, (1, 12) -> 0xC1, (14, 2) -> 0x2E, (0, 1) -> 0x10, (2, 3) -> 0x32 ...
    assert plain[:8] == [0xF0, 0x44, 0x66, 0x92, 0xC1, 0x2E, 0x10, 0x32]
    assert plain == [q[2 * i] | (q[2 * i + 1] << 4) for i in range(16)]
    assert fmt.dequantize(qw)[0].tolist() == [(c - 4) * 0.0625 for c in q]


def test_a16w4_symmetric_by_hand():
    # amax = 0.4375 = 7/16: scale = amax / 7 = 1/16, q = round(w * 16) + 8.
    w = [0.4375, -0.4375, 0.03125, 0.09375, -0.09375, 0.0] + [0.0] * 26
    q = [15, 1, 8, 10, 6, 8] + [8] * 26  # 7, -7, 0.5 -> 0, 1.5 -> 2, -1.5 -> -2 (ties to even)
    fmt = formats.get("a16w4")
    qw = fmt.quantize(torch.tensor([w]), group_size=32, symmetric=True)
    assert qw.zeros is None and qw.scales.tolist() == [[0.0625]]
    plain = ops.unpack_w4(qw.w)[0].tolist()
    assert plain == [q[2 * i] | (q[2 * i + 1] << 4) for i in range(16)]


def test_a16w4_one_sided_and_zero_groups():
    # all-positive, all-negative and all-zero groups: the range is widened to hold 0, so no
    # group is clipped, and an all-zero group dequantizes to exact zeros.
    W = torch.cat([make_w(4, 64).abs() + 0.5, -(make_w(4, 64, seed=3).abs() + 0.5), torch.zeros(4, 64)])
    fmt = formats.get("a16w4")
    for sym in (False, True):
        qw = fmt.quantize(W, group_size=32, symmetric=sym)
        err = (fmt.dequantize(qw) - W).abs()
        s = qw.scales.float().repeat_interleave(32, dim=1)
        assert torch.all(err <= s * (0.5 + 2.0 ** -15))
        assert torch.all(fmt.dequantize(qw)[8:] == 0)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16, torch.float64])
def test_quantize_input_dtypes_and_layouts(dtype):
    # W in any float dtype, non-contiguous, misaligned or requiring grad: same codes as
    # the fp32 contiguous copy of the same values.
    W = make_w().to(dtype)
    W0 = W.clone()
    ref = W.float()
    base = torch.empty(N * K + 1, dtype=dtype)[1:].view(N, K)          # 2 to 8 bytes off 16
    base.copy_(W)
    variants = [W.t().contiguous().t(), base, torch.nn.Parameter(W.clone())]
    for name in ("a16w4", "w8a8_fp8", "mxfp4", "fp8_block"):
        fmt = formats.get(name)
        want = fmt.quantize(ref).tensors()
        for V in variants:
            got = fmt.quantize(V).tensors()
            assert all(torch.equal(got[k].view(torch.uint8), want[k].view(torch.uint8)) for k in want), name
    assert torch.equal(W, W0)  # W is not modified


# ---------------------------------------------------------------- linear
def linear_bound(y_exact, x_hat_abs, W_hat, dx_bound, bias, out_dtype):
    """|y - x @ W_hat^T| bound for y = linear(x): (1) the activation quantization error
    sum_k |dx_k| |W_hat[n,k]|, (2) fp32 accumulation over K, (3) one rounding to out_dtype."""
    Wa = W_hat.double().abs().T
    D = dx_bound @ Wa
    # why: fp32 sums of K products: |error| <= gamma_(K+1) sum |x_k w_k| with
    # gamma = (K+1) 2^-24 / (1 - ...), the +1 for the bias add; 2x for slack.
    acc = 2 * (K + 1) * 2.0 ** -24 * (x_hat_abs @ Wa + (bias.double().abs() if bias is not None else 0))
    u = 2.0 ** -8 if out_dtype == torch.bfloat16 else 2.0 ** -11
    # why: round to nearest of |y_q| <= |y| + D moves it by at most u (|y| + D) (relative,
    # normal range; the values here are far above the subnormal range).
    return u * (y_exact.abs() + D) + D + acc


LINEAR_SHAPES = [(1, K), (5, K), (33, K), (2, 3, K)]


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_linear_matches_dequantized(case):
    name, opts = case
    fmt, qw = formats.get(name), quantized(case)
    W_hat = fmt.dequantize(qw).double()
    dt = act_dtype(opts) if name == "a16w4" else torch.bfloat16
    bias = make_x((N,), dt, seed=7) * 0.1
    for i, shape in enumerate(LINEAR_SHAPES):
        x = make_x(shape, dt, seed=10 + i)
        b = bias if i % 2 else None
        y = fmt.linear(x, qw, bias=b)
        assert y.shape == (*shape[:-1], N) and y.dtype == dt
        x2 = x.reshape(-1, K)
        y2 = y.reshape(-1, N).double()
        bias64 = b.double() if b is not None else 0
        # (a) against x @ W_hat^T in float64, with the activation quantization error bounded
        y_exact = x2.double() @ W_hat.T + bias64
        tol = linear_bound(y_exact, x2.double().abs(), W_hat, act_quant_bound(name, opts, x2), b, dt)
        over = (y2 - y_exact).abs() - tol
        assert over.max() <= 0, f"{case_id(case)} {shape}: exceeds the bound by {over.max().item():.3e}"
        # (b) tighter: against the activations as the op quantizes them (right recipe and
        # scales reach the op): only fp32 accumulation and output rounding remain
        x_hat = act_quantized(name, opts, x2)
        y_q = x_hat @ W_hat.T + bias64
        zero = torch.zeros_like(x2, dtype=torch.float64)
        tol_q = linear_bound(y_q, x_hat.abs(), W_hat, zero, b, dt)
        over_q = (y2 - y_q).abs() - tol_q
        assert over_q.max() <= 0, f"{case_id(case)} {shape}: exceeds the tight bound by {over_q.max().item():.3e}"
    # leading dims: the same rows as the 2-D call; M = 0 gives an empty result
    x = make_x((2, 3, K), dt, seed=5)
    assert torch.equal(fmt.linear(x, qw), fmt.linear(x.reshape(6, K), qw).reshape(2, 3, N))
    assert fmt.linear(x[:0], qw).shape == (0, 3, N)


# ---------------------------------------------------------------- serialization and moves
@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_tensors_round_trip(case):
    name, opts = case
    fmt, qw = formats.get(name), quantized(case)
    qw2 = fmt.from_tensors(qw.tensors(), json.loads(json.dumps(qw.options())))
    assert type(qw2) is type(qw) and qw2.shape == qw.shape and qw2.options() == qw.options()
    assert all(torch.equal(a.view(torch.uint8), b.view(torch.uint8))
               for a, b in zip(qw.tensors().values(), qw2.tensors().values()))
    x = make_x((5, K), act_dtype(opts) if name == "a16w4" else torch.bfloat16)
    assert torch.equal(fmt.linear(x, qw), fmt.linear(x, qw2))
    assert qw.to("cpu").tensors().keys() == qw.tensors().keys()
    moved = qw.to("meta")
    assert moved.shape == qw.shape and all(t.is_meta for t in moved.tensors().values())


def test_safetensors_round_trip(tmp_path):
    st = pytest.importorskip("safetensors.torch")
    x = make_x((3, K))
    for name in BRIEF_ORDER:
        fmt = formats.get(name)
        qw = fmt.quantize(make_w())
        path = str(tmp_path / f"{name}.safetensors")
        st.save_file(qw.tensors(), path, metadata={"format": name, "options": json.dumps(qw.options())})
        with st.safe_open(path, "pt") as f:
            meta = f.metadata()
        qw2 = formats.get(meta["format"]).from_tensors(st.load_file(path), json.loads(meta["options"]))
        assert torch.equal(fmt.linear(x, qw), fmt.linear(x, qw2)), name


def test_nbytes():
    # a16w4 g128: K/2 bytes of codes per row + a bf16 scale and zero per 128
    assert quantized(("a16w4", dict(group_size=128, symmetric=False))).nbytes() == N * K // 2 + 2 * N * (K // 128) * 2
    assert quantized(("mxfp4", {})).nbytes() == N * K // 2 + N * K // 32
    assert quantized(("fp8_block", {})).nbytes() == N * K + 2 * 2 * 4


def test_linear_compiles_fullgraph():
    # what nn.LowBitLinear will need: the format layer traces without graph breaks
    x = make_x((2, 3, K))
    for case in [("a16w4", {}), ("w8a8_fp8", {})]:
        fmt, qw = formats.get(case[0]), quantized(case)
        fn = torch.compile(lambda x: fmt.linear(x, qw), fullgraph=True, backend="eager")
        assert torch.equal(fn(x), fmt.linear(x, qw))


# ---------------------------------------------------------------- bad inputs
BAD_QUANTIZE = [
    ("a16w4", torch.randn(K), {}, r"2-D"),
    ("a16w4", torch.randint(-3, 3, (N, K), dtype=torch.int8), {}, r"floating"),
    ("a16w4", torch.randn(0, K), {}, r"N >= 1"),
    ("a16w4", torch.randn(N, 48), {}, r"K \(W.shape\[1\]\) must be a multiple of 32.*got K = 48"),
    ("a16w4", torch.randn(N, 96), dict(group_size=64), r"multiple of group_size = 64, got K = 96"),
    ("a16w4", torch.randn(N, K), dict(group_size=256), r"group_size must be one of 32, 64, 128 or -1.*256"),
    ("a16w4", torch.randn(N, K), dict(symmetric="yes"), r"symmetric must be True or False"),
    ("a16w4", torch.randn(N, K), dict(dtype=torch.float32), r"dtype must be torch.bfloat16 or torch.float16"),
    ("a16w4", torch.randn(N, K), dict(groupsize=64), r"unknown option\(s\) \['groupsize'\]"),
    ("a16w4", torch.full((N, K), float("nan")), {}, r"NaN or Inf"),
    ("a16w8", torch.randn(N, 24), {}, r"multiple of 16.*got K = 24"),
    ("w8a8_int8", torch.randn(N, K), dict(dtype=torch.bfloat16), r"unknown option"),
    ("w8a8_fp8", torch.randn(N, K), dict(granularity="col"), r"granularity must be 'row' or 'tensor'"),
    ("w8a8_fp8", torch.randn(N, K), dict(act_per_token=1), r"act_per_token must be True or False"),
    ("fp8_block", torch.randn(N, 192), {}, r"multiple of 128.*got K = 192"),
    ("mxfp8", torch.randn(N, 48), {}, r"multiple of 32.*got K = 48"),
    ("mxfp4", torch.randn(N, 16), {}, r"multiple of 32.*got K = 16"),
    ("a8w4_mx", torch.tensor([[float("inf")] * 32]), {}, r"NaN or Inf"),
]


@pytest.mark.parametrize("name,W,opts,msg", BAD_QUANTIZE, ids=[f"{b[0]}-{i}" for i, b in enumerate(BAD_QUANTIZE)])
def test_quantize_rejects(name, W, opts, msg):
    with pytest.raises(ValueError, match=msg) as e:
        formats.get(name).quantize(W, **opts)
    assert str(e.value).startswith(name + ":")
    # supports() judges the shape and options only
    assert formats.get(name).supports(tuple(W.shape), **opts) == (msg in (r"floating", r"NaN or Inf"))


def test_linear_rejects():
    fmt = formats.get("a16w4")
    qw = quantized(("a16w4", dict(group_size=128, symmetric=False)))
    with pytest.raises(ValueError, match=r"last dimension.*got shape \(5, 128\)"):
        fmt.linear(make_x((5, 128)), qw)
    with pytest.raises(ValueError, match=r"x must be bfloat16 or float16, got float32"):
        fmt.linear(make_x((5, K), torch.float32), qw)
    with pytest.raises(ValueError, match=r"x is float16 but this weight's scales are bfloat16"):
        fmt.linear(make_x((5, K), torch.float16), qw)
    with pytest.raises(ValueError, match=r"expected a Int4Weight of format 'a16w4', got 'mxfp4'"):
        fmt.linear(make_x((5, K)), quantized(("mxfp4", {})))
    with pytest.raises(ValueError, match=r"expected a MXWeight of format 'a8w4_mx', got 'mxfp4'"):
        formats.get("a8w4_mx").linear(make_x((5, K)), quantized(("mxfp4", {})))


def test_from_tensors_rejects():
    fmt = formats.get("a16w4")
    qw = quantized(("a16w4", dict(group_size=128, symmetric=False)))
    t, o = qw.tensors(), qw.options()
    with pytest.raises(ValueError, match=r"missing \['zeros'\]"):
        fmt.from_tensors({"w": t["w"], "scales": t["scales"]}, o)
    with pytest.raises(ValueError, match=r"unexpected \['zeros'\]"):
        fmt.from_tensors(t, dict(o, symmetric=True))
    with pytest.raises(ValueError, match=r"'scales' must have shape \(200, 4\), got \(200, 2\)"):
        fmt.from_tensors(t, dict(o, group_size=64))
    with pytest.raises(ValueError, match=r"'scales' must be float16, got bfloat16"):
        fmt.from_tensors(t, dict(o, dtype="float16"))
    with pytest.raises(ValueError, match=r"'w' must be int32, got uint8"):
        fmt.from_tensors(dict(t, w=ops.unpack_w4(t["w"])), o)
    fp8 = quantized(("w8a8_fp8", {}))
    with pytest.raises(ValueError, match=r"'w_scale' must have shape \(1,\), got \(200,\)"):
        formats.get("w8a8_fp8").from_tensors(fp8.tensors(), dict(granularity="tensor"))
