"""Weight formats: RTN quantizers and packers, one module per format family, and the
registry every consumer (benchmarks, nn.LowBitLinear, quantize_) looks formats up in.

    from lowbit_ext import formats
    formats.names()                    # the format names of BRIEF section 2, in its order
    fmt = formats.get("a16w4")         # a FormatSpec
    qw = fmt.quantize(W, group_size=64)
    y = fmt.linear(x, qw)              # torch.ops.lowbit.<fmt.op_name>
    W_hat = fmt.dequantize(qw)         # float32 (N, K): what the kernels multiply by
    qw2 = fmt.from_tensors(qw.tensors(), qw.options())

    qw = fmt.quantize(W, method="hqq")             # a16w4: "rtn" | "hqq" | "awq" (act=...)
                                                   # mxfp4, a8w4_mx: "rtn" | "search" | "awq"

Families: :mod:`.int4` (a16w4), :mod:`.int8` (a16w8, w8a8_int8), :mod:`.fp8` (w8a8_fp8,
fp8_block), :mod:`.mx` (mxfp8, mxfp4, a8w4_mx). Each module's docstring is the
specification of its quantizers.
"""
from typing import Dict, List

from ._awq import fold_awq_scale
from ._base import FormatSpec, QuantizedWeight
from .fp8 import FP8_BLOCK_FORMAT, W8A8_FP8_FORMAT, Fp8BlockWeight, Fp8Weight
from .int4 import A16W4_FORMAT, Int4Weight
from .int8 import A16W8_FORMAT, W8A8_INT8_FORMAT, Int8Weight
from .mx import A8W4_MX_FORMAT, MXFP4_FORMAT, MXFP8_FORMAT, MXWeight

_REGISTRY: Dict[str, FormatSpec] = {}


def register(spec: FormatSpec) -> FormatSpec:
    """Adds a format (names are unique); returns it."""
    if spec.name in _REGISTRY:
        raise ValueError(f"format {spec.name!r} is already registered")
    _REGISTRY[spec.name] = spec
    return spec


for _spec in (A16W4_FORMAT, A16W8_FORMAT, W8A8_INT8_FORMAT, W8A8_FP8_FORMAT, FP8_BLOCK_FORMAT,
              MXFP8_FORMAT, MXFP4_FORMAT, A8W4_MX_FORMAT):
    register(_spec)


def names() -> List[str]:
    """Every format's name, in registration order (BRIEF section 2's order)."""
    return list(_REGISTRY)


def get(name: str) -> FormatSpec:
    """The FormatSpec called `name`; KeyError listing the valid names otherwise."""
    try:
        return _REGISTRY[name]
    except (KeyError, TypeError):
        raise KeyError(f"unknown format {name!r}; valid formats: {', '.join(_REGISTRY)}") from None


__all__ = ["names", "get", "register", "fold_awq_scale", "FormatSpec", "QuantizedWeight", "Int4Weight", "Int8Weight",
           "Fp8Weight", "Fp8BlockWeight", "MXWeight"]
