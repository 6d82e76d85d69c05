"""AWQ (activation-aware weight quantization, Lin et al. 2023): a per-input-channel scale
s (K,) searched on calibration activations, so that the channels that carry large
activations get more of the quantization grid.

    y = x W^T = (x / s) (W diag(s))^T      exact for any s > 0

so W diag(s) is quantized group-wise (any of the format's quantizers) instead of W, and
x is divided by s. The search, on calibration activations x (T, K):

    m = mean_t |x[t, k]|                                      (K,)
    for alpha in 0, 1/grid, ..., 1:
        s = clamp(m^alpha, 1e-4);  s = s / sqrt(max(s) * min(s))     (normalized)
        W_hat_s = dequantize(quantize(W * s))
        err(alpha) = mean || x W^T - (x / s) W_hat_s^T ||^2
    keep the alpha with the least err (alpha = 0 is s = 1: plain quantization, so the
    result never has a larger calibration error than the quantizer alone).

The scale has to go somewhere at inference. Folded into the op that produces x (the
previous LayerNorm / RMSNorm / Linear: divide its output channels by s) it costs nothing;
a weight format cannot reach that op, so the QuantizedWeight keeps s as ``act_scale``
(float32 (K,)) and the format's ``linear`` computes ``x / act_scale`` (rounded back to
x's dtype) before the kernel: one elementwise pass over x (fused into the neighbouring op
under torch.compile; eager, a division and a cast: 2 passes over x, small next to the
weight stream at small M and next to the GEMM at large M). ``fold_awq_scale`` moves it
into the previous module when the model allows.
"""
import dataclasses
import math
from typing import Any, Callable, Tuple

import torch
from torch import Tensor

from ._base import QuantizedWeight, dtype_name

ACT_SCALE_MIN = 1e-4  # AWQ's clamp: a dead channel (mean |x| = 0) gets a small, finite scale


def check_act(fmt: str, act, K: int, device: torch.device) -> Tensor:
    """Calibration activations (..., K), floating, finite, at least one row -> fp32 (T, K)
    on `device`."""
    if not isinstance(act, Tensor):
        raise ValueError(f"{fmt}: act must be a torch.Tensor of calibration activations (tokens, K), "
                         f"got {type(act).__name__}")
    if not act.is_floating_point():
        raise ValueError(f"{fmt}: act must be a floating tensor, got dtype {dtype_name(act.dtype)}")
    if act.dim() < 1 or act.shape[-1] != K:
        raise ValueError(f"{fmt}: act must have K = {K} (the weight's in_features) as its last dimension, "
                         f"got shape {tuple(act.shape)}")
    x = act.detach().reshape(-1, K)
    if x.shape[0] < 1:
        raise ValueError(f"{fmt}: act holds no rows (shape {tuple(act.shape)}); AWQ needs calibration tokens")
    x = x.to(device=device, dtype=torch.float32)
    if not bool(torch.isfinite(x).all()):
        raise ValueError(f"{fmt}: act holds NaN or Inf values")
    return x


def check_act_use(fmt: str, act, method: str) -> None:
    """Calibration activations are given exactly when the method uses them (AWQ)."""
    if method == "awq" and act is None:
        raise ValueError(f"{fmt}: method='awq' needs calibration activations: quantize(W, act=x) with x "
                         f"(tokens, K) this layer's inputs (lowbit_ext.calibration.record_linear_inputs "
                         f"records them)")
    if method != "awq" and act is not None:
        raise ValueError(f"{fmt}: act= (calibration activations) is only used by method='awq', got method={method!r}")


def awq_scales(x: Tensor, alpha: float) -> Tensor:
    """s = clamp(mean|x|^alpha, 1e-4), normalized to geometric-mean-of-extremes 1: fp32 (K,)."""
    s = x.abs().mean(0).pow(alpha).clamp_min(ACT_SCALE_MIN)
    return s / torch.sqrt(s.max() * s.min())


def awq_search(W: Tensor, x: Tensor, grid: int, quantize_dequantize: Callable[[Tensor], Tuple[Any, Tensor]]
               ) -> Tuple[Any, Tensor, float]:
    """W fp32 (N, K), x fp32 (T, K). quantize_dequantize(W_s) -> (the quantizer's result
    for W_s, its float32 dequantization (N, K)). Returns (the best alpha's result, its
    act_scale s (K,) fp32, alpha). One grid point at a time: memory stays at a few (N, K)."""
    y_ref = x @ W.T
    best = None
    for i in range(grid + 1):
        alpha = i / grid
        s = awq_scales(x, alpha)
        qw, W_hat_s = quantize_dequantize(W * s)
        err = float(((x / s) @ W_hat_s.T - y_ref).pow(2).mean())
        if best is None or err < best[0]:
            best = (err, qw, s, alpha)
        if i == 0 and err == 0.0:
            break  # exactly representable already: nothing to gain
    _, qw, s, alpha = best
    return qw, s.contiguous(), alpha


def apply_act_scale(x: Tensor, act_scale: Tensor) -> Tensor:
    """x / act_scale, computed in fp32 and rounded once to x's dtype."""
    return (x / act_scale).to(x.dtype)


def fold_awq_scale(prev_module: torch.nn.Module, qw: QuantizedWeight) -> QuantizedWeight:
    """Moves qw's AWQ input scale into `prev_module`, the module whose output is this
    layer's input, and returns qw without it (its ``linear`` then skips the division).

    prev_module: anything with a ``weight`` whose first dimension is K (nn.Linear (K, in),
    nn.LayerNorm / nn.RMSNorm (K,), nn.Embedding is *not* allowed: its rows are tokens)
    and an optional ``bias`` (K,): both are divided by s along K, in place, so that
    prev_module(x) / s is what it now produces. Only valid when this layer is the sole
    consumer of prev_module's output (or every consumer was quantized with the same
    act_scale), and when nothing nonlinear sits between them (a residual add, an
    activation function): the caller knows its model; this checks the shapes only.
    """
    s = getattr(qw, "act_scale", None)
    if s is None:
        raise ValueError(f"{qw.format}: this weight has no act_scale to fold (not AWQ, or already folded)")
    if isinstance(prev_module, torch.nn.Embedding):
        raise ValueError(f"{qw.format}: cannot fold an AWQ scale into an nn.Embedding (its weight rows are "
                         f"tokens, not output channels)")
    w = getattr(prev_module, "weight", None)
    K = s.shape[0]
    if not isinstance(w, Tensor) or w.dim() < 1 or w.shape[0] != K:
        raise ValueError(f"{qw.format}: prev_module must have a weight whose first dimension is K = {K} "
                         f"(its output channels), got "
                         f"{tuple(w.shape) if isinstance(w, Tensor) else type(w).__name__}")
    b = getattr(prev_module, "bias", None)
    if b is not None and tuple(b.shape) != (K,):
        raise ValueError(f"{qw.format}: prev_module.bias must have shape ({K},), got {tuple(b.shape)}")
    with torch.no_grad():
        sw = s.to(device=w.device, dtype=torch.float32).reshape((K,) + (1,) * (w.dim() - 1))
        w.copy_((w.float() / sw).to(w.dtype))
        if b is not None:
            b.copy_((b.float() / s.to(device=b.device, dtype=torch.float32)).to(b.dtype))
    return dataclasses.replace(qw, act_scale=None)


def finite_float(fmt: str, name: str, value, lo: float, hi: float, lo_open: bool, hi_open: bool) -> float:
    """A real number option in (lo | [lo) .. (hi) | hi]; ValueError naming it otherwise."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if ok:
        v = float(value)
        ok = (v > lo if lo_open else v >= lo) and (v < hi if hi_open else v <= hi)
    if not ok:
        rng = f"{'(' if lo_open else '['}{lo:g}, {hi:g}{')' if hi_open else ']'}"
        raise ValueError(f"{fmt}: option {name} must be a number in {rng}, got {value!r}")
    return float(value)


def int_in(fmt: str, name: str, value, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise ValueError(f"{fmt}: option {name} must be an integer in [{lo}, {hi}], got {value!r}")
    return value


def choice(fmt: str, name: str, value, allowed) -> str:
    if not isinstance(value, str) or value not in allowed:
        raise ValueError(f"{fmt}: option {name} must be one of {', '.join(repr(a) for a in allowed)}, "
                         f"got {value!r}")
    return value
