"""HQQ (half-quadratic quantization, Badri & Shaji 2023) for affine integer codes:
calibration-free optimization of each group's zero point (and optionally its scale) so
that the dequantized group w_hat = (q - z) * s matches w under an lp norm (p <= 1).

The problem, per group, is min_{z, s} || w - (Q(w; s, z) - z) * s ||_p^p with Q the
rounding to the codes 0..qmax. HQQ splits it half-quadratically with an auxiliary error
variable e ~ w - w_hat and alternates, with the penalty beta growing by kappa per step:

    q     = clamp(round(w / s + z), 0, qmax)          codes for the current (s, z)
    e     = shrink_p(w - (q - z) * s, beta)            lp proximal step on the error:
            sign(r) * relu(|r| - |r|^(p-1) / beta)     (generalized soft threshold; p = 1
                                                        is the plain soft threshold)
    t     = w - e                                      what (q - z) * s should reproduce
    z     = mean(q - t / s)                            closed-form least squares in z
    (s, z)  joint least squares of t on q instead,     when the scale is optimized too
            s = cov(q, t) / var(q), z = mean(q) - mean(t) / s
    beta *= kappa

That is the recipe of the HQQ paper and the reference library (lp 0.7, beta 10, kappa
1.01, 20 steps). Differences, each for a reason:
- The shrinkage acts on the error measured in units of the group's starting (RTN)
  quantization step, r / s0, not in weight units. The threshold |r|^(p-1) / beta is not
  scale-invariant: in weight units an error survives the shrink only where
  |r| > beta^(-1/(2-p)) (0.17 for the defaults), so for LLM-sized weights (|w| ~ 0.02)
  every error is shrunk to 0 and the lp part does nothing (the iteration is then plain
  alternating least squares; measured: p makes no difference at all on MiniLM). In step
  units the same defaults treat errors above ~0.17 step as outliers, whatever the
  weights' magnitude (measured on MiniLM: 1-3% lower layer output error than weight units).
- The iterate stays in fp32; at every step it is also rounded to the storage dtype
  (bf16 / fp16) and the codes recomputed against the stored values, and that error (the
  one the kernel gets) is what is tracked.
- Instead of one global early stop (the library stops all groups when the tensor's mean
  |error| rises), every group keeps the best (s, z) it has seen under the L2 weight error,
  starting from the RTN parameters: per group, HQQ's stored result is never worse than
  RTN's in squared weight error (the quantity the layer's output error follows).
- Optionally the scale too (the paper fixes it to the min/max range); least squares for
  both is still closed form. Symmetric weights (zero fixed at 8) optimize only the scale.
All groups of a block of rows are processed at once (tensors of shape (rows, G, g)), on
W's device; no Python loop over groups.
"""
from typing import Optional, Tuple

import torch
from torch import Tensor


def shrink_lp(r: Tensor, beta: float, p: float) -> Tensor:
    """Proximal operator of |.|^p / beta (generalized soft thresholding), elementwise."""
    a = r.abs()
    if p == 1.0:
        return torch.sign(r) * torch.relu(a - 1.0 / beta)
    # |r|^(p-1) is infinite at 0: the threshold is then infinite and the result 0, which
    # relu gives directly (a - inf = -inf); the 1e-12 keeps pow away from 0^-0.3 = inf * 0.
    return torch.sign(r) * torch.relu(a - torch.pow(a + 1e-12, p - 1.0) / beta)


def _store(v: Tensor, dtype: torch.dtype) -> Tensor:
    """fp32 -> nearest `dtype` value, back in fp32 (what a checkpoint stores)."""
    return v.to(dtype).float()


# Rows per chunk: groups are independent, so the rows of W are optimized a block at a time,
# all groups of a block at once. On a CPU a block whose temporaries stay in cache runs ~8x
# faster than the whole matrix (measured, 4096 x 4096 on 2 cores: 14.6 s whole, 1.8 s in
# blocks of 64 rows = 2^18 elements); on a GPU blocks only bound the memory of the ~10
# fp32 temporaries (2^26 elements: 256 MiB each), and a weight this size or less is one block.
CHUNK_ELEMENTS = {"cpu": 1 << 18}
CHUNK_ELEMENTS_OTHER = 1 << 26


def hqq_optimize(wg: Tensor, s: Tensor, z: Optional[Tensor], qmax: int, *, iters: int, p: float,
                 beta: float, kappa: float, opt_scale: bool, dtype: torch.dtype,
                 scale_floor: float) -> Tuple[Tensor, Optional[Tensor]]:
    """wg: fp32 weights (N, G, g). s, z: fp32 (N, G) starting scale and zero, exactly
    representable in `dtype` (the RTN ones); z None for symmetric (fixed zero qmax // 2 + 1,
    i.e. 8 for int4). Returns the best (s, z) found per group, as fp32 values exactly
    representable in `dtype`."""
    if z is None and not opt_scale:
        raise ValueError("symmetric HQQ has no zero point to optimize: opt_scale must be on")
    N = wg.shape[0]
    per_row = max(1, wg[0].numel())
    rows = max(1, CHUNK_ELEMENTS.get(wg.device.type, CHUNK_ELEMENTS_OTHER) // per_row)
    kw = dict(iters=iters, p=p, beta=beta, kappa=kappa, opt_scale=opt_scale, dtype=dtype, scale_floor=scale_floor)
    if rows >= N:
        return _hqq_rows(wg, s, z, qmax, **kw)
    parts = [_hqq_rows(wg[r:r + rows], s[r:r + rows], None if z is None else z[r:r + rows], qmax, **kw)
             for r in range(0, N, rows)]
    return torch.cat([a for a, _ in parts]), (None if z is None else torch.cat([b for _, b in parts]))


def _hqq_rows(wg: Tensor, s: Tensor, z: Optional[Tensor], qmax: int, *, iters: int, p: float, beta: float,
              kappa: float, opt_scale: bool, dtype: torch.dtype, scale_floor: float):
    sym = z is None
    z_fixed = float(qmax // 2 + 1)
    zz = torch.full_like(s, z_fixed) if sym else z

    def codes(s_, z_):  # the RTN rules of formats/int4.py, for the given (s, z)
        if sym:
            return (torch.round(wg / s_.unsqueeze(-1)) + z_fixed).clamp_(0, qmax)
        return torch.round(wg / s_.unsqueeze(-1) + z_.unsqueeze(-1)).clamp_(0, qmax)

    def recon(q, s_, z_):
        return (q - z_.unsqueeze(-1)) * s_.unsqueeze(-1)

    unit = s.unsqueeze(-1)  # the starting quantization step of each group: see the module doc
    best_s, best_z = s.clone(), zz.clone()
    best_err = torch.full_like(s, float("inf"))
    cur_s, cur_z = s, zz           # the iterate, fp32
    for i in range(iters + 1):
        # the iterate as stored (in `dtype`): its true error decides what is kept
        st_s, st_z = _store(cur_s, dtype), _store(cur_z, dtype)
        st_s = torch.where(st_s >= scale_floor, st_s, best_s)
        q = codes(st_s, st_z)
        r = wg - recon(q, st_s, st_z)
        err = (r * r).sum(-1)
        better = err < best_err
        best_err = torch.where(better, err, best_err)
        best_s = torch.where(better, st_s, best_s)
        best_z = torch.where(better, st_z, best_z)
        if i == iters:
            break
        # the HQQ step on the unrounded iterate (rounding (s, z) to bf16 at every step
        # would stall it: the zero's updates are often below bf16's spacing near 8)
        if i > 0:
            q = codes(cur_s, cur_z)
            r = wg - recon(q, cur_s, cur_z)
        t = wg - unit * shrink_lp(r / unit, beta, p)
        if opt_scale:
            qc = q - z_fixed if sym else q - q.mean(-1, keepdim=True)
            tc = t if sym else t - t.mean(-1, keepdim=True)
            den = (qc * qc).sum(-1)
            new_s = (qc * tc).sum(-1) / den.clamp_min(1e-30)
            # a group whose codes are all equal (den 0) or whose fit made the scale tiny
            # or non-positive has no usable scale update: it keeps its scale
            ok = (den > 0) & torch.isfinite(new_s) & (new_s >= scale_floor)
            new_s = torch.where(ok, new_s, cur_s)
        else:
            new_s = cur_s
        new_z = cur_z if sym else (q - t / new_s.unsqueeze(-1)).mean(-1)
        cur_s, cur_z = new_s, new_z
        beta *= kappa
    return best_s, (None if sym else best_z)
