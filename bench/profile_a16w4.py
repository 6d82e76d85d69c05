"""One linear call per M, for ncu / nsys (tools/gemv_profile.sh, tools/wgmma_profile.sh):

    ncu -k regex:gemv python bench/profile_a16w4.py 1 16            # a16w4 g128, 8192^2
    ncu -k regex:gemv python bench/profile_a16w4.py --format a16w8 1 # the 8-bit-row GEMV
    ncu -k regex:wgmma python bench/profile_a16w4.py --format mxfp4 1024   # the mixed-input wgmma

The a16w4 kernel is chosen by LOWBIT_A16W4_GEMV (smem = v6, regs = v7, pipe = v7b), as in
the op. Weights are random; the work does not depend on their values. --shape NxK (default
8192x8192, or $PROFILE_SHAPE, so tools/wgmma_profile.sh's variants can set it) picks the layer.
"""
import argparse
import os
import sys

import torch

sys.path.insert(0, __file__.rsplit("/bench/", 1)[0])
from lowbit_ext import ops  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("--format", default="a16w4", choices=["a16w4", "a16w8", "mxfp4", "bf16"])
ap.add_argument("--shape", default=os.environ.get("PROFILE_SHAPE", "8192x8192"), help="NxK of the weight")
ap.add_argument("ms", nargs="*", type=int, default=[1])
args = ap.parse_args()
N, K = (int(v) for v in args.shape.split("x"))
g = 128
if args.format == "a16w4":
    w = ops.prepack_w4(torch.randint(0, 256, (N, K // 2), dtype=torch.uint8, device="cuda"))
    s = torch.rand(N, K // g, device="cuda", dtype=torch.bfloat16) * 0.01
    z = torch.rand(N, K // g, device="cuda", dtype=torch.bfloat16) * 15
elif args.format == "a16w8":
    w = torch.randint(-127, 128, (N, K), dtype=torch.int8, device="cuda")
    s = torch.rand(N, device="cuda") * 1e-3
elif args.format == "mxfp4":
    w, s = ops.quantize_mxfp4(torch.randn(N, K, device="cuda", dtype=torch.bfloat16))
    w = ops.prepack_w4(w)
else:  # cuBLAS bf16, the reference the ratios are taken against
    w = torch.randn(N, K, device="cuda", dtype=torch.bfloat16)
for M in args.ms:
    x = torch.randn(M, K, device="cuda", dtype=torch.bfloat16)
    if args.format == "a16w4":
        ops.a16w4_linear(x, w, s, z, g, None)
    elif args.format == "a16w8":
        ops.a16w8_linear(x, w, s, None)
    elif args.format == "mxfp4":
        ops.mxfp4_linear(x, w, s, None)
    else:
        torch.nn.functional.linear(x, w)
torch.cuda.synchronize()
