"""One w8a8_fp8_mm call per shape, for ncu (`ncu -k regex:sm90_gemm python bench/profile_fp8.py`)."""
import sys

import torch

sys.path.insert(0, __file__.rsplit("/bench/", 1)[0])
from lowbit_ext import ops  # noqa: E402

for M, N, K in [(int(a) for a in s.split("x")) for s in (sys.argv[1:] or ["4096x8192x8192"])]:
    a = torch.randn(M, K, device="cuda").to(torch.float8_e4m3fn)
    b = torch.randn(N, K, device="cuda").to(torch.float8_e4m3fn)
    s = torch.ones(1, device="cuda")
    ops.w8a8_fp8_mm(a, s, b, s)
torch.cuda.synchronize()
