"""End-to-end model benchmark: a Llama-style decoder (bench/llama.py, real Llama-3 layer
shapes) quantized with lowbit_ext.quantize_ in each format, against the same model in bf16,
in one run on one GPU.

Per format it reports: decode speed (tokens/s at each batch size, one token per step from a
static KV cache, replayed as a CUDA graph so launch overhead does not hide the kernels),
prefill time for a long prompt,
weight bytes and peak memory, the quantize_ time, and the logits' relative error against bf16
(random weights: a functional check of each format's noise, not a quality number; real
weights are bench/minilm.py's job).

    python bench/model.py --out bench/results/<date>-h100-model.json                   # GPU
    python bench/model.py --layers 8 --batch 1,16,64 --formats a16w4,w8a8_fp8          # faster
    python bench/model.py --dry-run                                                    # CPU

--decode-mode: `graph` (default) captures the eager decode step in one CUDA graph: the
kernels the model runs, no inductor fusions, seconds per format; `compile` wraps the step
in torch.compile(mode="reduce-overhead", fullgraph=True) (what a user would run; inductor
fuses the elementwise glue, and compiling a 32-block model takes minutes per batch size:
session 4's run of 2 formats x 3 batch sizes needed ~450 s); `eager` launches every kernel.

`regional` compiles each decoder block (and the final norm) with torch.compile(fullgraph=True)
-- one compile serves all blocks (the regional-compilation recipe; two with bench/llama.py's
residual adds in the norms, the first block having no pending add), so seconds instead of
minutes -- and captures the step in one CUDA graph as `graph` does: inductor's fused glue
(norms, rotary, SwiGLU, residuals) around the same GEMM ops; the prefill then runs through the
compiled blocks too (compiled again for the prompt's shape), timed without a graph.

--dry-run runs the whole pipeline on the CPU (reference ops) with the tiny config, two
decode steps and eager mode: it checks the harness, its numbers mean nothing. On a GPU,
formats whose linear op has no CUDA kernel in this build are listed as skipped.
"""
import argparse
import contextlib
import copy
import gc
import os
import sys
import time
import traceback

import torch

_HERE = os.path.dirname(os.path.abspath(__file__))
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)
import common  # noqa: E402
import llama  # noqa: E402

if common.REPO not in sys.path:
    sys.path.append(common.REPO)  # appended: an installed build takes precedence
import lowbit_ext as L  # noqa: E402
from lowbit_ext import formats  # noqa: E402

log = common.log


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="llama3-8b", choices=sorted(llama.CONFIGS))
    p.add_argument("--layers", type=int, default=None, help="decoder blocks (default: the config's)")
    p.add_argument("--formats", default=",".join(formats.names()),
                   help="comma-separated format names (default: all), each with its default config")
    p.add_argument("--batch", default="1,16,64,256", help="decode batch sizes")
    p.add_argument("--prompt", type=int, default=512, help="tokens in the prompt before decoding")
    p.add_argument("--steps", type=int, default=64, help="decode steps timed per batch size")
    p.add_argument("--prefill", default="2048", help="prefill lengths timed (batch 1)")
    p.add_argument("--dtype", default="bfloat16", choices=["bfloat16", "float16"])
    p.add_argument("--decode-mode", default="graph", choices=["graph", "regional", "compile", "eager"],
                   help="how the decode step runs (see above)")
    p.add_argument("--no-compile", action="store_true", help="same as --decode-mode eager")
    p.add_argument("--fused", action="store_true",
                   help="one qkv_proj and one gate_up_proj per block (llama.fuse_projections), for every format")
    p.add_argument("--profile", action="store_true",
                   help="also profile one eager decode step per batch size (torch.profiler): the step's "
                        "kernels by category (lowbit GEMMs, other GEMMs, attention, glue) and the top kernels")
    p.add_argument("--out", default=None, help="JSON file for the results")
    p.add_argument("--dry-run", action="store_true", help="CPU, tiny model, 2 steps: checks the harness")
    a = p.parse_args(argv)
    if a.dry_run:
        a.model, a.layers, a.batch, a.prompt, a.steps, a.prefill = "tiny", 2, "1,2", 8, 2, "16"
        a.no_compile = True
    if a.no_compile:
        a.decode_mode = "eager"
    a.formats = [f for f in a.formats.split(",") if f]
    for f in a.formats:
        formats.get(f)
    a.batch = [int(b) for b in a.batch.split(",")]
    a.prefill = [int(t) for t in a.prefill.split(",") if t]
    return a


# ---------------------------------------------------------------- timing
def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def _time_ms(fn, device, reps, warmup=2):
    """Median ms per fn() call: CUDA events on a GPU, wall clock on the CPU (bench/common.py)."""
    timer = common.eager_time if device.type == "cuda" else common.cpu_time
    return timer([fn], reps=reps, warmup=warmup)


def log_profile(prof):
    log(f"    profile: {prof['kernels_per_step']:.0f} kernels, {prof['us_per_step']:.0f} us of kernels per call; "
        f"by category (us): {prof['by_category']}")
    for n, us in prof["top"]:
        log(f"      {us:9.1f} us  {n}")
    tl = prof.get("timeline")
    if tl:
        log(f"    timeline: span {tl['span_us']:.0f} us, idle {tl['idle_us']:.0f} us, overlapped {tl['overlap_us']:.0f} us"
            " per call; most idle before:")
        for n, us in tl["idle_before"]:
            log(f"      {us:9.1f} us  {n}")


def compile_blocks(model):
    """Regional compilation: every block's forward (and the final norm's) through torch.compile
    with fullgraph=True. The blocks share their code, and with nn-module parameters as graph
    inputs (torch's default) the first block's compiled graph serves all of them."""
    for b in model.layers:
        if getattr(b, "_compiled_call_impl", None) is None:
            b.compile(fullgraph=True)
    if getattr(model.norm, "_compiled_call_impl", None) is None:
        model.norm.compile(fullgraph=True)


def uncompile_blocks(model):
    """compile_blocks undone: the blocks run their plain forward again."""
    for m in list(model.layers) + [model.norm]:
        m._compiled_call_impl = None


@contextlib.contextmanager
def blocks_compiled(model, on: bool):
    """The blocks compiled (compile_blocks) inside the `with` when `on` (regional mode), plain
    after it, so that each phase decides for itself."""
    if on:
        compile_blocks(model)
    try:
        yield
    finally:
        if on:
            uncompile_blocks(model)


def time_decode_step(model, mode, tok, pos, device, reps):
    """ms per decode step on the static inputs tok, pos, run as `mode` says: "graph" (and
    "regional", whose blocks the caller compiled) captured once and replayed (bench/common.py
    graph_time, the benches' one capture procedure), "compile" through
    torch.compile(mode="reduce-overhead"), "eager" launched each time."""
    def step():
        return model(tok, pos)
    if mode in ("graph", "regional"):
        return common.graph_time([step], reps=reps)
    if mode == "compile":
        compiled = torch.compile(lambda t, p: model(t, p), mode="reduce-overhead", fullgraph=True)
        return _time_ms(lambda: compiled(tok, pos), device, reps=reps, warmup=3)
    return _time_ms(step, device, reps=reps, warmup=3)


def kernel_category(name: str) -> str:
    """What a decode step's kernel is: our GEMMs / quantizers, another GEMM (cuBLAS), attention,
    or the elementwise glue between them (norms, rotary, residuals, casts, cache writes)."""
    n = name.lower()
    if "lowbit" in n:
        return "lowbit"
    if any(k in n for k in ("gemm", "gemv", "nvjet", "cutlass", "sm90_xmma", "cublas")):
        return "other_gemm"
    if any(k in n for k in ("flash", "fmha", "attention", "softmax", "efficient")):
        return "attention"
    return "glue"


def timeline_gaps(kernels, steps=1):
    """Where a GPU timeline waits: `kernels` are (name, start_us, end_us) of the calls' kernels on
    one stream. Returns the span (first start to last end), the idle time (no kernel running),
    the overlap (kernels running at once: programmatic dependent launches), each per call, and
    the 6 kernel names with the most idle time just before them (us per call).

    Why: session 19's prefill ran 1.0-1.6 ms longer by the wall clock than by its kernels' sum
    with one fp8 GEMM tile and 0-1.0 ms with another (bench/NOTES.md); this says before which
    kernels the GPU sat idle."""
    ks = sorted(kernels, key=lambda k: k[1])
    if not ks:
        return dict(span_us=0.0, idle_us=0.0, overlap_us=0.0, idle_before=[])
    busy_end, idle, before = ks[0][2], 0.0, {}
    for name, start, end in ks[1:]:
        if start > busy_end:
            idle += start - busy_end
            before[name] = before.get(name, 0.0) + start - busy_end
        busy_end = max(busy_end, end)
    span = busy_end - ks[0][1]
    overlap = sum(e - s for _, s, e in ks) - (span - idle)
    top = sorted(before.items(), key=lambda kv: -kv[1])[:6]
    return dict(span_us=round(span / steps, 1), idle_us=round(idle / steps, 1), overlap_us=round(overlap / steps, 1),
                idle_before=[(n[:120], round(us / steps, 1)) for n, us in top])


def profile_step(fn, steps=3):
    """The kernels of fn() (a decode step, regional: the compiled blocks'; or a prefill), launched
    without a graph under torch.profiler (kernel times as in a graph replay; the launch gaps are
    not): per category and the 12 largest kernel names, in us per call, and the kernels per call."""
    from torch.profiler import ProfilerActivity, profile
    with torch.no_grad():
        fn()
        torch.cuda.synchronize()
        with profile(activities=[ProfilerActivity.CUDA]) as prof:
            for _ in range(steps):
                fn()
            torch.cuda.synchronize()
    by_name, count, spans = {}, 0, []
    for e in prof.events():
        if e.device_type != torch.autograd.DeviceType.CUDA or e.device_time_total <= 0:
            continue
        by_name[e.name] = by_name.get(e.name, 0.0) + e.device_time_total / steps
        count += 1
        tr = getattr(e, "time_range", None)
        if tr is not None and tr.end > tr.start:
            spans.append((e.name, float(tr.start), float(tr.end)))
    cats = {}
    for n, us in by_name.items():
        c = kernel_category(n)
        cats[c] = cats.get(c, 0.0) + us
    top = sorted(by_name.items(), key=lambda kv: -kv[1])[:12]
    return dict(kernels_per_step=count / steps, us_per_step=sum(by_name.values()),
                by_category={k: round(v, 1) for k, v in sorted(cats.items())},
                top=[(n[:120], round(us, 1)) for n, us in top], timeline=timeline_gaps(spans, steps))


def bench_decode(model, args, device, B, mode):
    """(ms per decode step, its profile or None) at batch B: a prompt of args.prompt tokens fills
    the cache first."""
    cfg = model.cfg
    model.setup_caches(max_batch=B, max_seq=args.prompt + args.steps + 8)
    g = torch.Generator().manual_seed(B)
    prompt = torch.randint(0, cfg.vocab_size, (B, args.prompt), generator=g).to(device)
    with torch.no_grad():
        model(prompt, torch.arange(args.prompt, device=device))
        # the same position every time: the cache content does not change the work
        tok = torch.randint(0, cfg.vocab_size, (B, 1), generator=g).to(device)
        pos = torch.tensor([args.prompt], device=device)
        with blocks_compiled(model, mode == "regional"):
            ms = time_decode_step(model, mode, tok, pos, device, args.steps)
            prof = profile_step(lambda: model(tok, pos)) if args.profile and device.type == "cuda" else None
    for b in model.layers:
        b.attn.kv_cache = None
    return ms, prof


def bench_prefill(model, args, device, T):
    """(ms for one forward over a T-token prompt, its profile or None), launched eagerly; in
    regional mode through the compiled blocks (compiled again for the prompt's shape: no cache, a
    causal mask)."""
    g = torch.Generator().manual_seed(T)
    tok = torch.randint(0, model.cfg.vocab_size, (1, T), generator=g).to(device)
    with blocks_compiled(model, args.decode_mode == "regional" and device.type == "cuda"), torch.no_grad():
        ms = _time_ms(lambda: model(tok), device, reps=3 if device.type == "cuda" else 1, warmup=2)
        prof = profile_step(lambda: model(tok), steps=1) if args.profile and device.type == "cuda" else None
    return ms, prof


def weight_bytes(model):
    return sum(t.numel() * t.element_size() for t in list(model.parameters()) + list(model.buffers())
               if not t.is_meta) - sum(b.numel() * b.element_size() for n, b in model.named_buffers()
                                       if n.startswith("rope_"))


# ---------------------------------------------------------------- one format
def run_format(name, base, args, device, ref_logits, eval_tokens):
    """Rows for one format ("bf16": the unquantized model)."""
    rows, info = [], {"format": name}
    model = copy.deepcopy(base)
    if name != "bf16":
        fmt = formats.get(name)
        if device.type == "cuda" and not fmt.has_cuda_kernel():
            info["skipped"] = f"no CUDA kernel for lowbit.{fmt.op_name} in this build"
            return rows, info
        _sync(device)
        t = time.perf_counter()
        report = L.quantize_(model, name, progress=False)
        _sync(device)
        info.update(config=repr(report.config), quantize_s=round(time.perf_counter() - t, 3),
                    converted=len(report.converted), skipped_layers=report.skipped)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    info["weight_bytes"] = weight_bytes(model)
    with torch.no_grad():
        logits = model(eval_tokens).float()
    info["rel_err_vs_bf16"] = (logits - ref_logits).norm().item() / ref_logits.norm().item()
    mode = args.decode_mode if device.type == "cuda" else "eager"
    timing = {"graph": "cuda_graph", "regional": "regional_compiled_cuda_graph", "compile": "compiled_cuda_graph",
              "eager": "eager"}[mode]
    for B in args.batch:
        try:
            torch._dynamo.reset()
            how = timing if device.type == "cuda" else "cpu"
            try:
                ms, prof = bench_decode(model, args, device, B, mode)
            except Exception as e:  # a step that cannot be captured is still timed, eagerly, and said so
                if mode != "graph":
                    raise
                log(f"  {name} decode B={B}: graph capture failed ({type(e).__name__}: {e}); timing eager")
                torch.cuda.synchronize()
                ms, prof = bench_decode(model, args, device, B, "eager")
                how = f"eager (capture failed: {type(e).__name__})"
            rows.append(dict(format=name, phase="decode", batch=B, ms_per_step=ms, tokens_per_s=B * 1e3 / ms,
                             timing=how))
            log(f"  {name:10s} decode B={B:4d}: {ms:8.3f} ms/step  {B * 1e3 / ms:10.1f} tok/s")
            if prof is not None:
                rows[-1]["profile"] = prof
                log_profile(prof)
        except Exception as e:  # one failing shape must not lose the others' numbers
            rows.append(dict(format=name, phase="decode", batch=B, error=f"{type(e).__name__}: {e}"))
            log(f"  {name} decode B={B}: FAILED {type(e).__name__}: {e}")
            traceback.print_exc()
    for T in args.prefill:
        try:
            ms, prof = bench_prefill(model, args, device, T)
            rows.append(dict(format=name, phase="prefill", batch=1, tokens=T, ms=ms, tokens_per_s=T * 1e3 / ms,
                             timing=("regional_compiled" if args.decode_mode == "regional" else "eager")
                             if device.type == "cuda" else "cpu"))
            log(f"  {name:10s} prefill T={T:5d}: {ms:8.3f} ms")
            if prof is not None:
                rows[-1]["profile"] = prof
                log_profile(prof)
        except Exception as e:
            rows.append(dict(format=name, phase="prefill", tokens=T, error=f"{type(e).__name__}: {e}"))
            log(f"  {name} prefill T={T}: FAILED {type(e).__name__}: {e}")
    if device.type == "cuda":
        info["peak_memory_bytes"] = torch.cuda.max_memory_allocated()
    del model
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return rows, info


def speedups(rows):
    """Adds speedup_vs_bf16 to every row that has a bf16 row of the same phase and size."""
    base = {(r["phase"], r.get("batch"), r.get("tokens")): r for r in rows if r["format"] == "bf16" and "error" not in r}
    for r in rows:
        b = base.get((r["phase"], r.get("batch"), r.get("tokens")))
        if b is not None and "error" not in r:
            key = "ms_per_step" if r["phase"] == "decode" else "ms"
            r["speedup_vs_bf16"] = b[key] / r[key]


def main(argv=None):
    args = parse_args(argv)
    device = torch.device("cpu" if args.dry_run or not torch.cuda.is_available() else "cuda")
    if device.type == "cpu" and not args.dry_run:
        log("no GPU: running as --dry-run (the numbers mean nothing)")
        return main(list(argv or sys.argv[1:]) + ["--dry-run"])
    dtype = getattr(torch, args.dtype)
    overrides = {"n_layers": args.layers} if args.layers else {}
    cfg = llama.CONFIGS[args.model].replace(**overrides)
    cfg = cfg.replace(max_seq=max(cfg.max_seq, args.prompt + args.steps + 8, *args.prefill))
    meta = common.run_meta(device.type)
    meta.update(model=args.model, config=vars(cfg), dtype=args.dtype, args=vars(args))
    log(f"model {args.model} ({cfg.n_layers} layers) {args.dtype} on {meta.get('card')}")
    t = time.perf_counter()
    base = llama.build(cfg, dtype=dtype, device=device)
    if args.fused:
        llama.fuse_projections(base)
    log(f"built in {time.perf_counter() - t:.1f} s, {llama.param_count(base) / 1e9:.2f} B parameters"
        + (", fused qkv / gate-up projections" if args.fused else ""))
    g = torch.Generator().manual_seed(0)
    eval_tokens = torch.randint(0, cfg.vocab_size, (1, 64 if not args.dry_run else 8), generator=g).to(device)
    with torch.no_grad():
        ref_logits = base(eval_tokens).float()

    rows, infos = [], []
    for name in ["bf16"] + args.formats:
        log(f"[{name}]")
        try:
            r, info = run_format(name, base, args, device, ref_logits, eval_tokens)
        except Exception as e:
            traceback.print_exc()
            r, info = [], {"format": name, "error": f"{type(e).__name__}: {e}"}
        rows += r
        infos.append(info)
        if "skipped" in info:
            log(f"  skipped: {info['skipped']}")
        speedups(rows)
        if args.out:  # after every format: a killed run keeps what it measured
            common.write_json(args.out, dict(meta=meta, formats=infos, rows=rows))
    speedups(rows)
    log("\nformat      " + " ".join(f"B={b:<6d}" for b in args.batch) + "  (decode speedup vs bf16)")
    for info in infos:
        name = info["format"]
        cells = []
        for b in args.batch:
            r = next((r for r in rows if r["format"] == name and r["phase"] == "decode" and r.get("batch") == b), None)
            cells.append(f"{r['speedup_vs_bf16']:<8.2f}" if r and "speedup_vs_bf16" in r else f"{'-':8s}")
        extra = info.get("skipped") or info.get("error") or f"rel err {info.get('rel_err_vs_bf16', 0):.4f}"
        log(f"{name:11s} " + " ".join(cells) + f"  {extra}")
    if args.out:
        common.write_json(args.out, dict(meta=meta, formats=infos, rows=rows))
        log(f"wrote {args.out}")
    return dict(meta=meta, formats=infos, rows=rows)


if __name__ == "__main__":
    main()
