"""A short run of every CUDA kernel on shapes with tails, for compute-sanitizer
(memcheck, racecheck): `compute-sanitizer --tool racecheck python tests/sanitize_fp8.py`.
Exits non-zero if a result disagrees with the CPU reference."""
import sys

import torch

sys.path.insert(0, __file__.rsplit("/tests/", 1)[0] + "/tests")
from lowbit_ext import ops  # noqa: E402
from test_cuda_fp8 import assert_close_to_reference, block_operands, fp8_operands  # noqa: E402
from test_cuda_int8 import assert_bitwise, int8_operands  # noqa: E402


def check_fp8_and_block(M, N, K):
    """w8a8_fp8_mm on (M, N, K) and fp8_block_mm on K rounded down to whole 128-blocks, each
    against the CPU reference."""
    a, sa, b, sb = fp8_operands(M, N, K)
    ref = ops.w8a8_fp8_mm(a, sa, b, sb)
    assert_close_to_reference(ops.w8a8_fp8_mm(a.cuda(), sa.cuda(), b.cuda(), sb.cuda()), ref)
    a, sa, b, sb = block_operands(M, N, (K // 128) * 128)
    ref = ops.fp8_block_mm(a, sa, b, sb)
    assert_close_to_reference(ops.fp8_block_mm(a.cuda(), sa.cuda(), b.cuda(), sb.cuda()), ref)


def check_int8(M, N, K):
    """w8a8_int8_mm on (M, N, K): bit for bit with the CPU reference (exact s32 sums)."""
    a, sa, b, sb = int8_operands(M, N, K, seed=M)
    assert_bitwise(ops.w8a8_int8_mm(a.cuda(), sa.cuda(), b.cuda(), sb.cuda()), ops.w8a8_int8_mm(a, sa, b, sb), f"int8 M={M}")


for M, N, K in [(3, 200, 272), (65, 136, 384), (130, 264, 256)]:
    check_fp8_and_block(M, N, K)
x = torch.randn(33, 256, dtype=torch.bfloat16)
for q in (ops.quantize_int8_per_token, ops.quantize_fp8_per_token, ops.quantize_fp8_per_tensor, ops.quantize_fp8_1x128,
          ops.quantize_mxfp8, ops.quantize_mxfp4):
    qc, sc = q(x.cuda())
    qr, sr = q(x)
    assert torch.equal(qc.view(torch.uint8).cpu(), qr.view(torch.uint8)) and torch.equal(sc.cpu(), sr), q.__name__
# Large M, tiles out by TMA stores: 128 x 128 with clusters (1000 x 1048), the two-halves 128 x 256
# loop (1024 x 4096: it needs half the waves there), the generic stores (N % 8 != 0); int8's
# 128 x 128 and 128 x 256 (1024 x 8192) chained loops.
for M, N, K in [(1000, 1048, 512), (1024, 4096, 256), (600, 4100, 256)]:
    check_fp8_and_block(M, N, K)
for M, N, K in [(1000, 1048, 512), (1024, 8192, 256)]:
    check_int8(M, N, K)
# Large M on few 128 x 128 tiles: the K split in clusters of 2 with the generic stores (18 and 66
# tiles; 5 K blocks: ranks with 3 and 2)
for M, N, K in [(256, 1100, 1024), (200, 4100, 640)]:
    check_fp8_and_block(M, N, K)
    check_int8(M, N, K)
# int8 splits the normal layout only from 96 K blocks (sm90_host.h): 97, the last one partial
check_int8(80, 600, 12304)
# Small M, K split in clusters at 17..64 tokens: of 4 (2100 rows: the last rank with 2 of 17 K
# blocks; 4096 rows where 32 clusters of 4 fit, else 2) and 2 (5000 rows); unsplit at 5 tokens
for M, N, K in [(5, 4096, 4096), (33, 4096, 4096), (32, 2100, 2176), (17, 5000, 768)]:
    check_fp8_and_block(M, N, K)
    check_int8(M, N, K)
torch.cuda.synchronize()
print("sanitize_fp8: all results match the reference")
