"""``python -m lowbit_ext advise``: which format for this model, per regime?

For each format (default: every registered one) and each distinct linear shape of the model
(default: the Llama-3-8B layer shapes of lowbit_ext.model_shapes, which bench/llama.py's model
is built from too):

* accuracy, always (CPU or GPU): a random-normal bf16 weight (fixed seed) is quantized with
  the format's default options and multiplied, through the format's linear, by random bf16
  activations (M = 8 rows); the error is ||y - x W^T|| / ||x W^T|| against the fp32 product
  of the same bf16 operands. On the CPU (reference ops) only the first ``--max-rows`` rows
  of a weight are made: rows are i.i.d. and every format quantizes per row or per block of
  rows, so the estimate does not depend on N (the output says when this happened).
* speed, only with a CUDA GPU and for formats whose op has a CUDA kernel in this build:
  each layer shape at each batch size (and at M = --prompt-len, the prefill) is timed with
  CUDA events over CUDA-graph replays, against cuBLAS bf16 (F.linear) in the same run;
  times are summed over one transformer block's layers and reported as speedup over bf16.

Recommendation per regime: decode (batch <= 32, memory-bound) and prefill (M = prompt-len,
compute-bound): the fastest format whose error is under --max-error and that is never
slower than bf16 there. Without speed data the advice is by accuracy and weight bytes
(bits per weight including scales), and says that speed was not measured.

    python -m lowbit_ext advise
    python -m lowbit_ext advise --shapes 4096x4096,14336x4096 --formats a16w4,w8a8_fp8 --json out.json
"""
import argparse
import json
import math
import os
import statistics
import time
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F

from . import formats as _formats
from ._timing import graph_time
from .model_shapes import CONFIGS, block_linears

NO_GPU_LINE = "no CUDA GPU: speed not measured; accuracy only"
NO_KERNEL = "no CUDA kernel yet"
DECODE_MAX_BATCH = 32
ACC_ROWS = 8                      # activation rows (M) of the accuracy check
SEED = 0

# ---------------------------------------------------------------------------- shapes
def model_layers(model: str) -> Tuple[List[Tuple[str, int, int]], str]:
    """(name, N, K) of one transformer block's linears, and where they came from."""
    if model not in CONFIGS:
        raise SystemExit(f"advise: unknown --model {model!r}; known: {', '.join(sorted(CONFIGS))} "
                         f"(or give --shapes NxK,...)")
    return block_linears(CONFIGS[model]), f"lowbit_ext.model_shapes CONFIGS[{model!r}] (one block; lm_head left out)"


def parse_shapes(text: str) -> List[Tuple[str, int, int]]:
    out = []
    for part in text.split(","):
        part = part.strip().lower()
        if not part:
            continue
        try:
            n, k = (int(v) for v in part.split("x"))
        except ValueError:
            raise SystemExit(f"advise: --shapes wants NxK[,NxK...] (out_features x in_features), got {part!r}")
        if n < 1 or k < 1:
            raise SystemExit(f"advise: shape {part!r} must be positive")
        out.append((f"{n}x{k}", n, k))
    if not out:
        raise SystemExit("advise: --shapes is empty")
    return out


def _ints(text: str, what: str) -> List[int]:
    try:
        v = sorted({int(t) for t in text.split(",") if t.strip()})
    except ValueError:
        raise SystemExit(f"advise: {what} wants comma-separated integers, got {text!r}")
    if not v or v[0] < 1:
        raise SystemExit(f"advise: {what} must be positive integers, got {text!r}")
    return v


# ---------------------------------------------------------------------------- accuracy
def _rel_err(y: torch.Tensor, ref: torch.Tensor) -> float:
    return float((y.float() - ref).norm() / ref.norm().clamp_min(1e-30))


def accuracy(fmts: Sequence[str], shapes: Sequence[Tuple[int, int]], max_rows: int, use_cuda: bool):
    """{format: {"N x K": {rel_err, bits, rows, device} or {unsupported: reason}}}, plus bf16."""
    out: Dict[str, Dict[str, dict]] = {"bf16": {}}
    for fi, (N, K) in enumerate(shapes):
        key = f"{N}x{K}"
        for name in ["bf16", *fmts]:
            spec = None if name == "bf16" else _formats.get(name)
            on_gpu = use_cuda and (spec is None or spec.has_cuda_kernel())
            dev = "cuda" if on_gpu else "cpu"
            rows = N if on_gpu else min(N, max_rows)
            if spec is not None and not spec.supports((N, K)):
                out.setdefault(name, {})[key] = {"unsupported": _shape_reason(spec, (N, K))}
                continue
            g = torch.Generator().manual_seed(SEED + fi)   # same W and x for every format
            W = torch.randn(rows, K, generator=g).to(torch.bfloat16).to(dev)
            x = torch.randn(ACC_ROWS, K, generator=g).to(torch.bfloat16).to(dev)
            ref = x.float() @ W.float().T
            with torch.no_grad():
                if spec is None:
                    y, nbytes = F.linear(x, W), W.numel() * 2
                else:
                    qw = spec.quantize(W)
                    y, nbytes = spec.linear(x, qw), qw.nbytes()
            out.setdefault(name, {})[key] = {"rel_err": _rel_err(y, ref), "bits": 8.0 * nbytes / (rows * K),
                                             "rows": rows, "device": dev}
    return out


def _shape_reason(spec, shape) -> str:
    try:
        spec._check_shape(tuple(shape), spec.parse_options({}))
    except ValueError as e:
        return str(e)
    return f"{spec.name} does not support shape {shape}"


# ---------------------------------------------------------------------------- speed
def speed(fmts: Sequence[str], layers, Ms: Sequence[int], log):
    """{name: {M: ms summed over the block's layers}} for bf16 and the formats timed, and
    {format: why not timed}."""
    log(f"timing with lowbit_ext/_timing.py graph_time (CUDA graphs, CUDA events) on "
        f"{torch.cuda.get_device_name(0)}")
    counts: Dict[Tuple[int, int], int] = {}
    for _, N, K in layers:
        counts[(N, K)] = counts.get((N, K), 0) + 1
    timed = [f for f in fmts if _formats.get(f).has_cuda_kernel()]
    skipped = {f: NO_KERNEL for f in fmts if f not in timed}
    totals: Dict[str, Dict[int, float]] = {n: {M: 0.0 for M in Ms} for n in ["bf16", *timed]}
    for (N, K), cnt in counts.items():
        # L distinct weights per graph (>= ~1 GiB of bf16 over them): weights stream from HBM, not L2
        L = max(2, min(8, math.ceil(2**30 / (N * K * 2))))
        g = torch.Generator(device="cuda").manual_seed(SEED)
        Ws = [torch.randn(N, K, device="cuda", generator=g).to(torch.bfloat16) for _ in range(L)]
        for name in ["bf16", *timed]:
            if name not in totals:
                continue
            spec = None if name == "bf16" else _formats.get(name)
            if spec is not None and not spec.supports((N, K)):
                skipped[name] = f"shape {N}x{K} unsupported: {_shape_reason(spec, (N, K))}"
                del totals[name]
                continue
            try:
                ws = Ws if spec is None else [spec.quantize(W) for W in Ws]
                for M in Ms:
                    x = torch.randn(M, K, device="cuda", dtype=torch.bfloat16)
                    if spec is None:
                        calls = [lambda w=w, x=x: F.linear(x, w) for w in ws]
                    else:
                        calls = [lambda w=w, x=x, spec=spec: spec.linear(x, w) for w in ws]
                    totals[name][M] += cnt * graph_time(calls)
                    del x, calls
            except Exception as e:  # a format that fails to run must not hide the others
                skipped[name] = f"failed at {N}x{K}: {type(e).__name__}: {str(e)[:120]}"
                totals.pop(name, None)
            del ws
            torch.cuda.empty_cache()
        del Ws
        torch.cuda.empty_cache()
    return totals, skipped


# ---------------------------------------------------------------------------- advice
def _weighted(acc_fmt: Dict[str, dict], layers, field: str) -> Optional[float]:
    """Mean of `field` over the block's layers, weighted by their weight count (None if any
    layer shape is unsupported)."""
    num = den = 0.0
    for _, N, K in layers:
        r = acc_fmt.get(f"{N}x{K}", {})
        if field not in r:
            return None
        num += r[field] * N * K
        den += N * K
    return num / den


def recommend(summary: Dict[str, dict], decode_Ms: List[int], prefill_M: int, max_error: float,
              have_speed: bool) -> Dict[str, dict]:
    ok = [f for f, s in summary.items() if f != "bf16" and s["rel_err"] is not None and s["rel_err"] <= max_error]
    rec: Dict[str, dict] = {}
    if have_speed:
        for regime, Ms in (("decode", decode_Ms), ("prefill", [prefill_M])):
            cands = []
            for f in ok:
                sp = summary[f].get("speedup") or {}
                vals = [sp.get(M) for M in Ms]
                if not vals or any(v is None for v in vals) or min(vals) < 1.0:
                    continue                       # never one slower than bf16 in this regime
                cands.append((statistics.geometric_mean(vals), f))
            if cands:
                best, f = max(cands)
                rec[regime] = {"format": f, "speedup": best, "basis": "measured speed"}
            else:
                rec[regime] = {"format": "bf16", "speedup": 1.0, "basis": "measured speed",
                               "why": f"no format with rel. error <= {max_error:g} is at least as fast as bf16"
                                      + ("" if ok else _closest(summary))}
        return rec
    # no speed data: decode is memory-bound (fewest weight bytes); prefill is compute-bound
    # (weight bytes matter little; 8-bit activations can use the 8-bit tensor cores)
    by_bytes = sorted(ok, key=lambda f: (round(summary[f]["bits"], 2), summary[f]["rel_err"]))
    by_act = sorted(ok, key=lambda f: (not summary[f]["act8"], round(summary[f]["bits"], 2), summary[f]["rel_err"]))
    for regime, order in (("decode", by_bytes), ("prefill", by_act)):
        if order:
            rec[regime] = {"format": order[0], "basis": "accuracy + weight bytes (speed not measured)"}
        else:
            rec[regime] = {"format": "bf16", "basis": "accuracy (speed not measured)",
                           "why": f"no format has rel. error <= {max_error:g}" + _closest(summary)}
    return rec


def _closest(summary) -> str:
    errs = [(s["rel_err"], f) for f, s in summary.items() if f != "bf16" and s["rel_err"] is not None]
    if not errs:
        return ""
    e, f = min(errs)
    return f" (most accurate: {f}, {e:.4f}; raise --max-error to accept it)"


# 8-bit activations quantized in the op (the others multiply 16-bit activations)
_ACT8 = {"w8a8_int8", "w8a8_fp8", "fp8_block", "mxfp8", "a8w4_mx"}


def _plot(path: str, totals, Ms, log) -> None:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log(f"--plot {path}: matplotlib is not installed: plot skipped")
        return
    if totals is None:
        log(f"--plot {path}: no speed data (no CUDA GPU): plot skipped")
        return
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for f, t in totals.items():
        if f == "bf16":
            continue
        ax.plot(Ms, [totals["bf16"][M] / t[M] for M in Ms], marker="o", label=f)
    ax.axhline(1.0, color="gray", lw=1, ls="--", label="cuBLAS bf16")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("batch size (M)")
    ax.set_ylabel("speedup vs cuBLAS bf16 (one block)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    log(f"plot written to {path}")


# ---------------------------------------------------------------------------- main
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m lowbit_ext advise",
                                description="Which lowbit format for a model: accuracy per format (always), "
                                            "speed vs cuBLAS bf16 (on a CUDA GPU), a recommendation per regime.")
    p.add_argument("--model", default="llama3-8b",
                   help="model whose linear shapes to use (a lowbit_ext.model_shapes CONFIGS name)")
    p.add_argument("--shapes", default=None, help="instead of --model: NxK[,NxK...] (out_features x in_features)")
    p.add_argument("--batch-sizes", default="1,8,32,128,512,2048", help="decode batch sizes (M) to time")
    p.add_argument("--prompt-len", type=int, default=2048, help="prefill M (tokens of one prompt)")
    p.add_argument("--formats", default=None, help="comma-separated formats (default: all registered)")
    p.add_argument("--max-error", type=float, default=0.02, help="largest relative output error to recommend")
    p.add_argument("--max-rows", type=int, default=512,
                   help="CPU accuracy: weight rows made per shape (rows are i.i.d.; keeps the pass fast)")
    p.add_argument("--plot", default=None, help="PNG of speedup vs batch size per format (needs matplotlib)")
    p.add_argument("--json", default=None, help="write every number to this JSON file")
    return p


def main(argv: Optional[Sequence[str]] = None) -> dict:
    args = build_parser().parse_args(argv)
    log = lambda *a: print(*a, flush=True)  # noqa: E731
    t0 = time.perf_counter()

    if args.formats:
        fmts = [f.strip() for f in args.formats.split(",") if f.strip()]
        for f in fmts:
            try:
                _formats.get(f)
            except KeyError as e:
                raise SystemExit(f"advise: {e.args[0]}")
    else:
        fmts = _formats.names()
    if args.shapes:
        layers, source = parse_shapes(args.shapes), "--shapes"
    else:
        layers, source = model_layers(args.model)
    batch = _ints(args.batch_sizes, "--batch-sizes")
    if args.prompt_len < 1:
        raise SystemExit("advise: --prompt-len must be >= 1")
    Ms = sorted(set(batch) | {args.prompt_len})
    decode_Ms = [M for M in batch if M <= DECODE_MAX_BATCH] or [min(batch)]
    shapes = list(dict.fromkeys((N, K) for _, N, K in layers))
    use_cuda = torch.cuda.is_available()
    cpu_build = not any(_formats.get(f).has_cuda_kernel() for f in _formats.names())

    log(f"lowbit_ext advise: {len(layers)} linear layers from {source}; distinct shapes (N x K): "
        + ", ".join(f"{N}x{K}" for N, K in shapes))
    log(f"formats: {', '.join(fmts)} (default options of each); max rel. error {args.max_error:g}")
    if not use_cuda:
        log(NO_GPU_LINE)

    # ---- accuracy
    ta = time.perf_counter()
    acc = accuracy(fmts, shapes, args.max_rows, use_cuda)
    sampled = sorted({int(k.split("x")[0]) for per in acc.values() for k, r in per.items()
                      if r.get("rows", 0) and r["rows"] < int(k.split("x")[0])})
    log(f"accuracy: random-normal bf16 weights (seed {SEED}), {ACC_ROWS} random bf16 activation rows, error "
        f"vs the fp32 product, {time.perf_counter() - ta:.1f} s")
    if sampled:
        log(f"  on the CPU only the first {args.max_rows} rows of each weight were quantized (of N = "
            + ", ".join(map(str, sampled)) + "; rows are i.i.d., so the error estimate does not depend on N)")

    # ---- speed
    totals, not_timed = None, {}
    if use_cuda:
        totals, not_timed = speed(fmts, layers, Ms, log)

    # ---- summary
    summary: Dict[str, dict] = {}
    for f in ["bf16", *fmts]:
        s = {"rel_err": _weighted(acc.get(f, {}), layers, "rel_err"), "bits": _weighted(acc.get(f, {}), layers, "bits"),
             "act8": f in _ACT8, "per_shape": acc.get(f, {}), "notes": []}
        if f != "bf16":
            spec = _formats.get(f)
            s["options"] = {k: (str(v) if isinstance(v, torch.dtype) else v) for k, v in spec.defaults.items()}
            s["cuda_kernel"] = spec.has_cuda_kernel()
            bad = [k for k, r in acc[f].items() if "unsupported" in r]
            if bad:
                s["notes"].append(f"unsupported shape(s) {', '.join(bad)}")
            if cpu_build:
                s["notes"].append("CUDA kernel: not in this build (CPU-only)")
            elif not spec.has_cuda_kernel():
                s["notes"].append(NO_KERNEL)
            elif f in not_timed:
                s["notes"].append(not_timed[f])
        if totals is not None and f in totals:
            s["ms_per_block"] = dict(totals[f])
            s["speedup"] = {M: totals["bf16"][M] / totals[f][M] for M in Ms}
        summary[f] = s

    rec = recommend(summary, decode_Ms, args.prompt_len, args.max_error, totals is not None)

    # ---- table
    cols = [f"M={M}" + ("*" if M == args.prompt_len else "") for M in Ms]
    head = ["format", "bits/w", "rel.err"] + cols + ["notes"]
    rows = []
    for f, s in summary.items():
        sp = s.get("speedup")
        cells = [f"{sp[M]:.2f}x" if sp else "-" for M in Ms]
        err = "-" if s["rel_err"] is None else f"{s['rel_err']:.4f}"
        bits = "-" if s["bits"] is None else f"{s['bits']:.2f}"
        note = "; ".join(s["notes"] + (["reference (cuBLAS bf16 on a GPU)"] if f == "bf16" else []))
        if f != "bf16" and s["rel_err"] is not None and s["rel_err"] > args.max_error:
            note = "; ".join(x for x in (f"error > {args.max_error:g}", note) if x)
        rows.append([f, bits, err] + cells + [note])
    widths = [max(len(r[i]) for r in rows + [head]) for i in range(len(head) - 1)]
    fmt_row = lambda r: "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))) \
        + "  " + r[-1]  # noqa: E731
    log("")
    log(fmt_row(head))
    for r in rows:
        log(fmt_row(r))
    log("(speedup: one block's layers summed, vs cuBLAS bf16; * = prefill M = --prompt-len; "
        "rel.err and bits/w: weighted over the block's layers)")
    log("")
    for regime, Ms_r, what in (("decode", decode_Ms, "memory-bound"), ("prefill", [args.prompt_len], "compute-bound")):
        r = rec[regime]
        Mtxt = f"batch {','.join(map(str, Ms_r))}" if regime == "decode" else f"M = {args.prompt_len}"
        line = f"recommendation {regime} ({Mtxt}, {what}): {r['format']}"
        if r["format"] != "bf16":
            s = summary[r["format"]]
            line += f" (rel. error {s['rel_err']:.4f}, {s['bits']:.2f} bits/weight"
            line += f", {r['speedup']:.2f}x bf16)" if "speedup" in r else ")"
        if r.get("why"):
            line += f": {r['why']}"
        line += f" [{r['basis']}]"
        log(line)
    if totals is None:
        log("speed was not measured (no CUDA GPU): decode advice = fewest weight bytes within the error "
            "threshold; prefill advice prefers 8-bit activations (8-bit tensor cores); check on a GPU")
    if args.plot:
        _plot(args.plot, totals, Ms, log)

    result = {"model": args.model if not args.shapes else None, "layers": [list(l) for l in layers],
              "source": source, "batch_sizes": batch, "prompt_len": args.prompt_len, "Ms": Ms,
              "max_error": args.max_error, "cuda": use_cuda,
              "device": torch.cuda.get_device_name(0) if use_cuda else "cpu",
              "speed_measured": totals is not None, "accuracy_rows": ACC_ROWS, "max_rows": args.max_rows,
              "formats": {f: {k: v for k, v in s.items()} for f, s in summary.items()},
              "recommendation": rec, "seconds": time.perf_counter() - t0}
    if args.json:
        d = os.path.dirname(os.path.abspath(args.json))
        os.makedirs(d, exist_ok=True)
        with open(args.json, "w") as fh:
            json.dump(result, fh, indent=1, default=str)
        log(f"json written to {args.json}")
    return result


if __name__ == "__main__":
    main()
