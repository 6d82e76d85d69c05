"""One torch._scaled_mm (cuBLAS fp8, tensorwise) call, for ncu: which kernel, tile, cluster and
how busy it keeps the SM, next to bench/profile_fp8.py's call of our kernel at the same shape."""
import sys

import torch

M, N, K = (int(v) for v in (sys.argv[1] if len(sys.argv) > 1 else "4096x8192x8192").split("x"))
a = torch.randn(M, K, device="cuda").to(torch.float8_e4m3fn)
b = torch.randn(N, K, device="cuda").to(torch.float8_e4m3fn)
one = torch.ones((), device="cuda")
torch._scaled_mm(a, b.t(), one, one, out_dtype=torch.bfloat16)
torch.cuda.synchronize()
