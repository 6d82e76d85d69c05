"""quantize_(model, config): every matching ``nn.Linear`` of a model becomes a LowBitLinear,
in place, in one call.

    import lowbit_ext
    from lowbit_ext import Int4WeightOnly

    model = model.to(torch.bfloat16)
    report = lowbit_ext.quantize_(model, Int4WeightOnly(group_size=64))
    print(report)                      # converted / skipped layers and why, bytes before / after

Configs, one per format (BRIEF section 2):

    ===============================================  ===========  =============================
    config                                           format       what runs
    ===============================================  ===========  =============================
    Int4WeightOnly(group_size=128, symmetric=False,  a16w4        16-bit x, int4 weights in
                   method="rtn", dtype=None,                      groups along K
                   method_options=None)
    Int8WeightOnly()                                 a16w8        16-bit x, int8 per channel
    Int8Dynamic()                                    w8a8_int8    x quantized per token to int8
    Fp8Dynamic(granularity="row"|"tensor",           w8a8_fp8     x quantized to e4m3 per token
               act_per_token=None)                                (row) or per tensor (tensor)
    Fp8Block()                                       fp8_block    DeepSeek-V3 1x128 x 128x128
    MXFP8()                                          mxfp8        MXFP8 x MXFP8
    MXFP4WeightOnly(method="rtn", ...)               mxfp4        16-bit x, MXFP4 weights
    MXFP8xMXFP4(method="rtn", ...)                   a8w4_mx      MXFP8 x MXFP4
    ===============================================  ===========  =============================

``method`` and ``method_options`` (the 4-bit weight configs): how the weights are rounded.
"rtn" (round to nearest, the default) always works; the optimized quantizers of issue 8 are
the format's to define (a16w4: "hqq", "awq"; mxfp4 / a8w4_mx: "search", "awq"), with their
hyper-parameters in ``method_options`` (e.g. ``{"hqq_iters": 50}``). Both are passed on as
options, ``formats.get(name).quantize(W, ..., method=..., **method_options)``, and the format
validates them when the config is made. "awq" also passes ``act=`` (see below) and needs
``calibration_data``. Where the format's quantizer takes no ``method`` (a build without issue
8), "rtn" still works and any other method raises NotImplementedError naming issue 8 before
any layer is touched. Every method makes the tensors of the same format: LowBitLinear, the
kernels and checkpoints do not care which one ran (the options, method included, are recorded).

AWQ calibration: ``quantize_(model, Int4WeightOnly(method="awq"), calibration_data=batches)``
first runs the (unquantized) model on the calibration batches, recording each converted
layer's input with forward pre-hooks (:func:`record_linear_inputs`), then quantizes each
layer with ``act=`` that layer's inputs: a 2-D tensor (rows = tokens, columns = in_features),
in the activations' dtype and on their device, at most ``max_calibration_rows`` rows. (The
layers are calibrated on the unquantized model's activations, all in one pass.)

``dtype`` (Int4WeightOnly): the activation dtype the a16w4 scales are stored in (the op
requires scales in x's dtype). None: the layer's weight dtype if it is bf16 / fp16, else
bfloat16 (an fp32 model is expected to be cast to bf16 before it runs: see nn.py).

Layers whose shape the format cannot take (``fmt.supports``: e.g. a16w4 needs K % 32 == 0
and K % group_size == 0, fp8_block K % 128 == 0) are left as they are and listed in the
report with the reason.
"""
import dataclasses
import inspect
import sys
import time
from typing import Any, Callable, ClassVar, Dict, Iterable, List, Optional, Tuple, Union

import torch
from torch import Tensor
from torch import nn as _nn

from . import formats
from .calibration import record_linear_inputs  # the one calibration recorder (re-exported)
from .formats._base import dtype_name
from .nn import LowBitLinear

# Show a progress bar by default when the layers to convert hold at least this many weights
# (a 1B-parameter model: quantizing it takes seconds on a GPU, minutes on a CPU).
PROGRESS_MIN_PARAMS = 1_000_000_000
DEFAULT_CALIBRATION_ROWS = 1024

FilterFn = Callable[[_nn.Module, str], bool]


# ---------------------------------------------------------------------------- configs
@dataclasses.dataclass(frozen=True)
class QuantConfig:
    """Base of the per-format configs: ``format`` names the lowbit format, and
    :meth:`format_options` gives the options ``formats.get(format).quantize`` takes for a
    layer. The configs are frozen dataclasses: comparable and printable. Options are checked
    by the format when the config is made, not at the first layer."""

    format: ClassVar[str] = ""

    def __post_init__(self):
        fmt = formats.get(self.format)
        m = getattr(self, "method", "rtn")
        if not isinstance(m, str):
            raise ValueError(f"{type(self).__name__}: method must be a string such as 'rtn', got {m!r}")
        mo = getattr(self, "method_options", None)
        if mo is not None and not isinstance(mo, dict):
            raise ValueError(f"{type(self).__name__}: method_options must be a dict of the format's method "
                             f"hyper-parameters, got {mo!r}")
        if self.method_supported():
            fmt.parse_options(self._all_options(torch.bfloat16))
        else:
            fmt.parse_options(self._options(torch.bfloat16))

    @property
    def quant_method(self) -> str:
        return getattr(self, "method", "rtn")

    def method_supported(self) -> bool:
        """Whether this build's quantizer of the format takes ``method=`` (issue 8)."""
        return format_accepts(formats.get(self.format), "method")

    def _options(self, weight_dtype: torch.dtype) -> Dict[str, Any]:
        return {}

    def _all_options(self, weight_dtype: torch.dtype) -> Dict[str, Any]:
        opts = self._options(weight_dtype)
        if hasattr(self, "method"):
            opts["method"] = self.method
            opts.update(getattr(self, "method_options", None) or {})
        return opts

    def format_options(self, weight: Tensor) -> Dict[str, Any]:
        """Options for ``formats.get(self.format).quantize(weight, **options)`` (``act``
        excluded: quantize_ adds it). ``method`` and ``method_options`` are included where the
        format takes them; elsewhere only method="rtn" is possible (NotImplementedError)."""
        if self.method_supported():
            return self._all_options(weight.dtype)
        if self.quant_method != "rtn" or getattr(self, "method_options", None):
            raise NotImplementedError(
                f"{self}: method={self.quant_method!r} needs the optimized weight quantizers of issue 8 "
                f"(HQQ / AWQ), and this build's formats.get({self.format!r}).quantize takes no method yet; "
                f"use method='rtn' (round to nearest) without method_options")
        return self._options(weight.dtype)


@dataclasses.dataclass(frozen=True)
class Int4WeightOnly(QuantConfig):
    """a16w4: int4 weights, groups of 32 / 64 / 128 along K or -1 (per channel),
    asymmetric (zero point) or symmetric; 16-bit activations."""

    group_size: int = 128
    symmetric: bool = False
    method: str = "rtn"
    dtype: Optional[Union[torch.dtype, str]] = None
    method_options: Optional[Dict[str, Any]] = dataclasses.field(default=None, hash=False)
    format: ClassVar[str] = "a16w4"

    def _options(self, weight_dtype):
        dt = self.dtype
        if dt is None:
            dt = weight_dtype if weight_dtype in (torch.bfloat16, torch.float16) else torch.bfloat16
        return {"group_size": self.group_size, "symmetric": self.symmetric, "dtype": dt}


@dataclasses.dataclass(frozen=True)
class Int8WeightOnly(QuantConfig):
    """a16w8: int8 weights per channel; 16-bit activations."""

    format: ClassVar[str] = "a16w8"


@dataclasses.dataclass(frozen=True)
class Int8Dynamic(QuantConfig):
    """w8a8_int8: int8 weights per channel, activations quantized per token in the op."""

    format: ClassVar[str] = "w8a8_int8"


@dataclasses.dataclass(frozen=True)
class Fp8Dynamic(QuantConfig):
    """w8a8_fp8: e4m3 weights per channel ("row") or per tensor ("tensor"); activations
    quantized in the op, per token unless act_per_token says otherwise (default: per token
    for "row", per tensor for "tensor")."""

    granularity: str = "row"
    act_per_token: Optional[bool] = None
    format: ClassVar[str] = "w8a8_fp8"

    def _options(self, weight_dtype):
        return {"granularity": self.granularity, "act_per_token": self.act_per_token}


@dataclasses.dataclass(frozen=True)
class Fp8Block(QuantConfig):
    """fp8_block: e4m3 weights in 128x128 blocks, activations in 1x128 blocks (DeepSeek-V3)."""

    format: ClassVar[str] = "fp8_block"


@dataclasses.dataclass(frozen=True)
class MXFP8(QuantConfig):
    """mxfp8: MXFP8 weights and activations (e4m3 + E8M0 scale per 32 along K)."""

    format: ClassVar[str] = "mxfp8"


@dataclasses.dataclass(frozen=True)
class MXFP4WeightOnly(QuantConfig):
    """mxfp4: MXFP4 weights (e2m1 + E8M0 per 32); 16-bit activations."""

    method: str = "rtn"
    method_options: Optional[Dict[str, Any]] = dataclasses.field(default=None, hash=False)
    format: ClassVar[str] = "mxfp4"


@dataclasses.dataclass(frozen=True)
class MXFP8xMXFP4(QuantConfig):
    """a8w4_mx: MXFP4 weights times MXFP8 activations quantized in the op."""

    method: str = "rtn"
    method_options: Optional[Dict[str, Any]] = dataclasses.field(default=None, hash=False)
    format: ClassVar[str] = "a8w4_mx"


CONFIGS: Dict[str, type] = {c.format: c for c in (Int4WeightOnly, Int8WeightOnly, Int8Dynamic, Fp8Dynamic,
                                                 Fp8Block, MXFP8, MXFP4WeightOnly, MXFP8xMXFP4)}


def config_for(format: str, **kwargs) -> QuantConfig:
    """The config of a format given by name: ``config_for("a16w4", group_size=64)``."""
    formats.get(format)  # KeyError listing the formats
    return CONFIGS[format](**kwargs)


# ---------------------------------------------------------------------------- method plumbing
def format_accepts(fmt, keyword: str) -> bool:
    """Whether ``fmt.quantize`` takes `keyword`: as an option of the format (its defaults)
    or as a named parameter of its quantize."""
    if keyword in getattr(fmt, "defaults", {}):
        return True
    try:
        params = inspect.signature(fmt.quantize).parameters
    except (TypeError, ValueError):
        return False
    p = params.get(keyword)
    return p is not None and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)


def _check_method(config: QuantConfig, calibration_data) -> None:
    """Fails before any layer is converted if the method cannot run."""
    config.format_options(torch.empty(0, dtype=torch.bfloat16))   # NotImplementedError before issue 8
    if config.quant_method == "awq" and calibration_data is None:
        raise ValueError(f"{config}: method='awq' scales weight channels by the activations they multiply: "
                         f"pass calibration_data= (a batch of model inputs, or a list of them)")


def _quantize_kwargs(config: QuantConfig, weight: Tensor, act: Optional[Tensor]) -> Dict[str, Any]:
    kw = config.format_options(weight)
    if config.quant_method == "awq":
        kw["act"] = act
    return kw


# ---------------------------------------------------------------------------- report
@dataclasses.dataclass
class QuantizeReport:
    """What quantize_ did: the layers converted and the ones left alone, with why."""

    config: QuantConfig
    converted: List[str] = dataclasses.field(default_factory=list)
    skipped: Dict[str, str] = dataclasses.field(default_factory=dict)
    bytes_before: int = 0   # weights of the converted layers, as they were
    bytes_after: int = 0    # the same layers quantized (codes, scales, zeros)
    seconds: float = 0.0

    @property
    def format(self) -> str:
        return self.config.format

    def as_dict(self) -> Dict[str, Any]:
        return {"format": self.format, "config": repr(self.config), "converted": list(self.converted),
                "skipped": dict(self.skipped), "bytes_before": self.bytes_before,
                "bytes_after": self.bytes_after, "seconds": self.seconds}

    def __str__(self) -> str:
        lines = [f"quantize_ {self.config}: {len(self.converted)} layers converted to {self.format}, "
                 f"{len(self.skipped)} skipped; weights {self.bytes_before / 2**20:.1f} MiB -> "
                 f"{self.bytes_after / 2**20:.1f} MiB in {self.seconds:.1f} s"]
        lines += [f"  skipped {name}: {why}" for name, why in self.skipped.items()]
        return "\n".join(lines)


class _Progress:
    """tqdm if installed, else a line every ~10% on stderr."""

    def __init__(self, total: int, desc: str):
        self.total, self.n, self.desc = total, 0, desc
        try:
            from tqdm.auto import tqdm
            self.bar = tqdm(total=total, desc=desc, unit="layer")
        except ImportError:
            self.bar = None
            self.step = max(1, total // 10)

    def update(self, name: str):
        self.n += 1
        if self.bar is not None:
            self.bar.set_postfix_str(name, refresh=False)
            self.bar.update(1)
        elif self.n % self.step == 0 or self.n == self.total:
            print(f"{self.desc}: {self.n}/{self.total} layers", file=sys.stderr, flush=True)

    def close(self):
        if self.bar is not None:
            self.bar.close()


def _shape_reason(fmt, shape: Tuple[int, int], opts: Dict[str, Any]) -> str:
    try:
        fmt._check_shape(shape, fmt.parse_options(opts))
    except ValueError as e:
        return str(e)
    return f"{fmt.name} does not support shape {shape}"


def _set_submodule(model: _nn.Module, name: str, new: _nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, child, new)


# ---------------------------------------------------------------------------- quantize_
def quantize_(model: _nn.Module, config: Union[QuantConfig, str], filter_fn: Optional[FilterFn] = None, *,
              calibration_data=None, progress: Optional[bool] = None,
              max_calibration_rows: int = DEFAULT_CALIBRATION_ROWS) -> QuantizeReport:
    """Replaces, in place, every ``nn.Linear`` of `model` that ``filter_fn(module, name)``
    accepts (all of them without one) by a :class:`LowBitLinear` of ``config``'s format,
    quantized on the weight's device. Returns a :class:`QuantizeReport`.

    config: a QuantConfig (``Int4WeightOnly(group_size=64)``, ...) or a format name (its
    default config). Layers whose shape the format cannot take are left as they are and
    listed in ``report.skipped`` with the reason. LowBitLinear layers already there are not
    touched. calibration_data: model inputs for method="awq" (see :func:`record_linear_inputs`
    for the forms it takes); other methods ignore it. progress: a bar over the layers; None
    shows it when the layers hold >= 1e9 weights.

    If a layer fails to quantize (NaN weights, ...), the exception says which, and the layers
    before it stay converted.
    """
    if isinstance(config, str):
        config = config_for(config)
    if not isinstance(config, QuantConfig):
        raise TypeError(f"quantize_: config must be a lowbit_ext QuantConfig (Int4WeightOnly(), Fp8Dynamic(), "
                        f"...) or a format name, got {type(config).__name__}")
    _check_method(config, calibration_data)
    fmt = formats.get(config.format)
    t0 = time.perf_counter()
    report = QuantizeReport(config)

    todo: List[Tuple[str, _nn.Linear]] = []
    for name, mod in model.named_modules():
        if not isinstance(mod, _nn.Linear) or isinstance(mod, LowBitLinear):
            continue
        if filter_fn is not None and not filter_fn(mod, name):
            continue
        if isinstance(mod, _nn.modules.linear.NonDynamicallyQuantizableLinear):
            report.skipped[name] = ("the out_proj of an nn.MultiheadAttention, which reads its .weight directly "
                                    "instead of calling it")
            continue
        if name == "":
            report.skipped["(model)"] = ("the model itself is an nn.Linear, which cannot be replaced in place; "
                                         "wrap it (nn.Sequential(linear)) or use LowBitLinear.from_linear")
            continue
        shape = tuple(mod.weight.shape)
        opts = config.format_options(mod.weight)
        if not fmt.supports(shape, **opts):
            report.skipped[name] = _shape_reason(fmt, shape, opts)
            continue
        todo.append((name, mod))

    acts: Dict[str, Tensor] = {}
    if config.quant_method == "awq" and todo:
        wanted = {id(m) for _, m in todo}
        acts = record_linear_inputs(model, calibration_data, lambda m, n: id(m) in wanted,
                                    max_rows=max_calibration_rows)
        missing = [n for n, _ in todo if n not in acts]
        if missing:
            raise ValueError(f"quantize_: method='awq': these layers saw no input while the model ran on "
                             f"calibration_data, so they have no activations to calibrate with: {missing}")

    if progress is None:
        progress = sum(m.weight.numel() for _, m in todo) >= PROGRESS_MIN_PARAMS
    bar = _Progress(len(todo), f"quantize_ {config.format}") if progress and todo else None
    try:
        with torch.no_grad():
            for i, (name, mod) in enumerate(todo):
                W = mod.weight
                try:
                    qw = fmt.quantize(W, **_quantize_kwargs(config, W, acts.pop(name, None)))
                    new = LowBitLinear(qw, mod.bias)
                except Exception as e:
                    e.add_note(f"quantize_: while quantizing layer {name!r} ({tuple(W.shape)} "
                               f"{dtype_name(W.dtype)}) to {config.format}; the {i} layers before it "
                               f"were converted")
                    raise
                new.train(mod.training)
                _set_submodule(model, name, new)
                report.converted.append(name)
                report.bytes_before += W.numel() * W.element_size()
                report.bytes_after += new.nbytes()
                if bar:
                    bar.update(name)
    finally:
        if bar:
            bar.close()
    report.seconds = time.perf_counter() - t0
    return report
