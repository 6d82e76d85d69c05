"""Accuracy of the fp8 GEMMs against float64 of the same quantized operands, with and
without promotion to fp32 every 128 of K (issue 3). fp16 output, so that the output
rounding (2^-12) sits below what is measured. Without promotion the w8a8_fp8 kernel
accumulates all of K in the tensor cores' accumulator (LOWBIT_FP8_NO_PROMOTE=1, read once
per process: this script re-runs itself in a subprocess for that half).

    python bench/fp8_accuracy.py [--out accuracy.json]
"""
import argparse
import json
import os
import subprocess
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from lowbit_ext import ops  # noqa: E402

KS = [1024, 4096, 8192, 16384]


def measure(out_dtype=torch.bfloat16):
    torch.manual_seed(0)
    rows = []
    for K in KS:
        for M, N in [(64, 1024), (1024, 1024)]:
            x = torch.randn(M, K, device="cuda")
            W = torch.randn(N, K, device="cuda") * 0.05
            a, sa = ops.quantize_fp8_per_token(x)
            b, sb = ops.quantize_fp8_per_token(W)
            ref = (a.double() @ b.double().t()) * sa.double()[:, None] * sb.double()[None, :]
            y = ops.w8a8_fp8_mm(a, sa, b, sb, None, out_dtype)
            err = ((y.double() - ref).norm() / ref.norm()).item()
            rows.append(dict(K=K, M=M, N=N, out=str(out_dtype), relerr=err))
    return rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out")
    ap.add_argument("--child", action="store_true")
    args = ap.parse_args()
    if args.child:
        print(json.dumps(measure(torch.bfloat16)))
        return
    promoted = measure(torch.bfloat16)
    env = dict(os.environ, LOWBIT_FP8_NO_PROMOTE="1")
    out = subprocess.run([sys.executable, __file__, "--child"], env=env, capture_output=True, text=True, check=True)
    raw = json.loads(out.stdout.strip().splitlines()[-1])
    print("w8a8_fp8_mm relative error vs float64 of the same fp8 operands (bf16 output):")
    print(f"{'K':>6} {'M':>5} {'N':>5} {'promoted':>10} {'not promoted':>13}")
    for p, r in zip(promoted, raw):
        print(f"{p['K']:6d} {p['M']:5d} {p['N']:5d} {p['relerr']:10.2e} {r['relerr']:13.2e}")
    if args.out:
        with open(args.out, "w") as f:
            json.dump(dict(card=torch.cuda.get_device_name(), torch=torch.__version__, promoted=promoted,
                           not_promoted=raw), f, indent=1)


if __name__ == "__main__":
    main()
