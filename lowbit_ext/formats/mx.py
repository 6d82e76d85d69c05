"""OCP MX v1.0 weights, one E8M0 scale per 32 elements along K: mxfp8 (e4m3 elements;
activations quantized to MXFP8 in the op), mxfp4 (e2m1 elements; 16-bit activations) and
a8w4_mx (the mxfp4 weight times MXFP8 activations quantized in the op).

Quantizers: ``ops.quantize_mxfp8(W)`` / ``ops.quantize_mxfp4(W)`` (the spec's FLOOR rule:
shared exponent e = floor(log2(amax_block)) - emax_elem, elements RNE-saturated to the
element format; csrc/cpu/quantize.cpp). The 4-bit codes are then prepacked to the w4
kernel layout (``ops.prepack_w4``), so mxfp4 and a8w4_mx store identical tensors.
"""
import dataclasses

import torch
from torch import Tensor

from .. import ops
from ._base import FormatSpec, QuantizedWeight, e2m1_to_float, e8m0_to_float, expect, expect_2d, unpack_nibbles

FP8 = torch.float8_e4m3fn
MX_BLOCK = 32


@dataclasses.dataclass(repr=False)
class MXWeight(QuantizedWeight):
    """Elements: e4m3 (N, K) (mxfp8) or e2m1 codes in the w4 kernel layout int32 (N, K/8)
    (mxfp4, a8w4_mx); E8M0 scale bytes uint8 (N, K/32)."""

    w: Tensor
    w_scale: Tensor
    format: str

    TENSORS = ("w", "w_scale")

    @property
    def four_bit(self) -> bool:
        return self.w.dtype == torch.int32

    @property
    def shape(self):
        return (self.w.shape[0], self.w.shape[1] * (8 if self.four_bit else 1))


class _MX(FormatSpec):
    weight_cls = MXWeight
    k_multiple = MX_BLOCK
    k_reason = "MX scales cover blocks of 32 along K"
    four_bit = False

    def __init__(self, name, op_name, description, linear_op):
        super().__init__(name, op_name, description)
        self._op = linear_op

    def _quantize(self, W, opts):
        if self.four_bit:
            q, s = ops.quantize_mxfp4(W)
            q = ops.prepack_w4(q)
        else:
            q, s = ops.quantize_mxfp8(W)
        return MXWeight(w=q, w_scale=s, format=self.name)

    def _linear2d(self, x, qw, bias):
        return self._op(x, qw.w, qw.w_scale, bias)

    def _dequantize(self, qw):
        if self.four_bit:
            elems = e2m1_to_float(unpack_nibbles(ops.unpack_w4(qw.w)))
        else:
            elems = qw.w.float()
        return elems * e8m0_to_float(qw.w_scale).repeat_interleave(MX_BLOCK, dim=1)

    def _from_tensors(self, t, opts):
        w = expect_2d(self.name, "w", t["w"], torch.int32 if self.four_bit else FP8)
        N, K = w.shape[0], w.shape[1] * (8 if self.four_bit else 1)
        self._check_shape((N, K), opts)
        s = expect(self.name, "w_scale", t["w_scale"], torch.uint8, (N, K // MX_BLOCK))
        return MXWeight(w=w, w_scale=s, format=self.name)


class _MX4(_MX):
    four_bit = True


MXFP8_FORMAT = _MX("mxfp8", "mxfp8_linear",
                   "MXFP8 activations (quantized in the op) x MXFP8 weights (e4m3 + E8M0 per 32)",
                   ops.mxfp8_linear)
MXFP4_FORMAT = _MX4("mxfp4", "mxfp4_linear",
                    "16-bit activations x MXFP4 weights (e2m1 + E8M0 per 32)", ops.mxfp4_linear)
A8W4_MX_FORMAT = _MX4("a8w4_mx", "a8w4_mx_linear",
                      "MXFP8 activations (quantized in the op) x MXFP4 weights", ops.a8w4_mx_linear)
