"""A short run of the a16w4, mxfp4, a8w4_mx and a16w8 (GEMV and dequant paths, prepack/unpack) and w8a8_int8 CUDA
kernels on shapes with tails, for compute-sanitizer (memcheck, racecheck, synccheck):
`compute-sanitizer --tool racecheck python tests/sanitize_w4_int8.py`.
Exits non-zero if a result disagrees with the CPU reference (same checks as the tests)."""
import sys

import torch

sys.path.insert(0, __file__.rsplit("/tests/", 1)[0] + "/tests")
from lowbit_ext import ops  # noqa: E402
from samples import assert_close_elementwise, rand_x, to_cuda, w4_plain  # noqa: E402
from test_cuda_a16w4 import a16w4_operands, dequant64  # noqa: E402
from test_cuda_a16w8 import operands as a16w8_operands, w64 as a16w8_w64  # noqa: E402
from test_cuda_a8w4_mx import a64 as a8w4_a64, mx4_operand as a8w4_mx4_operand  # noqa: E402
from test_cuda_a8w4_mx import mx8_operand as a8w4_mx8_operand, mx8_weight as a8w4_mx8_weight  # noqa: E402
from test_cuda_mxfp4 import dequant64 as mx4_dequant64  # noqa: E402
from test_cuda_int8 import assert_bitwise, int8_operands  # noqa: E402

gen = torch.Generator().manual_seed(0)
# a16w4: GEMV (M <= 32: 1, 8 and 16 and 32 tokens, one and several K splits, a partial row
# tile, partial last 128-blocks), the mixed-input wgmma path (M = 100, full tiles) and the
# dequant path (M = 40); GEMV v8 (full 16-row tiles and 128-blocks): per channel, g32 at 1 token,
# g128 at 16 tokens, and 16 blocks per warp (two K splits of 16384 x 4096: the ring of 8 bulk
# copies wraps); at 9..32 tokens on full 128-row tiles the wgmma path (16 / 32 tokens per CTA; g128
# at 16 and 24, per channel at 32), else v8 (M = 17). The wgmma path splits K where its
# tiles are fewer than the SMs: M = 100 at 256 x 1024 (8 splits of one block), M = 64 at 1280 x
# 2048 (64 tokens per CTA, 8 splits of 2 blocks: the stage ring runs within a split). v8's K splits
# inside the CTA: 5 x 4096 x 4096 (8 splits by default), 1 x 16384 x 4096 (2); with
# LOWBIT_A16W4_STREAM_MINOR=force8 also 3 x 128 x 2048 and 5 x 48 x 1920 (15 blocks: 8 splits, the last
# of one block). x staged on one split: by default with its sums (int4, 1..2 tokens) 2 x 28672 x
# 1152; with LOWBIT_A16W4_STREAM_XSTAGE=1 also 3 x 28672 x 2176.
for M, N, K, g, sym in [(1, 40, 160, 32, False), (3, 264, 4160, 64, True), (17, 200, 1024, 128, False),
                        (32, 136, 384, -1, False), (40, 72, 256, 128, True), (5, 4096, 4096, 128, False),
                        (100, 256, 1024, 128, False), (8, 264, 1024, 128, False), (1, 48, 640, 32, False),
                        (16, 256, 1280, 128, True), (3, 128, 2048, -1, False), (1, 16384, 4096, 128, False),
                        (24, 256, 2048, 128, False), (32, 128, 1024, -1, True), (64, 1280, 2048, 128, True),
                        (5, 48, 1920, 128, True), (3, 28672, 2176, 128, False),
                        (2, 28672, 1152, -1, True)]:
    x = rand_x(M, K, torch.bfloat16, gen=gen)
    w, s, z = a16w4_operands(N, K, g, sym, torch.bfloat16, gen)
    ref = ops.a16w4_linear(x, w, s, z, g, None)
    y = ops.a16w4_linear(*to_cuda(x, w, s, z), g, None)
    # (full tiles from 9 tokens: the wgmma path, its weights rounded to bf16 once: 2^-7 A)
    gemv = M <= 8 or (M <= 32 and (N % 128 or K % 128))
    assert_close_elementwise(y, ref, x, dequant64(w, s, z, g), 2.0 ** -9 if gemv else 2.0 ** -7, f"a16w4 M={M}")
for N, K in [(3, 96), (17, 160), (40, 4160)]:
    plain = w4_plain(N, K, gen=gen)
    packed = ops.prepack_w4(plain.cuda())
    assert torch.equal(packed.cpu(), ops.prepack_w4(plain)) and torch.equal(ops.unpack_w4(packed).cpu(), plain)
# mxfp4: the GEMV (M <= 32), the mixed-input wgmma path (M = 100, full tiles) and the dequant path
for M, N, K in [(3, 200, 384), (17, 136, 160), (40, 72, 256), (100, 256, 1280), (1, 48, 640), (16, 256, 1280),
                (64, 1280, 2048)]:
    codes, sc = ops.quantize_mxfp4(torch.randn(N, K, generator=gen))
    w = ops.prepack_w4(codes)
    x = rand_x(M, K, torch.bfloat16, gen=gen)
    ref = ops.mxfp4_linear(x, w, sc, None).float()
    y = ops.mxfp4_linear(*to_cuda(x, w, sc), None).float().cpu()
    assert (y - ref).abs().max() <= 2.0 ** -6 * ref.abs().max(), f"mxfp4 M={M}"
# a8w4_mx: the GEMV (bf16 out), the bf16 dequant path and the fp32 path (fp16 out)
for M, N, K, od in [(3, 40, 128, torch.bfloat16), (40, 136, 384, torch.bfloat16), (17, 40, 256, torch.float16)]:
    a, sa = a8w4_mx8_operand(M, K, gen, "quantized")
    w, sw = a8w4_mx4_operand(N, K, gen)
    ref = ops.a8w4_mx_mm(a, sa, w, sw, None, od)
    y = ops.a8w4_mx_mm(*to_cuda(a, sa, w, sw), None, od)
    assert_close_elementwise(y, ref, a8w4_a64(a, sa), mx4_dequant64(w, sw), 2.0 ** -7, f"a8w4_mx M={M}")
# mxfp8: the 8-bit-row GEMV (M <= 32, bf16 out; K = 8192: split K) and both operands
# dequantized (bf16 and fp32 routes)
for M, N, K, od in [(3, 40, 128, torch.bfloat16), (17, 264, 8192, torch.bfloat16), (40, 136, 384, torch.float16),
                    (40, 136, 384, torch.bfloat16), (100, 256, 1280, torch.bfloat16)]:
    a, sa = a8w4_mx8_operand(M, K, gen, "quantized")
    b, sb = a8w4_mx8_weight(N, K, gen)
    ref = ops.mxfp8_mm(a, sa, b, sb, None, od)
    y = ops.mxfp8_mm(*to_cuda(a, sa, b, sb), None, od)
    assert_close_elementwise(y, ref, a8w4_a64(a, sa), a8w4_a64(b, sb), 2.0 ** -7, f"mxfp8 M={M}")
# a16w8: the GEMV (1, 9, 17 and 32 tokens, one and several K splits, partial row CTAs and
# chunks), the dequant path (M = 40) and the 8-bit-row wgmma path (M = 100: N and K multiples of
# 128; K = 1280: 10 blocks, so the stage ring wraps and a release race would show); full tiles, and a
# long K split (8192 x 4096)
for M, N, K in [(1, 40, 48), (9, 200, 1040), (17, 4096, 4096), (32, 136, 4160), (40, 72, 256), (100, 256, 1280),
                (1, 96, 640), (16, 256, 1024), (1, 8192, 4096), (64, 1280, 2048)]:
    x, w, ws, bias = a16w8_operands(M, N, K, torch.bfloat16, True, gen)
    ref = ops.a16w8_linear(x, w, ws, bias)
    y = ops.a16w8_linear(*to_cuda(x, w, ws, bias))
    assert_close_elementwise(y, ref, x, a16w8_w64(w, ws), 2.0 ** -9 if M <= 32 else 2.0 ** -7, f"a16w8 M={M}")
# w8a8_int8: both layouts (swap-AB at M <= 64), tails
for M, N, K in [(3, 200, 272), (65, 136, 400), (130, 264, 256)]:
    a, sa, b, sb = int8_operands(M, N, K, seed=M)
    assert_bitwise(ops.w8a8_int8_mm(*to_cuda(a, sa, b, sb)), ops.w8a8_int8_mm(a, sa, b, sb), f"int8 M={M}")
torch.cuda.synchronize()
print("sanitize_w4_int8: all results match the reference")
