"""OCP MX v1.0 weights, one E8M0 scale per 32 elements along K: mxfp8 (e4m3 elements;
activations quantized to MXFP8 in the op), mxfp4 (e2m1 elements; 16-bit activations) and
a8w4_mx (the mxfp4 weight times MXFP8 activations quantized in the op).

Quantizers: ``ops.quantize_mxfp8(W)`` / ``ops.quantize_mxfp4(W)`` (the spec's FLOOR rule:
shared exponent e = floor(log2(amax_block)) - emax_elem, elements RNE-saturated to the
element format; csrc/cpu/quantize.cpp). The 4-bit codes are then prepacked to the w4
kernel layout (``ops.prepack_w4``), so mxfp4 and a8w4_mx store identical tensors.

mxfp4 and a8w4_mx weights have an option ``method`` (every method stores exactly the
tensors above; mxfp8 has RTN only):
- ``"rtn"`` (default): the spec's FLOOR rule, as above.
- ``"search"``: per 32-block, the E8M0 exponents b0 - 1, b0, b0 + 1 around the FLOOR
  choice b0 (clamped to 0..254) are each tried, elements RNE-saturated to e2m1 under it
  exactly as the FLOOR quantizer does, and the one with the least squared block
  reconstruction error is kept (ties: b0). FLOOR puts amax / scale in [4, 8), so the
  block max clips to 6 whenever it is above 6 * 2^(b0-127); b0 + 1 removes the clip at
  the cost of a coarser grid, b0 - 1 refines the grid for blocks dominated by small values
  (rarely chosen). Calibration-free; what HQQ is for int4 (an E8M0 scale has no zero point
  and few values, so an exhaustive search replaces the optimization). Never a larger
  block error than RTN.
- ``"awq"``: needs ``quantize(W, act=x)``: the AWQ per-input-channel scale search of
  formats/_awq.py with ``awq_inner`` ("rtn" or "search") quantizing W * s; the scale is
  kept as the extra tensor ``act_scale`` float32 (K,) that ``linear`` divides x by before
  the op (for a8w4_mx, before x's MXFP8 quantization), as for a16w4.
"""
import dataclasses
from typing import Any, Dict, Optional

import torch
from torch import Tensor

from .. import ops
from ._awq import awq_search, check_act, check_act_use, choice, int_in
from ._base import (W4_LAYOUT_VERSION, FormatSpec, QuantizedWeight, e2m1_to_float, e8m0_to_float, expect,
                    expect_2d, pack_nibbles, prepack_w4, unpack_nibbles)
from ._hqq import CHUNK_ELEMENTS, CHUNK_ELEMENTS_OTHER
from .int4 import expect_act_scale

FP8 = torch.float8_e4m3fn
MX_BLOCK = 32
MX4_METHODS = ("rtn", "search", "awq")
MX4_AWQ_INNER = ("rtn", "search")
MX4_METHOD_DEFAULTS = {"awq_grid": 20, "awq_inner": "search"}


@dataclasses.dataclass(repr=False)
class MXWeight(QuantizedWeight):
    """Elements: e4m3 (N, K) (mxfp8) or e2m1 codes in the w4 kernel layout int32 (N, K/8)
    (mxfp4, a8w4_mx); E8M0 scale bytes uint8 (N, K/32)."""

    w: Tensor
    w_scale: Tensor
    format: str
    act_scale: Optional[Tensor] = None   # AWQ (4-bit formats): float32 (K,); linear divides x by it
    method: str = "rtn"
    method_options: Dict[str, Any] = dataclasses.field(default_factory=dict)  # over MX4_METHOD_DEFAULTS

    TENSORS = ("w", "w_scale", "act_scale")

    @property
    def four_bit(self) -> bool:
        return self.w.dtype == torch.int32

    def options(self) -> Dict[str, Any]:
        if not self.four_bit:
            return {}
        return {"method": self.method, **MX4_METHOD_DEFAULTS, **self.method_options}

    @property
    def shape(self):
        return (self.w.shape[0], self.w.shape[1] * (8 if self.four_bit else 1))


class _MX(FormatSpec):
    weight_cls = MXWeight
    k_multiple = MX_BLOCK
    k_reason = "MX scales cover blocks of 32 along K"
    four_bit = False

    def __init__(self, name, op_name, description, linear_op, defaults=None):
        super().__init__(name, op_name, description, defaults)
        self._op = linear_op

    def _quantize(self, W, opts):  # mxfp8 (the 4-bit formats override it)
        q, s = ops.quantize_mxfp8(W)
        return MXWeight(w=q, w_scale=s, format=self.name)

    def _linear2d(self, x, qw, bias):
        return self._op(x, qw.w, qw.w_scale, bias)

    def _dequantize(self, qw):
        if self.four_bit:
            elems = e2m1_to_float(unpack_nibbles(ops.unpack_w4(qw.w)))
        else:
            elems = qw.w.float()
        W_hat = elems * e8m0_to_float(qw.w_scale).repeat_interleave(MX_BLOCK, dim=1)
        return W_hat if qw.act_scale is None else W_hat / qw.act_scale.float()

    def _tensor_names(self, opts):
        return ("w", "w_scale")

    def _from_tensors(self, t, opts):
        w = expect_2d(self.name, "w", t["w"], torch.int32 if self.four_bit else FP8)
        N, K = w.shape[0], w.shape[1] * (8 if self.four_bit else 1)
        self._check_shape((N, K), opts)
        s = expect(self.name, "w_scale", t["w_scale"], torch.uint8, (N, K // MX_BLOCK))
        if not self.four_bit:
            return MXWeight(w=w, w_scale=s, format=self.name)
        act_scale = expect_act_scale(self.name, t["act_scale"], K) if "act_scale" in t else None
        return MXWeight(w=w, w_scale=s, format=self.name, act_scale=act_scale, method=opts["method"],
                        method_options={k: opts[k] for k in MX4_METHOD_DEFAULTS})


def e2m1_codes(v: Tensor) -> Tensor:
    """fp32 -> e2m1 codes uint8 (sign in bit 3), RNE, saturating to +-6: the element rule
    of ops.quantize_mxfp4 (csrc/include/lowbit/numerics.h). The midpoints between the
    magnitudes 0, .5, 1, 1.5, 2, 3, 4, 6 are .25, .75, 1.25, 1.75, 2.5, 3.5, 5; a tie goes
    to the even code (even mantissa), so it counts as past the midpoint (>=) where the
    upper neighbour's code is even and not (>) where the lower one's is. The sign is
    kept for zeros too (-0 and negatives rounding to 0 give code 8)."""
    a = v.abs()
    mag = ((a > 0.25).to(torch.uint8) + (a >= 0.75) + (a > 1.25) + (a >= 1.75) + (a > 2.5) + (a >= 3.5) + (a > 5))
    return mag | (torch.signbit(v).to(torch.uint8) << 3)


def mx4_fit(W: Tensor, search: bool):
    """W (N, K) float -> (e2m1 codes uint8 (N, K), E8M0 bytes uint8 (N, K/32), the float32
    reconstruction (N, K)). FLOOR rule; with ``search`` the best of b0 - 1, b0, b0 + 1.
    Blocks of rows at a time (as formats/_hqq.py does, for the same reason)."""
    N, K = W.shape
    rows = max(1, CHUNK_ELEMENTS.get(W.device.type, CHUNK_ELEMENTS_OTHER) // K)
    if rows < N:
        parts = [_mx4_fit_rows(W[r:r + rows], search) for r in range(0, N, rows)]
        return tuple(torch.cat(t) for t in zip(*parts))
    return _mx4_fit_rows(W, search)


def _mx4_fit_rows(W: Tensor, search: bool):
    N, K = W.shape
    _, b0 = ops.quantize_mxfp4(W)                      # the spec's FLOOR exponents
    wg = W.float().reshape(N, K // MX_BLOCK, MX_BLOCK)
    deltas = (0, 1, -1) if search else (0,)            # b0 first: it wins ties
    best = None
    for d in deltas:
        b = (b0.to(torch.int32) + d).clamp_(0, 254).to(torch.uint8)
        down = e8m0_to_float(254 - b).unsqueeze(-1)   # 2^(127 - b): exact, as the op scales
        codes = e2m1_codes(wg * down)
        recon = e2m1_to_float(codes) * e8m0_to_float(b).unsqueeze(-1)
        err = (recon - wg).pow(2).sum(-1)
        if best is None:
            best = [codes, b, recon, err]
            continue
        win = err < best[3]
        best = [torch.where(win.unsqueeze(-1), codes, best[0]), torch.where(win, b, best[1]),
                torch.where(win.unsqueeze(-1), recon, best[2]), torch.where(win, err, best[3])]
    codes, b, recon, _ = best
    return codes.reshape(N, K), b.contiguous(), recon.reshape(N, K)


class _MX4(_MX):
    w4_layout = W4_LAYOUT_VERSION
    four_bit = True

    def _normalize(self, opts):
        n = self.name
        return {"method": choice(n, "method", opts["method"], MX4_METHODS),
                "awq_grid": int_in(n, "awq_grid", opts["awq_grid"], 1, 1000),
                "awq_inner": choice(n, "awq_inner", opts["awq_inner"], MX4_AWQ_INNER)}

    def _optional_tensor_names(self, opts):
        return ("act_scale",) if opts["method"] == "awq" else ()

    def _check_act_use(self, act, opts):
        check_act_use(self.name, act, opts["method"])

    def _weight(self, plain, b, opts, act_scale=None):
        """plain 4-bit codes uint8 (N, K/2) and E8M0 bytes -> the weight (w4 kernel layout)."""
        return MXWeight(w=prepack_w4(plain), w_scale=b, format=self.name, act_scale=act_scale,
                        method=opts["method"], method_options={k: opts[k] for k in MX4_METHOD_DEFAULTS})

    def _quantize(self, W, opts):
        if opts["method"] == "rtn":   # the quantizer op itself (bit-identical to mx4_fit without search)
            return self._weight(*ops.quantize_mxfp4(W), opts)
        codes, b, _ = mx4_fit(W, search=True)
        return self._weight(pack_nibbles(codes), b, opts)

    def _quantize_act(self, W, opts, act):
        x = check_act(self.name, act, W.shape[1], W.device)
        search = opts["awq_inner"] == "search"

        def qdq(W_s):
            codes, b, recon = mx4_fit(W_s, search)
            return (codes, b), recon

        (codes, b), s, _ = awq_search(W.float(), x, opts["awq_grid"], qdq)
        return self._weight(pack_nibbles(codes), b, opts, act_scale=s)


MXFP8_FORMAT = _MX("mxfp8", "mxfp8_linear",
                   "MXFP8 activations (quantized in the op) x MXFP8 weights (e4m3 + E8M0 per 32)",
                   ops.mxfp8_linear)
MXFP4_FORMAT = _MX4("mxfp4", "mxfp4_linear",
                    "16-bit activations x MXFP4 weights (e2m1 + E8M0 per 32)", ops.mxfp4_linear,
                    defaults={"method": "rtn", **MX4_METHOD_DEFAULTS})
A8W4_MX_FORMAT = _MX4("a8w4_mx", "a8w4_mx_linear",
                      "MXFP8 activations (quantized in the op) x MXFP4 weights", ops.a8w4_mx_linear,
                      defaults={"method": "rtn", **MX4_METHOD_DEFAULTS})

