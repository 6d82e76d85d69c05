"""CUDA kernels against the CPU reference (the spec), for every op that has a CUDA kernel
in this build. Skipped without a Hopper GPU (see conftest.py)."""
import pytest
import torch

import lowbit_ext
from lowbit_ext import ops

from samples import BF16, FP16, call, op_samples, rand_x
from test_op_contract import run_opcheck

pytestmark = pytest.mark.cuda

QUANTIZERS = ["quantize_int8_per_token", "quantize_fp8_per_token", "quantize_fp8_per_tensor",
              "quantize_fp8_1x128", "quantize_mxfp8", "quantize_mxfp4"]


def cuda_ops():
    return lowbit_ext.cuda_ops()


def bytes_of(t):
    return t.view(torch.uint8) if t.dtype == torch.float8_e4m3fn else t


def test_import_reports_cuda_ops():
    # The quantizers are the CUDA kernels this build must have at least.
    assert set(QUANTIZERS) <= set(cuda_ops()), cuda_ops()


@pytest.mark.parametrize("name", QUANTIZERS)
@pytest.mark.parametrize("dtype", [BF16, FP16, torch.float32])
# (2001, 1024): several waves of the per-token kernel's CTAs
@pytest.mark.parametrize("M,K", [(1, 128), (3, 256), (17, 384), (100, 4096), (257, 1024), (1, 14336), (2001, 1024)])
def test_quantizer_matches_reference_bit_for_bit(name, dtype, M, K):
    # why exact: the CUDA quantizers apply the same fp32 operations as the reference
    # (lowbit/quant_rules.h); any differing byte is a bug.
    x = rand_x(M, K, dtype) * 3
    x[0, :5] = torch.tensor([0.0, -0.0, 1e-30, 448.0, -1000.0]).to(dtype)  # zero signs, tiny, saturating
    if M > 2:
        x[2].zero_()  # an all-zero row / block
    ref_q, ref_s = call(name, (x,))
    q, s = call(name, (x.cuda(),))
    assert torch.equal(bytes_of(q).cpu(), bytes_of(ref_q))
    assert torch.equal(s.cpu(), ref_s)


@pytest.mark.parametrize("name", QUANTIZERS)
def test_quantizer_nonfinite_blocks(name):
    x = rand_x(4, 256)
    x[1, 3] = float("nan")
    x[2, 200] = float("inf")
    ref_q, ref_s = call(name, (x,))
    q, s = call(name, (x.cuda(),))
    assert torch.equal(bytes_of(q).cpu(), bytes_of(ref_q))
    torch.testing.assert_close(s.cpu().float(), ref_s.float(), equal_nan=True, rtol=0, atol=0)


def test_quantizer_static_per_tensor_scale():
    x = rand_x(5, 256) * 10
    scale = torch.tensor([0.01])
    ref = ops.quantize_fp8_per_tensor(x, scale)
    got = ops.quantize_fp8_per_tensor(x.cuda(), scale.cuda())
    assert torch.equal(bytes_of(got[0]).cpu(), bytes_of(ref[0])) and torch.equal(got[1].cpu(), ref[1])


def test_quantizer_writes_every_output():
    # Poisoned outputs: allocate through the caching allocator after filling a same-sized
    # block with 0x5A, so an unwritten byte would show up as poison.
    x = rand_x(33, 512).cuda()
    for name in QUANTIZERS:
        junk = torch.full((33 * 512 * 4,), 0x5A, dtype=torch.uint8, device="cuda")
        del junk
        q, s = call(name, (x,))
        ref_q, ref_s = call(name, (x.cpu(),))
        assert torch.equal(bytes_of(q).cpu(), bytes_of(ref_q)), name


def test_quantizer_on_current_stream_and_in_cuda_graph():
    x = rand_x(64, 1024).cuda()
    s = torch.cuda.Stream()
    with torch.cuda.stream(s):
        q1, s1 = ops.quantize_fp8_per_token(x)
        g = torch.cuda.CUDAGraph()
        with torch.cuda.graph(g, stream=s):
            qg, sg = ops.quantize_fp8_per_token(x)
            qt, st = ops.quantize_fp8_per_tensor(x)
    x.copy_(rand_x(64, 1024).cuda())
    g.replay()
    torch.cuda.synchronize()
    ref_q, ref_s = ops.quantize_fp8_per_token(x.cpu())
    assert torch.equal(bytes_of(qg).cpu(), bytes_of(ref_q)) and torch.equal(sg.cpu(), ref_s)
    ref_qt, ref_st = ops.quantize_fp8_per_tensor(x.cpu())
    assert torch.equal(bytes_of(qt).cpu(), bytes_of(ref_qt)) and torch.equal(st.cpu(), ref_st)


def to_cuda(args):
    return tuple(a.cuda() if isinstance(a, torch.Tensor) else a for a in args)


def test_opcheck_on_cuda():
    # Samples are made by the CPU ops (some ops have no CUDA kernel yet), then moved.
    samples = op_samples(device="cpu")
    for name in cuda_ops():
        args, kwargs = samples[name]
        run_opcheck(name, to_cuda(args), kwargs)


def test_m_zero_on_cuda():
    for name in QUANTIZERS:
        q, s = call(name, (rand_x(0, 256).cuda(),))
        assert q.shape[0] == 0 and q.is_cuda
