"""Accuracy of the fp8 GEMMs against float64 of the same quantized operands, by how often the
sums are promoted to fp32 (issue 3): every 128 of K (the default on these shapes' 128 x 128
tiles), every 256, 512 or 1024 (LOWBIT_FP8_FOLD_EVERY=2 / 4 / 8; 512 is the default on the 128 x
192 tiles that large M takes where they need the fewest waves, 8 also runs there with
LOWBIT_FP8_BN=192; large M only, so the M = 64 rows do not change),
or never (LOWBIT_FP8_NO_PROMOTE=1: all of K in the tensor cores' accumulator). bf16 output,
whose rounding alone is ~1.7e-3. The knobs are read once per process: each variant runs in a
subprocess.

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


VARIANTS = [("promoted", {}), ("fold 2", {"LOWBIT_FP8_FOLD_EVERY": "2"}), ("fold 4", {"LOWBIT_FP8_FOLD_EVERY": "4"}),
            ("fold 8", {"LOWBIT_FP8_FOLD_EVERY": "8"}),
            ("fold 8 x192", {"LOWBIT_FP8_FOLD_EVERY": "8", "LOWBIT_FP8_BN": "192"}),
            ("not promoted", {"LOWBIT_FP8_NO_PROMOTE": "1"})]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out")
    ap.add_argument("--child", action="store_true")
    args = ap.parse_args()
    if args.child:
        print(json.dumps(measure(torch.bfloat16)))
        return
    results = {}
    for name, knobs in VARIANTS:
        out = subprocess.run([sys.executable, __file__, "--child"], env=dict(os.environ, **knobs), capture_output=True,
                             text=True, check=True)
        results[name] = json.loads(out.stdout.strip().splitlines()[-1])
    print("w8a8_fp8_mm relative error vs float64 of the same fp8 operands (bf16 output):")
    print(f"{'K':>6} {'M':>5} {'N':>5} " + " ".join(f"{n:>13}" for n, _ in VARIANTS))
    for i, row in enumerate(results["promoted"]):
        errs = " ".join(f"{results[n][i]['relerr']:13.2e}" for n, _ in VARIANTS)
        print(f"{row['K']:6d} {row['M']:5d} {row['N']:5d} {errs}")
    if args.out:
        with open(args.out, "w") as f:
            json.dump(dict(card=torch.cuda.get_device_name(), torch=torch.__version__, results=results), f, indent=1)


if __name__ == "__main__":
    main()
