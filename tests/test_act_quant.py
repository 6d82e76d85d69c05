"""lowbit_ext.act_quant (the activation quantizers in torch ops) against the quantizer ops'
CPU reference, bit for bit: eager, and compiled by inductor's CPU backend with fullgraph=True.
And the formats that use it under torch.compile: compiled == eager, the *_mm op in the graph.
The CUDA counterparts (CUDA quantizer kernels, inductor's Triton code) are in
test_cuda_act_quant.py."""
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch._inductor.utils import run_and_get_code

from lowbit_ext import act_quant, formats, ops
from lowbit_ext.formats.fp8 import Fp8BlockWeight

from act_quant_cases import (E4M3_MIDPOINTS, FORMATS, QUANTIZERS, all_quantizers, assert_all_match_ops,
                             assert_same_quantization, compiled_lowbit_ops, fp8_tie_rows, int8_tie_rows, make_layer,
                             many_magnitudes, materialized_16bit, mixed_rows, special_rows)

BF16, FP16, FP32 = torch.bfloat16, torch.float16, torch.float32
DTYPES = [BF16, FP16, FP32]          # what the quantizer ops take
SHAPES = [(M, K) for M in (1, 3, 17, 100) for K in (128, 256, 4096)]


@pytest.mark.parametrize("name", list(QUANTIZERS))
@pytest.mark.parametrize("dtype", DTYPES)
def test_eager_bitwise_random_and_special_rows(name, dtype):
    fn, op = QUANTIZERS[name]
    for i, (M, K) in enumerate(SHAPES):
        x = special_rows(M, K, dtype, seed=i)
        assert_same_quantization(fn(x), op(x), f"{name} {dtype} {M}x{K}")


@pytest.mark.parametrize("name", list(QUANTIZERS))
def test_eager_bitwise_rounding_ties_and_saturation(name):
    fn, op = QUANTIZERS[name]
    rows = int8_tie_rows if name == "int8_per_token" else fp8_tie_rows
    for dtype in DTYPES:
        x = rows(dtype)
        got, want = fn(x), op(x)
        assert_same_quantization(got, want, f"{name} {dtype} ties")
    if name != "int8_per_token":   # the construction lands on every e4m3 midpoint (scale exactly 1)
        q, s = op(fp8_tie_rows(FP32))
        assert torch.all(s[:1] == 1.0) and len(E4M3_MIDPOINTS) == 126


@pytest.mark.parametrize("name", list(QUANTIZERS))
def test_eager_bitwise_many_scales(name):
    # 4096 blocks of magnitudes 2^-40..2^40: a scale / inverse not correctly rounded shows up here
    fn, op = QUANTIZERS[name]
    for dtype in (BF16, FP32):
        x = many_magnitudes(dtype)
        assert_same_quantization(fn(x), op(x), f"{name} {dtype}")


def test_bad_input_is_named():
    x = torch.randn(3, 200).to(BF16)
    with pytest.raises(ValueError, match="multiple of 128"):
        act_quant.fp8_1x128(x)
    with pytest.raises(ValueError, match="multiple of 16"):
        act_quant.fp8_per_token(x[:, :40])
    with pytest.raises(ValueError, match="2-D"):
        act_quant.int8_per_token(x[0])
    with pytest.raises(ValueError, match="bfloat16, float16 or float32"):
        act_quant.int8_per_token(x.double())
    # under torch.compile(fullgraph=True) dynamo reports the raise as Unsupported, carrying the message
    with pytest.raises(Exception, match="K must be a positive multiple of 128"):
        torch.compile(act_quant.fp8_1x128, fullgraph=True)(x)


# ---------------------------------------------------------------- inductor (CPU C++ backend)
@pytest.mark.parametrize("dtype", DTYPES)
def test_inductor_bitwise(dtype):
    # the three quantizers in one graph (one compile), on every kind of row; a second K
    # recompiles (K = 4096 makes inductor loop over the row in its reductions)
    torch._dynamo.reset()
    compiled = torch.compile(all_quantizers, fullgraph=True)
    for K in (256, 4096):
        x = mixed_rows(dtype, K, seed=K)
        assert_all_match_ops(compiled(x), x, "compiled")


def test_inductor_fuses_into_producer_and_rounds_like_eager_only_when_asked():
    """A producer (RMSNorm-like, bf16 out) fused with the quantizer: inductor keeps the
    producer's fp32 value instead of its bf16 rounding (config.emulate_precision_casts off),
    so the codes differ from quantizing eager's bf16 tensor; with the knob on they are equal.
    (Given the same x, act_quant equals the op: the tests above.)"""
    def produce(x, w):
        v = x.float()
        return (v * torch.rsqrt(v.pow(2).mean(-1, keepdim=True) + 1e-6)).to(x.dtype) * w

    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 512, generator=g).to(BF16)
    w = (torch.rand(512, generator=g) + 0.5).to(BF16)
    want = ops.quantize_fp8_per_token(produce(x, w))
    with torch._inductor.config.patch(emulate_precision_casts=True):
        torch._dynamo.reset()
        got = torch.compile(lambda x, w: act_quant.fp8_per_token(produce(x, w)), fullgraph=True)(x, w)
    assert_same_quantization(got, want, "fused, emulate_precision_casts")
    torch._dynamo.reset()
    got, code = run_and_get_code(torch.compile(lambda x, w: act_quant.fp8_per_token(produce(x, w)),
                                               fullgraph=True), x, w)
    differ = (got[0].view(torch.uint8) != want[0].view(torch.uint8)).float().mean().item()
    assert 0 < differ < 0.2, differ   # a last-bit difference in x, moving some codes by one
    assert not materialized_16bit(code, x.shape), "the producer's bf16 output was written to memory"


# ---------------------------------------------------------------- the formats under torch.compile
@pytest.mark.parametrize("fmt", list(FORMATS))
@pytest.mark.parametrize("dtype", [BF16, FP16])
def test_layer_compiled_equals_eager_and_calls_the_mm_op(fmt, dtype, monkeypatch):
    monkeypatch.setattr(act_quant, "COMPILE_ACT_QUANT", True)  # (LOWBIT_COMPILE_ACT_QUANT=1)
    mm, linear = FORMATS[fmt]
    g = torch.Generator().manual_seed(2)
    layer = make_layer(fmt, dtype=dtype)
    xs = [torch.randn(2, 5, 256, generator=g).to(dtype), torch.randn(3, 7, 256, generator=g).to(dtype),
          special_rows(17, 256, dtype, seed=3)]
    assert compiled_lowbit_ops(layer, xs) == {mm}


def test_per_tensor_w8a8_fp8_keeps_the_fused_op(monkeypatch):
    monkeypatch.setattr(act_quant, "COMPILE_ACT_QUANT", True)
    layer = make_layer("w8a8_fp8", granularity="tensor")
    assert not layer.quantized_weight().act_per_token
    assert compiled_lowbit_ops(layer, [torch.randn(5, 256).to(BF16)]) == {"w8a8_fp8_linear"}


def test_default_keeps_the_fused_ops(monkeypatch):
    monkeypatch.delenv("LOWBIT_COMPILE_ACT_QUANT", raising=False)
    monkeypatch.setattr(act_quant, "COMPILE_ACT_QUANT", False)  # the default (the next test reads it)
    for fmt, (mm, linear) in FORMATS.items():
        assert compiled_lowbit_ops(make_layer(fmt), [torch.randn(5, 256).to(BF16)]) == {linear}


def test_knob_is_read_from_the_environment():
    code = "import lowbit_ext.act_quant as a; print(a.COMPILE_ACT_QUANT)"
    root = Path(__file__).resolve().parents[1]
    for value, want in ((None, "False"), ("0", "False"), ("1", "True")):
        env = {k: v for k, v in os.environ.items() if k != "LOWBIT_COMPILE_ACT_QUANT"}
        if value is not None:
            env["LOWBIT_COMPILE_ACT_QUANT"] = value
        out = subprocess.run([sys.executable, "-c", code], cwd=root, env=env, capture_output=True, text=True,
                             check=True).stdout.split()
        assert out[-1] == want


class _LowbitCalls(torch.utils._python_dispatch.TorchDispatchMode):
    """Records the names of the lowbit ops called inside it."""

    def __init__(self):
        super().__init__()
        self.names = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func.namespace == "lowbit":
            self.names.append(func._opname)
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_eager_layer_calls_the_fused_op(fmt):
    layer = make_layer(fmt)
    with _LowbitCalls() as calls:
        layer(torch.randn(4, 256).to(BF16))
    assert calls.names == [FORMATS[fmt][1]]


def test_bad_k_under_compile_is_named():
    # a weight made by hand with K = 200 (from_tensors / quantize refuse it): eagerly the fused
    # op refuses it; compiled, act_quant does, at trace time, with the same reason
    fmt = formats.get("fp8_block")
    W = torch.randn(64, 200)
    qw = Fp8BlockWeight(w=W.to(torch.float8_e4m3fn), w_scale=torch.ones(1, 1))
    x = torch.randn(3, 200).to(BF16)
    with pytest.raises(RuntimeError, match="multiple of 128"):
        fmt.linear(x, qw)
    torch._dynamo.reset()
    with pytest.raises(Exception, match="multiple of 128"):
        torch.compile(fmt.linear, fullgraph=True)(x, qw)
