"""Small models and per-format accuracy bounds shared by test_nn.py and test_checkpoint.py."""
import copy
import os
import sys

import torch

import lowbit_ext as L

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _REPO not in sys.path:
    sys.path.insert(0, _REPO)

from bench import llama  # noqa: E402

# One config per format, plus the a16w4 and w8a8_fp8 variants worth a model-level check.
CONFIGS = {
    "a16w4": L.Int4WeightOnly(),
    "a16w4-g32": L.Int4WeightOnly(group_size=32),
    "a16w4-sym": L.Int4WeightOnly(symmetric=True),
    "a16w8": L.Int8WeightOnly(),
    "w8a8_int8": L.Int8Dynamic(),
    "w8a8_fp8": L.Fp8Dynamic(),
    "w8a8_fp8-tensor": L.Fp8Dynamic(granularity="tensor"),
    "fp8_block": L.Fp8Block(),
    "mxfp8": L.MXFP8(),
    "mxfp4": L.MXFP4WeightOnly(),
    "a8w4_mx": L.MXFP8xMXFP4(),
}

# Relative error ||y_q - y|| / ||y|| of the tiny Llama's logits against the same model
# unquantized (same 16-bit dtype), per config.
# why: per layer, the relative rms error of the dequantized weight follows from each format's
# step on N(0, 0.02) weights: int4 asym g128, step = (range of 128 normals ~ 5.2 sigma) / 15,
# rms step / sqrt(12) ~ 0.10 sigma (g32: 0.08; symmetric, step amax / 7: 0.12); int8 per
# channel, step ~ 2.9 sigma / 127: 0.007; e4m3 (3 mantissa bits: spacing 2^-4 to 2^-3 of the
# value, rms spacing / sqrt(12)): ~0.027 (mxfp8 0.030: its power-of-two scales leave the
# top binade partly unused); e2m1 (1 mantissa bit) with E8M0 scales: ~0.116. The measured weight errors are exactly these (max over the 15 layers, 4 seeds).
# Through the model the logits' error is 2 to 3 times the per-layer one (15 layers' errors add
# along the residual stream and the lm_head adds its own; the w8a8 formats add the activation
# rounding, as large as the weight's). Measured worst over 4 seeds x {bf16, fp16}: a16w4 0.203,
# g32 0.172, sym 0.247, a16w8 0.016, w8a8_int8 0.020, w8a8_fp8 0.077 (tensor 0.075), fp8_block
# 0.076, mxfp8 0.086, mxfp4 0.259, a8w4_mx 0.263. Bounds: 1.5x those, so a change that makes a
# format's model error 1.5x worse fails, while seeds and dtypes pass with margin.
BOUNDS = {
    "a16w4": 0.30, "a16w4-g32": 0.26, "a16w4-sym": 0.37,
    "a16w8": 0.025, "w8a8_int8": 0.03,
    "w8a8_fp8": 0.12, "w8a8_fp8-tensor": 0.12, "fp8_block": 0.12, "mxfp8": 0.13,
    "mxfp4": 0.39, "a8w4_mx": 0.40,
}

FORMAT_CONFIG = {c.format: name for name, c in CONFIGS.items() if "-" not in name}


def build_tiny(dtype=torch.bfloat16, seed=0, **overrides):
    return llama.build("tiny", dtype=dtype, seed=seed, **overrides)


def tokens(B=2, T=8, seed=100, vocab=None):
    vocab = vocab or llama.CONFIGS["tiny"].vocab_size
    return torch.randint(0, vocab, (B, T), generator=torch.Generator().manual_seed(seed))


def rel_err(y, ref):
    y, ref = y.double(), ref.double()
    return ((y - ref).norm() / ref.norm()).item()


_REF = {}
_QUANT = {}


def reference(dtype=torch.bfloat16):
    """The unquantized tiny model (cached: tests only read it; deep-copy to change it)."""
    if dtype not in _REF:
        _REF[dtype] = build_tiny(dtype)
    return _REF[dtype]


def quantized(name, dtype=torch.bfloat16):
    """(model, report): a deep copy of reference(dtype) quantized with CONFIGS[name] (cached)."""
    key = (name, dtype)
    if key not in _QUANT:
        m = copy.deepcopy(reference(dtype))
        report = L.quantize_(m, CONFIGS[name])
        _QUANT[key] = (m, report)
    return _QUANT[key]


def linear_names(model):
    return [n for n, m in model.named_modules() if isinstance(m, (torch.nn.Linear, L.LowBitLinear))]
