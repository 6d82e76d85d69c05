"""int8 weights, symmetric per output channel: a16w8 (16-bit activations) and w8a8_int8
(activations quantized per token to int8 inside the op; under torch.compile with
LOWBIT_COMPILE_ACT_QUANT=1 by lowbit_ext.act_quant, torch ops inductor fuses into x's producer,
then ``w8a8_int8_mm``).

RTN quantizer: ``ops.quantize_int8_per_token(W)``, i.e. per output row n:
    scale = max(amax_n, 1e-12) / 127,  q = clamp(round_half_even(w * (127 / max(amax_n, 1e-12))), -127, 127)
(csrc/cpu/quantize.cpp is the spec). Both formats store the same tensors: int8 codes (N, K)
and the fp32 scale (N,) as the quantizer returns it, so |w_hat - w| <= scale / 2 and one
checkpoint serves either format and either activation dtype (the ops apply the scale in
their fp32 epilogue).
"""
import dataclasses
from typing import Any, Dict

import torch
from torch import Tensor

from .. import act_quant, ops
from ._base import FormatSpec, QuantizedWeight, expect, expect_2d

K_8BIT = 16  # rows of 8-bit operands are loaded 16 bytes at a time


@dataclasses.dataclass(repr=False)
class Int8Weight(QuantizedWeight):
    """int8 codes (N, K) and a per-channel fp32 scale (N,)."""

    w: Tensor
    w_scale: Tensor
    format: str

    TENSORS = ("w", "w_scale")

    @property
    def shape(self):
        return tuple(self.w.shape)

    def options(self) -> Dict[str, Any]:
        return {}


class _Int8(FormatSpec):
    weight_cls = Int8Weight
    k_multiple = K_8BIT
    k_reason = "rows of 8-bit operands are loaded 16 bytes at a time"

    def _quantize(self, W, opts):
        q, s = ops.quantize_int8_per_token(W)
        return Int8Weight(w=q, w_scale=s, format=self.name)

    def _dequantize(self, qw):
        return qw.w.float() * qw.w_scale.float().unsqueeze(1)

    def _from_tensors(self, t, opts):
        w = expect_2d(self.name, "w", t["w"], torch.int8)
        self._check_shape(tuple(w.shape), opts)
        s = expect(self.name, "w_scale", t["w_scale"], torch.float32, (w.shape[0],))
        return Int8Weight(w=w, w_scale=s, format=self.name)


class A16W8(_Int8):
    def _linear2d(self, x, qw, bias):
        return ops.a16w8_linear(x, qw.w, qw.w_scale, bias)


class W8A8Int8(_Int8):
    def _per_token_mm(self, qw):
        return "int8", ops.w8a8_int8_mm

    def _linear2d(self, x, qw, bias):
        if act_quant.use_under_compile():
            return act_quant.quantized_mm(act_quant.int8_per_token, ops.w8a8_int8_mm, x, qw.w, qw.w_scale, bias)
        return ops.w8a8_int8_linear(x, qw.w, qw.w_scale, bias)


A16W8_FORMAT = A16W8("a16w8", "a16w8_linear",
                     "16-bit activations x int8 weights, symmetric per channel")
W8A8_INT8_FORMAT = W8A8Int8("w8a8_int8", "w8a8_int8_linear",
                            "int8 activations (per token, quantized in the op) x int8 weights per channel")
