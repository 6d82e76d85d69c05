"""What every weight format shares: the QuantizedWeight base, the FormatSpec base (the
interface a benchmark or nn.LowBitLinear programs against), input validation and the small
decoders the dequantizers use.

A format is one FormatSpec instance. It quantizes a float weight W (N, K) into a
QuantizedWeight, runs the format's ``torch.ops.lowbit`` linear on it, dequantizes it back
to the float32 matrix the kernels multiply by, and rebuilds it from its tensors and options
(``tensors()`` / ``options()``: what a checkpoint stores).

Quantizers use only torch ops and lowbit ops, so they run on whichever device W is on.
``linear`` does only metadata checks (shape, dtype) before the op call, so it traces under
``torch.compile(fullgraph=True)``.
"""
import dataclasses
from typing import Any, ClassVar, Dict, Optional, Tuple

import torch
from torch import Tensor

from .. import ops
from .._library import has_cuda_kernel as _has_cuda_kernel

# Dtypes a weight may come in; float64 is accepted and converted to float32 first (every
# quantizer works in fp32, and the lowbit quantizer ops take bf16 / fp16 / fp32).
_FLOAT_DTYPES = (torch.bfloat16, torch.float16, torch.float32, torch.float64)
_ACT_DTYPES = (torch.bfloat16, torch.float16)
_DTYPE_NAMES = {"bfloat16": torch.bfloat16, "float16": torch.float16}


def _rows2d(t: Tensor) -> Tensor:
    """t as rows (M, K) for the quantizer ops: leading dimensions flattened (flatten(0, -2), not
    reshape(-1, K), which is ambiguous when a leading dim is 0), a vector as one row."""
    return t.flatten(0, -2) if t.dim() > 1 else t.unsqueeze(0)


def _norm_weight_fits(norm_weight: Tensor, x: Tensor, qw) -> bool:
    """Whether a fused RMSNorm quantizer takes this norm weight: (K,) in x's dtype."""
    return norm_weight.shape == (qw.shape[1],) and norm_weight.dtype == x.dtype


def dtype_name(dtype: torch.dtype) -> str:
    """torch.bfloat16 -> 'bfloat16' (the form options() reports: JSON-friendly)."""
    return str(dtype).replace("torch.", "")


def parse_act_dtype(fmt: str, value: Any) -> torch.dtype:
    """A 16-bit activation dtype given as torch.bfloat16 / torch.float16 or by name."""
    if isinstance(value, torch.dtype) and value in _ACT_DTYPES:
        return value
    if isinstance(value, str) and value.replace("torch.", "") in _DTYPE_NAMES:
        return _DTYPE_NAMES[value.replace("torch.", "")]
    raise ValueError(f"{fmt}: option dtype must be torch.bfloat16 or torch.float16 (the dtype of the "
                     f"activations x this weight will multiply), got {value!r}")


def check_bool(fmt: str, name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{fmt}: option {name} must be True or False, got {value!r}")
    return value


class QuantizedWeight:
    """Base of the per-family weight dataclasses. Subclasses are dataclasses whose fields
    are the tensors (named in TENSORS; an optional one may be None) and the options, plus
    ``format`` (the format's name)."""

    TENSORS: ClassVar[Tuple[str, ...]] = ()
    format: str

    def tensors(self) -> Dict[str, Tensor]:
        """name -> Tensor, the ones present (for state_dict / safetensors)."""
        return {k: getattr(self, k) for k in self.TENSORS if getattr(self, k) is not None}

    def options(self) -> Dict[str, Any]:
        """The format options this weight was quantized with (JSON-serializable values):
        ``formats.get(self.format).quantize(W, **qw.options())`` quantizes another W alike."""
        return {}

    @property
    def shape(self) -> Tuple[int, int]:
        """(N, K) of the float weight this stands for."""
        raise NotImplementedError

    @property
    def device(self) -> torch.device:
        return next(iter(self.tensors().values())).device

    def to(self, device) -> "QuantizedWeight":
        """A copy with every tensor moved to `device` (same object back if nothing moves)."""
        moved = {k: t.to(device) for k, t in self.tensors().items()}
        if all(moved[k] is getattr(self, k) for k in moved):
            return self
        return dataclasses.replace(self, **moved)

    def nbytes(self) -> int:
        """Bytes as stored (codes + scales + zeros): what a kernel streams per full read."""
        return sum(t.numel() * t.element_size() for t in self.tensors().values())

    def __repr__(self) -> str:
        parts = [f"{k}={tuple(t.shape)} {dtype_name(t.dtype)}" for k, t in self.tensors().items()]
        parts += [f"{k}={v!r}" for k, v in self.options().items()]
        return f"{type(self).__name__}({self.format!r}, shape={self.shape}, {', '.join(parts)})"


class FormatSpec:
    """One weight format: name, the op its linear calls, and its quantize / linear /
    dequantize / from_tensors. Subclasses set ``defaults`` (option -> default value) and
    implement the underscored hooks."""

    weight_cls: ClassVar[type] = QuantizedWeight
    # K must be a multiple of this (before any option-dependent requirement), and why.
    k_multiple: ClassVar[int] = 1
    w4_layout: ClassVar[Optional[int]] = None  # W4_LAYOUT_VERSION for formats stored in the w4 layout
    k_reason: ClassVar[str] = ""

    def __init__(self, name: str, op_name: str, description: str, defaults: Optional[Dict[str, Any]] = None):
        self.name = name
        self.op_name = op_name
        self.description = description
        self.defaults: Dict[str, Any] = dict(defaults or {})

    def __repr__(self) -> str:
        return f"FormatSpec({self.name!r}, op=lowbit.{self.op_name}, defaults={self.defaults})"

    def has_cuda_kernel(self) -> bool:
        """Whether torch.ops.lowbit.<op_name> has a CUDA kernel in this build."""
        return _has_cuda_kernel(self.op_name)

    # ---------------------------------------------------------------- public interface
    def quantize(self, W: Tensor, act: Optional[Tensor] = None, **options) -> QuantizedWeight:
        """Quantize W (N, K) (bf16 / fp16 / fp32 on any device) along K, per output row:
        round to nearest by default; formats with a ``method`` option also offer
        optimized quantizers that produce the same tensors. ``act``: calibration
        activations (tokens, K) of this layer's input, for the methods that use them
        (``method="awq"``); not stored, and not part of ``options()``."""
        opts = self.parse_options(options)
        W = self._check_weight(W, opts)
        self._check_act_use(act, opts)
        with torch.no_grad():
            return self._quantize(W, opts) if act is None else self._quantize_act(W, opts, act)

    def linear(self, x: Tensor, qw: QuantizedWeight, bias: Optional[Tensor] = None) -> Tensor:
        """y = x @ W^T (+ bias) through torch.ops.lowbit.<op_name>: x (..., K) bf16 / fp16,
        leading dims flattened for the op and restored; y (..., N) in x.dtype. A weight
        with an AWQ ``act_scale`` s (K,) divides x by it first (an extra elementwise op)."""
        self._check_qw(qw)
        N, K = qw.shape
        if x.dim() < 1 or x.shape[-1] != K:
            raise ValueError(f"{self.name}: x must have K = {K} as its last dimension (the weight is "
                             f"{N} x {K}), got shape {tuple(x.shape)}")
        if x.dtype not in _ACT_DTYPES:
            raise ValueError(f"{self.name}: x must be bfloat16 or float16, got {dtype_name(x.dtype)}")
        self._check_act_dtype(x, qw)
        lead = x.shape[:-1]
        x2 = _rows2d(x)
        act_scale = getattr(qw, "act_scale", None)
        if act_scale is not None:
            # AWQ input scale kept with the weight (formats/_awq.py): x / s, computed in fp32
            # and rounded once to x's dtype; one elementwise op before the kernel
            x2 = (x2 / act_scale).to(x.dtype)
        y = self._linear2d(x2.contiguous(), qw, bias)
        return y.reshape(*lead, N)

    def silu_mul_linear(self, gate: Tensor, up: Tensor, qw: QuantizedWeight, bias: Optional[Tensor] = None) -> Tensor:
        """``linear(silu(gate) * up)``: an MLP's down projection on its gate and up (..., K), which
        may be the halves of a fused gate-up output. Formats whose op quantizes x per token
        (``_per_token_mm``: w8a8_int8, w8a8_fp8 per token) compute silu(gate) * up inside their
        quantizer (``ops.silu_mul_quantize_*_per_token``: in fp32, rounded once to the dtype) and
        never write it, one pass fewer over the activations; the others call ``linear`` on
        ``F.silu(gate) * up`` as torch computes it (two roundings)."""
        return self._fused_quantizer_linear(
            "silu_mul", (gate, up), (), qw, bias, lambda: self.linear(torch.nn.functional.silu(gate) * up, qw, bias))

    def rms_norm_linear(self, x: Tensor, norm_weight: Tensor, eps: float, qw: QuantizedWeight,
                        bias: Optional[Tensor] = None) -> Tensor:
        """``linear(F.rms_norm(x, (K,), norm_weight, eps))``: a projection after an RMSNorm. Formats
        whose op quantizes x per token normalize inside their quantizer
        (``ops.rms_norm_quantize_*_per_token``: sum of squares in fp64, rounded once to the dtype)
        and never write the normalized x; the others call ``linear`` on torch's rms_norm."""
        def unfused():
            return self.linear(torch.nn.functional.rms_norm(x, (x.shape[-1],), norm_weight, eps), qw, bias)

        if not _norm_weight_fits(norm_weight, x, qw):
            return unfused()
        return self._fused_quantizer_linear("rms_norm", (x.contiguous(),), (norm_weight.contiguous(), float(eps)),
                                            qw, bias, unfused)

    def add_rms_norm_linear(self, x: Tensor, residual: Tensor, norm_weight: Tensor, eps: float, qw: QuantizedWeight,
                            bias: Optional[Tensor] = None) -> Tuple[Tensor, Tensor]:
        """``(linear(F.rms_norm(h, (K,), norm_weight, eps)), h)`` for ``h = x + residual``: a projection
        after a residual add and an RMSNorm, returning the sum (the residual stream goes on). Formats
        whose op quantizes x per token add, normalize and quantize in one kernel
        (``ops.add_rms_norm_quantize_*_per_token``: the sum rounded once to the dtype, as ``x +
        residual`` rounds it, then as ``rms_norm_linear``); the others add with torch and call
        ``rms_norm_linear``."""
        def unfused():
            h = x + residual
            return self.rms_norm_linear(h, norm_weight, eps, qw, bias), h

        if not _norm_weight_fits(norm_weight, x, qw):
            return unfused()
        return self._fused_quantizer_linear("add_rms_norm", (x.contiguous(), residual.contiguous()),
                                            (norm_weight.contiguous(), float(eps)), qw, bias, unfused)

    def _per_token_mm(self, qw: QuantizedWeight):
        """(codes, GEMM op) of a format whose op quantizes x per token: ("int8", ops.w8a8_int8_mm)
        or ("fp8", ops.w8a8_fp8_mm); None for the others (no fused quantizers)."""
        return None

    def _fused_quantizer_linear(self, producer: str, xs, extra, qw: QuantizedWeight, bias: Optional[Tensor],
                                unfused):
        """ops.<producer>_quantize_<codes>_per_token(*xs flattened to 2-D, *extra), then the format's
        GEMM on the codes: y, or (y, *the quantizer's further outputs in x's shape) where it returns
        more than codes and scales (the add's sum). ``unfused()`` (torch's producer, then ``linear``,
        which also raises the errors) where the format has no fused quantizer or the inputs (x first,
        the others of its shape and dtype) are not ones it takes."""
        per_token = self._per_token_mm(qw)
        N, K = qw.shape
        x = xs[0]
        if (per_token is None or getattr(qw, "act_scale", None) is not None or x.dim() < 1 or x.shape[-1] != K
                or x.dtype not in _ACT_DTYPES or any(t.shape != x.shape or t.dtype != x.dtype for t in xs[1:])):
            return unfused()
        self._check_qw(qw)
        self._check_act_dtype(x, qw)
        codes, mm = per_token
        quantize = getattr(ops, f"{producer}_quantize_{codes}_per_token")
        q, s, *more = quantize(*(_rows2d(t) for t in xs), *extra)
        y = mm(q, s, qw.w, qw.w_scale, bias, x.dtype).reshape(*x.shape[:-1], N)
        return (y, *(t.reshape(x.shape) for t in more)) if more else y

    def dequantize(self, qw: QuantizedWeight) -> Tensor:
        """The float32 (N, K) matrix ``linear`` multiplies x by (for tests and error reports):
        what the kernels multiply by, and for a weight with an AWQ ``act_scale`` s that
        matrix divided by s along K (``linear`` divides x by s before the kernel; only its
        rounding of x / s to x's dtype differs from x @ dequantize(qw)^T)."""
        self._check_qw(qw)
        with torch.no_grad():
            return self._dequantize(qw)

    def from_tensors(self, tensors: Dict[str, Tensor], options: Dict[str, Any]) -> QuantizedWeight:
        """Inverse of (qw.tensors(), qw.options()). Options left out take their defaults;
        every tensor's dtype and shape is checked against them."""
        opts = self.parse_options(dict(options))
        want = set(self._tensor_names(opts))
        optional = set(self._optional_tensor_names(opts))
        got = set(tensors)
        if not want <= got <= want | optional:
            missing, extra = sorted(want - got), sorted(got - want - optional)
            also = f" (optional: {sorted(optional)})" if optional else ""
            raise ValueError(f"{self.name}: from_tensors expects tensors {sorted(want)}{also} for options {opts}; "
                             f"missing {missing}, unexpected {extra}")
        devices = {t.device for t in tensors.values()}
        if len(devices) > 1:
            raise ValueError(f"{self.name}: from_tensors: all tensors must be on one device, got "
                             f"{ {k: str(t.device) for k, t in tensors.items()} }")
        return self._from_tensors(dict(tensors), opts)

    def supports(self, shape, **options) -> bool:
        """Whether a weight of this (N, K) shape can be quantized with these options."""
        try:
            self._check_shape(tuple(shape), self.parse_options(options))
            return True
        except ValueError:
            return False

    # ---------------------------------------------------------------- options and checks
    def parse_options(self, options: Dict[str, Any]) -> Dict[str, Any]:
        """Options merged over the defaults, validated and normalized (ValueError on a bad one)."""
        unknown = sorted(set(options) - set(self.defaults))
        if unknown:
            raise ValueError(f"{self.name}: unknown option(s) {unknown}; this format's options "
                             f"(with defaults) are {self.defaults}")
        return self._normalize({**self.defaults, **options})

    def _check_shape(self, shape: Tuple[int, ...], opts: Dict[str, Any]) -> None:
        if len(shape) != 2:
            raise ValueError(f"{self.name}: W must be 2-D (N, K) (out_features, in_features), got shape {shape}")
        N, K = shape
        if N < 1 or K < 1:
            raise ValueError(f"{self.name}: W must have N >= 1 rows and K >= 1 columns, got shape {shape}")
        if K % self.k_multiple:
            raise ValueError(f"{self.name}: K (W.shape[1]) must be a multiple of {self.k_multiple} "
                             f"({self.k_reason}), got K = {K}")

    def _check_weight(self, W: Tensor, opts: Dict[str, Any]) -> Tensor:
        """Validates W and returns it detached, float32 if it was float64, and dense with a
        16-byte aligned start (what the lowbit quantizer ops require)."""
        if not isinstance(W, Tensor):
            raise ValueError(f"{self.name}: W must be a torch.Tensor, got {type(W).__name__}")
        if W.dtype not in _FLOAT_DTYPES:
            raise ValueError(f"{self.name}: W must be a floating tensor (bfloat16, float16 or float32), "
                             f"got dtype {dtype_name(W.dtype)}")
        self._check_shape(tuple(W.shape), opts)
        W = W.detach()
        if W.dtype == torch.float64:
            W = W.float()
        if not bool(torch.isfinite(W).all()):
            raise ValueError(f"{self.name}: W holds NaN or Inf values; a quantized weight would be NaN "
                             f"in every row they touch")
        return dense_aligned(W)

    def _check_qw(self, qw: QuantizedWeight) -> None:
        if not isinstance(qw, self.weight_cls) or qw.format != self.name:
            got = getattr(qw, "format", type(qw).__name__)
            raise ValueError(f"{self.name}: expected a {self.weight_cls.__name__} of format {self.name!r}, "
                             f"got {got!r}")

    def _check_act_dtype(self, x: Tensor, qw: QuantizedWeight) -> None:
        pass

    def _check_act_use(self, act: Optional[Tensor], opts: Dict[str, Any]) -> None:
        """Whether calibration activations are given exactly when the options use them."""
        if act is not None:
            raise ValueError(f"{self.name}: act= (calibration activations) is not used by this format's "
                             f"quantizer with options {opts}")

    # ---------------------------------------------------------------- hooks
    def _normalize(self, opts: Dict[str, Any]) -> Dict[str, Any]:
        return opts

    def _tensor_names(self, opts: Dict[str, Any]) -> Tuple[str, ...]:
        """The tensors a weight quantized with these options always has."""
        return self.weight_cls.TENSORS

    def _optional_tensor_names(self, opts: Dict[str, Any]) -> Tuple[str, ...]:
        """Tensors it may have besides (from_tensors accepts them present or absent)."""
        return ()

    def _quantize(self, W: Tensor, opts: Dict[str, Any]) -> QuantizedWeight:
        raise NotImplementedError

    def _quantize_act(self, W: Tensor, opts: Dict[str, Any], act: Tensor) -> QuantizedWeight:
        raise NotImplementedError

    def _linear2d(self, x: Tensor, qw: QuantizedWeight, bias: Optional[Tensor]) -> Tensor:
        raise NotImplementedError

    def _dequantize(self, qw: QuantizedWeight) -> Tensor:
        raise NotImplementedError

    def _from_tensors(self, tensors: Dict[str, Tensor], opts: Dict[str, Any]) -> QuantizedWeight:
        raise NotImplementedError


# ---------------------------------------------------------------- tensor checks for from_tensors
def expect(fmt: str, name: str, t: Tensor, dtype: torch.dtype, shape: Tuple[int, ...]) -> Tensor:
    if not isinstance(t, Tensor):
        raise ValueError(f"{fmt}: tensor {name!r} must be a torch.Tensor, got {type(t).__name__}")
    if t.dtype != dtype:
        raise ValueError(f"{fmt}: tensor {name!r} must be {dtype_name(dtype)}, got {dtype_name(t.dtype)}")
    if tuple(t.shape) != tuple(shape):
        raise ValueError(f"{fmt}: tensor {name!r} must have shape {tuple(shape)}, got {tuple(t.shape)}")
    return dense_aligned(t)


def dense_aligned(t: Tensor) -> Tensor:
    """t itself if contiguous with a 16-byte aligned start (what every lowbit op requires
    of its operands), else an aligned copy. Tensors loaded from a checkpoint (safetensors
    maps the file: a tensor starts wherever the header put it) are often misaligned."""
    if t.is_contiguous() and t.data_ptr() % 16 == 0:
        return t
    return t.clone(memory_format=torch.contiguous_format)


def expect_2d(fmt: str, name: str, t: Tensor, dtype: torch.dtype) -> Tensor:
    if not isinstance(t, Tensor) or t.dim() != 2 or t.shape[0] < 1:
        raise ValueError(f"{fmt}: tensor {name!r} must be a 2-D tensor with at least one row, got "
                         f"{tuple(t.shape) if isinstance(t, Tensor) else type(t).__name__}")
    return expect(fmt, name, t, dtype, tuple(t.shape))


# ---------------------------------------------------------------- 4-bit and MX helpers
# The w4 kernel layout version that ops.prepack_w4 writes: lowbit::w4::kLayoutVersion
# (csrc/include/lowbit/w4_layout.h; the library's ABI version changes with it). Recorded in
# every 4-bit layer's checkpoint metadata, so a tensor packed by another version is refused.
W4_LAYOUT_VERSION = 3


def prepack_w4(plain: Tensor) -> Tensor:
    """ops.prepack_w4 on plain's device; where that device has no kernel for it (a CUDA
    tensor in a build without one), on a CPU copy and back: it moves K/2 bytes per row,
    little next to what a quantizer computes, so quantizers still run where W is."""
    from .. import ops
    if plain.device.type == "cuda" and not _has_cuda_kernel("prepack_w4"):
        return ops.prepack_w4(plain.cpu()).to(plain.device)
    return ops.prepack_w4(plain)


def div_rn(t: Tensor, d: float) -> Tensor:
    """t / d rounded once, the same on every device. PyTorch's CUDA division by a Python
    number multiplies by its reciprocal (two roundings), so ``t / 15`` on a CUDA tensor can
    differ from the CPU result in the last bit, and a weight quantized on the GPU would then
    differ from the same weight quantized on the CPU (seen: a16w4 codes on the H100)."""
    return t / torch.full_like(t, d)


def pack_nibbles(q: Tensor) -> Tensor:
    """codes uint8 (N, K), 0..15 -> plain 4-bit layout uint8 (N, K/2), element 2i low nibble."""
    return (q[:, 0::2] | (q[:, 1::2] << 4)).contiguous()


def unpack_nibbles(plain: Tensor) -> Tensor:
    """plain 4-bit layout uint8 (N, K/2) -> codes uint8 (N, K)."""
    lo, hi = plain & 0xF, plain >> 4
    return torch.stack((lo, hi), dim=-1).reshape(plain.shape[0], plain.shape[1] * 2)


def e8m0_to_float(s: Tensor) -> Tensor:
    """E8M0 bytes -> fp32 2^(s - 127), built from bits (exact; 0 -> 2^-127, a subnormal;
    0xFF -> NaN)."""
    si = s.to(torch.int32)
    bits = torch.where(si == 0, torch.full_like(si, 1 << 22), si << 23)
    v = bits.view(torch.float32)
    return torch.where(si == 255, torch.full_like(v, float("nan")), v)


_E2M1 = (0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0)


def e2m1_to_float(codes: Tensor) -> Tensor:
    """e2m1 codes (0..15, sign in bit 3) -> fp32 values."""
    lut = torch.tensor(_E2M1 + tuple(-v for v in _E2M1), dtype=torch.float32, device=codes.device)
    return lut[codes.long()]
