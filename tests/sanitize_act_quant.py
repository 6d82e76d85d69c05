"""A short run of the per-token activation quantizers (plain, fused SiLU, fused RMSNorm with and
without the residual add; int8 and fp8) for compute-sanitizer (memcheck, racecheck): one CTA per
row, clusters of 2-8 CTAs a row exchanging their totals through distributed shared memory, the
shared-memory row cache, rows too long for it and several waves of CTAs:
`compute-sanitizer --tool racecheck python tests/sanitize_act_quant.py [n]` (n: the last n shapes only).
Exits non-zero if a result disagrees with the CPU reference bit for bit (as the tests check)."""
import sys

import torch

sys.path.insert(0, __file__.rsplit("/tests/", 1)[0] + "/tests")
from lowbit_ext import ops  # noqa: E402
from test_fused_act_quant import gate_up, norm_operands  # noqa: E402

gen = torch.Generator().manual_seed(0)


def check(op, cpu_args, cuda_args, what):
    q_ref, s_ref = op(*cpu_args)
    q, s = op(*cuda_args)
    torch.cuda.synchronize()
    assert torch.equal(q.cpu().view(torch.uint8), q_ref.view(torch.uint8)), what
    assert torch.equal(s.cpu().nan_to_num(), s_ref.nan_to_num()), what


# (quantize_launch.cu plan_rows on 132 SMs: (1, 14336) 8 CTAs a row, (3, 4096) 4, (40, 2048) 2 with
# a partial last vector set, (150, 1024) one; (133, 49168) one CTA without the row cache; (1700, 528)
# several waves of CTAs)
SHAPES = [(1, 14336), (3, 4096), (40, 2064), (150, 1024), (133, 49168), (1700, 528)]
for M, K in SHAPES[-int(sys.argv[1]):] if len(sys.argv) > 1 else SHAPES:  # (argument n: the last n only)
    for fmt in ("int8", "fp8"):
        gate, up = gate_up(M, K, torch.bfloat16, gen)
        gu = torch.cat([gate, up], dim=1).cuda()
        check(getattr(ops, f"silu_mul_quantize_{fmt}_per_token"), (gate, up), (gu[:, :K], gu[:, K:]), f"silu {M}x{K}")
        x, w = norm_operands(M, K, torch.bfloat16, gen)
        check(getattr(ops, f"rms_norm_quantize_{fmt}_per_token"), (x, w, 1e-5), (x.cuda(), w.cuda(), 1e-5),
              f"rms {M}x{K}")
        check(getattr(ops, f"quantize_{fmt}_per_token"), (x,), (x.cuda(),), f"plain {M}x{K}")
        add = getattr(ops, f"add_rms_norm_quantize_{fmt}_per_token")
        r = (torch.randn(M, K, generator=gen) * 3).to(torch.bfloat16)
        check(lambda *a: add(*a)[:2], (x, r, w, 1e-5), (x.cuda(), r.cuda(), w.cuda(), 1e-5), f"add+rms {M}x{K}")
        assert torch.equal(add(x.cuda(), r.cuda(), w.cuda(), 1e-5)[2].cpu(), x + r), f"add+rms sum {M}x{K}"
print("sanitize_act_quant: all results match the reference")
