"""The fused activation quantizers: ``silu_mul_quantize_{int8,fp8}_per_token(gate, up)`` (h =
silu(gate) * up in fp32, rounded once to gate's dtype, then the per-token quantizer of h) and
``rms_norm_quantize_{int8,fp8}_per_token(x, weight, eps)`` (an RMSNorm, then the same) and
``add_rms_norm_quantize_{int8,fp8}_per_token(x, residual, weight, eps)`` (the residual add, rounded
once to the dtype and returned, then the RMSNorm quantizer of the sum).

CPU: against torch's own SiLU (the library computes e^x by its own fp32 recipe, identical on
CPU and CUDA, so it may differ from torch's in the last bit: a bf16 / fp16 rounding of h can then
flip where fp32 h sits within ~1e-7 of a rounding tie; the tests allow that and nothing else),
strides, special values and the errors. CUDA (marked): bit for bit against the CPU reference,
poisoned outputs, row-strided views, opcheck and torch.compile.
"""
import pytest
import torch
import torch.nn.functional as F

from lowbit_ext import ops

from samples import BF16, FP16, poison_allocator, raises_with

def codes_of(q):
    """int8 or e4m3 codes as fp32 values (exact)."""
    return q.float()


FUSED = {"int8": (ops.silu_mul_quantize_int8_per_token, ops.quantize_int8_per_token),
         "fp8": (ops.silu_mul_quantize_fp8_per_token, ops.quantize_fp8_per_token)}


def gate_up(M, K, dtype, gen, device="cpu"):
    """The halves of a fused gate-up projection's output (row-strided views of one (M, 2K) tensor),
    gate spanning the SiLU's range (N(0, 3)), up N(0, 1)."""
    gu = torch.cat([torch.randn(M, K, generator=gen) * 3, torch.randn(M, K, generator=gen)], dim=1)
    gu = gu.to(device=device, dtype=dtype)
    return gu[:, :K], gu[:, K:]


@pytest.mark.parametrize("fmt", ["int8", "fp8"])
@pytest.mark.parametrize("dtype", [BF16, FP16])
def test_matches_torch_silu_then_quantizer(fmt, dtype):
    fused, plain = FUSED[fmt]
    gen = torch.Generator().manual_seed(7)
    gate, up = gate_up(37, 1024, dtype, gen)
    h = (F.silu(gate.float()) * up.float()).to(dtype)  # torch's SiLU, one rounding to the dtype
    assert_like_the_composition(fused(gate, up), plain(h), h, fmt, dtype)


def assert_like_the_composition(fused_out, plain_out, h, fmt, dtype):
    """A fused quantizer's (codes, scales) against the plain quantizer of torch's h: its rows'
    values may differ in the last bit before the rounding to the dtype, and nothing else."""
    (q, s), (q_ref, s_ref) = fused_out, plain_out
    assert q.shape == q_ref.shape and q.dtype == q_ref.dtype and s.shape == s_ref.shape and s.dtype == torch.float32
    # The scales are amax(h) / qmax: equal, or one dtype ulp of amax apart where amax's rounding flipped.
    ulp = 2.0 ** -7 if dtype == BF16 else 2.0 ** -10
    assert torch.allclose(s, s_ref, rtol=ulp, atol=0)
    same_scale = s == s_ref
    assert same_scale.float().mean() > 0.9
    diff = codes_of(q[same_scale]) != codes_of(q_ref[same_scale])
    assert diff.float().mean() < 1e-3, f"{diff.sum().item()} codes differ in rows with equal scales"
    # and in every row the dequantized values stay within one code step of torch's h
    step = s[:, None] * (1.0 if fmt == "int8" else 32.0)  # e4m3's largest step near 448 is 32
    assert ((codes_of(q) * s[:, None] - h.float()).abs() <= step).all()


@pytest.mark.parametrize("fmt", ["int8", "fp8"])
def test_strides_do_not_matter(fmt):
    fused, _ = FUSED[fmt]
    gen = torch.Generator().manual_seed(3)
    gate, up = gate_up(5, 256, BF16, gen)
    assert gate.stride(0) == 512 and not gate.is_contiguous()
    q1, s1 = fused(gate, up)
    q2, s2 = fused(gate.contiguous(), up.contiguous())
    assert torch.equal(q1.view(torch.uint8), q2.view(torch.uint8)) and torch.equal(s1, s2)


def test_special_values():
    gen = torch.Generator().manual_seed(5)
    gate, up = (t.contiguous() for t in gate_up(4, 64, BF16, gen))
    gate[1, 3] = float("-inf")  # silu(-inf) = NaN (as torch's): the row's scale NaN, its codes 0
    gate[2] = 0.0               # silu(0) = 0: an all-zero row gets the floor scale and zero codes
    up[3, 5] = float("inf")     # a positive gate times inf: inf, the row's scale NaN
    gate[3, 5] = 1.0
    for fmt, (fused, _) in FUSED.items():
        q, s = fused(gate, up)
        assert torch.isnan(s[1]) and torch.isnan(s[3]) and torch.isfinite(s[0]) and s[2] == 1e-12 / (
            127.0 if fmt == "int8" else 448.0)
        assert (q[1].view(torch.uint8) == 0).all() and (q[3].view(torch.uint8) == 0).all()
        assert (codes_of(q[2]) == 0).all()


def test_large_gate_saturates_silu():
    # silu(g) -> g for large g, -> -0 for very negative g; e^x's recipe clamps (inf above 88.8, 0
    # below -104), never NaN for finite input
    gate = torch.tensor([[100.0, -100.0, 88.0, -88.0, 30.0, -30.0, 1e-30, -1e-30] * 2], dtype=BF16)
    up = torch.ones_like(gate)
    q, s = ops.silu_mul_quantize_fp8_per_token(gate, up)
    h = codes_of(q) * s[:, None]
    want = (F.silu(gate.float())).to(BF16).float()
    assert torch.isfinite(s).all()
    assert torch.allclose(h, want, rtol=2 ** -3, atol=float(s) * 2 ** -6)


def test_errors():
    gen = torch.Generator().manual_seed(1)
    gate, up = gate_up(3, 64, BF16, gen)
    op = ops.silu_mul_quantize_fp8_per_token
    raises_with(lambda: op(gate, up[:2]), "up must have gate's shape")
    raises_with(lambda: op(gate, up.to(FP16)), "up must have gate's dtype")
    raises_with(lambda: op(gate.float(), up.float()), "gate must be bfloat16 or float16")
    raises_with(lambda: op(gate[:, :8], up[:, :8]), "K must be a multiple of 16")
    raises_with(lambda: op(gate.t(), up.t()), "must have contiguous rows")
    raises_with(lambda: op(gate[0], up[0]), "gate must be 2-D")
    wide = torch.randn(3, 80, generator=gen).to(BF16)  # rows of 160 bytes
    raises_with(lambda: op(wide[:, 4:20], wide[:, 36:52]), "16-byte aligned address")  # starts 8 bytes in
    odd = torch.randn(3, 68, generator=gen).to(BF16)   # rows of 136 bytes
    raises_with(lambda: op(odd[:, :16], odd[:, 32:48]), "row stride of a multiple of 16 bytes")


def test_opcheck_and_compile():
    gen = torch.Generator().manual_seed(2)
    gate, up = gate_up(6, 128, BF16, gen)
    torch.library.opcheck(torch.ops.lowbit.silu_mul_quantize_int8_per_token.default, (gate, up))
    for name in ("silu_mul_quantize_fp8_per_token", "silu_mul_quantize_int8_per_token"):
        op = getattr(ops, name)
        want = op(gate, up)
        got = torch.compile(lambda g, u: op(g, u), fullgraph=True, backend="aot_eager")(gate, up)
        assert torch.equal(got[0].view(torch.uint8), want[0].view(torch.uint8)) and torch.equal(got[1], want[1])


def _down_proj(fmt, K=256, N=48, bias=True, **options):
    from lowbit_ext.nn import LowBitLinear
    lin = torch.nn.Linear(K, N, bias=bias)
    with torch.no_grad():
        lin.weight.normal_(0, 0.05, generator=torch.Generator().manual_seed(4))
        if bias:
            lin.bias.normal_(0, 0.1, generator=torch.Generator().manual_seed(5))
    return LowBitLinear.from_linear(lin, fmt, **options).to(BF16)


@pytest.mark.parametrize("fmt,options,mm", [
    ("w8a8_int8", {}, "w8a8_int8_mm"), ("w8a8_fp8", {}, "w8a8_fp8_mm")])
def test_forward_silu_mul_fuses_the_quantizer(fmt, options, mm):
    layer = _down_proj(fmt, **options)
    gen = torch.Generator().manual_seed(8)
    gu = torch.cat([torch.randn(2, 5, 256, generator=gen) * 3, torch.randn(2, 5, 256, generator=gen)], -1).to(BF16)
    gate, up = gu.chunk(2, dim=-1)  # (2, 5, 256) row-strided views, as a fused gate-up projection gives
    y = layer.forward_silu_mul(gate, up)
    assert y.shape == (2, 5, 48) and y.dtype == BF16
    fused = FUSED["int8" if fmt == "w8a8_int8" else "fp8"][0]
    q, s = fused(gate.reshape(10, 256), up.reshape(10, 256))
    want = getattr(ops, mm)(q, s, layer.w, layer.w_scale, layer.bias, BF16).reshape(2, 5, 48)
    assert torch.equal(y, want)
    # and it is the layer on silu(gate) * up up to the activation quantization's error
    unfused = layer(F.silu(gate) * up).float()
    assert ((y.float() - unfused).norm() / unfused.norm()) < 0.05
    compiled = torch.compile(lambda g, u: layer.forward_silu_mul(g, u), fullgraph=True, backend="aot_eager")
    assert torch.equal(compiled(gate, up), y)


def test_forward_silu_mul_copies_unaligned_halves():
    layer = _down_proj("w8a8_int8")
    gen = torch.Generator().manual_seed(6)
    gu = torch.randn(4, 2 * 256 + 4, generator=gen).to(BF16)  # rows of 1032 bytes: not 16-byte multiples
    gate, up = gu[:, :256], gu[:, 4:260]
    assert torch.equal(layer.forward_silu_mul(gate, up), layer.forward_silu_mul(gate.clone(), up.clone()))


@pytest.mark.parametrize("fmt,options", [("a16w4", {"group_size": 64}), ("w8a8_fp8", {"granularity": "tensor"}),
                                         ("a16w8", {})])
def test_forward_silu_mul_falls_back(fmt, options):
    layer = _down_proj(fmt, bias=False, **options)
    gen = torch.Generator().manual_seed(9)
    gate, up = (torch.randn(7, 256, generator=gen).to(BF16) for _ in range(2))
    assert torch.equal(layer.forward_silu_mul(gate, up), layer(F.silu(gate) * up))


# ---------------------------------------------------------------- RMSNorm + quantize
RMS = {"int8": (ops.rms_norm_quantize_int8_per_token, ops.quantize_int8_per_token),
       "fp8": (ops.rms_norm_quantize_fp8_per_token, ops.quantize_fp8_per_token)}


def norm_operands(M, K, dtype, gen):
    x = (torch.randn(M, K, generator=gen) * torch.rand(M, 1, generator=gen) * 4).to(dtype)
    w = (torch.rand(K, generator=gen) + 0.5).to(dtype)
    return x, w


@pytest.mark.parametrize("fmt", ["int8", "fp8"])
@pytest.mark.parametrize("dtype", [BF16, FP16])
def test_rms_norm_matches_torch_rms_norm_then_quantizer(fmt, dtype):
    fused, plain = RMS[fmt]
    gen = torch.Generator().manual_seed(12)
    x, w = norm_operands(29, 2048, dtype, gen)
    # torch's rms_norm in fp32 (its sum of squares in fp32, ours in fp64: rstd may differ in the
    # last bit, which moves a dtype rounding of x' only next to a tie)
    xn = F.rms_norm(x.float(), (2048,), w.float(), 1e-5).to(dtype)
    assert_like_the_composition(fused(x, w, 1e-5), plain(xn), xn, fmt, dtype)


def test_rms_norm_special_rows_and_errors():
    gen = torch.Generator().manual_seed(13)
    x, w = norm_operands(4, 64, BF16, gen)
    x[1, 2] = float("nan")  # a NaN row: scale NaN, codes 0
    x[2] = 0.0              # a zero row: rstd = 1 / sqrt(eps), x' = 0: the floor scale, zero codes
    for fmt, (fused, _) in RMS.items():
        q, s = fused(x, w, 1e-6)
        assert torch.isnan(s[1]) and (q[1].view(torch.uint8) == 0).all()
        assert s[2] == 1e-12 / (127.0 if fmt == "int8" else 448.0) and (codes_of(q[2]) == 0).all()
        assert torch.isfinite(s[[0, 3]]).all()
    op = ops.rms_norm_quantize_fp8_per_token
    raises_with(lambda: op(x, w[:32], 1e-6), "weight must have shape [64]")
    raises_with(lambda: op(x, w.to(FP16), 1e-6), "weight must be BFloat16")
    raises_with(lambda: op(x, w, float("nan")), "eps must be finite and >= 0")
    raises_with(lambda: op(x.float(), w.float(), 1e-6), "x must be bfloat16 or float16")
    raises_with(lambda: op(x[:, :8].contiguous(), w[:8], 1e-6), "K must be a multiple of 16")


@pytest.mark.parametrize("fmt,options,mm", [
    ("w8a8_int8", {}, "w8a8_int8_mm"), ("w8a8_fp8", {}, "w8a8_fp8_mm")])
def test_forward_rms_norm_fuses_the_quantizer(fmt, options, mm):
    layer = _down_proj(fmt, **options)
    gen = torch.Generator().manual_seed(14)
    x = torch.randn(2, 5, 256, generator=gen).to(BF16)
    w = (torch.rand(256, generator=gen) + 0.5).to(BF16)
    y = layer.forward_rms_norm(x, w, 1e-5)
    fused = RMS["int8" if fmt == "w8a8_int8" else "fp8"][0]
    q, s = fused(x.reshape(10, 256), w, 1e-5)
    want = getattr(ops, mm)(q, s, layer.w, layer.w_scale, layer.bias, BF16).reshape(2, 5, 48)
    assert torch.equal(y, want)
    unfused = layer(F.rms_norm(x, (256,), w, 1e-5)).float()
    assert ((y.float() - unfused).norm() / unfused.norm()) < 0.05
    compiled = torch.compile(lambda a: layer.forward_rms_norm(a, w, 1e-5), fullgraph=True, backend="aot_eager")
    assert torch.equal(compiled(x), y)


def test_forward_rms_norm_falls_back():
    layer = _down_proj("a16w4", bias=False, group_size=64)
    gen = torch.Generator().manual_seed(15)
    x = torch.randn(7, 256, generator=gen).to(BF16)
    w = (torch.rand(256, generator=gen) + 0.5).to(BF16)
    assert torch.equal(layer.forward_rms_norm(x, w, 1e-5), layer(F.rms_norm(x, (256,), w, 1e-5)))


# ---------------------------------------------------------------- residual add + RMSNorm + quantize
ADD_RMS = {"int8": (ops.add_rms_norm_quantize_int8_per_token, ops.rms_norm_quantize_int8_per_token),
           "fp8": (ops.add_rms_norm_quantize_fp8_per_token, ops.rms_norm_quantize_fp8_per_token)}


def add_norm_operands(M, K, dtype, gen):
    """x (an attention / MLP output, N(0, 1)), the residual stream (larger, row scales vary) and
    the norm's weight."""
    x, w = norm_operands(M, K, dtype, gen)
    r = (torch.randn(M, K, generator=gen) * 3).to(dtype)
    return x, r, w


@pytest.mark.parametrize("fmt", ["int8", "fp8"])
@pytest.mark.parametrize("dtype", [BF16, FP16])
def test_add_rms_norm_is_the_add_then_the_rms_norm_quantizer(fmt, dtype):
    # why exact: the sum is defined as torch's add (fp32, one rounding to the dtype) and then
    # exactly rms_norm_quantize's input
    fused, rms = ADD_RMS[fmt]
    gen = torch.Generator().manual_seed(16)
    x, r, w = add_norm_operands(23, 1024, dtype, gen)
    q, s, h = fused(x, r, w, 1e-5)
    assert h.dtype == dtype and h.shape == x.shape and torch.equal(h, x + r)
    assert torch.equal(h, (x.float() + r.float()).to(dtype))
    q_ref, s_ref = rms(x + r, w, 1e-5)
    assert torch.equal(q.view(torch.uint8), q_ref.view(torch.uint8)) and torch.equal(s, s_ref)


def test_add_rms_norm_special_rows_and_errors():
    gen = torch.Generator().manual_seed(17)
    x, r, w = add_norm_operands(4, 64, BF16, gen)
    x[1, 2], r[1, 2] = float("inf"), float("-inf")  # inf + -inf: a NaN in the sum, the row's scale NaN
    r[2] = -x[2]                                     # a zero row
    for fmt, (fused, _) in ADD_RMS.items():
        q, s, h = fused(x, r, w, 1e-6)
        assert torch.isnan(h[1, 2]) and torch.isnan(s[1]) and (q[1].view(torch.uint8) == 0).all()
        assert (h[2] == 0).all() and (codes_of(q[2]) == 0).all() and torch.isfinite(s[[0, 3]]).all()
    op = ops.add_rms_norm_quantize_fp8_per_token
    raises_with(lambda: op(x, r[:2], w, 1e-6), "residual must have x's shape")
    raises_with(lambda: op(x, r.to(FP16), w, 1e-6), "residual must be BFloat16")
    raises_with(lambda: op(x, r.t().contiguous().t(), w, 1e-6), "residual must be contiguous")
    raises_with(lambda: op(x, r, w[:32], 1e-6), "weight must have shape [64]")
    raises_with(lambda: op(x, r, w, -1.0), "eps must be finite and >= 0")
    raises_with(lambda: op(x.float(), r.float(), w.float(), 1e-6), "x must be bfloat16 or float16")
    raises_with(lambda: op(x[0], r[0], w, 1e-6), "x must be 2-D")


def test_add_rms_norm_opcheck_and_compile():
    gen = torch.Generator().manual_seed(18)
    x, r, w = add_norm_operands(6, 128, BF16, gen)
    for name in ("add_rms_norm_quantize_int8_per_token", "add_rms_norm_quantize_fp8_per_token"):
        torch.library.opcheck(getattr(torch.ops.lowbit, name).default, (x, r, w, 1e-5))
        op = getattr(ops, name)
        want = op(x, r, w, 1e-5)
        got = torch.compile(lambda a, b: op(a, b, w, 1e-5), fullgraph=True, backend="aot_eager")(x, r)
        assert torch.equal(got[0].view(torch.uint8), want[0].view(torch.uint8))
        assert torch.equal(got[1], want[1]) and torch.equal(got[2], want[2])


@pytest.mark.parametrize("fmt,mm", [("w8a8_int8", "w8a8_int8_mm"), ("w8a8_fp8", "w8a8_fp8_mm")])
def test_forward_add_rms_norm_fuses_the_add_and_the_quantizer(fmt, mm):
    layer = _down_proj(fmt)
    gen = torch.Generator().manual_seed(19)
    x, r, w = (t.reshape(2, 5, 256) if t.dim() == 2 else t for t in add_norm_operands(10, 256, BF16, gen))
    y, h = layer.forward_add_rms_norm(x, r, w, 1e-5)
    assert y.shape == (2, 5, 48) and torch.equal(h, x + r)
    q, s, h2 = ADD_RMS["int8" if fmt == "w8a8_int8" else "fp8"][0](x.reshape(10, 256), r.reshape(10, 256), w, 1e-5)
    assert torch.equal(h2.reshape(2, 5, 256), h)
    assert torch.equal(y, getattr(ops, mm)(q, s, layer.w, layer.w_scale, layer.bias, BF16).reshape(2, 5, 48))
    # and exactly the norm-fused projection of the sum
    assert torch.equal(y, layer.forward_rms_norm(x + r, w, 1e-5))
    compiled = torch.compile(lambda a, b: layer.forward_add_rms_norm(a, b, w, 1e-5), fullgraph=True,
                             backend="aot_eager")
    yc, hc = compiled(x, r)
    assert torch.equal(yc, y) and torch.equal(hc, h)


@pytest.mark.parametrize("fmt,options", [("a16w4", {"group_size": 64}), ("w8a8_fp8", {"granularity": "tensor"})])
def test_forward_add_rms_norm_falls_back(fmt, options):
    layer = _down_proj(fmt, bias=False, **options)
    gen = torch.Generator().manual_seed(20)
    x, r, w = add_norm_operands(7, 256, BF16, gen)
    y, h = layer.forward_add_rms_norm(x, r, w, 1e-5)
    assert torch.equal(h, x + r) and torch.equal(y, layer(F.rms_norm(x + r, (256,), w, 1e-5)))


# ---------------------------------------------------------------- CUDA
def assert_cuda_matches_cpu(op, cpu_args, cuda_args):
    """op on CUDA (outputs poisoned first) gives the CPU reference's codes and scales bit for bit."""
    q_ref, s_ref = op(*cpu_args)
    M, K = q_ref.shape
    poison_allocator(M * K, M * 4)
    q, s = op(*cuda_args)
    torch.cuda.synchronize()
    assert torch.equal(q.cpu().view(torch.uint8), q_ref.view(torch.uint8))
    assert torch.equal(s.cpu().nan_to_num(), s_ref.nan_to_num()) and torch.equal(s.cpu().isnan(), s_ref.isnan())


@pytest.mark.cuda
@pytest.mark.parametrize("kind", ["silu_mul", "rms_norm", "add_rms_norm"])
@pytest.mark.parametrize("fmt", ["int8", "fp8"])
@pytest.mark.parametrize("dtype", [BF16, FP16])
# (quantize_launch.cu plan_rows on 132 SMs: M = 1..17 take clusters of 2-8 CTAs a row, (2, 65536) 8
# with 4 vectors a thread; (133, 49168) one CTA a row too long for the shared-memory row cache;
# (1500, 4096) and (3001, 512): several waves of CTAs)
@pytest.mark.parametrize("M,K", [(1, 16), (1, 14336), (3, 4096), (17, 14336), (100, 1024), (257, 2048), (2, 65536),
                                 (133, 49168), (1500, 4096), (3001, 512)])
def test_cuda_bitwise_against_cpu(kind, fmt, dtype, M, K):
    # why exact: the same fp32 / fp64 operations in the same order per element (exp_f32 is the
    # library's own); RMSNorm's fp64 sum of squares is exact for these rows (squares spanning
    # < 2^20), so its summation order (a tree over threads and CTAs here, a loop on the CPU)
    # cannot show
    gen = torch.Generator().manual_seed(M * 31 + K)
    if kind == "silu_mul":
        fused = FUSED[fmt][0]
        gate, up = gate_up(M, K, dtype, gen)
        if M > 2:
            gate[1, 0] = float("-inf")  # a NaN row
            gate[2] = 0.0               # a zero row
        gu = torch.cat([gate, up], dim=1).cuda()  # the CUDA call on the row-strided halves
        assert_cuda_matches_cpu(fused, (gate, up), (gu[:, :K], gu[:, K:]))
    elif kind == "rms_norm":
        fused = RMS[fmt][0]
        x, w = norm_operands(M, K, dtype, gen)
        if M > 2:
            x[1, 0] = float("inf")  # a NaN row (inf * rstd 0)
            x[2] = 0.0              # a zero row
        assert_cuda_matches_cpu(fused, (x, w, 1e-5), (x.cuda(), w.cuda(), 1e-5))
    else:
        fused = ADD_RMS[fmt][0]
        x, r, w = add_norm_operands(M, K, dtype, gen)
        if M > 2:
            x[1, 0] = float("inf")  # a NaN row
            r[2] = -x[2]            # a zero row
        h_ref = fused(x, r, w, 1e-5)[2]
        poison_allocator(M * K * 2, M * K, M * 4)
        h = fused(x.cuda(), r.cuda(), w.cuda(), 1e-5)[2]
        assert torch.equal(h.cpu().view(torch.int16), h_ref.view(torch.int16))  # (NaNs too)
        assert_cuda_matches_cpu(lambda *a: fused(*a)[:2], (x, r, w, 1e-5), (x.cuda(), r.cuda(), w.cuda(), 1e-5))


@pytest.mark.cuda
def test_cuda_opcheck_and_graph():
    gen = torch.Generator().manual_seed(11)
    gate, up = (t.cuda() for t in gate_up(9, 512, BF16, gen))
    torch.library.opcheck(torch.ops.lowbit.silu_mul_quantize_int8_per_token.default, (gate, up))
    x, r, w = (t.cuda() for t in add_norm_operands(9, 512, BF16, gen))
    torch.library.opcheck(torch.ops.lowbit.add_rms_norm_quantize_fp8_per_token.default, (x, r, w, 1e-5))
    op = ops.silu_mul_quantize_fp8_per_token
    want = op(gate, up)
    g = torch.cuda.CUDAGraph()
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        op(gate, up)  # warm up on the side stream
        with torch.cuda.graph(g, stream=s):
            out = op(gate, up)
    torch.cuda.current_stream().wait_stream(s)
    g.replay()
    torch.cuda.synchronize()
    assert torch.equal(out[0].view(torch.uint8), want[0].view(torch.uint8)) and torch.equal(out[1], want[1])
