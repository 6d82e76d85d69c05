"""A/B timing of the Hopper mainloop's variants, fp8 and int8 (GEMM only, pre-quantized operands).

The variants are chosen by environment knobs read once per process (LOWBIT_SM90_CLUSTER,
LOWBIT_FP8_NO_PROMOTE, ...), so each variant runs in its own subprocess. Every process also
times cuBLAS bf16 and torch._scaled_mm tensorwise at the same shapes, so each variant's row
carries its own same-process baseline. Timing: bench/common.graph_time (CUDA graph replays,
L rotated weights so the weights are not L2-resident).

    python bench/fp8_variants.py --out v.json --variants base:,cluster:LOWBIT_SM90_CLUSTER=2
"""
import argparse
import json
import os
import subprocess
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))


def child(shapes, ms, ops_to_run):
    import torch

    sys.path.insert(0, _HERE)
    sys.path.insert(0, os.path.dirname(_HERE))
    import common
    from lowbit_ext import ops

    FP8 = torch.float8_e4m3fn
    rows = []
    for n, k in shapes:
        L = common.rotation_count(n * k * 2)
        ws = [torch.randn(n, k, device="cuda", dtype=torch.bfloat16) for _ in range(L)]
        wq = [w.to(FP8) for w in ws]
        wi = [w.mul(20).round().clamp(-127, 127).to(torch.int8) for w in ws]
        w_row = torch.rand(n, device="cuda") + 0.5
        w_blk = torch.rand((n + 127) // 128, (k + 127) // 128, device="cuda") + 0.5
        one = torch.ones(1, device="cuda")
        for m in ms:
            x = torch.randn(m, k, device="cuda", dtype=torch.bfloat16)
            xq = x.to(FP8)
            xi = x.mul(20).round().clamp(-127, 127).to(torch.int8)
            x_row = torch.rand(m, device="cuda") + 0.5
            x_blk = torch.rand(m, (k + 127) // 128, device="cuda") + 0.5
            cands = {
                "cublas_bf16": [lambda w=w: x @ w.t() for w in ws],
                "scaled_mm_tensor": [lambda w=w: torch._scaled_mm(xq, w.t(), one, one, out_dtype=torch.bfloat16)
                                     for w in wq],
                "lowbit_fp8_row": [lambda w=w: ops.w8a8_fp8_mm(xq, x_row, w, w_row, None, torch.bfloat16) for w in wq],
                "lowbit_fp8_block": [lambda w=w: ops.fp8_block_mm(xq, x_blk, w, w_blk, None, torch.bfloat16)
                                     for w in wq],
                # the same mainloop with the s8 policy (the integer family), and cuBLAS's int8
                "lowbit_int8_row": [lambda w=w: ops.w8a8_int8_mm(xi, x_row, w, w_row, None, torch.bfloat16)
                                    for w in wi],
                "int_mm": [lambda w=w: torch._int_mm(xi, w.t()) for w in wi],
            }
            for name, calls in cands.items():
                if name not in ("cublas_bf16",) and ops_to_run and not any(o in name for o in ops_to_run):
                    continue
                ms_per = common.graph_time(calls)
                rows.append(dict(method=name, n=n, k=k, m=m, ms=ms_per, tflops=2 * m * n * k / ms_per / 1e9))
            del x, xq, xi
        del ws, wq, wi
        torch.cuda.empty_cache()
    return rows


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--shapes", default="8192x8192,28672x8192")
    p.add_argument("--ms", default="256,1024,4096,8192")
    p.add_argument("--variants", default="base:", help="name:ENV=V;ENV2=V2,...")
    p.add_argument("--only", default="", help="comma list of method substrings (cuBLAS bf16 always runs)")
    p.add_argument("--out", default=None)
    p.add_argument("--child", action="store_true")
    a = p.parse_args()
    shapes = [tuple(int(v) for v in s.split("x")) for s in a.shapes.split(",")]
    ms = [int(v) for v in a.ms.split(",")]
    only = [s for s in a.only.split(",") if s]
    if a.child:
        print(json.dumps(child(shapes, ms, only)))
        return
    results = {}
    for spec in a.variants.split(","):
        name, _, envs = spec.partition(":")
        env = dict(os.environ)
        for kv in filter(None, envs.split(";")):
            key, _, val = kv.partition("=")
            env[key] = val
        cmd = [sys.executable, __file__, "--child", "--shapes", a.shapes, "--ms", a.ms, "--only", a.only]
        r = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if r.returncode != 0:
            print(f"[{name}] failed:\n{r.stderr[-3000:]}", flush=True)
            continue
        sys.stderr.write(r.stderr[-2000:])
        rows = json.loads(r.stdout.strip().splitlines()[-1])
        results[name] = rows
        base = {(x["n"], x["k"], x["m"]): x["ms"] for x in rows if x["method"] == "cublas_bf16"}
        for x in rows:
            sp = base[(x["n"], x["k"], x["m"])] / x["ms"]
            print(f"[{name:10s}] {x['method']:18s} {x['n']:6d}x{x['k']:<6d} M={x['m']:<6d} "
                  f"{x['ms'] * 1e3:9.1f} us {x['tflops']:7.1f} TFLOP/s  {sp:5.2f}x bf16", flush=True)
    if a.out:
        import torch

        meta = dict(device=torch.cuda.get_device_name(), torch=torch.__version__)
        with open(a.out, "w") as f:
            json.dump(dict(meta=meta, results=results), f, indent=1)


if __name__ == "__main__":
    main()
