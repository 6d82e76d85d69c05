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

Storage: codes packed plain (uint8 (N, K/2), element 2i in the low nibble), then
``ops.prepack_w4`` to the kernel layout int32 (N, K/8); scales and zeros (N, K/group) in
``dtype`` (zeros are the integers 0..15, exact in either dtype); symmetric stores no zeros.
"""
import dataclasses
from typing import Any, Dict, Optional

import torch
from torch import Tensor

from .. import ops
from ._base import (FormatSpec, QuantizedWeight, check_bool, dtype_name, expect, expect_2d, pack_nibbles,
                    parse_act_dtype, unpack_nibbles)

GROUP_SIZES = (32, 64, 128, -1)
K_W4 = 32           # 4-bit rows are stored 32 elements (16 bytes) at a time
SCALE_FLOOR = 1e-8  # raised to the dtype's smallest normal where that is larger (fp16: 2^-14)


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

    TENSORS = ("w", "scales", "zeros")

    @property
    def shape(self):
        return (self.w.shape[0], self.w.shape[1] * 8)

    @property
    def dtype(self) -> torch.dtype:
        """The activation dtype this weight multiplies (that of its scales)."""
        return self.scales.dtype

    def options(self) -> Dict[str, Any]:
        return {"group_size": self.group_size, "symmetric": self.symmetric, "dtype": dtype_name(self.scales.dtype)}


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
    weight_cls = Int4Weight
    k_multiple = K_W4
    k_reason = "4-bit weights are stored 32 elements per 16 bytes"

    def _normalize(self, opts):
        g = opts["group_size"]
        if isinstance(g, bool) or not isinstance(g, int) or g not in GROUP_SIZES:
            raise ValueError(f"{self.name}: option group_size must be one of 32, 64, 128 or -1 (per channel), "
                             f"got {g!r}")
        return {"group_size": g, "symmetric": check_bool(self.name, "symmetric", opts["symmetric"]),
                "dtype": parse_act_dtype(self.name, opts["dtype"])}

    def _check_shape(self, shape, opts):
        super()._check_shape(shape, opts)
        g = opts["group_size"]
        if g != -1 and shape[1] % g:
            raise ValueError(f"{self.name}: K (W.shape[1]) must be a multiple of group_size = {g}, "
                             f"got K = {shape[1]}")

    def _tensor_names(self, opts):
        return ("w", "scales") if opts["symmetric"] else ("w", "scales", "zeros")

    def _quantize(self, W, opts):
        N, K = W.shape
        g = K if opts["group_size"] == -1 else opts["group_size"]
        dt = opts["dtype"]
        wg = W.float().reshape(N, K // g, g)
        floor = scale_floor(dt)
        if opts["symmetric"]:
            amax = wg.abs().amax(dim=-1)
            s16 = round_up_to((amax / 7).clamp_min(floor), dt)
            s = s16.float().unsqueeze(-1)
            q = (torch.round(wg / s) + 8).clamp_(0, 15)
            z16 = None
        else:
            lo = wg.amin(dim=-1).clamp_max(0)
            hi = wg.amax(dim=-1).clamp_min(0)
            s16 = round_up_to(((hi - lo) / 15).clamp_min(floor), dt)
            s = s16.float()
            z = torch.round(-lo / s).clamp_(0, 15)
            q = torch.round(wg / s.unsqueeze(-1) + z.unsqueeze(-1)).clamp_(0, 15)
            z16 = z.to(dt).contiguous()
        codes = q.to(torch.uint8).reshape(N, K)
        w = ops.prepack_w4(pack_nibbles(codes))
        return Int4Weight(w=w, scales=s16.contiguous(), zeros=z16, group_size=opts["group_size"],
                          symmetric=opts["symmetric"])

    def _check_act_dtype(self, x, qw):
        if x.dtype != qw.scales.dtype:
            raise ValueError(f"{self.name}: x is {dtype_name(x.dtype)} but this weight's scales are "
                             f"{dtype_name(qw.scales.dtype)} (quantize with dtype={x.dtype} to use it with "
                             f"{dtype_name(x.dtype)} activations)")

    def _linear2d(self, x, qw, bias):
        return ops.a16w4_linear(x, qw.w, qw.scales, qw.zeros, qw.group_size, bias)

    def _dequantize(self, qw):
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
        return Int4Weight(w=w, scales=scales, zeros=zeros, group_size=opts["group_size"],
                          symmetric=opts["symmetric"])


A16W4_FORMAT = A16W4("a16w4", "a16w4_linear",
                     "16-bit activations x int4 weights, groups of 32/64/128 along K or per channel, "
                     "asymmetric (zero point) or symmetric",
                     defaults={"group_size": 128, "symmetric": False, "dtype": torch.bfloat16})
