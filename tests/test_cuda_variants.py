"""The kernels' alternative paths, chosen by environment knobs, against the same tests as the
default paths. The knobs are read once per process (static locals in the op glue), so each
variant runs its test selection in a subprocess with the knob set; a variant passes when that
run passes. These are the A/B paths the benches compare (bench/NOTES.md): each must compute
the same results as the default, within the same stated tolerances.
"""
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.cuda

_TESTS = os.path.dirname(os.path.abspath(__file__))

# The GEMV knobs' variants also keep 9..32 tokens on full 128-row tiles in the GEMVs (the mixed-input
# wgmma takes them by default since session 8), so the GEMV they select is what those tests run.
GEMV_ONLY = {"LOWBIT_W4_WGMMA_MIN_TOKENS": "33"}
# the per-token quantizers' tests (plain and fused), for the row kernel's variants below
ROW_QUANT_TESTS = (["test_fused_act_quant.py", "test_cuda_ops.py"], "cuda_bitwise or per_token")

W4_FILES = ["test_cuda_a16w4.py", "test_cuda_mxfp4.py"]

# (id, environment, test files, -k selection)
VARIANTS = [
    # a16w4 / mxfp4 GEMV: v7 (register streaming, default at 17..32 tokens where neither the
    # wgmma nor v8 applies) at every M <= 32,
    # and v6 (shared-memory staging, default at 1..16 where v8 does not apply) at every M <= 32
    ("a16w4-gemv-regs", {"LOWBIT_A16W4_GEMV": "regs", **GEMV_ONLY}, W4_FILES,
     "matches_reference or repeatable or nan_scale or decode_exactly or extreme_scales or graph"),
    ("a16w4-gemv-smem", {"LOWBIT_A16W4_GEMV": "smem", **GEMV_ONLY}, W4_FILES,
     "matches_reference or repeatable or nan_scale or extreme_scales or large_k"),
    # v8 (default at 1..16 tokens on full tiles) with one warp per SM as the split's aim: long
    # per-warp streams that wrap the ring of bulk copies many times, and few splits
    ("a16w4-gemv-stream-long", {"LOWBIT_A16W4_STREAM_WARPS": "1", **GEMV_ONLY}, W4_FILES,
     "matches_reference or repeatable or nan_scale or extreme_scales or large_k"),
    # v8 at 1..16 tokens only (default: 1..32 where built): v7 / v7b take 17..32
    ("a16w4-gemv-stream-16", {"LOWBIT_A16W4_STREAM_MAX_TOKENS": "16", **GEMV_ONLY}, W4_FILES,
     "matches_reference or repeatable or large_k or graph"),
    # v8 with x and scales loaded one block ahead at every M (default: 1..8 tokens), and at none
    ("a16w4-gemv-stream-prefetch", {"LOWBIT_A16W4_STREAM_PREFETCH": "1", **GEMV_ONLY}, W4_FILES,
     "matches_reference or repeatable or nan_scale or large_k"),
    ("a16w4-gemv-stream-no-prefetch", {"LOWBIT_A16W4_STREAM_PREFETCH": "0", **GEMV_ONLY}, W4_FILES,
     "matches_reference or repeatable or nan_scale or large_k"),
    # v8's K blocks per bulk copy at 1..8 tokens (default: 4 for int4 g64 / g128 / per channel and
    # mxfp4, 1 for g32) forced to 1, 2 and 4 everywhere it applies, also with long per-warp streams
    # that wrap the ring and end on short copies
    *[(f"a16w4-gemv-stream-copy{c}", {"LOWBIT_A16W4_STREAM_COPY": str(c), **GEMV_ONLY}, W4_FILES,
       "matches_reference or repeatable or nan_scale or large_k or ring_tails or graph") for c in (1, 2, 4)],
    *[(f"a16w4-gemv-stream-copy{c}-long", {"LOWBIT_A16W4_STREAM_COPY": str(c), "LOWBIT_A16W4_STREAM_WARPS": "1",
                                            **GEMV_ONLY}, W4_FILES, sel)
      for c, sel in ((4, "matches_reference or large_k or ring_tails"), (2, "large_k or ring_tails"))],
    # v8's K splits inside the CTA (default where the plan gives 2, 4 or 8 splits at 1..8 tokens)
    # forced (4 splits, 2 where K has 2-3 blocks; force8: 8 where K has 8+ blocks and the split comes
    # out at 8) wherever it applies, and off (global partials)
    *[(f"a16w4-gemv-stream-minor-{f}", {"LOWBIT_A16W4_STREAM_MINOR": f, **GEMV_ONLY}, W4_FILES,
       "matches_reference or repeatable or nan_scale or large_k or ring_tails or splits or graph or opcheck")
      for f in ("force", "force8")],
    ("a16w4-gemv-stream-minor-off", {"LOWBIT_A16W4_STREAM_MINOR": "0", **GEMV_ONLY}, W4_FILES,
     "matches_reference or repeatable or ring_tails or splits or x_staged"),
    # v8's x staged in shared memory (default: int4 at 1..2 tokens in one split, with its sums per
    # promotion unit) off, x only wherever it fits, and with the sums wherever it fits (int4)
    *[(f"a16w4-gemv-stream-xstage{v}", {"LOWBIT_A16W4_STREAM_XSTAGE": v, **GEMV_ONLY}, W4_FILES,
       "matches_reference or repeatable or ring_tails or splits or x_staged or graph") for v in ("0", "1", "2")],
    # v8 by programmatic dependent launch (opt-in): each GEMV may start while the kernel before runs
    ("a16w4-gemv-pdl", {"LOWBIT_A16W4_PDL": "1", **GEMV_ONLY}, W4_FILES,
     "matches_reference or repeatable or splits or x_staged or ring_tails or chain or graph or opcheck"),
    # v8's first loads after its ring's first requests (before session 13; default: before them)
    ("a16w4-gemv-stream-first-late", {"LOWBIT_A16W4_STREAM_FIRST": "late", **GEMV_ONLY}, W4_FILES,
     "matches_reference or repeatable or nan_scale or large_k"),
    # v8 with x through a ring of the CTA (TMA boxes; N % 64 == 0) at every token count (default:
    # 17..32), and at none
    ("a16w4-gemv-stream-xring", {"LOWBIT_A16W4_STREAM_X": "ring", **GEMV_ONLY}, W4_FILES,
     "matches_reference or repeatable or nan_scale or extreme_scales or decode_exactly or large_k or graph"),
    ("a16w4-gemv-stream-no-xring", {"LOWBIT_A16W4_STREAM_X": "off", **GEMV_ONLY}, ["test_cuda_a16w4.py"],
     "matches_reference or repeatable or large_k or graph"),
    # v7b: v7 with a register ring of blocks and the g128 scales loaded with the weights (default
    # for mxfp4 at 17..32 tokens; int4 only through the knob)
    ("a16w4-gemv-pipe", {"LOWBIT_A16W4_GEMV": "pipe", **GEMV_ONLY}, W4_FILES,
     "matches_reference or repeatable or nan_scale or decode_exactly or extreme_scales or graph"),
    # mixed-input wgmma GEMM (default at 33..256 tokens, full 128-row tiles) at every M > 32,
    # and dequantize + cuBLAS at every M > 32
    ("a16w4-large-wgmma", {"LOWBIT_A16W4_LARGE": "wgmma"}, W4_FILES,
     "large_m or matches_reference or graph or repeatable or nan_scale or extreme_scales"),
    ("a16w4-large-dequant", {"LOWBIT_A16W4_LARGE": "dequant"}, W4_FILES,
     "large_m or matches_reference or nan_scale"),
    # the mixed-input wgmma as in session 7: 128 tokens per CTA, no K split (default: 64 tokens up
    # to M = 64, K split where the tiles are fewer than the SMs)
    ("w4-wgmma-no-split", {"LOWBIT_W4_WGMMA_SPLIT": "off", "LOWBIT_W4_WGMMA_TOKENS": "128"},
     ["test_cuda_a16w4.py", "test_cuda_mxfp4.py", "test_cuda_a16w8.py"], "large_m or repeatable or wgmma"),
    # the mixed-input wgmma at every M > 32 with x permuted before the kernel wherever it runs 128
    # tokens per CTA, in 128-row CTAs (the test shapes' default) and in 256-row ones (default there
    # where N >= K, which no test shape reaches by itself)
    ("w4-wgmma-x-pre", {"LOWBIT_W4_WGMMA_XPRE": "1", "LOWBIT_A16W4_LARGE": "wgmma"},
     ["test_cuda_a16w4.py", "test_cuda_mxfp4.py", "test_cuda_a8w4_mx.py"],
     "large_m or matches_reference or graph or repeatable or nan_scale or extreme_scales or wgmma"),
    ("w4-wgmma-x-pre-rows256", {"LOWBIT_W4_WGMMA_XPRE": "1", "LOWBIT_W4_WGMMA_ROWS": "256", "LOWBIT_W4_WGMMA_WIDE": "0",
                                "LOWBIT_A16W4_LARGE": "wgmma"},
     ["test_cuda_a16w4.py", "test_cuda_mxfp4.py", "test_cuda_a8w4_mx.py"],
     "large_m or matches_reference or repeatable or wgmma"),
    # wide CTAs (128 rows x 256 tokens; the default in place of 256-row CTAs of 128 tokens, which
    # ROWS=256 forces wherever N % 256 == 0: no default test shape is large enough for the rule);
    # on the tests' small grids their K is split (the default never splits them: the rule picks
    # 256-row CTAs only where they fill more than half a wave)
    ("w4-wgmma-wide", {"LOWBIT_W4_WGMMA_ROWS": "256", "LOWBIT_A16W4_LARGE": "wgmma"},
     ["test_cuda_a16w4.py", "test_cuda_mxfp4.py", "test_cuda_a8w4_mx.py"],
     "large_m or matches_reference or repeatable or wgmma or graph"),
    # wide CTAs wherever built at 128 tokens per CTA: every int4 group size, and the shapes where
    # the default keeps 128-row CTAs
    ("w4-wgmma-wide-force", {"LOWBIT_W4_WGMMA_WIDE": "force", "LOWBIT_A16W4_LARGE": "wgmma"},
     ["test_cuda_a16w4.py", "test_cuda_mxfp4.py", "test_cuda_a8w4_mx.py"],
     "large_m or matches_reference or repeatable or wgmma"),
    # x copied into whole token tiles for every ragged M (the default only for one row of wide CTAs
    # on an unsplit grid of at least a wave, session 17), and never (the unpadded wide CTAs there)
    ("w4-wgmma-pad-x", {"LOWBIT_W4_WGMMA_PAD_X": "1", "LOWBIT_A16W4_LARGE": "wgmma"},
     W4_FILES, "large_m or matches_reference or wgmma or padded"),
    ("w4-wgmma-pad-x-off", {"LOWBIT_W4_WGMMA_PAD_X": "0"}, W4_FILES, "padded"),
    # the consumer warpgroups half a K block apart (candidate, session 16), in 128-row, wide and
    # 256-row CTAs
    ("w4-wgmma-skew2", {"LOWBIT_W4_WGMMA_SKEW": "2", "LOWBIT_A16W4_LARGE": "wgmma"},
     ["test_cuda_a16w4.py", "test_cuda_mxfp4.py", "test_cuda_a8w4_mx.py", "test_cuda_a16w8.py"],
     "large_m or matches_reference or repeatable or wgmma or graph"),
    ("w4-wgmma-skew2-rows256", {"LOWBIT_W4_WGMMA_SKEW": "2", "LOWBIT_W4_WGMMA_ROWS": "256",
                                "LOWBIT_A16W4_LARGE": "wgmma"},
     ["test_cuda_a16w4.py", "test_cuda_mxfp4.py", "test_cuda_a8w4_mx.py"],
     "large_m or matches_reference or wgmma"),
    # int4 wgmma with exact codes and a promotion per group (the default folds the scales)
    ("a16w4-wgmma-promote", {"LOWBIT_A16W4_WGMMA": "promote", "LOWBIT_A16W4_LARGE": "wgmma"}, ["test_cuda_a16w4.py"],
     "large_m or matches_reference or repeatable or wgmma"),
    # a16w4 GEMV with cp.async only (no bulk copies)
    ("a16w4-no-bulk", {"LOWBIT_A16W4_BULK": "0", **GEMV_ONLY}, W4_FILES,
     "matches_reference or repeatable"),
    # fp8 promotion every 2 / 4 / 8 K blocks, chained within (bf16 output, M > 64), at 128 x 128
    # (A/B runs) and at 128 x 192 in clusters of 2 (the default at large M where it needs the fewest
    # waves; forced here on every shape: N % 192 != 0 on the test shapes, so partial tiles)
    ("fp8-192", {"LOWBIT_FP8_BN": "192"}, ["test_cuda_fp8.py"], "matches_reference or long_k or repeatable"),
    ("fp8-fold2", {"LOWBIT_FP8_FOLD_EVERY": "2"}, ["test_cuda_fp8.py"], "matches_reference or long_k or repeatable"),
    ("fp8-fold4-cluster", {"LOWBIT_FP8_FOLD_EVERY": "4", "LOWBIT_SM90_CLUSTER": "2"}, ["test_cuda_fp8.py"],
     "matches_reference or long_k or repeatable"),
    ("fp8-fold8", {"LOWBIT_FP8_FOLD_EVERY": "8"}, ["test_cuda_fp8.py"], "matches_reference or long_k or repeatable"),
    ("fp8-fold8-192", {"LOWBIT_FP8_FOLD_EVERY": "8", "LOWBIT_FP8_BN": "192"}, ["test_cuda_fp8.py"],
     "matches_reference or long_k or repeatable"),
    ("fp8-fold4-192-one-cta", {"LOWBIT_FP8_FOLD_EVERY": "4", "LOWBIT_FP8_BN": "192", "LOWBIT_SM90_CLUSTER": "1"},
     ["test_cuda_fp8.py"], "matches_reference or long_k or repeatable"),
    # the mainloop's cluster choice flipped for both families, v8's one-set loop, and the large-M
    # tile widths forced (promoting 128 x 256 in two halves; chained 128 x 128 / 128 x 256)
    ("fp8-no-cluster", {"LOWBIT_SM90_CLUSTER": "1"}, ["test_cuda_fp8.py"], "matches_reference or repeatable"),
    ("fp8-one-acc", {"LOWBIT_FP8_ONE_ACC": "1"}, ["test_cuda_fp8.py"], "matches_reference"),
    ("fp8-wide", {"LOWBIT_FP8_BN": "256"}, ["test_cuda_fp8.py"], "matches_reference or repeatable or long_k"),
    ("fp8-wide-cluster", {"LOWBIT_FP8_BN": "256", "LOWBIT_SM90_CLUSTER": "2"}, ["test_cuda_fp8.py"],
     "matches_reference"),
    ("int8-no-cluster", {"LOWBIT_SM90_CLUSTER": "1"}, ["test_cuda_int8.py"], "matches_reference or largest_sums"),
    # swap-AB's K split in clusters forced to 2 / 4 CTAs at every small M (empty ranks on short K),
    # and off (the global split for fp8, none for int8)
    ("sm90-ksplit2", {"LOWBIT_SM90_KSPLIT": "2"}, ["test_cuda_fp8.py", "test_cuda_int8.py"],
     "matches_reference or repeatable or largest_sums or long_k"),
    ("sm90-ksplit4", {"LOWBIT_SM90_KSPLIT": "4"}, ["test_cuda_fp8.py", "test_cuda_int8.py"],
     "matches_reference or repeatable or largest_sums or long_k or graph"),
    ("sm90-ksplit-off", {"LOWBIT_SM90_KSPLIT": "1"}, ["test_cuda_fp8.py", "test_cuda_int8.py"],
     "matches_reference or repeatable"),
    # swap-AB up to 256 tokens (several 64-token tiles; default: 64, 32 in block mode)
    ("sm90-swap-256", {"LOWBIT_SM90_SWAP_MAX": "256"}, ["test_cuda_fp8.py", "test_cuda_int8.py"],
     "matches_reference or repeatable or linear"),
    ("int8-narrow", {"LOWBIT_SM90_BN": "128"}, ["test_cuda_int8.py"], "matches_reference or largest_sums"),
    ("int8-wide", {"LOWBIT_SM90_BN": "256"}, ["test_cuda_int8.py"], "matches_reference or largest_sums"),
    # 8-bit rows (a16w8, mxfp8) at M > 32 dequantized + cuBLAS where the mixed-input wgmma GEMM is
    # the default (33..1024 / 33..512 tokens, full tiles)
    ("rows8-large-dequant", {"LOWBIT_ROWS8_LARGE": "dequant"}, ["test_cuda_a16w8.py", "test_cuda_a8w4_mx.py"],
     "large_m or matches_reference or nan or graph"),
    # 256 weight rows per CTA (int4 g128 / per channel folded, mxfp4, a8w4_mx, 8-bit rows) where N % 256
    # == 0 (by default only where it saves waves: no test shape is that large)
    ("w4-wgmma-rows256", {"LOWBIT_W4_WGMMA_ROWS": "256", "LOWBIT_W4_WGMMA_WIDE": "0"},
     ["test_cuda_a16w4.py", "test_cuda_mxfp4.py", "test_cuda_a8w4_mx.py", "test_cuda_a16w8.py"],
     "large_m or matches_reference or wgmma"),
    # two CTAs per SM for the mixed-input wgmma at <= 64 tokens everywhere (default: only where one
    # CTA per SM would overfill a wave, which no test shape does)
    ("w4-wgmma-two-ctas", {"LOWBIT_W4_WGMMA_CTAS": "2"},
     ["test_cuda_a16w4.py", "test_cuda_mxfp4.py", "test_cuda_a8w4_mx.py", "test_cuda_a16w8.py"],
     "large_m or repeatable or wgmma or graph"),
    # the mixed-input wgmma from 1 token (16 / 32 tokens per CTA; default from 17), and the GEMVs to
    # 32 tokens (the default before session 8)
    ("w4-wgmma-from-1", {"LOWBIT_W4_WGMMA_MIN_TOKENS": "1"},
     ["test_cuda_a16w4.py", "test_cuda_mxfp4.py", "test_cuda_a8w4_mx.py", "test_cuda_a16w8.py"],
     "matches_reference or repeatable or graph"),
    ("w4-gemv-to-32", {"LOWBIT_W4_WGMMA_MIN_TOKENS": "33"},
     ["test_cuda_a16w4.py", "test_cuda_mxfp4.py", "test_cuda_a8w4_mx.py", "test_cuda_a16w8.py"],
     "matches_reference or repeatable or large_k or graph"),
    # mxfp8 through the dequantize path at every M (the GEMV takes M <= 32 with bf16 output)
    ("mxfp8-dequant", {"LOWBIT_MXFP8_PATH": "dequant"}, ["test_cuda_a8w4_mx.py"], "mxfp8"),
    # a16w8 through the large-M path at every M
    ("a16w8-dequant", {"LOWBIT_A16W8_PATH": "dequant"}, ["test_cuda_a16w8.py"], "matches_reference and (M1- or M17-)"),
    # the per-token quantizers (plain and fused) with one CTA per row at every M (default: a cluster
    # of up to 8 where the rows are fewer than the SMs), and with every pass loading its source
    # again (default: the row cached in shared memory up to 96 KB a CTA)
    ("row-quant-one-cta", {"LOWBIT_ROW_QUANT_CTAS": "1"}, *ROW_QUANT_TESTS),
    ("row-quant-eight-ctas", {"LOWBIT_ROW_QUANT_CTAS": "8"}, *ROW_QUANT_TESTS),
    ("row-quant-no-cache", {"LOWBIT_ROW_QUANT_CACHE": "0"}, *ROW_QUANT_TESTS),
]


@pytest.mark.parametrize("env,files,select", [pytest.param(e, f, k, id=i) for i, e, f, k in VARIANTS])
def test_variant_passes_the_default_tests(env, files, select):
    cmd = [sys.executable, "-m", "pytest", "-q", "-x", "-m", "cuda", "-p", "no:cacheprovider", "-k", select,
           *[os.path.join(_TESTS, f) for f in files]]
    r = subprocess.run(cmd, env=dict(os.environ, **env), capture_output=True, text=True, cwd=_TESTS)
    assert r.returncode == 0, f"{env}: {r.stdout[-4000:]}\n{r.stderr[-2000:]}"
    assert " passed" in r.stdout, r.stdout[-2000:]  # a selection that matched nothing is a defect
