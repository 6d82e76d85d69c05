"""LowBitLinear: an ``nn.Linear`` whose weight is held in one of the lowbit formats.

    from lowbit_ext.nn import LowBitLinear
    layer = LowBitLinear.from_linear(nn.Linear(4096, 4096), "a16w4", group_size=64)
    y = layer(x)                  # x (..., 4096) bf16 / fp16 -> y (..., 4096) in x's dtype

What it holds:
  * the quantized weight's tensors (``qw.tensors()``: e.g. ``w``, ``scales``, ``zeros`` for
    a16w4, ``w``, ``w_scale`` for the others) as *buffers* of those names, so that
    ``.to(device)``, ``.cuda()``, ``state_dict`` and ``load_state_dict`` carry them;
  * ``bias`` as a Parameter (``requires_grad=False``: the ops have no backward) or None;
  * ``in_features``, ``out_features``, ``format`` (the format's name) and ``options`` (the
    format options, JSON-serializable: ``qw.options()``).

Its ``state_dict`` also holds an ``_extra_state`` entry per layer: ``{"format", "options",
"in_features", "out_features"}``. ``load_state_dict`` checks it first, so a checkpoint of
another format or other options fails with a message that says so (two formats can store
tensors of identical names, shapes and dtypes: a16w8 and w8a8_int8 do).

Dtypes. The quantized tensors keep their dtypes under module-wide casts: ``model.to(
torch.bfloat16)``, ``.half()`` or ``.float()`` move them between devices but never convert
e4m3 codes or fp32 scales (a cast would destroy them); only the bias follows such casts.
The a16w4 format's scales are stored in the activation dtype chosen at quantization time:
to run an a16w4 layer with the other 16-bit dtype, quantize again.

Activations must be bfloat16 or float16 (the ops take nothing else). A float32 input is an
error, not a silent cast: a model running in fp32 everywhere else would hide the cast and
return another dtype than it was given; cast the model instead (``model.to(torch.bfloat16)``).

The forward is one op call (``torch.ops.lowbit.<format>_linear`` through the format's
``linear``), with only metadata checks before it, so it traces under
``torch.compile(fullgraph=True)``. On CPU the op runs its reference implementation; on CUDA
the op picks the kernel. Under torch.compile with LOWBIT_COMPILE_ACT_QUANT=1 the
8-bit-activation formats (w8a8_int8, w8a8_fp8 per token, fp8_block) quantize x with
lowbit_ext.act_quant (torch ops inductor fuses into x's producer) and then call one op, the
GEMM on the codes (off by default: no faster on Llama-3-8B, bench/NOTES.md session 13).
"""
import dataclasses
from typing import Any, Dict, Optional, Tuple

import torch
from torch import Tensor
from torch import nn as _nn

from . import formats
from .formats._base import QuantizedWeight, dense_aligned, dtype_name

_ACT_DTYPES = (torch.bfloat16, torch.float16)


def _aligned_rows(t: Tensor) -> Tensor:
    """t, or a dense copy of it where the ops could not take it: they need each row's elements
    contiguous from a 16-byte aligned address (an offset view such as x[:, 1:] may not have that).
    Eager only: under torch.compile the inputs are fakes, and inductor's buffers are aligned."""
    if torch.compiler.is_compiling() or t.dim() == 0:
        return t
    ok = (t.stride(-1) == 1 and t.data_ptr() % 16 == 0
          and all(st * t.element_size() % 16 == 0 for st in t.stride()[:-1]))
    return t if ok else t.clone(memory_format=torch.contiguous_format)


def _json_options(options: Dict[str, Any]) -> Dict[str, Any]:
    """Options with torch dtypes written by name (the form qw.options() uses)."""
    return {k: (dtype_name(v) if isinstance(v, torch.dtype) else v) for k, v in options.items()}


def _canonical_options(fmt_name: str, options: Any) -> Any:
    """Options merged over the format's defaults and normalized (JSON form); as given if the
    format rejects them (then they differ from any valid set)."""
    try:
        return _json_options(formats.get(fmt_name).parse_options(dict(options)))
    except (ValueError, TypeError, KeyError):
        return options


class LowBitLinear(_nn.Module):
    """y = x @ W^T + bias with W quantized in a lowbit format. Build it with
    :meth:`from_linear` (quantizes an ``nn.Linear``), :meth:`from_tensors` (from a
    checkpoint's tensors) or from a ``QuantizedWeight`` directly."""

    def __init__(self, qw: QuantizedWeight, bias: Optional[Tensor] = None):
        super().__init__()
        if not isinstance(qw, QuantizedWeight):
            raise TypeError(f"LowBitLinear: expected a lowbit_ext QuantizedWeight, got {type(qw).__name__}")
        formats.get(qw.format)  # KeyError listing the formats if unknown
        self.format: str = qw.format
        self.options: Dict[str, Any] = _json_options(qw.options())
        self.out_features, self.in_features = (int(d) for d in qw.shape)
        self._qw_cls = type(qw)
        # the weight's non-tensor fields (group_size, format, ...): rebuilt around the buffers
        self._qw_static = {f.name: getattr(qw, f.name) for f in dataclasses.fields(qw)
                           if f.name not in qw.TENSORS}
        self._tensor_names = tuple(qw.tensors())
        self._absent = tuple(k for k in qw.TENSORS if k not in self._tensor_names)
        for k, t in qw.tensors().items():
            self.register_buffer(k, dense_aligned(t.detach()))
        if bias is not None:
            bias = bias.detach()
            if bias.shape != (self.out_features,):
                raise ValueError(f"LowBitLinear: bias must have shape ({self.out_features},), got "
                                 f"{tuple(bias.shape)}")
            self.bias = _nn.Parameter(dense_aligned(bias.clone()), requires_grad=False)
        else:
            self.register_parameter("bias", None)

    # ------------------------------------------------------------------ constructors
    @classmethod
    def from_linear(cls, linear: _nn.Linear, format: str, **options) -> "LowBitLinear":
        """Quantizes ``linear.weight`` with ``formats.get(format).quantize(W, **options)`` on
        the weight's device; the bias is copied as is."""
        if not isinstance(linear, _nn.Linear):
            raise TypeError(f"LowBitLinear.from_linear: expected an nn.Linear, got {type(linear).__name__}")
        qw = formats.get(format).quantize(linear.weight, **options)
        return cls(qw, linear.bias)

    @classmethod
    def from_tensors(cls, format: str, tensors: Dict[str, Tensor], options: Dict[str, Any],
                     bias: Optional[Tensor] = None) -> "LowBitLinear":
        """From a checkpoint's tensors (names as ``qw.tensors()``) and options; every tensor is
        checked against the format (dtype, shape) and copied to an aligned one if needed."""
        return cls(formats.get(format).from_tensors(tensors, options), bias)

    # ------------------------------------------------------------------ the weight
    def quantized_weight(self) -> QuantizedWeight:
        """The format's QuantizedWeight around this module's buffers (no copy)."""
        t = {k: self._buffers[k] for k in self._tensor_names}
        t.update({k: None for k in self._absent})
        return self._qw_cls(**t, **self._qw_static)

    def dequantize(self) -> Tensor:
        """The float32 (out_features, in_features) weight the kernels multiply by."""
        return formats.get(self.format).dequantize(self.quantized_weight())

    def nbytes(self) -> int:
        """Bytes of the quantized weight (codes, scales, zeros), bias excluded."""
        return sum(self._buffers[k].numel() * self._buffers[k].element_size() for k in self._tensor_names)

    # ------------------------------------------------------------------ forward
    def forward(self, x: Tensor) -> Tensor:
        if x.dtype not in _ACT_DTYPES:
            raise TypeError(
                f"LowBitLinear({self.format}): input is {dtype_name(x.dtype)}, but lowbit ops take "
                f"bfloat16 or float16 activations; cast the model, e.g. model.to(torch.bfloat16) "
                f"(quantized weights keep their dtypes under such a cast)")
        return formats.get(self.format).linear(_aligned_rows(x), self.quantized_weight(), self._bias_in(x.dtype))

    def forward_silu_mul(self, gate: Tensor, up: Tensor) -> Tensor:
        """``self(F.silu(gate) * up)`` for an MLP's down projection: w8a8_int8 and w8a8_fp8 (per
        token) fuse silu(gate) * up into their activation quantizer (the format's
        ``silu_mul_linear`` says how it rounds); other formats compute it with torch first."""
        if gate.dtype not in _ACT_DTYPES:
            return self(torch.nn.functional.silu(gate) * up)  # (forward raises the dtype error)
        return formats.get(self.format).silu_mul_linear(_aligned_rows(gate), _aligned_rows(up), self.quantized_weight(),
                                                        self._bias_in(gate.dtype))

    def forward_rms_norm(self, x: Tensor, norm_weight: Tensor, eps: float) -> Tensor:
        """``self(F.rms_norm(x, (K,), norm_weight, eps))`` for a projection after an RMSNorm:
        w8a8_int8 and w8a8_fp8 (per token) normalize inside their activation quantizer (the
        format's ``rms_norm_linear`` says how it rounds); other formats run torch's rms_norm."""
        if x.dtype not in _ACT_DTYPES:
            return self(torch.nn.functional.rms_norm(x, (x.shape[-1],), norm_weight, eps))
        return formats.get(self.format).rms_norm_linear(_aligned_rows(x), norm_weight, eps, self.quantized_weight(),
                                                        self._bias_in(x.dtype))

    def forward_add_rms_norm(self, x: Tensor, residual: Tensor, norm_weight: Tensor,
                             eps: float) -> Tuple[Tensor, Tensor]:
        """``(self(F.rms_norm(h, (K,), norm_weight, eps)), h)`` for ``h = x + residual``, a projection
        after a decoder block's residual add and norm: w8a8_int8 and w8a8_fp8 (per token) add,
        normalize and quantize in one kernel (the format's ``add_rms_norm_linear``); other formats
        add with torch, then as ``forward_rms_norm``."""
        if x.dtype not in _ACT_DTYPES or residual.dtype != x.dtype:
            h = x + residual
            return self.forward_rms_norm(h, norm_weight, eps), h
        return formats.get(self.format).add_rms_norm_linear(_aligned_rows(x), _aligned_rows(residual), norm_weight, eps,
                                                            self.quantized_weight(), self._bias_in(x.dtype))

    def _bias_in(self, dtype: torch.dtype) -> Optional[Tensor]:
        """The bias in the output (= the activations') dtype, as the ops take it."""
        bias = self.bias
        return bias.to(dtype) if bias is not None and bias.dtype != dtype else bias

    def extra_repr(self) -> str:
        # The format's first four options always (a16w4: group_size, symmetric, dtype, method),
        # the rest (method hyper-parameters) only where they differ from the format's defaults:
        # print(model) stays one short line per layer.
        defaults = _json_options(formats.get(self.format).defaults)
        shown = [(k, v) for i, (k, v) in enumerate(self.options.items()) if i < 4 or defaults.get(k, v) != v]
        opts = "".join(f", {k}={v}" for k, v in shown)
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}, format={self.format}{opts}")

    # ------------------------------------------------------------------ dtypes and devices
    def _apply(self, fn, recurse=True):
        # Module-wide casts (model.to(dtype), .half(), .float()) convert every floating
        # buffer, and e4m3 codes and fp32 scales count as floating: fn sees the quantized
        # tensors as raw bytes (an integer view), so device moves apply and casts do not.
        quantized = {k: self._buffers.pop(k) for k in self._tensor_names}
        try:
            super()._apply(fn, recurse)
            moved = {k: fn(t.view(torch.uint8)).view(t.dtype) for k, t in quantized.items()}
        except BaseException:
            self._buffers.update(quantized)  # the module stays as it was
            raise
        self._buffers.update(moved)  # bias is a parameter: these are the only buffers, in order
        return self

    # ------------------------------------------------------------------ checkpoints
    def layer_metadata(self) -> Dict[str, Any]:
        """What a checkpoint records of this layer (state_dict's _extra_state, safetensors
        metadata): format, options, features, bias."""
        meta = {"format": self.format, "options": dict(self.options), "in_features": self.in_features,
                "out_features": self.out_features, "bias": self.bias is not None}
        layout = formats.get(self.format).w4_layout
        if layout is not None:  # 4-bit weights: the packing version the tensors are in
            meta["w4_layout"] = layout
        return meta

    def get_extra_state(self) -> Dict[str, Any]:
        return self.layer_metadata()

    def set_extra_state(self, state: Any) -> None:
        mismatch = self.metadata_mismatch(state)
        if mismatch:
            raise RuntimeError(mismatch)

    def metadata_mismatch(self, meta: Any, where: str = "") -> Optional[str]:
        """None if a checkpoint layer's metadata `meta` describes this layer; else why not."""
        mine = self.layer_metadata()
        if not isinstance(meta, dict) or "format" not in meta:
            return (f"the checkpoint's entry for {where or 'this layer'} is not a lowbit_ext layer "
                    f"description: {meta!r}")
        theirs = {"format": meta.get("format"), "options": meta.get("options", {}),
                  "in_features": meta.get("in_features"), "out_features": meta.get("out_features"),
                  "bias": meta.get("bias", mine["bias"])}
        if "w4_layout" in mine:
            theirs["w4_layout"] = meta.get("w4_layout")
        if theirs["format"] == mine["format"]:
            # options compared with the format's defaults filled in: a checkpoint written
            # before an option existed still matches a layer that has its default
            theirs["options"] = _canonical_options(self.format, theirs["options"])
            mine["options"] = _canonical_options(self.format, mine["options"])
        if theirs == mine:
            return None
        if theirs["format"] != mine["format"]:
            what = f"format {theirs['format']!r}, but this model's layer is {mine['format']!r}"
        elif theirs["options"] != mine["options"]:
            what = (f"{theirs['format']} with options {theirs['options']}, but this model's layer has "
                    f"options {mine['options']}")
        elif (theirs["in_features"], theirs["out_features"]) != (mine["in_features"], mine["out_features"]):
            what = (f"{theirs['out_features']} x {theirs['in_features']} (out x in), but this model's layer "
                    f"is {mine['out_features']} x {mine['in_features']}")
        elif theirs.get("w4_layout") != mine.get("w4_layout"):
            got = theirs.get("w4_layout")
            got = (f"version {got}" if got is not None
                   else "of an unrecorded version (from before layout versions were recorded: 1 or 2)")
            return (f"lowbit_ext: the checkpoint's layer {where or ''} holds 4-bit weights packed in w4 layout "
                    f"{got}, but this lowbit_ext packs and reads version {mine['w4_layout']} (the word order "
                    f"changed, so the tensors no longer mean what they did); quantize the model again from its "
                    f"original weights and save it again")
        else:
            what = (f"bias={theirs['bias']}, but this model's layer has bias={mine['bias']}")
        return (f"lowbit_ext: the checkpoint's layer {where or ''} was quantized as {what}; quantize the "
                f"model with the checkpoint's config, or load the file into the unquantized model with "
                f"lowbit_ext.load_quantized (which builds each layer as the checkpoint says)")

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys,
                              unexpected_keys, error_msgs):
        # The format check first: with another format, every tensor message below would
        # only be a symptom. Then dtypes, which copy_ would otherwise convert silently.
        key = prefix + "_extra_state"
        name = prefix[:-1] if prefix.endswith(".") else prefix
        if key in state_dict:
            mismatch = self.metadata_mismatch(state_dict[key], name or "(root)")
            if mismatch:
                error_msgs.append(mismatch)
                return
        for k in self._tensor_names:
            t = state_dict.get(prefix + k)
            if isinstance(t, Tensor) and t.dtype != self._buffers[k].dtype:
                error_msgs.append(
                    f"lowbit_ext: {prefix + k} is {dtype_name(t.dtype)} in the checkpoint but "
                    f"{dtype_name(self._buffers[k].dtype)} in this {self.format} layer; the checkpoint "
                    f"was not made from a layer of this format and options")
                return
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys,
                                      unexpected_keys, error_msgs)
        for k in self._tensor_names:  # load_state_dict(assign=True) may bring misaligned tensors
            self._buffers[k] = dense_aligned(self._buffers[k])
