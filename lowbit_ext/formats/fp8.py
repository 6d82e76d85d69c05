"""fp8 (e4m3) weights: w8a8_fp8 (per channel or per tensor) and fp8_block (128x128 blocks,
the DeepSeek-V3 recipe). Activations are quantized to e4m3 inside the ops; under
torch.compile with LOWBIT_COMPILE_ACT_QUANT=1, per token / per 1x128 block by
lowbit_ext.act_quant (torch ops that inductor fuses into x's producer, the same codes and
scales) followed by the *_mm op.

Every fp8 quantizer is the symmetric absmax rule of csrc/cpu/quantize.cpp over its block
(a row, the whole tensor, or a 128x128 tile):
    amax' = max(amax, 1e-12),  scale = amax' / 448 (fp32),
    code  = e4m3_rne_saturating(w * (448 / amax'))       w_hat = code * scale

w8a8_fp8, option granularity:
    "row" (default): one scale per output channel, ``ops.quantize_fp8_per_token(W)``;
    "tensor": one scale for W, ``ops.quantize_fp8_per_tensor(W)``.
  option act_per_token: how the op quantizes x (per token, or one dynamic scale per call);
  default True for "row", False for "tensor" (the two cuBLAS / torch._scaled_mm recipes).

fp8_block: scales fp32 (ceil(N/128), K/128), the last row block partial when N % 128 != 0
(its amax is over the rows that exist); K % 128 == 0. Computed here in torch (upcast to
fp32, multiply by the inverse, clamp to +-448, then torch's fp32 -> float8_e4m3fn
conversion, which rounds to nearest even; the clamp makes it saturate as the spec says).
"""
import dataclasses
from typing import Any, Dict

import torch
from torch import Tensor

from .. import act_quant, ops
from ._base import FormatSpec, QuantizedWeight, check_bool, div_rn, expect, expect_2d

FP8 = torch.float8_e4m3fn
E4M3_MAX = 448.0
AMAX_FLOOR = 1e-12
BLOCK = 128
K_8BIT = 16
GRANULARITIES = ("row", "tensor")


@dataclasses.dataclass(repr=False)
class Fp8Weight(QuantizedWeight):
    """e4m3 codes (N, K) and an fp32 scale (N,) ("row") or (1,) ("tensor")."""

    w: Tensor
    w_scale: Tensor
    granularity: str
    act_per_token: bool
    format: str = "w8a8_fp8"

    TENSORS = ("w", "w_scale")

    @property
    def shape(self):
        return tuple(self.w.shape)

    def options(self) -> Dict[str, Any]:
        return {"granularity": self.granularity, "act_per_token": self.act_per_token}


@dataclasses.dataclass(repr=False)
class Fp8BlockWeight(QuantizedWeight):
    """e4m3 codes (N, K) and fp32 scales (ceil(N/128), K/128), one per 128x128 block."""

    w: Tensor
    w_scale: Tensor
    format: str = "fp8_block"

    TENSORS = ("w", "w_scale")

    @property
    def shape(self):
        return tuple(self.w.shape)


class W8A8Fp8(FormatSpec):
    weight_cls = Fp8Weight
    k_multiple = K_8BIT
    k_reason = "rows of 8-bit operands are loaded 16 bytes at a time"

    def _normalize(self, opts):
        g = opts["granularity"]
        if g not in GRANULARITIES:
            raise ValueError(f"{self.name}: option granularity must be 'row' or 'tensor', got {g!r}")
        apt = opts["act_per_token"]
        apt = (g == "row") if apt is None else check_bool(self.name, "act_per_token", apt)
        return {"granularity": g, "act_per_token": apt}

    def _quantize(self, W, opts):
        if opts["granularity"] == "row":
            q, s = ops.quantize_fp8_per_token(W)
        else:
            q, s = ops.quantize_fp8_per_tensor(W)
        return Fp8Weight(w=q, w_scale=s, **opts)

    def _per_token_mm(self, qw):
        return ("fp8", ops.w8a8_fp8_mm) if qw.act_per_token else None

    def _linear2d(self, x, qw, bias):
        # (per-tensor scales keep the fused op: a whole-tensor amax is a reduction of its own)
        if qw.act_per_token and act_quant.use_under_compile():
            return act_quant.quantized_mm(act_quant.fp8_per_token, ops.w8a8_fp8_mm, x, qw.w, qw.w_scale, bias)
        return ops.w8a8_fp8_linear(x, qw.w, qw.w_scale, bias, qw.act_per_token)

    def _dequantize(self, qw):
        return qw.w.float() * qw.w_scale.reshape(-1, 1)

    def _from_tensors(self, t, opts):
        w = expect_2d(self.name, "w", t["w"], FP8)
        self._check_shape(tuple(w.shape), opts)
        n_scales = w.shape[0] if opts["granularity"] == "row" else 1
        s = expect(self.name, "w_scale", t["w_scale"], torch.float32, (n_scales,))
        return Fp8Weight(w=w, w_scale=s, **opts)


def quantize_fp8_128x128(W: Tensor):
    """W (N, K), K % 128 == 0 -> (e4m3 codes (N, K), fp32 scales (ceil(N/128), K/128))."""
    N, K = W.shape
    nb, kb = -(-N // BLOCK), K // BLOCK
    wf = W.float()
    if N % BLOCK:  # zero rows do not change a block's amax
        wf = torch.nn.functional.pad(wf, (0, 0, 0, nb * BLOCK - N))
    blocks = wf.reshape(nb, BLOCK, kb, BLOCK)
    amax = blocks.abs().amax(dim=(1, 3)).clamp_min(AMAX_FLOOR)             # (nb, kb)
    scale = div_rn(amax, E4M3_MAX)
    inv = (E4M3_MAX / amax)[:, None, :, None]
    codes = (blocks * inv).clamp_(-E4M3_MAX, E4M3_MAX).to(FP8)
    return codes.reshape(nb * BLOCK, K)[:N].contiguous(), scale.contiguous()


class Fp8Block(FormatSpec):
    weight_cls = Fp8BlockWeight
    k_multiple = BLOCK
    k_reason = "scales come in 128x128 blocks"

    def _quantize(self, W, opts):
        q, s = quantize_fp8_128x128(W)
        return Fp8BlockWeight(w=q, w_scale=s)

    def _linear2d(self, x, qw, bias):
        if act_quant.use_under_compile():
            return act_quant.quantized_mm(act_quant.fp8_1x128, ops.fp8_block_mm, x, qw.w, qw.w_scale, bias)
        return ops.fp8_block_linear(x, qw.w, qw.w_scale, bias)

    def _dequantize(self, qw):
        N, _ = qw.shape
        s = qw.w_scale.repeat_interleave(BLOCK, dim=0)[:N].repeat_interleave(BLOCK, dim=1)
        return qw.w.float() * s

    def _from_tensors(self, t, opts):
        w = expect_2d(self.name, "w", t["w"], FP8)
        self._check_shape(tuple(w.shape), opts)
        N, K = w.shape
        s = expect(self.name, "w_scale", t["w_scale"], torch.float32, (-(-N // BLOCK), K // BLOCK))
        return Fp8BlockWeight(w=w, w_scale=s)


W8A8_FP8_FORMAT = W8A8Fp8("w8a8_fp8", "w8a8_fp8_linear",
                          "e4m3 activations (per token or per tensor, quantized in the op) x e4m3 weights "
                          "per channel or per tensor",
                          defaults={"granularity": "row", "act_per_token": None})
FP8_BLOCK_FORMAT = Fp8Block("fp8_block", "fp8_block_linear",
                            "e4m3 activations in 1x128 blocks (quantized in the op) x e4m3 weights in "
                            "128x128 blocks, fp32 scales (DeepSeek-V3)")
