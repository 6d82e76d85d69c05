"""How long the weight quantizers take on Llama-3-8B's linear shapes, on one device, and
the 8B total extrapolated from them (32 decoder layers of q, k, v, o, gate, up, down).

    python bench/quant_speed.py [--device cuda] [--methods rtn,hqq,awq] [--layers q,gate]

Weights are random N(0, 0.02^2) (the HQQ loop runs its fixed 20 steps whatever the
values); AWQ gets 4096 random calibration rows with heavy-tailed channel scales. A layer
shape is timed once after one warm-up call on a smaller shape; times include packing.
"""
import argparse
import os
import sys
import time

import torch

from lowbit_ext import formats

# Llama-3-8B: hidden 4096, 8 KV heads of 128, MLP 14336; (N, K) per linear, count per layer
SHAPES = {"q": (4096, 4096), "k": (1024, 4096), "v": (1024, 4096), "o": (4096, 4096),
          "gate": (14336, 4096), "up": (14336, 4096), "down": (4096, 14336)}
LAYERS = 32


def sync(dev):
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def time_one(fmt, W, opts, act, dev):
    sync(dev)
    t0 = time.perf_counter()
    fmt.quantize(W, **opts, **({"act": act} if act is not None else {}))
    sync(dev)
    return time.perf_counter() - t0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--methods", default="rtn,hqq,awq")
    ap.add_argument("--layers", default=",".join(SHAPES), help="which of " + ",".join(SHAPES))
    ap.add_argument("--format", default="a16w4")
    args = ap.parse_args()
    dev = torch.device(args.device)
    fmt = formats.get(args.format)
    gen = torch.Generator(device=dev).manual_seed(0)
    print(f"device {dev} ({torch.cuda.get_device_name(dev) if dev.type == 'cuda' else os.cpu_count()} "
          f"{'' if dev.type == 'cuda' else 'cores, ' + str(torch.get_num_threads()) + ' threads'}), "
          f"torch {torch.__version__}, format {args.format}", flush=True)
    names = args.layers.split(",")
    for method in args.methods.split(","):
        opts = {} if method == "rtn" else {"method": method}
        warm = torch.randn(256, 512, generator=gen, device=dev) * 0.02
        warm_act = torch.randn(64, 512, generator=gen, device=dev)
        time_one(fmt, warm, opts, warm_act if method == "awq" else None, dev)
        per_layer = 0.0
        for name in names:
            N, K = SHAPES[name]
            W = (torch.randn(N, K, generator=gen, device=dev) * 0.02).to(torch.bfloat16)
            act = None
            if method == "awq":
                chan = torch.exp(torch.randn(K, generator=gen, device=dev))    # log-normal channel scales
                act = (torch.randn(4096, K, generator=gen, device=dev) * chan).to(torch.bfloat16)
            s = time_one(fmt, W, opts, act, dev)
            per_layer += s
            print(f"  {method:4s} {name:5s} {N:5d} x {K:5d}: {s:7.3f} s", flush=True)
        if len(names) == len(SHAPES):
            print(f"  {method:4s} one decoder layer {per_layer:.2f} s -> 8B ({LAYERS} layers): "
                  f"{per_layer * LAYERS / 60:.1f} min", flush=True)


if __name__ == "__main__":
    sys.exit(main())
