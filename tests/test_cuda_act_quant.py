"""lowbit_ext.act_quant on the GPU, bit for bit against the CUDA quantizer kernels
(``lowbit.quantize_fp8_per_token``, ``quantize_int8_per_token``, ``quantize_fp8_1x128``):
eagerly (CUDA torch ops) and compiled by inductor (Triton); and the formats' compiled path
(act_quant + the *_mm op) against their eager fused ops. About ten inductor compiles.

Where these can fail while the CPU tests (test_act_quant.py) pass: Triton's fp32 ``/`` is
div.full.f32 (up to 2 ulp off) and inductor turns a division by a constant into a
multiplication by its reciprocal, so act_quant divides in fp64 and rounds once (see its
docstring); a difference in scales only, or codes off by one in whole rows / blocks, points
there (look for fp32 divisions in the kernels: TORCH_LOGS=output_code). Codes off by one
here and there would point at the fp32 -> e4m3 conversion or round-half-even instead.
"""
import pytest
import torch
from torch._inductor.utils import run_and_get_code

from lowbit_ext import act_quant, ops

from act_quant_cases import (FORMATS, QUANTIZERS, all_quantizers, assert_all_match_ops, assert_same_quantization,
                             compiled_lowbit_ops, make_layer, materialized_16bit, mixed_rows, special_rows)

pytestmark = pytest.mark.cuda
BF16, FP16, FP32 = torch.bfloat16, torch.float16, torch.float32


@pytest.mark.parametrize("dtype", [BF16, FP16, FP32])
def test_eager_cuda_bitwise(dtype):
    # special rows (zeros, NaN, +-Inf, below the amax floor, huge / tiny), rounding ties,
    # 1024 rows of different magnitudes; K = 256 and 4096
    for K in (256, 4096):
        x = mixed_rows(dtype, K, device="cuda", seed=K)
        assert_all_match_ops(all_quantizers(x), x, "eager cuda")


@pytest.mark.parametrize("dtype", [BF16, FP16])
def test_inductor_triton_bitwise(dtype):
    # the three quantizers in one graph; K = 4096 recompiles (looped reductions in Triton)
    torch._dynamo.reset()
    compiled = torch.compile(all_quantizers, fullgraph=True)
    for K in (256, 4096):
        x = mixed_rows(dtype, K, device="cuda", seed=K)
        assert_all_match_ops(compiled(x), x, "inductor")


def test_inductor_fuses_the_quantizer_into_its_producer():
    """leaky_relu(x, 0.5) is exact in bf16, so the fused result equals the CUDA ops on eager's
    tensor bit for bit; and the bf16 activations between them are never written out."""
    x = special_rows(100, 4096, BF16, seed=5, device="cuda")
    produce = lambda x: torch.nn.functional.leaky_relu(x, 0.5)   # noqa: E731
    for name, (fn, op) in QUANTIZERS.items():
        torch._dynamo.reset()
        got, code = run_and_get_code(torch.compile(lambda x: fn(produce(x)), fullgraph=True), x)
        assert_same_quantization(got, op(produce(x)), f"fused {name}")
        assert not materialized_16bit(code, x.shape), f"{name}: the producer's output was written to memory"


def test_rmsnorm_producer_is_not_materialized():
    # what the model does before q/k/v and gate/up: the normalized bf16 x stays in registers
    # (its codes may differ from eager's in the last bit of x: see act_quant's docstring)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(256, 4096, generator=g).to(BF16).cuda()
    w = (torch.rand(4096, generator=g) + 0.5).to(BF16).cuda()

    def norm_quant(x, w):
        v = x.float()
        y = (v * torch.rsqrt(v.pow(2).mean(-1, keepdim=True) + 1e-6)).to(x.dtype) * w
        return act_quant.fp8_per_token(y)

    torch._dynamo.reset()
    (q, s), code = run_and_get_code(torch.compile(norm_quant, fullgraph=True), x, w)
    assert not materialized_16bit(code, x.shape)
    q0, s0 = ops.quantize_fp8_per_token((x.float() * torch.rsqrt(x.float().pow(2).mean(-1, keepdim=True) + 1e-6))
                                        .to(BF16) * w)
    assert (q.float() - q0.float()).abs().max() <= 32 and torch.allclose(s, s0, rtol=2 ** -7)  # one e4m3 step at most


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_layer_compiled_equals_eager_and_calls_the_mm_op(fmt, monkeypatch):
    # act_quant + the *_mm op compiled (LOWBIT_COMPILE_ACT_QUANT=1), the fused op eagerly: the same
    # codes into the same GEMM
    monkeypatch.setattr(act_quant, "COMPILE_ACT_QUANT", True)
    g = torch.Generator().manual_seed(2)
    layer = make_layer(fmt, N=520, K=1024, device="cuda")
    xs = [torch.randn(3, 1024, generator=g).to(BF16).cuda(), torch.randn(300, 1024, generator=g).to(BF16).cuda(),
          special_rows(17, 1024, BF16, seed=3, device="cuda")]
    assert compiled_lowbit_ops(layer, xs) == {FORMATS[fmt][0]}
