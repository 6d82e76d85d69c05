"""a16w4: int4 weights in groups along K (or one group per row), 16-bit activations.

RTN quantizer, per output row n and group g of ``group_size`` consecutive elements of K
(group_size -1: the whole row). All arithmetic in fp32 on W upcast exactly.

Asymmetric (default; HQQ / AWQ style, integer zero point):
    lo = min(min_g w, 0), hi = max(max_g w, 0)       (the range always holds 0, see below)
    scale = S((hi - lo) / 15)
    zero  = clamp(round(-lo / scale), 0, 15)
    q     = clamp(round(w / scale + zero), 0, 15)     w_hat = (q - zero) * scale
Symmetric:
    scale = S(amax_g / 7)                              (so that +amax is reachable; code 0,
    q     = clamp(round(w / scale) + 8, 0, 15)          i.e. -8, is never produced)
    w_hat = (q - 8) * scale

round() is round-half-to-even (torch.round). S(v) is how the scale is stored: in the
activation dtype (option ``dtype``, bf16 or fp16: the op requires scales and zeros in x's
dtype), rounded *up* to the next value of that dtype, after flooring v at
max(1e-8, smallest normal of the dtype) (an all-zero group gets that floor and codes
equal to its zero point, so w_hat = 0 exactly). Codes and zero points are computed against
the stored scale, so w_hat is exactly what the kernel computes, and rounding the scale up
keeps every w of the group inside the representable range: |w_hat - w| <= scale / 2
(scale as stored).

Why the range holds 0: with the plain min/max rule a group whose values are all positive
(or all negative) gets a zero point outside 0..15, and clamping it would clip the whole
group. Including 0 costs nothing for the usual zero-centred weight groups (min < 0 < max)
and makes the clamp of ``zero`` a no-op.

Methods (option ``method``; every one produces exactly the tensors above, so the kernels
consume them unchanged):
- ``"rtn"`` (default): the rules above.
- ``"hqq"``: calibration-free. Starts from the RTN (scale, zero) and optimizes each group's
  zero point (and, with ``hqq_opt_scale``, its scale) by half-quadratic optimization of the
  lp-norm weight reconstruction error (formats/_hqq.py: ``hqq_iters`` steps, ``hqq_lp`` =
  p in (0, 1], penalty ``hqq_beta`` growing by ``hqq_kappa`` per step). Zero points become
  arbitrary floats (stored, like the scales, in ``dtype``); codes are recomputed against
  the stored (scale, zero) with the RTN rounding rule. Per group the squared weight error
  is never larger than RTN's; the RTN bound |w_hat - w| <= scale / 2 no longer holds (the
  lp norm lets a few extreme weights clip). Symmetric weights optimize the scale only.
  bf16 zero points are coarse near 15 (spacing 1/16 of a step); dtype=float16 keeps them
  finer where the model runs in fp16.
- ``"awq"``: activation-aware; needs ``quantize(W, act=x)``, x (tokens, K) the layer's
  calibration inputs. Searches a per-input-channel scale s (K,) (``awq_grid`` + 1 values
  of alpha in [0, 1], s = mean|x|^alpha normalized: formats/_awq.py), quantizes W * s with
  ``awq_inner`` ("rtn" or "hqq"), and keeps s as the extra tensor ``act_scale`` (float32
  (K,)): ``linear`` divides x by it before the op (one elementwise op; ``fold_awq_scale``
  moves it into the previous module instead). ``dequantize`` returns the effective weight
  (kernel matrix / s). A weight whose scale was folded has no ``act_scale``.
The method and its hyper-parameters are in ``options()``; ``act`` is not.

Storage: codes packed plain (uint8 (N, K/2), element 2i in the low nibble), then
``ops.prepack_w4`` to the kernel layout int32 (N, K/8); scales and zeros (N, K/group) in
``dtype`` (RTN zeros are the integers 0..15, exact in either dtype; HQQ zeros are any
float); symmetric stores no zeros; AWQ adds ``act_scale`` float32 (K,).
"""
import dataclasses
from typing import Any, Dict, Optional

import torch
from torch import Tensor

from .. import ops
from ._awq import awq_search, check_act, check_act_use, choice, finite_float, int_in
from ._base import (W4_LAYOUT_VERSION, FormatSpec, QuantizedWeight, check_bool, div_rn, dtype_name, expect,
                    expect_2d, pack_nibbles, parse_act_dtype, prepack_w4, unpack_nibbles)
from ._hqq import hqq_optimize

GROUP_SIZES = (32, 64, 128, -1)
K_W4 = 32           # 4-bit rows are stored 32 elements (16 bytes) at a time
SCALE_FLOOR = 1e-8  # raised to the dtype's smallest normal where that is larger (fp16: 2^-14)
METHODS = ("rtn", "hqq", "awq")
AWQ_INNER = ("rtn", "hqq")
# Hyper-parameters of the optimized methods (reported by every weight's options(), so a
# checkpoint says how to quantize another weight alike). HQQ's are the paper's defaults.
METHOD_DEFAULTS = {"hqq_iters": 20, "hqq_lp": 0.7, "hqq_beta": 10.0, "hqq_kappa": 1.01, "hqq_opt_scale": True,
                   "awq_grid": 20, "awq_inner": "rtn"}


@dataclasses.dataclass(repr=False)
class Int4Weight(QuantizedWeight):
    """int4 codes in the w4 kernel layout int32 (N, K/8); scales (and zeros when
    asymmetric) (N, K/group) in the activation dtype."""

    w: Tensor
    scales: Tensor
    zeros: Optional[Tensor]
    group_size: int
    symmetric: bool
    format: str = "a16w4"
    act_scale: Optional[Tensor] = None   # AWQ: float32 (K,); linear divides x by it
    method: str = "rtn"
    method_options: Dict[str, Any] = dataclasses.field(default_factory=dict)  # over METHOD_DEFAULTS

    TENSORS = ("w", "scales", "zeros", "act_scale")

    @property
    def shape(self):
        return (self.w.shape[0], self.w.shape[1] * 8)

    @property
    def dtype(self) -> torch.dtype:
        """The activation dtype this weight multiplies (that of its scales)."""
        return self.scales.dtype

    def options(self) -> Dict[str, Any]:
        return {"group_size": self.group_size, "symmetric": self.symmetric, "dtype": dtype_name(self.scales.dtype),
                "method": self.method, **METHOD_DEFAULTS, **self.method_options}


def round_up_to(v: Tensor, dtype: torch.dtype) -> Tensor:
    """Positive finite fp32 v -> the smallest `dtype` (bf16 / fp16) value >= v.
    RNE first; where that went down, step one unit up through the bit pattern (for
    positive floats the next pattern is the next value)."""
    r = v.to(dtype)
    up = (r.view(torch.int16) + 1).view(dtype)
    return torch.where(r.float() < v, up, r)


def scale_floor(dtype: torch.dtype) -> float:
    return max(SCALE_FLOOR, torch.finfo(dtype).tiny)


class A16W4(FormatSpec):
    w4_layout = W4_LAYOUT_VERSION
    weight_cls = Int4Weight
    k_multiple = K_W4
    k_reason = "4-bit weights are stored 32 elements per 16 bytes"

    def _normalize(self, opts):
        g = opts["group_size"]
        if isinstance(g, bool) or not isinstance(g, int) or g not in GROUP_SIZES:
            raise ValueError(f"{self.name}: option group_size must be one of 32, 64, 128 or -1 (per channel), "
                             f"got {g!r}")
        n = self.name
        out = {"group_size": g, "symmetric": check_bool(n, "symmetric", opts["symmetric"]),
               "dtype": parse_act_dtype(n, opts["dtype"]),
               "method": choice(n, "method", opts["method"], METHODS),
               "hqq_iters": int_in(n, "hqq_iters", opts["hqq_iters"], 1, 1000),
               "hqq_lp": finite_float(n, "hqq_lp", opts["hqq_lp"], 0.0, 1.0, True, False),
               "hqq_beta": finite_float(n, "hqq_beta", opts["hqq_beta"], 0.0, 1e30, True, False),
               "hqq_kappa": finite_float(n, "hqq_kappa", opts["hqq_kappa"], 1.0, 10.0, False, False),
               "hqq_opt_scale": check_bool(n, "hqq_opt_scale", opts["hqq_opt_scale"]),
               "awq_grid": int_in(n, "awq_grid", opts["awq_grid"], 1, 1000),
               "awq_inner": choice(n, "awq_inner", opts["awq_inner"], AWQ_INNER)}
        uses_hqq = out["method"] == "hqq" or (out["method"] == "awq" and out["awq_inner"] == "hqq")
        if uses_hqq and out["symmetric"] and not out["hqq_opt_scale"]:
            raise ValueError(f"{n}: HQQ with symmetric=True has no zero point to optimize, only the scale: "
                             f"it needs hqq_opt_scale=True")
        return out

    def _check_shape(self, shape, opts):
        super()._check_shape(shape, opts)
        g = opts["group_size"]
        if g != -1 and shape[1] % g:
            raise ValueError(f"{self.name}: K (W.shape[1]) must be a multiple of group_size = {g}, "
                             f"got K = {shape[1]}")

    def _tensor_names(self, opts):
        return ("w", "scales") if opts["symmetric"] else ("w", "scales", "zeros")

    def _optional_tensor_names(self, opts):
        # an AWQ weight keeps its input scale unless fold_awq_scale moved it into the model
        return ("act_scale",) if opts["method"] == "awq" else ()

    def _check_act_use(self, act, opts):
        check_act_use(self.name, act, opts["method"])

    def _quantize(self, W, opts):
        return self._pack(*self._fit(W, opts, hqq=opts["method"] == "hqq"), opts)

    def _quantize_act(self, W, opts, act):
        x = check_act(self.name, act, W.shape[1], W.device)
        hqq = opts["awq_inner"] == "hqq"

        def qdq(W_s):  # the search compares reconstructions; only the winner is packed
            fit = self._fit(W_s, opts, hqq)
            return fit, self._reconstruct(*fit, W_s.shape)

        fit, s, _ = awq_search(W.float(), x, opts["awq_grid"], qdq)
        return dataclasses.replace(self._pack(*fit, opts), act_scale=s)

    def _fit(self, W, opts, hqq):
        """Per group of W (N, K): the stored scale and zero (in ``dtype``; zero None when
        symmetric) and the codes against them, fp32 (N, G, g). RTN, HQQ-optimized when asked."""
        N, K = W.shape
        g = K if opts["group_size"] == -1 else opts["group_size"]
        dt = opts["dtype"]
        wg = W.float().reshape(N, K // g, g)
        floor = scale_floor(dt)
        if opts["symmetric"]:
            amax = wg.abs().amax(dim=-1)
            s16 = round_up_to(div_rn(amax, 7).clamp_min(floor), dt)
            z16 = None
            if hqq:
                s, _ = self._hqq(wg, s16.float(), None, opts, floor)
                s16 = s.to(dt)
            s = s16.float().unsqueeze(-1)
            q = (torch.round(wg / s) + 8).clamp_(0, 15)
        else:
            lo = wg.amin(dim=-1).clamp_max(0)
            hi = wg.amax(dim=-1).clamp_min(0)
            s16 = round_up_to(div_rn(hi - lo, 15).clamp_min(floor), dt)
            s = s16.float()
            z = torch.round(-lo / s).clamp_(0, 15)
            if hqq:
                s, z = self._hqq(wg, s, z, opts, floor)
                s16 = s.to(dt)
            q = torch.round(wg / s.unsqueeze(-1) + z.unsqueeze(-1)).clamp_(0, 15)
            z16 = z.to(dt)
        return s16, z16, q

    @staticmethod
    def _reconstruct(s16, z16, q, shape):
        """(q - z) * s as fp32 (N, K), exactly what the kernel computes."""
        z = 8.0 if z16 is None else z16.float().unsqueeze(-1)
        return ((q - z) * s16.float().unsqueeze(-1)).reshape(shape)

    def _pack(self, s16, z16, q, opts):
        N = q.shape[0]
        codes = q.to(torch.uint8).reshape(N, -1)
        w = prepack_w4(pack_nibbles(codes))
        return Int4Weight(w=w, scales=s16.contiguous(), zeros=None if z16 is None else z16.contiguous(),
                          group_size=opts["group_size"], symmetric=opts["symmetric"], method=opts["method"],
                          method_options={k: opts[k] for k in METHOD_DEFAULTS})

    @staticmethod
    def _hqq(wg, s, z, opts, floor):
        return hqq_optimize(wg, s, z, 15, iters=opts["hqq_iters"], p=opts["hqq_lp"], beta=opts["hqq_beta"],
                            kappa=opts["hqq_kappa"], opt_scale=opts["hqq_opt_scale"], dtype=opts["dtype"],
                            scale_floor=floor)

    def _check_act_dtype(self, x, qw):
        if x.dtype != qw.scales.dtype:
            raise ValueError(f"{self.name}: x is {dtype_name(x.dtype)} but this weight's scales are "
                             f"{dtype_name(qw.scales.dtype)} (quantize with dtype={x.dtype} to use it with "
                             f"{dtype_name(x.dtype)} activations)")

    def _linear2d(self, x, qw, bias):
        return ops.a16w4_linear(x, qw.w, qw.scales, qw.zeros, qw.group_size, bias)

    def _dequantize(self, qw):
        W_hat = self._kernel_matrix(qw)
        return W_hat if qw.act_scale is None else W_hat / qw.act_scale.float()

    @staticmethod
    def _kernel_matrix(qw):
        """(q - z) * s: the float32 (N, K) matrix the kernel multiplies (x / act_scale) by."""
        N, K = qw.shape
        codes = unpack_nibbles(ops.unpack_w4(qw.w)).float()
        g = K if qw.group_size == -1 else qw.group_size
        s = qw.scales.float().repeat_interleave(g, dim=1)
        z = qw.zeros.float().repeat_interleave(g, dim=1) if qw.zeros is not None else 8.0
        return (codes - z) * s

    def _from_tensors(self, t, opts):
        w = expect_2d(self.name, "w", t["w"], torch.int32)
        N, K = w.shape[0], w.shape[1] * 8
        self._check_shape((N, K), opts)
        g = K if opts["group_size"] == -1 else opts["group_size"]
        scales = expect(self.name, "scales", t["scales"], opts["dtype"], (N, K // g))
        zeros = None if opts["symmetric"] else expect(self.name, "zeros", t["zeros"], opts["dtype"], (N, K // g))
        act_scale = expect_act_scale(self.name, t["act_scale"], K) if "act_scale" in t else None
        return Int4Weight(w=w, scales=scales, zeros=zeros, group_size=opts["group_size"],
                          symmetric=opts["symmetric"], act_scale=act_scale, method=opts["method"],
                          method_options={k: opts[k] for k in METHOD_DEFAULTS})


def expect_act_scale(fmt: str, t: Tensor, K: int) -> Tensor:
    """An AWQ input scale from a checkpoint: float32 (K,), finite and positive."""
    t = expect(fmt, "act_scale", t, torch.float32, (K,))
    if t.device.type != "meta" and not bool(((t > 0) & torch.isfinite(t)).all()):
        raise ValueError(f"{fmt}: tensor 'act_scale' must be finite and positive everywhere (x is divided by it)")
    return t


A16W4_FORMAT = A16W4("a16w4", "a16w4_linear",
                     "16-bit activations x int4 weights, groups of 32/64/128 along K or per channel, "
                     "asymmetric (zero point) or symmetric",
                     defaults={"group_size": 128, "symmetric": False, "dtype": torch.bfloat16, "method": "rtn",
                               **METHOD_DEFAULTS})
