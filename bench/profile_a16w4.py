"""One a16w4_linear call per M, for ncu (`ncu -k regex:a16w4 python bench/profile_a16w4.py 1 16`)."""
import sys

import torch

sys.path.insert(0, __file__.rsplit("/bench/", 1)[0])
from lowbit_ext import ops  # noqa: E402

N, K, g = 8192, 8192, 128
w = ops.prepack_w4(torch.randint(0, 256, (N, K // 2), dtype=torch.uint8, device="cuda"))
s = torch.rand(N, K // g, device="cuda", dtype=torch.bfloat16) * 0.01
z = torch.rand(N, K // g, device="cuda", dtype=torch.bfloat16) * 15
for M in [int(a) for a in (sys.argv[1:] or ["1"])]:
    x = torch.randn(M, K, device="cuda", dtype=torch.bfloat16)
    ops.a16w4_linear(x, w, s, z, g, None)
torch.cuda.synchronize()
