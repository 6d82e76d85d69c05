"""SM clock and board power while one GEMM runs back to back (device diagnostic).

Question it answers: does a kernel run slower than another because the GPU clocks it down
(power or thermal limits) or because it does less per clock? One op per process (so env knobs
such as LOWBIT_SM90_BN apply): replays a CUDA graph of the op for --seconds while
`nvidia-smi` samples clocks.sm, power.draw and the throttle reasons every 50 ms; prints one
JSON line: TFLOP/s, and the median clock and power over the middle of the run.

    python bench/clock_probe.py --op lowbit_fp8_row --m 4096 --n 8192 --k 8192
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

_HERE = os.path.dirname(os.path.abspath(__file__))

OPS = ("cublas_bf16", "scaled_mm_tensor", "lowbit_fp8_row", "lowbit_int8_row", "int_mm")


def build(op, m, n, k):
    import torch

    sys.path.insert(0, os.path.dirname(_HERE))
    from lowbit_ext import ops

    dev, FP8 = "cuda", torch.float8_e4m3fn
    x = torch.randn(m, k, device=dev, dtype=torch.bfloat16)
    w = torch.randn(n, k, device=dev, dtype=torch.bfloat16)
    one = torch.ones(1, device=dev)
    xs, ws = torch.rand(m, device=dev) + 0.5, torch.rand(n, device=dev) + 0.5
    if op == "cublas_bf16":
        return lambda: x @ w.t()
    if op == "scaled_mm_tensor":
        xq, wq = x.to(FP8), w.to(FP8)
        return lambda: torch._scaled_mm(xq, wq.t(), one, one, out_dtype=torch.bfloat16)
    if op == "lowbit_fp8_row":
        xq, wq = x.to(FP8), w.to(FP8)
        return lambda: ops.w8a8_fp8_mm(xq, xs, wq, ws, None, torch.bfloat16)
    xi = x.mul(20).round().clamp(-127, 127).to(torch.int8)
    wi = w.mul(20).round().clamp(-127, 127).to(torch.int8)
    if op == "lowbit_int8_row":
        return lambda: ops.w8a8_int8_mm(xi, xs, wi, ws, None, torch.bfloat16)
    return lambda: torch._int_mm(xi, wi.t())


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--op", choices=OPS, required=True)
    p.add_argument("--m", type=int, default=4096)
    p.add_argument("--n", type=int, default=8192)
    p.add_argument("--k", type=int, default=8192)
    p.add_argument("--seconds", type=float, default=3.0)
    a = p.parse_args()
    import torch

    fn = build(a.op, a.m, a.n, a.k)
    fn()
    torch.cuda.synchronize()
    g = torch.cuda.CUDAGraph()
    reps = 20
    with torch.cuda.graph(g):
        for _ in range(reps):
            fn()
    g.replay()
    torch.cuda.synchronize()
    smi = subprocess.Popen(["nvidia-smi", "--query-gpu=clocks.sm,power.draw,clocks_event_reasons.active",
                            "--format=csv,noheader,nounits", "-lms", "50"], stdout=subprocess.PIPE, text=True)
    t0, n = time.perf_counter(), 0
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    while time.perf_counter() - t0 < a.seconds:
        g.replay()
        n += 1
        if n % 4 == 0:
            torch.cuda.synchronize()
    end.record()
    torch.cuda.synchronize()
    smi.terminate()
    lines = [ln.split(",") for ln in smi.communicate()[0].strip().splitlines() if ln.count(",") == 2]
    mid = lines[len(lines) // 4: 3 * len(lines) // 4] or lines
    ms = start.elapsed_time(end) / (n * reps)
    out = dict(op=a.op, m=a.m, n=a.n, k=a.k, env={k: v for k, v in os.environ.items() if k.startswith("LOWBIT_")},
               us=ms * 1e3, tflops=2 * a.m * a.n * a.k / ms / 1e9,
               sm_mhz=statistics.median(float(x[0]) for x in mid),
               power_w=statistics.median(float(x[1]) for x in mid),
               throttle=sorted({x[2].strip() for x in mid}), samples=len(mid))
    print(json.dumps(out))


if __name__ == "__main__":
    main()
