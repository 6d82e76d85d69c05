"""The per-token activation quantizers on Llama-3-8B's activation shapes: plain, and the fused
SiLU / RMSNorm ones against what they replace (torch's silu(gate) * up, or rms_norm, compiled
by inductor into one kernel, then the plain quantizer), and the residual add + RMSNorm one against
the add and the RMSNorm quantizer (what bench/llama.py runs without LOWBIT_ADD_RMS_NORM_QUANT),
with their bytes / bandwidth floor.

    python bench/act_quant.py [--ms 1,16,128,2048] [--fmt int8,fp8] [--out results.json]

Times: CUDA events over CUDA-graph replays (lowbit_ext/_timing.py), each graph holding several
calls on distinct inputs (rotated past L2 at large M). Knobs of the row kernel
(LOWBIT_ROW_QUANT_CTAS, LOWBIT_ROW_QUANT_CACHE; csrc/quant/quantize_launch.cu) are read once per
process: an A/B runs this script once per setting.
"""
import argparse
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import L2_BYTES, graph_time, hbm_bytes_per_s, log, run_meta, write_json  # noqa: E402

from lowbit_ext import ops  # noqa: E402

HIDDEN, MLP = 4096, 14336  # Llama-3-8B


def copies_for(nbytes):
    """Distinct inputs per graph so that their total overflows L2 (at least 2, at most 8)."""
    return max(2, min(8, -(-2 * L2_BYTES // max(nbytes, 1))))


UNFUSED = {}  # fmt -> (silu then quantize, rms_norm then quantize), compiled once per process


def unfused(fmt):
    if fmt not in UNFUSED:
        plain = getattr(ops, f"quantize_{fmt}_per_token")
        rms_q = getattr(ops, f"rms_norm_quantize_{fmt}_per_token")

        def add_then_rms_q(x, r, w):
            h = x + r
            return rms_q(h, w, 1e-5) + (h,)

        UNFUSED[fmt] = (torch.compile(lambda g, u: plain(F.silu(g) * u), fullgraph=True, dynamic=True),
                        torch.compile(lambda x, w: plain(F.rms_norm(x, (x.shape[-1],), w, 1e-5)), fullgraph=True,
                                      dynamic=True),
                        torch.compile(add_then_rms_q, fullgraph=True, dynamic=True))
    return UNFUSED[fmt]


def cases(M, fmt, dtype, dev, gen):
    """(name, [calls], bytes moved once) per quantizer: fused, plain, and the unfused pair."""
    plain = getattr(ops, f"quantize_{fmt}_per_token")
    silu_q = getattr(ops, f"silu_mul_quantize_{fmt}_per_token")
    rms_q = getattr(ops, f"rms_norm_quantize_{fmt}_per_token")
    add_rms_q = getattr(ops, f"add_rms_norm_quantize_{fmt}_per_token")
    silu_ref, rms_ref, add_rms_ref = unfused(fmt)
    out = []
    # the MLP's down-projection input: gate / up are the halves of the fused gate-up output
    gu_bytes = M * 2 * MLP * 2
    gus = [torch.randn(M, 2 * MLP, generator=gen, device=dev).to(dtype) for _ in range(copies_for(gu_bytes))]
    moved = gu_bytes + M * MLP + 4 * M
    out.append(("silu_mul_fused", [lambda t=t: silu_q(t[:, :MLP], t[:, MLP:]) for t in gus], moved))
    out.append(("silu_mul_unfused", [lambda t=t: silu_ref(t[:, :MLP], t[:, MLP:]) for t in gus], moved))
    hs = [torch.randn(M, MLP, generator=gen, device=dev).to(dtype) for _ in range(copies_for(M * MLP * 2))]
    out.append(("plain_14336", [lambda t=t: plain(t) for t in hs], M * MLP * 3 + 4 * M))
    xs = [torch.randn(M, HIDDEN, generator=gen, device=dev).to(dtype) for _ in range(copies_for(M * HIDDEN * 2))]
    w = (1 + 0.1 * torch.randn(HIDDEN, generator=gen, device=dev)).to(dtype)
    moved = M * HIDDEN * 3 + 4 * M + HIDDEN * 2
    out.append(("rms_norm_fused", [lambda t=t: rms_q(t, w, 1e-5) for t in xs], moved))
    out.append(("rms_norm_unfused", [lambda t=t: rms_ref(t, w) for t in xs], moved))
    out.append(("plain_4096", [lambda t=t: plain(t) for t in xs], moved - HIDDEN * 2))
    # a block's residual add before its norm: x and the residual in, the sum and the codes out
    rs = [torch.randn(M, HIDDEN, generator=gen, device=dev).to(dtype) for _ in range(len(xs))]
    moved = M * HIDDEN * 7 + 4 * M + HIDDEN * 2
    out.append(("add_rms_fused", [lambda t=t, r=r: add_rms_q(t, r, w, 1e-5) for t, r in zip(xs, rs)], moved))
    out.append(("add_rms_unfused", [lambda t=t, r=r: add_rms_ref(t, r, w) for t, r in zip(xs, rs)], moved))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ms", default="1,16,128,2048")
    ap.add_argument("--fmt", default="int8,fp8")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    dev = torch.device("cuda")
    gen = torch.Generator(device=dev).manual_seed(0)
    meta = run_meta("cuda")
    meta["knobs"] = {k: v for k, v in os.environ.items() if k.startswith("LOWBIT_")}
    log(f"{meta.get('card')} torch {meta['torch']} knobs {meta['knobs']}")
    rows = []
    for fmt in args.fmt.split(","):
        for M in (int(m) for m in args.ms.split(",")):
            for name, calls, moved in cases(M, fmt, torch.bfloat16, dev, gen):
                ms = graph_time(calls)
                floor_us = moved / hbm_bytes_per_s() * 1e6
                rows.append(dict(fmt=fmt, M=M, op=name, us=ms * 1e3, bytes=moved, floor_us=floor_us))
                log(f"  {fmt:4s} M={M:5d} {name:18s} {ms * 1e3:9.2f} us   {moved / ms / 1e6:7.0f} GB/s"
                    f"   floor {floor_us:7.2f} us")
    if args.out:
        write_json(args.out, dict(meta=meta, rows=rows))
        log("wrote", args.out)


if __name__ == "__main__":
    sys.exit(main())
