"""The op contract on the CPU: every schema registered, opcheck (schema, fake tensor,
autograd registration, aot_dispatch_dynamic), torch.compile(fullgraph=True), and the
errors for bad input."""
import pytest
import torch

import lowbit_ext
from lowbit_ext import ops

from samples import BF16, FP16, call, op_samples, rand_x, weight, w4_plain

SAMPLES = op_samples()


def test_every_op_registered_with_a_cpu_kernel():
    assert set(SAMPLES) == set(ops.OP_NAMES)
    for name in ops.OP_NAMES:
        assert hasattr(torch.ops.lowbit, name), name
        assert torch._C._dispatch_has_kernel_for_dispatch_key(f"lowbit::{name}", "CPU"), name


def _has_fp8(args):
    return any(isinstance(a, torch.Tensor) and a.dtype == torch.float8_e4m3fn for a in args)


def check_no_mutation_or_alias(name, args, kwargs):
    """What opcheck's test_schema checks, done by hand: the schema declares no mutation and
    no aliasing, so inputs keep their bytes and outputs share no storage with them."""
    before = [a.view(torch.uint8).clone() if isinstance(a, torch.Tensor) and a.dtype == torch.float8_e4m3fn
              else (a.clone() if isinstance(a, torch.Tensor) else None) for a in args]
    outs = call(name, args, kwargs)
    outs = outs if isinstance(outs, tuple) else (outs,)
    for a, b in zip(args, before):
        if b is not None:
            now = a.view(torch.uint8) if a.dtype == torch.float8_e4m3fn else a
            assert torch.equal(now, b), f"{name} mutated an input"
    ptrs = {a.untyped_storage().data_ptr() for a in args if isinstance(a, torch.Tensor) and a.numel()}
    for o in outs:
        assert o.numel() == 0 or o.untyped_storage().data_ptr() not in ptrs, f"{name} output aliases an input"


def run_opcheck(name, args, kwargs):
    """torch.library.opcheck on every test utility. Its test_schema compares inputs with
    allclose, which torch does not implement for float8 (CPU, torch 2.14; CUDA, 2.11): for ops
    that take fp8 tensors that one utility is replaced by check_no_mutation_or_alias."""
    op = getattr(torch.ops.lowbit, name).default
    if _has_fp8(args):
        utils = ("test_autograd_registration", "test_faketensor", "test_aot_dispatch_dynamic")
        torch.library.opcheck(op, args, kwargs, test_utils=utils)
        check_no_mutation_or_alias(name, args, kwargs)
    else:
        torch.library.opcheck(op, args, kwargs)


@pytest.mark.parametrize("name", ops.OP_NAMES)
def test_opcheck(name):
    args, kwargs = SAMPLES[name]
    run_opcheck(name, args, kwargs)


@pytest.mark.parametrize("name", ops.OP_NAMES)
def test_fake_matches_real(name):
    args, kwargs = SAMPLES[name]
    real = call(name, args, kwargs)
    from torch._subclasses.fake_tensor import FakeTensorMode
    with FakeTensorMode() as mode:
        fargs = [mode.from_tensor(a) if isinstance(a, torch.Tensor) else a for a in args]
        fake = call(name, fargs, kwargs)
    real = real if isinstance(real, tuple) else (real,)
    fake = fake if isinstance(fake, tuple) else (fake,)
    for r, f in zip(real, fake):
        assert r.shape == f.shape and r.dtype == f.dtype, (name, r.shape, f.shape, r.dtype, f.dtype)


class TinyQuantModel(torch.nn.Module):
    """Two layers of different formats, with leading batch dims, as a model would call them."""

    def __init__(self, K=256, N=128):
        super().__init__()
        g = torch.Generator().manual_seed(1)
        W1, W2 = weight(N, K, gen=g), weight(K, N, gen=g)
        self.w1, self.s1 = ops.quantize_fp8_per_token(W1)
        q2, self.s2 = ops.quantize_mxfp4(W2)
        self.w2 = ops.prepack_w4(q2)

    def forward(self, x):
        h = ops.w8a8_fp8_linear(x.reshape(-1, x.shape[-1]), self.w1, self.s1)
        h = torch.nn.functional.gelu(h)
        y = ops.mxfp4_linear(h, self.w2, self.s2)
        return y.reshape(*x.shape[:-1], -1)


def test_torch_compile_fullgraph_matches_eager():
    torch._dynamo.reset()
    model = TinyQuantModel()
    x = rand_x(2 * 5, 256).reshape(2, 5, 256)
    eager = model(x)
    compiled = torch.compile(model, fullgraph=True)
    out = compiled(x)
    torch.testing.assert_close(out, eager, rtol=0, atol=0)  # same CPU kernels: bitwise
    x2 = rand_x(3 * 7, 256).reshape(3, 7, 256)  # a new M: dynamic shape, still no graph break
    torch.testing.assert_close(compiled(x2), model(x2), rtol=0, atol=0)


def test_m_zero_gives_empty_output():
    x = rand_x(0, 256)
    W = weight(40, 256)
    wq, ws = ops.quantize_fp8_per_token(W)
    assert ops.w8a8_fp8_linear(x, wq, ws).shape == (0, 40)
    q, s = ops.quantize_int8_per_token(x)
    assert q.shape == (0, 256) and s.shape == (0,)


# ---------------------------------------------------------------- bad input
def _raises(fn, *words):
    with pytest.raises(RuntimeError) as e:
        fn()
    msg = str(e.value)
    for w in words:
        assert w in msg, f"{w!r} not in error: {msg}"


def test_error_wrong_activation_dtype():
    args, _ = SAMPLES["a16w4_linear"]
    x = args[0].float()
    _raises(lambda: ops.a16w4_linear(x, *args[1:]), "a16w4_linear", "x must be bfloat16 or float16", "Float")


def test_error_scale_dtype_must_match_x():
    x, w, scales, zeros, g, bias = SAMPLES["a16w4_linear"][0]
    _raises(lambda: ops.a16w4_linear(x.half(), w, scales, zeros, g, None), "scales must be Half")


def test_error_k_not_multiple_of_group():
    x = rand_x(3, 96)
    w = ops.prepack_w4(w4_plain(8, 96))
    s = torch.ones(8, 1, dtype=BF16)
    _raises(lambda: ops.a16w4_linear(x, w, s, None, 64, None), "K must be a multiple of group_size", "96")


def test_error_bad_group_size():
    x, w, scales, zeros, g, bias = SAMPLES["a16w4_linear"][0]
    _raises(lambda: ops.a16w4_linear(x, w, scales, zeros, 48, None), "group_size must be 32, 64, 128 or -1")


def test_error_wrong_weight_packing():
    x, w, scales, zeros, g, bias = SAMPLES["a16w4_linear"][0]
    plain = ops.unpack_w4(w)  # uint8 plain layout instead of the kernel layout
    _raises(lambda: ops.a16w4_linear(x, plain, scales, zeros, g, None), "w must be int32", "prepack_w4")


def test_error_k_mismatch():
    args, _ = SAMPLES["w8a8_fp8_mm"]
    a, sa, b, sb, bias, dt = args
    _raises(lambda: ops.w8a8_fp8_mm(a[:, :128].contiguous(), sa, b, sb), "same K")


def test_error_k_granularity():
    x = rand_x(4, 40)
    _raises(lambda: ops.quantize_fp8_per_token(x), "K must be a multiple of 16", "40")
    _raises(lambda: ops.quantize_mxfp8(rand_x(4, 48)), "K must be a multiple of 32", "48")
    _raises(lambda: ops.quantize_fp8_1x128(rand_x(4, 64)), "K must be a multiple of 128", "64")


def test_error_non_contiguous():
    x = rand_x(256, 8).t()  # (8, 256) with strides (1, 8)
    _raises(lambda: ops.quantize_int8_per_token(x), "x must be contiguous")


def test_error_misaligned():
    base = rand_x(1, 256 * 4 + 8).reshape(-1)
    x = base[8:8 + 3 * 256].view(3, 256)  # starts 16 bytes in: aligned; shift by 1 element: not
    ops.quantize_int8_per_token(x)
    x_bad = base[1:1 + 3 * 256].view(3, 256)
    _raises(lambda: ops.quantize_int8_per_token(x_bad), "16-byte aligned")


def test_error_scale_shapes():
    a, sa, b, sb, bias, dt = SAMPLES["w8a8_int8_mm"][0]
    _raises(lambda: ops.w8a8_int8_mm(a, sa[:2], b, sb), "a_scale must have shape (3,)")
    a, sa, b, sb, bias, dt = SAMPLES["mxfp8_mm"][0]
    _raises(lambda: ops.mxfp8_mm(a, sa[:, :2].contiguous(), b, sb), "a_scale must have shape")
    a, sa, b, sb, bias, dt = SAMPLES["fp8_block_mm"][0]
    _raises(lambda: ops.fp8_block_mm(a, sa, b, sb[:, :1].contiguous()), "b_scale")


def test_error_out_dtype_and_bias():
    a, sa, b, sb, bias, dt = SAMPLES["w8a8_int8_mm"][0]
    _raises(lambda: ops.w8a8_int8_mm(a, sa, b, sb, None, torch.float32), "out_dtype must be bfloat16 or float16")
    _raises(lambda: ops.w8a8_int8_mm(a, sa, b, sb, bias[:5], dt), "bias must have shape")
    _raises(lambda: ops.w8a8_int8_mm(a, sa, b, sb, bias.half(), BF16), "bias must be BFloat16")


def test_error_mx_scale_dtype():
    x, w, ws, bias = SAMPLES["mxfp4_linear"][0]
    _raises(lambda: ops.mxfp4_linear(x, w, ws.float(), None), "w_scale must be uint8 (E8M0")


def test_error_weight_dtype():
    x, w, ws, bias = SAMPLES["w8a8_int8_linear"][0]
    _raises(lambda: ops.w8a8_int8_linear(x, w.float(), ws, None), "w must be Char")


def test_error_device_mismatch():
    x, w, ws, bias = SAMPLES["w8a8_int8_linear"][0]
    # A meta tensor among CPU ones dispatches to the fake implementation, which must
    # refuse the mix too (else tracing would accept what no real backend runs).
    _raises(lambda: ops.w8a8_int8_linear(x, w.to("meta"), ws, None), "one device")
    if torch.cuda.is_available():
        _raises(lambda: ops.w8a8_int8_linear(x, w.cuda(), ws, None), "all tensors must be on one device")


def test_library_reports_abi_and_cuda_ops():
    assert torch.ops.lowbit._abi_version() == lowbit_ext._library.ABI_VERSION
    assert isinstance(lowbit_ext.cuda_ops(), list)
