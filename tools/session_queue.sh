#!/usr/bin/env bash
# Device calls queued by a session for the next one (bench/NOTES.md), in parts that each fit a
# 10-minute call after tools/device_run.sh's build (and tests, unless a -k selecting nothing is
# passed):  PART=n EXTRA='bash tools/session_queue.sh' BENCH=0 bash tools/device_run.sh [nothing]
# Parts 1-3: session 3's queue (run in session 4): the knob variants and sanitizers, the A/B of
# that session's blind candidates, fp8 fold and accuracy. Parts 4-5: session 4's measurements
# of its new defaults. Parts 6-7: session 4's queue for session 5: the racecheck of the wgmma
# fix and the end-to-end model table (6); the tests and A/B of GEMV v7b, the 8-bit-row wgmma
# and the 256-row CTAs (7). Each step has its own time limit so one hang cannot take the whole
# call. Output under $OUT.
set -uo pipefail
OUT=${OUT:-/tmp/out}
step() {  # step <seconds> <name> <command...>
  local limit=$1 name=$2; shift 2
  echo "== $name"
  timeout "$limit" "$@" > "$OUT/q_$name.log" 2>&1
  echo "   exit $?"; tail -${TAIL:-6} "$OUT/q_$name.log"
}
# Benches several parts share: int4 per channel / g128 and mxfp4 at 16 / 64 tokens on the four
# shapes (sessions 9-10), and the 8-bit-activation table against torch's GEMMs (session 10):
#   step_table8 <step seconds> <bench budget seconds>
step_pc64() {
  TAIL=30 step 60 pc64 python3 bench/gemm.py --formats a16w4,mxfp4 --a16w4-groups=-1,128 --ms 16,64 \
    --shapes 8192x8192,28672x8192,4096x14336,14336x4096 --peers none --no-ceilings --budget-s 45 --out "$OUT/pc64.json"
}
step_table8() {
  step "$1" table8 python3 bench/gemm.py --formats w8a8_int8,w8a8_fp8,fp8_block --ms 1,16,64,256,1024,4096,8192 \
    --shapes 8192x8192,28672x8192,4096x14336 --peers torch_scaled_mm,torch_int_mm --no-ceilings --budget-s "$2" \
    --out "$OUT/table8.json"
}
# An A/B bench: one bench/gemm.py run per variant "name:KNOB=value ..." (no knobs: the default),
# with the same arguments, in step "<prefix>_<name>" writing $OUT/<prefix>_<name>.json:
#   step_ab <step seconds> <prefix> <variant>... -- <bench/gemm.py arguments...>
step_ab() {
  local limit=$1 prefix=$2 v
  shift 2
  local variants=()
  while [ "$1" != "--" ]; do variants+=("$1"); shift; done
  shift
  for v in "${variants[@]}"; do
    step "$limit" "${prefix}_${v%%:*}" env ${v#*:} python3 bench/gemm.py "$@" --out "$OUT/${prefix}_${v%%:*}.json"
  done
}
PART=${PART:-1}
if [ "$PART" = 1 ]; then
step 240 variants python3 -m pytest -q -m cuda -p no:cacheprovider tests/test_cuda_variants.py
step 150 memcheck compute-sanitizer --tool memcheck --error-exitcode 9 python3 tests/sanitize_w4_int8.py
fi
if [ "$PART" = 2 ]; then
step 150 racecheck compute-sanitizer --tool racecheck --error-exitcode 9 python3 tests/sanitize_w4_int8.py
TAIL=20 step_ab 150 w4 "base:" "regs:LOWBIT_A16W4_GEMV=regs" -- --formats a16w4,mxfp4 --ms \
  1,8,16,32,64,256,1024,4096 --shapes 8192x8192,28672x8192 --peers none --budget-s 120
fi
if [ "$PART" = 3 ]; then
TAIL=20 step 150 w4_large env LOWBIT_A16W4_LARGE=wgmma python3 bench/gemm.py --formats a16w4,mxfp4 \
  --ms 64,256,1024,4096 --shapes 8192x8192,28672x8192 --peers none --budget-s 120 --out "$OUT/w4_large.json"
TAIL=40 step 240 fp8_fold python3 bench/fp8_variants.py --shapes 8192x8192 --ms 256,1024,4096,8192 --only fp8_row,int8 \
  --variants "base:,f2:LOWBIT_FP8_FOLD_EVERY=2,f4:LOWBIT_FP8_FOLD_EVERY=4,f4cl:LOWBIT_FP8_FOLD_EVERY=4;LOWBIT_SM90_CLUSTER=2"
TAIL=12 step 120 fp8_accuracy python3 bench/fp8_accuracy.py --out "$OUT/fp8_accuracy.json"
fi
# Session 4, after the defaults changed (v7 GEMV for 17..32 tokens, wgmma for 33..256): the w4
# knob variants, the 4-bit / MX table, the M = 512 A/B of the two large-M paths, HQQ timing.
if [ "$PART" = 4 ]; then
step 150 variants_w4 python3 -m pytest -q -m cuda -p no:cacheprovider tests/test_cuda_variants.py -k a16w4
TAIL=40 step 150 w4_table python3 bench/gemm.py --formats a16w4,mxfp4,a8w4_mx,mxfp8 --ms 1,16,32,64,256,1024,4096 \
  --shapes 8192x8192,28672x8192 --peers none --budget-s 120 --out "$OUT/w4_table.json"
TAIL=14 step_ab 60 m512 "wg:LOWBIT_A16W4_LARGE=wgmma" "dq:LOWBIT_A16W4_LARGE=dequant" -- --formats a16w4,mxfp4 \
  --ms 512 --shapes 8192x8192,28672x8192 --peers none --budget-s 40
TAIL=14 step 60 w4_groups python3 bench/gemm.py --formats a16w4 --a16w4-groups 32,64,-1 --ms 1,16,32,64,256 \
  --shapes 8192x8192 --peers none --budget-s 45 --out "$OUT/w4_groups.json"
TAIL=20 step 90 quant_speed python3 bench/quant_speed.py --device cuda
fi
# Session 4, second round: the mxfp8 GEMV (new), int4 wgmma limited to g >= 128, mxfp4 wgmma to
# M = 512. Tests run by device_run.sh (TESTS=the w4 / MX / a16w8 files); memcheck last.
if [ "$PART" = 5 ]; then
TAIL=4 step 120 variants_dq python3 -m pytest -q -m cuda -p no:cacheprovider tests/test_cuda_variants.py -k "dequant and (mxfp8 or large)"
TAIL=60 step 150 table python3 bench/gemm.py --formats a16w4,mxfp4,mxfp8 --a16w4-groups 128,32,64 \
  --ms 1,16,32,64,256,512,1024 --shapes 8192x8192,28672x8192 --peers none --budget-s 120 --out "$OUT/table.json"
step 150 memcheck compute-sanitizer --tool memcheck --error-exitcode 9 python3 tests/sanitize_w4_int8.py
fi
# Session 5's first call (bench/NOTES.md "Session 4" -> "Next"): the racecheck of the wgmma fix,
# then the end-to-end table (decode in captured CUDA graphs: no inductor compile per batch).
#   PART=6 TESTS="tests/test_cuda_a16w4.py tests/test_cuda_mxfp4.py" EXTRA='bash tools/session_queue.sh' BENCH=0 bash tools/device_run.sh
if [ "$PART" = 6 ]; then
step 120 racecheck compute-sanitizer --tool racecheck --error-exitcode 9 python3 tests/sanitize_w4_int8.py
TAIL=40 step 330 model python3 bench/model.py --batch 1,8,32 --prefill 2048 --out "$OUT/model.json"
fi
# Session 5's second call: the two candidates written blind in session 4, each variant test
# first, then its A/B: GEMV v7b (LOWBIT_A16W4_GEMV=pipe) and the wgmma GEMM on 8-bit rows
# (LOWBIT_ROWS8_LARGE=wgmma: a16w8 and mxfp8 at M > 32).
#   PART=7 EXTRA='bash tools/session_queue.sh' BENCH=0 bash tools/device_run.sh nothing
if [ "$PART" = 7 ]; then
TAIL=4 step 240 variants_new python3 -m pytest -q -m cuda -p no:cacheprovider tests/test_cuda_variants.py -k "pipe or rows" 
TAIL=16 step_ab 120 rows8 "base:" "wg:LOWBIT_ROWS8_LARGE=wgmma LOWBIT_A16W4_LARGE=wgmma" \
  "wg256:LOWBIT_ROWS8_LARGE=wgmma LOWBIT_W4_WGMMA_ROWS=256 LOWBIT_A16W4_LARGE=wgmma" -- --formats \
  a16w8,mxfp8,mxfp4 --ms 64,256,512,1024,4096 --shapes 8192x8192,28672x8192 --peers none --budget-s 90
TAIL=20 step_ab 120 gemv "base:" "pipe:LOWBIT_A16W4_GEMV=pipe" -- --formats a16w4,mxfp4 --ms 1,4,8,16,32 \
  --shapes 8192x8192,28672x8192,4096x14336 --peers none --budget-s 90
fi
# Session 5's first call (parts 6 and 7 did not fit one call together): the variant tests run by
# device_run.sh (TESTS=tests/test_cuda_variants.py -k "pipe or rows"), then racecheck with the
# defaults and with the new candidates on, then the two A/Bs with shorter budgets.
#   PART=8 TESTS=tests/test_cuda_variants.py EXTRA='bash tools/session_queue.sh' BENCH=0 bash tools/device_run.sh "pipe or rows"
if [ "$PART" = 8 ]; then
TAIL=20 step_ab 75 gemv "base:" "pipe:LOWBIT_A16W4_GEMV=pipe" -- --formats a16w4,mxfp4 --ms 1,4,8,16,32 \
  --shapes 8192x8192,28672x8192,4096x14336 --peers none --budget-s 55
TAIL=16 step_ab 65 rows8 "base:" "wg:LOWBIT_ROWS8_LARGE=wgmma" \
  "wg256:LOWBIT_ROWS8_LARGE=wgmma LOWBIT_W4_WGMMA_ROWS=256" -- --formats a16w8,mxfp8,mxfp4 --ms \
  64,256,512,1024 --shapes 8192x8192,28672x8192 --peers none --budget-s 45
step 80 racecheck compute-sanitizer --tool racecheck --error-exitcode 9 python3 tests/sanitize_w4_int8.py
step 80 racecheck_new env LOWBIT_A16W4_GEMV=pipe LOWBIT_ROWS8_LARGE=wgmma LOWBIT_W4_WGMMA_ROWS=256 \
  compute-sanitizer --tool racecheck --error-exitcode 9 python3 tests/sanitize_w4_int8.py
fi
# Session 5's second call: after the 8-bit-row wgmma, the wave rule for 256-row CTAs and v7b for
# mxfp4 at 32 tokens became defaults, and the wgmma stage release moved to a named barrier:
# racecheck, the ncu profile of the GEMVs at M = 1, the new defaults' table.
#   PART=9 TESTS="tests/test_cuda_variants.py" EXTRA='bash tools/session_queue.sh' BENCH=0 bash tools/device_run.sh "pipe or rows"
if [ "$PART" = 9 ]; then
step 100 racecheck compute-sanitizer --tool racecheck --error-exitcode 9 python3 tests/sanitize_w4_int8.py
TAIL=4 step 150 tests_rows8 python3 -m pytest -q -m cuda -p no:cacheprovider tests/test_cuda_a16w8.py tests/test_cuda_a8w4_mx.py tests/test_cuda_mxfp4.py
TAIL=40 step 200 gemv_profile bash tools/gemv_profile.sh
TAIL=30 step 100 table python3 bench/gemm.py --formats a16w8,mxfp8,mxfp4,a8w4_mx --ms 32,64,256,512,1024 \
  --shapes 8192x8192,28672x8192 --peers none --budget-s 80 --out "$OUT/table.json"
fi
# Session 5's third call: racecheck after the producer's proxy fence; the GEMV tests after the
# one-fence-per-CTA split epilogue (all GEMVs); the v6 split plan's A/B (CTAs per SM, one wave).
#   PART=10 TESTS="tests/test_cuda_a16w4.py tests/test_cuda_mxfp4.py tests/test_cuda_a16w8.py tests/test_cuda_a8w4_mx.py" EXTRA='bash tools/session_queue.sh' BENCH=0 bash tools/device_run.sh
if [ "$PART" = 10 ]; then
step 100 racecheck compute-sanitizer --tool racecheck --error-exitcode 9 python3 tests/sanitize_w4_int8.py
# (the two split knobs below were removed after this A/B measured no gain)
TAIL=14 step_ab 60 split "base:" "wave:LOWBIT_A16W4_GEMV_ONE_WAVE=1" "c3:LOWBIT_A16W4_GEMV_CTAS=3" \
  "c2:LOWBIT_A16W4_GEMV_CTAS=2" -- --formats a16w4,mxfp4,a16w8 --ms 1,8,16 --shapes \
  8192x8192,28672x8192,4096x14336 --peers none --budget-s 45
fi
# Session 5's fourth call: racecheck after the per-thread release (4-bit kernels); the GEMV v6
# prologue / promotion changes (sums of x per group, no division per staged item) A/B'd against
# the numbers of call 3 in the same table; the 4-bit wgmma after the release change; the model.
#   PART=11 TESTS="tests/test_cuda_a16w4.py tests/test_cuda_mxfp4.py tests/test_cuda_a16w8.py tests/test_cuda_a8w4_mx.py" EXTRA='bash tools/session_queue.sh' BENCH=0 bash tools/device_run.sh
if [ "$PART" = 11 ]; then
step 100 racecheck compute-sanitizer --tool racecheck --error-exitcode 9 python3 tests/sanitize_w4_int8.py
TAIL=24 step 60 gemv python3 bench/gemm.py --formats a16w4,mxfp4 --a16w4-groups 128,32 --ms 1,8,16 \
  --shapes 8192x8192,28672x8192,4096x14336 --peers none --budget-s 45 --out "$OUT/gemv.json"
TAIL=16 step 60 mid python3 bench/gemm.py --formats a16w4,mxfp4,a16w8 --ms 64,256,512 \
  --shapes 8192x8192,28672x8192 --peers none --budget-s 45 --out "$OUT/mid.json"
TAIL=40 step 300 model python3 bench/model.py --formats a16w4,w8a8_fp8,a16w8,mxfp4,w8a8_int8 --batch 1,8,32 \
  --prefill 2048 --out "$OUT/model.json"
fi
# Session 5's fifth call: the table of every format with this session's defaults (README), then
# (if time is left) the compiled decode step of bf16 and a16w4 at batch 1 and 8.
#   PART=12 EXTRA='bash tools/session_queue.sh' BENCH=0 bash tools/device_run.sh nothing
if [ "$PART" = 12 ]; then
TAIL=90 step 330 table python3 bench/gemm.py --ms 1,16,32,64,256,512,1024,4096 --shapes 8192x8192,28672x8192 \
  --peers none --budget-s 300 --out "$OUT/table.json"
TAIL=20 step 100 model_compiled python3 bench/model.py --formats a16w4 --batch 1 --prefill 2048 \
  --decode-mode compile --out "$OUT/model_compiled.json"
fi
# Session 5's sixth call: int4 wgmma with scales folded into the operand (new default) against
# the promotion variant and dequantize + cuBLAS, g128 / g32 / per channel, M = 64..1024.
#   PART=13 TESTS="tests/test_cuda_a16w4.py tests/test_cuda_mxfp4.py" EXTRA='bash tools/session_queue.sh' BENCH=0 bash tools/device_run.sh
if [ "$PART" = 13 ]; then
TAIL=4 step 120 variant_promote python3 -m pytest -q -m cuda -p no:cacheprovider tests/test_cuda_variants.py -k "promote or large"
step 60 racecheck compute-sanitizer --tool racecheck --error-exitcode 9 python3 tests/sanitize_w4_int8.py
TAIL=14 step_ab 70 w4mid "fold:LOWBIT_A16W4_LARGE=wgmma" "promote:LOWBIT_A16W4_WGMMA=promote" \
  "dq:LOWBIT_A16W4_LARGE=dequant" -- --formats a16w4 --a16w4-groups 128,32,-1 --ms 64,256,512,1024 --shapes \
  8192x8192,28672x8192 --peers none --budget-s 55
fi
# Session 5's seventh call: per-block scales loaded one block ahead in the mixed-input wgmma
# (int4 folded and MX), per channel int4 wgmma to M = 1024: tests, racecheck, the mid-M table.
#   PART=14 TESTS="tests/test_cuda_a16w4.py tests/test_cuda_mxfp4.py tests/test_cuda_a16w8.py tests/test_cuda_a8w4_mx.py" EXTRA='bash tools/session_queue.sh' BENCH=0 bash tools/device_run.sh
if [ "$PART" = 14 ]; then
step 60 racecheck compute-sanitizer --tool racecheck --error-exitcode 9 python3 tests/sanitize_w4_int8.py
TAIL=40 step 100 mid python3 bench/gemm.py --formats a16w4,mxfp4,a8w4_mx,mxfp8,a16w8 --a16w4-groups 128,32,-1 \
  --ms 64,256,512,1024 --shapes 8192x8192,28672x8192 --peers none --budget-s 85 --out "$OUT/mid.json"
fi
# Session 5's last call: the folded int4 wgmma (with the prefetch) at M = 1024 / 2048 against the
# default there (dequantize + cuBLAS), g128 and g64.
#   PART=15 EXTRA='bash tools/session_queue.sh' BENCH=0 bash tools/device_run.sh nothing
if [ "$PART" = 15 ]; then
TAIL=10 step_ab 60 w4big "fold:LOWBIT_A16W4_LARGE=wgmma" "default:" -- --formats a16w4 --a16w4-groups 128,64 \
  --ms 256,1024,2048 --shapes 8192x8192,28672x8192 --peers none --budget-s 45
fi
# Session 6's first call: GEMV v8 (w4_gemv_stream.cuh, default at 1..16 tokens on full tiles):
# the a16w4 / mxfp4 tests ran by device_run.sh first; here the v6 and long-stream variants,
# racecheck, then v8 against v6 (LOWBIT_A16W4_GEMV=smem) and v8's split aim (warps per SM).
#   PART=16 LOWBIT_KERNELS=quant,w4,int8 TESTS="tests/test_cuda_a16w4.py tests/test_cuda_mxfp4.py" \
#     EXTRA='bash tools/session_queue.sh' BENCH=0 bash tools/device_run.sh
if [ "$PART" = 16 ]; then
TAIL=30 step_ab 70 gemv "v8:" "v6:LOWBIT_A16W4_GEMV=smem" -- --formats a16w4,mxfp4 --ms 1,8,16 --shapes \
  8192x8192,28672x8192,4096x14336,14336x4096 --peers none --no-ceilings --budget-s 60
TAIL=12 step_ab 40 gemv "v8w8:LOWBIT_A16W4_STREAM_WARPS=8" "v8w20:LOWBIT_A16W4_STREAM_WARPS=20" -- --formats \
  a16w4 --ms 1,16 --shapes 8192x8192,28672x8192 --peers none --no-ceilings --budget-s 30
TAIL=4 step 120 variants_gemv python3 -m pytest -q -m cuda -p no:cacheprovider tests/test_cuda_variants.py -k "smem or stream"
step 100 racecheck compute-sanitizer --tool racecheck --error-exitcode 9 python3 tests/sanitize_w4_int8.py
fi
# Session 6's second call: v8 with x and scales loaded one block ahead (default) against v8
# without (LOWBIT_A16W4_STREAM_PREFETCH=0) and v6; the other group sizes; racecheck.
#   PART=17 LOWBIT_KERNELS=quant,w4,int8 TESTS="tests/test_cuda_a16w4.py tests/test_cuda_mxfp4.py" \
#     EXTRA='bash tools/session_queue.sh' BENCH=0 bash tools/device_run.sh
if [ "$PART" = 17 ]; then
TAIL=30 step_ab 70 gemv "pf:" "nopf:LOWBIT_A16W4_STREAM_PREFETCH=0" "v6:LOWBIT_A16W4_GEMV=smem" -- --formats \
  a16w4,mxfp4 --ms 1,8,16 --shapes 8192x8192,28672x8192,4096x14336,14336x4096 --peers none --no-ceilings \
  --budget-s 60
TAIL=30 step 60 gemv_groups python3 bench/gemm.py --formats a16w4 --a16w4-groups 32,64,-1 --ms 1,16 \
  --shapes 8192x8192,28672x8192 --peers none --no-ceilings --budget-s 50 --out "$OUT/gemv_groups.json"
TAIL=4 step 90 variants_gemv python3 -m pytest -q -m cuda -p no:cacheprovider tests/test_cuda_variants.py -k "smem or stream"
step 100 racecheck compute-sanitizer --tool racecheck --error-exitcode 9 python3 tests/sanitize_w4_int8.py
fi
# Session 6's third call: v8's defaults (prefetch at 1..8 tokens only): ncu of v8 at M = 1 and 16
# (8192^2, g128), the 4-bit table at M = 1..32 with tinygemm beside it, the v8 knob variants.
#   PART=18 LOWBIT_KERNELS=quant,w4,int8 TESTS="tests/test_cuda_a16w4.py tests/test_cuda_mxfp4.py" \
#     EXTRA='bash tools/session_queue.sh' BENCH=0 bash tools/device_run.sh
if [ "$PART" = 18 ]; then
TAIL=14 step 90 ncu_m1 env VARIANTS="v8:a16w4:" M=1 bash tools/gemv_profile.sh
mkdir -p "$OUT/m1" && mv "$OUT"/gemv_v8_* "$OUT/m1/" 2>/dev/null
TAIL=14 step 90 ncu_m16 env VARIANTS="v8:a16w4:" M=16 bash tools/gemv_profile.sh
TAIL=60 step 170 table4 python3 bench/gemm.py --formats a16w4,mxfp4,a8w4_mx --ms 1,8,16,32 \
  --shapes 8192x8192,28672x8192,4096x14336,14336x4096 --peers tinygemm --no-ceilings --budget-s 160 --out "$OUT/table4.json"
TAIL=4 step 100 variants_stream python3 -m pytest -q -m cuda -p no:cacheprovider tests/test_cuda_variants.py -k "stream"
fi
# Next session's first call (written in session 6, not run), after device_run.sh's a16w4 / mxfp4
# CUDA tests: v8 with 32 rows per warp (LOWBIT_A16W4_STREAM_ROWS=32) and at 17..32 tokens
# (LOWBIT_A16W4_STREAM_MAX_TOKENS=32) against the defaults.
#   PART=20 LOWBIT_KERNELS=quant,w4,int8 TESTS="tests/test_cuda_a16w4.py tests/test_cuda_mxfp4.py" \
#     EXTRA='bash tools/session_queue.sh' BENCH=0 bash tools/device_run.sh
if [ "$PART" = 20 ]; then
TAIL=4 step 120 variants_new python3 -m pytest -q -m cuda -p no:cacheprovider tests/test_cuda_variants.py -k "stream-32 or rows32 or rows8-gemv-stream"
TAIL=12 step_ab 50 gemv "r16:" "r32:LOWBIT_A16W4_STREAM_ROWS=32" -- --formats a16w4,mxfp4 --ms 1,8 --shapes \
  8192x8192,28672x8192,4096x14336,14336x4096 --peers none --no-ceilings --budget-s 38
TAIL=12 step_ab 45 gemv32 "v7:" "v8:LOWBIT_A16W4_STREAM_MAX_TOKENS=32" -- --formats a16w4 --a16w4-groups \
  128,-1 --ms 17,24,32 --shapes 8192x8192,28672x8192,4096x14336,14336x4096 --peers none --no-ceilings \
  --budget-s 35
TAIL=4 step 90 racecheck_rows32 env LOWBIT_A16W4_STREAM_ROWS=32 compute-sanitizer --tool racecheck --error-exitcode 9 \
  python3 tests/sanitize_w4_int8.py
fi
# Its second (before the model, if the tests passed): the streaming 8-bit-row GEMV against the default.
#   PART=22 LOWBIT_KERNELS=quant,w4,int8 TESTS="tests/test_cuda_a16w8.py tests/test_cuda_a8w4_mx.py" \
#     EXTRA='bash tools/session_queue.sh' BENCH=0 bash tools/device_run.sh
if [ "$PART" = 22 ]; then
step 90 racecheck_rows8 env LOWBIT_ROWS8_GEMV=stream compute-sanitizer --tool racecheck --error-exitcode 9 \
  python3 tests/sanitize_w4_int8.py
TAIL=14 step_ab 70 gemv "rows8:" "rows8s:LOWBIT_ROWS8_GEMV=stream" -- --formats a16w8,mxfp8 --ms 1,8,16 \
  --shapes 8192x8192,28672x8192,4096x14336,14336x4096 --peers none --no-ceilings --budget-s 60
fi
# Its third: the decode table with fused qkv / gate-up projections (bench/llama.py
# fuse_projections) against the unfused model.
#   PART=21 LOWBIT_KERNELS=quant,w4,int8 EXTRA='bash tools/session_queue.sh' BENCH=0 bash tools/device_run.sh nothing
if [ "$PART" = 21 ]; then
TAIL=20 step 240 model_fused python3 bench/model.py --fused --formats a16w4,mxfp4,w8a8_int8 --batch 1,8,32 \
  --prefill 2048 --out "$OUT/model_fused.json"
TAIL=20 step 240 model_unfused python3 bench/model.py --formats a16w4,mxfp4,w8a8_int8 --batch 1,8,32 \
  --prefill 2048 --out "$OUT/model_unfused.json"
fi
# Session 7's second call, after the refill reorder (v8 and the streaming 8-bit-row GEMV release a
# slot through an empty mbarrier at the top of the next block, not behind a proxy fence: the
# fence compiled to MEMBAR.ALL.CTA and waited every block for the loads just prefetched) and v8 at
# 17..32 tokens as default: tests ran by device_run.sh (a16w4, mxfp4, a16w8, a8w4_mx files), then
# racecheck (v8 + the streaming 8-bit rows), the 4-bit table (compare with s7-call1's r16 run),
# 32 rows per warp again, the 8-bit-row A/B.
#   PART=23 LOWBIT_KERNELS=quant,w4,int8 TESTS="tests/test_cuda_a16w4.py tests/test_cuda_mxfp4.py tests/test_cuda_a16w8.py tests/test_cuda_a8w4_mx.py" \
#     EXTRA='bash tools/session_queue.sh' BENCH=0 bash tools/device_run.sh
if [ "$PART" = 23 ]; then
TAIL=4 step 80 racecheck_stream env LOWBIT_ROWS8_GEMV=stream compute-sanitizer --tool racecheck --error-exitcode 9 \
  python3 tests/sanitize_w4_int8.py
TAIL=30 step 55 gemv python3 bench/gemm.py --formats a16w4,mxfp4 --ms 1,8,16,32 \
  --shapes 8192x8192,28672x8192,4096x14336,14336x4096 --peers none --no-ceilings --budget-s 45 --out "$OUT/gemv.json"
TAIL=14 step_ab 45 gemv "rows8:" "rows8s:LOWBIT_ROWS8_GEMV=stream" -- --formats a16w8,mxfp8 --ms 1,8,16 \
  --shapes 8192x8192,28672x8192,4096x14336,14336x4096 --peers none --no-ceilings --budget-s 38
TAIL=12 step 45 gemv_r32 env LOWBIT_A16W4_STREAM_ROWS=32 python3 bench/gemm.py --formats a16w4,mxfp4 --ms 1,8 \
  --shapes 8192x8192,28672x8192,4096x14336,14336x4096 --peers none --no-ceilings --budget-s 38 --out "$OUT/gemv_r32.json"
TAIL=4 step 90 variants_rows8s python3 -m pytest -q -m cuda -p no:cacheprovider tests/test_cuda_variants.py -k "rows8-gemv-stream or stream-16"
fi
# Session 7's third call: where v8 spends its time at M = 1 after the refill change made no
# difference (ncu, source page kept), v8 without the prefetch at 5 CTAs / 20 warps per SM against
# the default (prefetch, 4 CTAs / 16 warps), the model with fused qkv / gate-up projections.
#   PART=24 LOWBIT_KERNELS=quant,w4,int8 EXTRA='bash tools/session_queue.sh' BENCH=0 bash tools/device_run.sh nothing
if [ "$PART" = 24 ]; then
TAIL=12 step_ab 45 gemv "pf16:" "nopf20:LOWBIT_A16W4_STREAM_PREFETCH=0 LOWBIT_A16W4_STREAM_WARPS=20" -- \
  --formats a16w4,mxfp4 --ms 1,8 --shapes 8192x8192,28672x8192,4096x14336,14336x4096 --peers none \
  --no-ceilings --budget-s 38
TAIL=4 step 60 variants_nopf python3 -m pytest -q -m cuda -p no:cacheprovider tests/test_cuda_variants.py -k "stream-no-prefetch"
TAIL=14 step 100 ncu_m1 env VARIANTS="v8:a16w4:" M=1 bash tools/gemv_profile.sh
gzip -f "$OUT"/gemv_v8_source.csv 2>/dev/null
TAIL=20 step 200 model_fused python3 bench/model.py --fused --formats a16w4 --batch 1,8,32 --prefill 2048 \
  --out "$OUT/model_fused.json"
fi
# Next session's first call (written in session 7; session 7 had no device time left for it): v8
# with x through a ring of the CTA (LOWBIT_A16W4_STREAM_X=ring) -- its tests ran by device_run.sh with the knob
# set, then the A/B at 1 / 8 / 16 / 32 tokens, racecheck with the knob and with the defaults (v8 at 24 / 32
# tokens is new in the sanitizer cases).
#   LOWBIT_A16W4_STREAM_X=ring PART=25 LOWBIT_KERNELS=quant,w4,int8 TESTS="tests/test_cuda_a16w4.py tests/test_cuda_mxfp4.py" \
#     EXTRA='bash tools/session_queue.sh' BENCH=0 bash tools/device_run.sh
if [ "$PART" = 25 ]; then
TAIL=30 step_ab 60 gemv "xring:LOWBIT_A16W4_STREAM_X=ring" "base:LOWBIT_A16W4_STREAM_X=off" \
  "sumx:LOWBIT_A16W4_STREAM_X=off LOWBIT_A16W4_STREAM_SUMX=pass" -- --formats a16w4,mxfp4 --ms 1,8,16,32 \
  --shapes 8192x8192,28672x8192,4096x14336,14336x4096 --peers none --no-ceilings --budget-s 45
TAIL=4 step 100 racecheck_xring env LOWBIT_A16W4_STREAM_X=ring compute-sanitizer --tool racecheck --error-exitcode 9 \
  python3 tests/sanitize_w4_int8.py
TAIL=4 step 100 racecheck env -u LOWBIT_A16W4_STREAM_X compute-sanitizer --tool racecheck --error-exitcode 9 \
  python3 tests/sanitize_w4_int8.py
TAIL=4 step 120 variants_xring env -u LOWBIT_A16W4_STREAM_X python3 -m pytest -q -m cuda -p no:cacheprovider \
  tests/test_cuda_variants.py -k "xring or sumx or promote"
fi
# Session 8: the mixed-input wgmma with a K split where its tiles are fewer than the SMs and 64
# tokens per CTA up to M = 64 (default now) vs session 7's kernel (no split, 128 tokens) and the
# split alone; racecheck (the split's last-CTA reduction); the no-split variant's tests.
#   PART=26 LOWBIT_KERNELS=quant,w4,int8 TESTS="tests/test_cuda_a16w4.py tests/test_cuda_mxfp4.py tests/test_cuda_a16w8.py" \
#     EXTRA='bash tools/session_queue.sh' BENCH=0 bash tools/device_run.sh "large_m or wgmma"
if [ "$PART" = 26 ]; then
TAIL=40 step_ab 100 wg "split:" "base:LOWBIT_W4_WGMMA_SPLIT=off LOWBIT_W4_WGMMA_TOKENS=128" -- --formats \
  a16w4,mxfp4,a16w8,mxfp8 --ms 40,64,128,256 --shapes 8192x8192,28672x8192,4096x14336,14336x4096 --peers none \
  --no-ceilings --budget-s 80
TAIL=20 step 40 "wg_split128" env LOWBIT_W4_WGMMA_TOKENS=128 python3 bench/gemm.py --formats a16w4,a16w8 --ms 40,64 \
  --shapes 8192x8192,4096x14336 --peers none --no-ceilings --budget-s 30 --out "$OUT/wg_split128.json"
TAIL=4 step 110 racecheck compute-sanitizer --tool racecheck --error-exitcode 9 python3 tests/sanitize_w4_int8.py
fi
if [ "$PART" = 27 ]; then  # the rest of part 26 when its call ran short
TAIL=4 step 120 variants_nosplit python3 -m pytest -q -m cuda -p no:cacheprovider tests/test_cuda_variants.py -k "no-split"
fi
# Session 8, call 3: the GEMVs' 17..32 tokens through the mixed-input wgmma (32 tokens per CTA,
# K split) vs the GEMVs; 256-row CTAs (now int4 too, with the split at <= 64 tokens) vs 128.
#   PART=28 LOWBIT_KERNELS=quant,w4,int8 TESTS="tests/test_cuda_a16w4.py tests/test_cuda_mxfp4.py tests/test_cuda_a16w8.py tests/test_cuda_a8w4_mx.py" \
#     EXTRA='bash tools/session_queue.sh' BENCH=0 bash tools/device_run.sh "large_m or wgmma"
if [ "$PART" = 28 ]; then
TAIL=34 step_ab 75 small "gemv:" "wg17:LOWBIT_W4_WGMMA_MIN_TOKENS=17" -- --formats a16w4,mxfp4,a16w8,mxfp8 \
  --ms 17,24,32 --shapes 8192x8192,28672x8192,4096x14336,14336x4096 --peers none --no-ceilings --budget-s 60
TAIL=34 step_ab 95 mid "r128:" "r256:LOWBIT_W4_WGMMA_ROWS=256" -- --formats a16w4,mxfp4,a16w8,mxfp8 --ms \
  40,64,128,256 --shapes 8192x8192,28672x8192,4096x14336,14336x4096 --peers none --no-ceilings --budget-s 80
fi
if [ "$PART" = 29 ]; then  # session 8, call 4: the knobs' tests and racecheck
TAIL=4 step 100 racecheck compute-sanitizer --tool racecheck --error-exitcode 9 python3 tests/sanitize_w4_int8.py
TAIL=4 step 100 racecheck_wg17 env LOWBIT_W4_WGMMA_MIN_TOKENS=17 LOWBIT_W4_WGMMA_ROWS=256 compute-sanitizer --tool racecheck \
  --error-exitcode 9 python3 tests/sanitize_w4_int8.py
TAIL=6 step 300 variants python3 -m pytest -q -m cuda -p no:cacheprovider tests/test_cuda_variants.py \
  -k "no-split or rows256 or from-17 or no-xring"
fi
# Session 8, call 4: after the defaults changed (the wgmma from 17 tokens with 32 per CTA, int4 in
# 256-row CTAs by the wave rule, the split GEMVs' last-warp reduction by float4 in flight): the
# GEMVs vs the wgmma at 1..16 tokens (16 per CTA), then racecheck and the knobs' tests.
#   PART=30 LOWBIT_KERNELS=quant,w4,int8 TESTS="tests/test_cuda_a16w4.py tests/test_cuda_mxfp4.py tests/test_cuda_a16w8.py tests/test_cuda_a8w4_mx.py" \
#     EXTRA='bash tools/session_queue.sh' BENCH=0 bash tools/device_run.sh
if [ "$PART" = 30 ]; then
TAIL=34 step_ab 80 tiny "gemv:" "wg1:LOWBIT_W4_WGMMA_MIN_TOKENS=1" -- --formats a16w4,mxfp4,a16w8,mxfp8 --ms \
  1,8,16,32 --shapes 8192x8192,28672x8192,4096x14336,14336x4096 --peers none --no-ceilings --budget-s 65
TAIL=4 step 100 racecheck compute-sanitizer --tool racecheck --error-exitcode 9 python3 tests/sanitize_w4_int8.py
TAIL=6 step 200 variants python3 -m pytest -q -m cuda -p no:cacheprovider tests/test_cuda_variants.py \
  -k "from-1 or gemv-to-32 or rows256"
fi
# Session 8, call 5: the final defaults (the wgmma from 9 tokens for 4-bit weights, from 1 for 8-bit
# rows); the x-box rotation experiment (LOWBIT_W4_WGMMA_ROTATE=1) at 40..128 tokens; racecheck; the
# model's decode at batch 1..32.
#   PART=31 LOWBIT_KERNELS=quant,w4,int8 TESTS="tests/test_cuda_a16w4.py tests/test_cuda_mxfp4.py tests/test_cuda_a16w8.py tests/test_cuda_a8w4_mx.py" \
#     EXTRA='bash tools/session_queue.sh' BENCH=0 bash tools/device_run.sh
if [ "$PART" = 31 ]; then
TAIL=40 step 75 table python3 bench/gemm.py --formats a16w4,mxfp4,a16w8,mxfp8 --ms 1,9,16,64 \
  --shapes 8192x8192,28672x8192,4096x14336,14336x4096 --peers none --no-ceilings --budget-s 60 --out "$OUT/table.json"
TAIL=24 step_ab 55 mid "base:" "rot:LOWBIT_W4_WGMMA_ROTATE=1" -- --formats a16w4,a16w8 --ms 40,64,128 --shapes \
  8192x8192,28672x8192,4096x14336,14336x4096 --peers none --no-ceilings --budget-s 42
TAIL=4 step 100 racecheck compute-sanitizer --tool racecheck --error-exitcode 9 python3 tests/sanitize_w4_int8.py
TAIL=30 step 170 model python3 bench/model.py --fused --formats a16w4,a16w8 --batch 1,8,16,32 --prefill 2048 \
  --out "$OUT/model.json"
fi
# Session 8, call 6: the table for the closing notes with this session's defaults (the K-block
# rotation removed again: its tests and the wgmma tests first).
#   PART=32 LOWBIT_KERNELS=quant,w4,int8 TESTS="tests/test_cuda_a16w4.py tests/test_cuda_mxfp4.py tests/test_cuda_a16w8.py tests/test_cuda_a8w4_mx.py" \
#     EXTRA='bash tools/session_queue.sh' BENCH=0 bash tools/device_run.sh "large_m or wgmma or repeatable or graph"
if [ "$PART" = 32 ]; then
TAIL=120 step 330 table python3 bench/gemm.py --formats a16w4,mxfp4,a8w4_mx,a16w8,mxfp8,w8a8_int8 \
  --ms 1,16,64,256,1024,4096 --peers none --no-ceilings --budget-s 300 --out "$OUT/table.json"
TAIL=40 step 80 groups python3 bench/gemm.py --formats a16w4 --a16w4-groups 32,64,-1 --ms 1,16,64,256 \
  --peers none --no-ceilings --budget-s 65 --out "$OUT/groups.json"
fi
# Session 8, call 7: two CTAs per SM for the wgmma at <= 64 tokens (LOWBIT_W4_WGMMA_CTAS=2): the
# tests with the knob (device_run's TESTS), A/B, racecheck with the knob.
#   LOWBIT_W4_WGMMA_CTAS=2 PART=33 LOWBIT_KERNELS=quant,w4,int8 TESTS="tests/test_cuda_a16w4.py tests/test_cuda_mxfp4.py tests/test_cuda_a16w8.py tests/test_cuda_a8w4_mx.py" \
#     EXTRA='bash tools/session_queue.sh' BENCH=0 bash tools/device_run.sh "large_m or wgmma or repeatable or graph or matches_reference"
if [ "$PART" = 33 ]; then
TAIL=34 step_ab 80 ctas "one:LOWBIT_W4_WGMMA_CTAS=1" "two:LOWBIT_W4_WGMMA_CTAS=2" -- --formats \
  a16w4,mxfp4,a16w8,mxfp8 --ms 1,16,32,64 --shapes 8192x8192,28672x8192,4096x14336,14336x4096 --peers none \
  --no-ceilings --budget-s 65
TAIL=4 step 110 racecheck_two env LOWBIT_W4_WGMMA_CTAS=2 compute-sanitizer --tool racecheck --error-exitcode 9 \
  python3 tests/sanitize_w4_int8.py
fi
# Session 8, call 8: two CTAs per SM by default where one per SM overfills a wave (28672 x 8192 at
# <= 32 tokens): that shape's table and the model's decode.
#   PART=34 LOWBIT_KERNELS=quant,w4,int8 TESTS="tests/test_cuda_a16w4.py tests/test_cuda_mxfp4.py tests/test_cuda_a16w8.py tests/test_cuda_a8w4_mx.py" \
#     EXTRA='bash tools/session_queue.sh' BENCH=0 bash tools/device_run.sh "large_m or wgmma or repeatable or graph"
if [ "$PART" = 34 ]; then
TAIL=20 step 50 mlp python3 bench/gemm.py --formats a16w4,mxfp4,a16w8,mxfp8 --ms 1,16,32,64 --shapes 28672x8192 \
  --peers none --no-ceilings --budget-s 40 --out "$OUT/mlp.json"
TAIL=30 step 200 model python3 bench/model.py --fused --formats a16w4,a16w8,mxfp4 --batch 1,8,16,32 --prefill 2048 \
  --out "$OUT/model.json"
fi
# Next session's first call (written in session 8, no device time left): where the mixed-input
# wgmma spends its time at small M (bench/NOTES.md session 8 "Next" 1-2): ncu source pages of the
# 4-bit kernel at M = 1 (through the wgmma: LOWBIT_W4_WGMMA_MIN_TOKENS=1), 16 and 64, and of the
# 8-bit rows at M = 1 (0.79-0.89 of cuBLAS's bandwidth through the same kernel), 8192^2.
#   PART=35 LOWBIT_KERNELS=quant,w4,int8 EXTRA='bash tools/session_queue.sh' BENCH=0 bash tools/device_run.sh "nothing_selected"
if [ "$PART" = 35 ]; then
TAIL=40 step 400 ncu_wgmma env LOWBIT_W4_WGMMA_MIN_TOKENS=1 SOURCE=1 \
  VARIANTS="a16w4_m1:a16w4:1:wgmma a16w4_m16:a16w4:16:wgmma a16w4_m64:a16w4:64:wgmma a16w8_m1:a16w8:1:wgmma" \
  bash tools/wgmma_profile.sh
fi
# Session 9, call 1: session 8's last commit (the review: one leader-arrival helper, the int4
# 256-row launch through the group switch, int8 rows out of the two-CTA rule) on the GPU: the
# tests (device_run's TESTS), racecheck, the variants (the GEMV knobs with 9..32 tokens kept in
# the GEMVs, two CTAs, from 1, rows256), then the ncu source page of the 4-bit wgmma at M = 1.
#   PART=36 LOWBIT_KERNELS=quant,w4,int8 TESTS="tests/test_cuda_a16w4.py tests/test_cuda_mxfp4.py tests/test_cuda_a16w8.py tests/test_cuda_a8w4_mx.py" \
#     EXTRA='bash tools/session_queue.sh' BENCH=0 bash tools/device_run.sh
if [ "$PART" = 36 ]; then
TAIL=4 step 100 racecheck compute-sanitizer --tool racecheck --error-exitcode 9 python3 tests/sanitize_w4_int8.py
TAIL=8 step 220 variants python3 -m pytest -q -m cuda -p no:cacheprovider tests/test_cuda_variants.py \
  -k "gemv or two-ctas or from-1 or rows256"
TAIL=20 step 100 ncu_m1 env LOWBIT_W4_WGMMA_MIN_TOKENS=1 SOURCE=1 VARIANTS="a16w4_m1:a16w4:1:wgmma" bash tools/wgmma_profile.sh
fi
# Session 9, call 2: one wgmma group in flight across chunks and blocks (the stage released one
# chunk later) and the weight chunks read by ld.shared (they compiled to generic LD.E.128): the
# tests run by device_run (TESTS), racecheck, then the A/B against draining every block
# (LOWBIT_W4_WGMMA_DRAIN=1, the same build) at 1 (wgmma from 1 token) / 16 / 64 / 256 / 1024 tokens.
#   PART=37 LOWBIT_KERNELS=quant,w4,int8 TESTS="tests/test_cuda_a16w4.py tests/test_cuda_mxfp4.py tests/test_cuda_a16w8.py tests/test_cuda_a8w4_mx.py" \
#     EXTRA='bash tools/session_queue.sh' BENCH=0 bash tools/device_run.sh
if [ "$PART" = 37 ]; then
TAIL=4 step 100 racecheck compute-sanitizer --tool racecheck --error-exitcode 9 python3 tests/sanitize_w4_int8.py
TAIL=44 step_ab 100 ab "flight:LOWBIT_W4_WGMMA_MIN_TOKENS=1" \
  "drain:LOWBIT_W4_WGMMA_MIN_TOKENS=1 LOWBIT_W4_WGMMA_DRAIN=1" -- --formats a16w4,mxfp4,a16w8,mxfp8 --ms \
  1,16,64,256,1024 --shapes 8192x8192,28672x8192,4096x14336,14336x4096 --peers none --no-ceilings --budget-s \
  80
TAIL=8 step 90 variants python3 -m pytest -q -m cuda -p no:cacheprovider tests/test_cuda_variants.py -k "two-ctas or from-1"
fi
# Session 9, call 3: x permuted in shared memory at <= 32 tokens per CTA (the 4-bit A fragments
# from each thread's own words, no quad shuffles; w4_wgmma.cuh permute_x_blocks): the tests
# (TESTS), racecheck, the A/B against the shuffles (LOWBIT_W4_WGMMA_XPERM=off) with the wgmma from
# 1 token, the GEMVs' 1 / 8 tokens (defaults), the variants that run the permuted kernels in other
# builds (two CTAs per SM, from 1 token).
#   PART=38 LOWBIT_KERNELS=quant,w4,int8 TESTS="tests/test_cuda_a16w4.py tests/test_cuda_mxfp4.py tests/test_cuda_a16w8.py tests/test_cuda_a8w4_mx.py" \
#     EXTRA='bash tools/session_queue.sh' BENCH=0 bash tools/device_run.sh
if [ "$PART" = 38 ]; then
TAIL=4 step 90 racecheck compute-sanitizer --tool racecheck --error-exitcode 9 python3 tests/sanitize_w4_int8.py
TAIL=30 step_ab 70 ab "xperm:LOWBIT_W4_WGMMA_MIN_TOKENS=1" \
  "shfl:LOWBIT_W4_WGMMA_MIN_TOKENS=1 LOWBIT_W4_WGMMA_XPERM=off" "gemv:" -- --formats a16w4,mxfp4 --ms \
  1,8,16,32,256 --shapes 8192x8192,28672x8192,4096x14336,14336x4096 --peers none --no-ceilings --budget-s 55
TAIL=8 step 90 variants python3 -m pytest -q -m cuda -p no:cacheprovider tests/test_cuda_variants.py -k "two-ctas or from-1"
fi
# Session 9, call 4: x permuted at 64 tokens per CTA too (33..64 tokens): tests (TESTS), racecheck,
# the A/B against the shuffles at 40 / 64 tokens, then ncu source pages of the 4-bit wgmma at
# 16 and 64 tokens with the permutation (8192^2).
#   PART=39 LOWBIT_KERNELS=quant,w4,int8 TESTS="tests/test_cuda_a16w4.py tests/test_cuda_mxfp4.py tests/test_cuda_a16w8.py tests/test_cuda_a8w4_mx.py" \
#     EXTRA='bash tools/session_queue.sh' BENCH=0 bash tools/device_run.sh
if [ "$PART" = 39 ]; then
TAIL=4 step 90 racecheck compute-sanitizer --tool racecheck --error-exitcode 9 python3 tests/sanitize_w4_int8.py
TAIL=24 step_ab 50 mid "xperm:" "shfl:LOWBIT_W4_WGMMA_XPERM=off" -- --formats a16w4,mxfp4 --ms 40,64 --shapes \
  8192x8192,28672x8192,4096x14336,14336x4096 --peers none --no-ceilings --budget-s 40
TAIL=30 step 150 ncu_wgmma env SOURCE=1 VARIANTS="a16w4_m16:a16w4:16:wgmma a16w4_m64:a16w4:64:wgmma" bash tools/wgmma_profile.sh
fi
# Session 9, call 5: x always permuted at <= 64 tokens (knob removed), the scale rows' pointers
# hoisted, 256-row CTAs built at 16 / 32 tokens for 4-bit weights (forced by
# LOWBIT_W4_WGMMA_ROWS=256: two independent row tiles per warp, the per-block work amortized over
# twice the rows): tests (TESTS), racecheck, A/B base / rows256 / drain (one group in flight or not,
# now with the permutation) with the wgmma from 1 token, the rows256 variant's tests.
#   PART=40 LOWBIT_KERNELS=quant,w4,int8 TESTS="tests/test_cuda_a16w4.py tests/test_cuda_mxfp4.py tests/test_cuda_a16w8.py tests/test_cuda_a8w4_mx.py" \
#     EXTRA='bash tools/session_queue.sh' BENCH=0 bash tools/device_run.sh
if [ "$PART" = 40 ]; then
TAIL=4 step 90 racecheck compute-sanitizer --tool racecheck --error-exitcode 9 python3 tests/sanitize_w4_int8.py
TAIL=24 step_ab 60 ab "base:LOWBIT_W4_WGMMA_MIN_TOKENS=1" \
  "r256:LOWBIT_W4_WGMMA_MIN_TOKENS=1 LOWBIT_W4_WGMMA_ROWS=256" \
  "drain:LOWBIT_W4_WGMMA_MIN_TOKENS=1 LOWBIT_W4_WGMMA_DRAIN=1" -- --formats a16w4,mxfp4 --ms 1,16,32,64 \
  --shapes 8192x8192,28672x8192,4096x14336,14336x4096 --peers none --no-ceilings --budget-s 45
TAIL=8 step 80 variants python3 -m pytest -q -m cuda -p no:cacheprovider tests/test_cuda_variants.py -k "rows256"
fi
# Session 9, call 6: the session's final kernels (x permuted at <= 64 tokens; the in-flight and
# 256-row-at-<=32 experiments removed): tests (TESTS), racecheck, the table for the closing notes.
#   PART=41 LOWBIT_KERNELS=quant,w4,int8 TESTS="tests/test_cuda_a16w4.py tests/test_cuda_mxfp4.py tests/test_cuda_a16w8.py tests/test_cuda_a8w4_mx.py" \
#     EXTRA='bash tools/session_queue.sh' BENCH=0 bash tools/device_run.sh
if [ "$PART" = 41 ]; then
TAIL=4 step 90 racecheck compute-sanitizer --tool racecheck --error-exitcode 9 python3 tests/sanitize_w4_int8.py
TAIL=120 step 270 table python3 bench/gemm.py --formats a16w4,mxfp4,a8w4_mx,a16w8,mxfp8 \
  --ms 1,16,64,256,1024,4096 --peers none --no-ceilings --budget-s 240 --out "$OUT/table.json"
fi
# Session 9, call 7: the model (decode in graphs, prefill), the group sizes, and the per-CTA fixed
# cost of the wgmma at 16 tokens: K swept at N = 8192 with the split off (64 CTAs, 16..256 blocks
# each: time = fixed + blocks x per-block) and on.
#   PART=42 LOWBIT_KERNELS=quant,w4,int8 EXTRA='bash tools/session_queue.sh' BENCH=0 bash tools/device_run.sh nothing_selected
if [ "$PART" = 42 ]; then
TAIL=14 step_ab 40 ksweep "split:" "nosplit:LOWBIT_W4_WGMMA_SPLIT=off" -- --formats a16w4 --ms 16 --shapes \
  8192x2048,8192x4096,8192x8192,8192x16384,8192x32768 --peers none --no-ceilings --budget-s 30
TAIL=40 step 80 groups python3 bench/gemm.py --formats a16w4 --a16w4-groups 32,64,-1 --ms 1,16,64,256 \
  --peers none --no-ceilings --budget-s 65 --out "$OUT/groups.json"
TAIL=30 step 220 model python3 bench/model.py --fused --formats a16w4,a16w8,mxfp4 --batch 1,8,16,32 --prefill 2048 \
  --out "$OUT/model.json"
fi
# Session 9, call 8: 256-row CTAs at 16 tokens for 4-bit weights where the 128-row grid is short of
# a wave (restored with that rule after a misread of s9-call5): tests (TESTS; M = 9 / 16 added to the
# full-tile tests), racecheck, the A/B against 128 rows (LOWBIT_W4_WGMMA_ROWS=128) at 9 / 12 / 16.
#   PART=43 LOWBIT_KERNELS=quant,w4,int8 TESTS="tests/test_cuda_a16w4.py tests/test_cuda_mxfp4.py tests/test_cuda_a16w8.py tests/test_cuda_a8w4_mx.py" \
#     EXTRA='bash tools/session_queue.sh' BENCH=0 bash tools/device_run.sh
if [ "$PART" = 43 ]; then
TAIL=4 step 90 racecheck compute-sanitizer --tool racecheck --error-exitcode 9 python3 tests/sanitize_w4_int8.py
TAIL=20 step_ab 45 m16 "rule:" "r128:LOWBIT_W4_WGMMA_ROWS=128" -- --formats a16w4,mxfp4 --ms 9,12,16 --shapes \
  8192x8192,28672x8192,4096x14336,14336x4096 --peers none --no-ceilings --budget-s 35
fi
# Session 9, call 9: int4 per channel at 64 tokens back to the shuffles (the permutation measured
# ~10% slower there across calls), and 256-row CTAs at 16 tokens only where the 128-row grid is split
# (not 14336x4096: mxfp4 10% slower there in s9-call8): the a16w4 tests (TESTS), then per channel,
# g128 and mxfp4 at 16 / 64; the ncu source page of the 16-token kernel (256-row CTAs on 8192^2).
#   PART=44 LOWBIT_KERNELS=quant,w4,int8 TESTS="tests/test_cuda_a16w4.py tests/test_cuda_mxfp4.py" EXTRA='bash tools/session_queue.sh' BENCH=0 \
#     bash tools/device_run.sh "large_m or wgmma or matches_reference"
if [ "$PART" = 44 ]; then
step_pc64
TAIL=20 step 100 ncu_m16 env SOURCE=1 VARIANTS="a16w4_m16:a16w4:16:wgmma" bash tools/wgmma_profile.sh
fi
# Parts 45 (session 9, for session 10) and 46 (session 10, call 1) ran the A/B of one wgmma group
# in flight as separate kernels (LOWBIT_W4_WGMMA_IN_FLIGHT, drain vs flight at 1 / 9 / 16 / 32 tokens,
# 128 rows) and, in 46, part 44's bench: s10-call1. The kernels and knob were removed after it
# (bench/NOTES.md session 10), so only part 44's bench is left here.
if [ "$PART" = 46 ]; then
step_pc64
fi
# Session 10, call 2: part 46's per-channel bench (its argument had failed to parse), then the
# 8-bit mainloop probe (tools/gemm_probe.sh: the library's kernel at large M, full / no epilogue /
# no memory / no mma, 128 and 256 columns, clusters; ncu of three cases).
#   PART=47 LOWBIT_KERNELS=quant,w4,int8 EXTRA='bash tools/session_queue.sh' BENCH=0 bash tools/device_run.sh nothing_selected
if [ "$PART" = 47 ]; then
step_pc64
TAIL=80 step 400 gemm_probe bash tools/gemm_probe.sh
fi
# Session 10, call 3: the 8-bit GEMMs' TMA-stored epilogue (sm90_gemm.cuh kStoreTma; the generic
# epilogue took ~15% of the 128 x 128 fp8 time and half of the 128 x 256 int8 time, s10-call2) and
# 128 x 256 tiles for the chained (int8) loop by default: fp8 / int8 tests (TESTS), the probe with
# the new epilogue, the table against torch's fp8 / int8 GEMMs, int8 at 128 x 128 (A/B).
#   PART=48 LOWBIT_KERNELS=quant,fp8,int8,w4 TESTS="tests/test_cuda_fp8.py tests/test_cuda_int8.py" \
#     EXTRA='bash tools/session_queue.sh' BENCH=0 bash tools/device_run.sh
if [ "$PART" = 48 ]; then
TAIL=40 step 100 gemm_probe env SETS="1 2 3" NCU=0 bash tools/gemm_probe.sh
TAIL=60 step_table8 170 150
TAIL=20 step 50 int8_bn128 env LOWBIT_SM90_BN=128 python3 bench/gemm.py --formats w8a8_int8 --ms 256,1024,4096,8192 \
  --shapes 8192x8192,28672x8192,4096x14336 --peers none --no-ceilings --budget-s 40 --out "$OUT/int8_bn128.json"
fi
# Session 10, call 4: fp8 promoted 128 x 256 in two halves (sm90_gemm.cuh kNParts; LOWBIT_FP8_BN=256),
# clusters for promoted loops by default, int8's tile width by waves: fp8 / int8 tests (TESTS),
# the wide fp8 variant's tests, the probe (128 vs halves vs 192, same run), then fp8 / int8 at
# M = 256..8192 by default and fp8 with LOWBIT_FP8_BN=256 and 0 (by waves).
#   PART=49 LOWBIT_KERNELS=quant,fp8,int8,w4 TESTS="tests/test_cuda_fp8.py tests/test_cuda_int8.py" \
#     EXTRA='bash tools/session_queue.sh' BENCH=0 bash tools/device_run.sh
if [ "$PART" = 49 ]; then
TAIL=6 step 120 variants python3 -m pytest -q -m cuda -p no:cacheprovider tests/test_cuda_variants.py -k "fp8-wide"
TAIL=40 step 100 gemm_probe env SETS="1 5 3" NCU=0 bash tools/gemm_probe.sh
TAIL=30 step_ab 70 large "base:" "wide:LOWBIT_FP8_BN=256" "waves:LOWBIT_FP8_BN=0" -- --formats \
  w8a8_fp8,fp8_block,w8a8_int8 --ms 256,512,1024,2048,4096,8192 --shapes 8192x8192,28672x8192,4096x14336 \
  --peers none --no-ceilings --budget-s 60
fi
# Session 10, call 5: the tile / cluster choice by waves for both loops (fp8: two-halves 128 x 256
# without clusters vs 128 x 128 with them): fp8 / int8 tests (TESTS), the forced-width variants,
# the fp8 / int8 table against torch's GEMMs, and the model (prefill 2048 and decode) in the 8-bit formats.
#   PART=50 LOWBIT_KERNELS=quant,fp8,int8,w4 TESTS="tests/test_cuda_fp8.py tests/test_cuda_int8.py" \
#     EXTRA='bash tools/session_queue.sh' BENCH=0 bash tools/device_run.sh
if [ "$PART" = 50 ]; then
TAIL=6 step 100 variants python3 -m pytest -q -m cuda -p no:cacheprovider tests/test_cuda_variants.py -k "fp8-wide or int8-wide"
TAIL=70 step_table8 120 100
TAIL=30 step 200 model python3 bench/model.py --fused --formats w8a8_fp8,w8a8_int8,fp8_block --batch 1,16 --prefill 2048 \
  --out "$OUT/model.json"
fi
# Session 10, call 6 (probe only, no extension build): fp8 two-halves 128 x 256 with one promotion
# per two K blocks (kFold = 2) against one per block, same run.
#   PART=51 EXTRA='bash tools/session_queue.sh' bash -c 'OUT=${OUT:-/tmp/out} bash tools/session_queue.sh'
if [ "$PART" = 51 ]; then
TAIL=40 step 150 gemm_probe env SETS="5 6 1" NCU=0 bash tools/gemm_probe.sh
fi
# Session 10, call 7: the large-M K split where units fill at most half the slots, and the swap-AB
# line at 64 tokens against 32 (LOWBIT_SM90_SWAP_MAX): fp8 / int8 tests (TESTS), compute-sanitizer
# memcheck and racecheck over tests/sanitize_fp8.py (the TMA-stored epilogue, the two halves, int8's
# wide tiles), the swap A/B at 16..64 tokens, the split A/B at M = 256 / 512.
#   PART=52 LOWBIT_KERNELS=quant,fp8,int8,w4 TESTS="tests/test_cuda_fp8.py tests/test_cuda_int8.py" \
#     EXTRA='bash tools/session_queue.sh' BENCH=0 bash tools/device_run.sh
if [ "$PART" = 52 ]; then
TAIL=4 step 120 memcheck compute-sanitizer --tool memcheck --error-exitcode 9 python3 tests/sanitize_fp8.py
TAIL=4 step 150 racecheck compute-sanitizer --tool racecheck --error-exitcode 9 python3 tests/sanitize_fp8.py
TAIL=24 step_ab 45 ab "swap64:" "swap32:LOWBIT_SM90_SWAP_MAX=32" -- --formats w8a8_fp8,fp8_block,w8a8_int8 \
  --ms 16,33,48,64 --shapes 8192x8192,28672x8192,4096x14336 --peers none --no-ceilings --budget-s 35
TAIL=24 step_ab 40 ab "split:" "nosplit:LOWBIT_FP8_SPLITS=1" -- --formats w8a8_fp8,fp8_block --ms 256,512 \
  --shapes 8192x8192,28672x8192,4096x14336 --peers none --no-ceilings --budget-s 30
fi
# Session 10, call 8: fp8_block's swap-AB line at 32 tokens (s10-call7's A/B): fp8 / int8 tests
# (TESTS), then the final fp8 / int8 table against torch's GEMMs (M = 1..8192, three shapes).
#   PART=53 LOWBIT_KERNELS=quant,fp8,int8,w4 TESTS="tests/test_cuda_fp8.py tests/test_cuda_int8.py" \
#     EXTRA='bash tools/session_queue.sh' BENCH=0 bash tools/device_run.sh
if [ "$PART" = 53 ]; then
TAIL=70 step_table8 150 120
fi
# Session 10, call 9 (probe only): ncu summaries of the two-halves fp8 loop with and without
# clusters and of the chained int8 128 x 256 loop, for the next session's mainloop work.
#   PART=54 OUT=$OUT bash tools/session_queue.sh
if [ "$PART" = 54 ]; then
TAIL=60 step 240 gemm_probe env SETS="5 2" PROBE_CONFIG=none \
  NCU="fp8_promote_256_halves_c1:full:8192:5 fp8_promote_256_halves_c2:full:8192:5 s8_chain_256_c2:full:8192:2" \
  bash tools/gemm_probe.sh
fi
# For session 11: branch s10-epilogue-pairs (the TMA epilogue's scales and bias read in aligned
# pairs: no stack in any sm90 kernel; compiled and SASS-checked, not run). On that branch: fp8 /
# int8 tests, sanitize_fp8 under memcheck / racecheck, and the fp8 / int8 table; merge if clean.
# (The branch also reads the w4 wgmma epilogue's bias / row scales by read-only loads: its tests too.)
#   git checkout s10-epilogue-pairs && PART=55 LOWBIT_KERNELS=quant,fp8,int8,w4 \
#     TESTS="tests/test_cuda_fp8.py tests/test_cuda_int8.py tests/test_cuda_a16w4.py tests/test_cuda_a16w8.py tests/test_cuda_mxfp4.py tests/test_cuda_a8w4_mx.py" \
#     EXTRA='bash tools/session_queue.sh' BENCH=0 bash tools/device_run.sh
if [ "$PART" = 55 ]; then
TAIL=4 step 120 memcheck compute-sanitizer --tool memcheck --error-exitcode 9 python3 tests/sanitize_fp8.py
TAIL=4 step 150 racecheck compute-sanitizer --tool racecheck --error-exitcode 9 python3 tests/sanitize_fp8.py
TAIL=70 step_table8 150 120
fi
# Session 11, call 2: the swap-AB K split inside clusters (sm90_gemm.cuh kKSplit, branch s11-ksplit):
# the fp8 / int8 tests (TESTS) and their ksplit variants, the resident clusters of 2 / 4 CTAs
# (LOWBIT_DEBUG), and the A/B against the split off at 1 / 16 / 64 tokens on the three shapes
# (off first). Part 57: compute-sanitizer over sanitize_fp8, then the table.
#   PART=56 LOWBIT_KERNELS=quant,fp8,int8 TESTS="tests/test_cuda_fp8.py tests/test_cuda_int8.py" \
#     EXTRA='bash tools/session_queue.sh' BENCH=0 bash tools/device_run.sh
if [ "$PART" = 56 ]; then
TAIL=8 step 200 variants python3 -m pytest -q -m cuda -p no:cacheprovider tests/test_cuda_variants.py -k "ksplit"
TAIL=12 step 30 debug env LOWBIT_DEBUG=1 python3 -c "
import torch, lowbit_ext
from lowbit_ext import ops
for n, k in ((8192, 8192), (4096, 14336), (28672, 8192)):
    for m in (1, 16, 64):
        x = torch.randn(m, k, device='cuda', dtype=torch.bfloat16)
        w, ws = ops.quantize_fp8_per_token(torch.randn(n, k, device='cuda'))
        ops.w8a8_fp8_linear(x, w, ws, None, True)
torch.cuda.synchronize()"
TAIL=30 step_ab 70 ab "off:LOWBIT_SM90_KSPLIT=1" "on:" -- --formats w8a8_int8,w8a8_fp8,fp8_block --ms 1,16,64 \
  --shapes 8192x8192,28672x8192,4096x14336 --peers none --no-ceilings --budget-s 55
fi
#   PART=57 LOWBIT_KERNELS=quant,fp8,int8 EXTRA='bash tools/session_queue.sh' BENCH=0 bash tools/device_run.sh nothing
if [ "$PART" = 57 ]; then
TAIL=4 step 120 memcheck compute-sanitizer --tool memcheck --error-exitcode 9 python3 tests/sanitize_fp8.py
TAIL=4 step 150 racecheck compute-sanitizer --tool racecheck --error-exitcode 9 python3 tests/sanitize_fp8.py
TAIL=70 step_table8 150 120
fi
# Session 11, call 3: programmatic dependent launch of the 8-bit GEMMs after the activation
# quantizer in the fused linears (LOWBIT_PDL; the first weight tiles requested before
# griddepcontrol.wait), and the split GEMVs' / 4-bit wgmma's arrival counters kept per stream and
# left at zero by the kernels (LOWBIT_SPLIT_COUNTERS=zeros: a memset per call, as before). TESTS:
# the 8-bit GEMM files and the GEMV / wgmma files (their split paths reuse the counters across
# calls: bitwise-repeatable tests). A/Bs (off first): PDL at 1 / 16 / 64 / 1024 tokens, the
# counters at 1 / 16 tokens. Part 59 (the same warm machine, no build unless the extension is
# missing): memcheck and racecheck over sanitize_fp8, then the table.
#   PART=58 LOWBIT_KERNELS=quant,fp8,int8,w4 \
#     TESTS="tests/test_cuda_fp8.py tests/test_cuda_int8.py tests/test_cuda_a16w4.py tests/test_cuda_mxfp4.py tests/test_cuda_a16w8.py" \
#     EXTRA='bash tools/session_queue.sh' BENCH=0 bash tools/device_run.sh
if [ "$PART" = 58 ]; then
TAIL=30 step_ab 80 pdl "off:LOWBIT_PDL=0" "on:" -- --formats w8a8_int8,w8a8_fp8,fp8_block --ms 1,16,64,1024 \
  --shapes 8192x8192,28672x8192,4096x14336 --peers none --no-ceilings --budget-s 65
TAIL=24 step_ab 60 counters "zeros:LOWBIT_SPLIT_COUNTERS=zeros" "kept:" -- --formats a16w4,mxfp4,a16w8 --ms \
  1,16 --shapes 8192x8192,28672x8192,4096x14336,14336x4096 --peers none --no-ceilings --budget-s 45
fi
#   PART=59 OUT=$OUT bash tools/session_queue.sh
if [ "$PART" = 59 ]; then
python3 -c "import torch, lowbit_ext; torch.ops.lowbit.w8a8_fp8_linear" 2>/dev/null || \
  LOWBIT_KERNELS=quant,fp8,int8,w4 MAX_JOBS=16 LOWBIT_CUDA=1 LOWBIT_CUDA_ARCHS=90a \
  python3 -m pip install --no-build-isolation --no-deps -e . > "$OUT/build.log" 2>&1
TAIL=4 step 120 memcheck compute-sanitizer --tool memcheck --error-exitcode 9 python3 tests/sanitize_fp8.py
TAIL=4 step 150 racecheck compute-sanitizer --tool racecheck --error-exitcode 9 python3 tests/sanitize_fp8.py
TAIL=70 step_table8 150 120
fi
# Session 11, call 5: swap-AB past 64 tokens (LOWBIT_SM90_SWAP_MAX=256: 64-token Q tiles; the
# normal layout gives 4096 x 14336 at M = 256 64 tiles for 132 SMs) -- its variant test and the
# A/B at 128 / 256 tokens -- and the model (decode B = 1 / 16 in graphs, prefill 2048) with this
# session's kernels and session 10's bench/llama.py glue.
#   PART=60 LOWBIT_KERNELS=quant,fp8,int8,w4 EXTRA='bash tools/session_queue.sh' BENCH=0 bash tools/device_run.sh nothing
if [ "$PART" = 60 ]; then
TAIL=6 step 90 variants python3 -m pytest -q -m cuda -p no:cacheprovider tests/test_cuda_variants.py -k "swap-256"
TAIL=24 step_ab 50 ab "swap64:" "swap256:LOWBIT_SM90_SWAP_MAX=256" -- --formats w8a8_int8,w8a8_fp8,fp8_block \
  --ms 128,256 --shapes 8192x8192,28672x8192,4096x14336 --peers none --no-ceilings --budget-s 40
TAIL=30 step 240 model python3 bench/model.py --fused --formats a16w4,w8a8_int8,fp8_block --batch 1,16 --prefill 2048 \
  --out "$OUT/model.json"
fi
# Session 11, call 6 (the same warm machine as part 60, no build): the 16-bit-activation formats'
# table with this session's counters, and the counters A/B once more (s11-call3 showed mxfp4 at
# M = 1 on 8192^2 1.69 -> 1.51 while everything else gained 3-8%: noise or not).
#   PART=61 OUT=$OUT bash tools/session_queue.sh
if [ "$PART" = 61 ]; then
TAIL=50 step 150 table16 python3 bench/gemm.py --formats a16w4,mxfp4,a16w8 --ms 1,16,64,256,1024 \
  --shapes 8192x8192,28672x8192,4096x14336,14336x4096 --peers none --no-ceilings --budget-s 130 --out "$OUT/table16.json"
TAIL=20 step_ab 40 counters "zeros:LOWBIT_SPLIT_COUNTERS=zeros" "kept:" -- --formats a16w4,mxfp4 --ms 1 \
  --shapes 8192x8192,4096x14336 --peers none --no-ceilings --budget-s 30
fi
# Session 11, call 7 (the last ~4 minutes of device time): w8a8_fp8 in the model with this
# session's kernels (issue 7's prefill target), quant + fp8 only to shorten the build.
#   PART=62 LOWBIT_KERNELS=quant,fp8 EXTRA='bash tools/session_queue.sh' BENCH=0 bash tools/device_run.sh nothing
if [ "$PART" = 62 ]; then
TAIL=20 step 120 model python3 bench/model.py --fused --formats w8a8_fp8 --batch 1,16 --prefill 2048 --out "$OUT/model.json"
fi
# For session 12: branch s11-ksplit-normal (the cluster K split also for the normal layout's few
# 128 x 128 tiles at M > 64, generic stores; the receive buffer one slot per other rank, so 6
# stages still fit; compiled, not run). Tests, the split-off variant, the A/B at 128 / 256 / 512
# tokens (LOWBIT_SM90_KSPLIT=1 first: fp8's global split, int8's half-empty grid), then part 66
# on the warm machine: sanitizers and the table.
#   git checkout s11-ksplit-normal && PART=65 LOWBIT_KERNELS=quant,fp8,int8,w4 \
#     TESTS="tests/test_cuda_fp8.py tests/test_cuda_int8.py" EXTRA='bash tools/session_queue.sh' BENCH=0 bash tools/device_run.sh
if [ "$PART" = 65 ]; then
TAIL=8 step 150 variants python3 -m pytest -q -m cuda -p no:cacheprovider tests/test_cuda_variants.py -k "ksplit"
TAIL=24 step_ab 60 ab "off:LOWBIT_SM90_KSPLIT=1" "on:" -- --formats w8a8_int8,w8a8_fp8,fp8_block --ms \
  128,256,512 --shapes 8192x8192,28672x8192,4096x14336 --peers none --no-ceilings --budget-s 50
fi
#   PART=66 OUT=$OUT bash tools/session_queue.sh
if [ "$PART" = 66 ]; then
TAIL=4 step 120 memcheck compute-sanitizer --tool memcheck --error-exitcode 9 python3 tests/sanitize_fp8.py
TAIL=4 step 150 racecheck compute-sanitizer --tool racecheck --error-exitcode 9 python3 tests/sanitize_fp8.py
TAIL=70 step_table8 150 120
fi
# For session 12: branch s11-epilogue-file, on top of s11-ksplit-normal (the three epilogues of
# sm90_gemm.cuh moved into functions in sm90_epilogue.cuh; compiled, no stack, not run: their SASS
# differs in the epilogues' index arithmetic, slightly fewer instructions). Run parts 65 / 66 on
# s11-ksplit-normal first, then this one on its own build: fp8 / int8 tests,
# sanitize_fp8 under memcheck / racecheck, and the table; merge if no cell moves beyond the spread.
#   git checkout s11-epilogue-file && PART=63 LOWBIT_KERNELS=quant,fp8,int8,w4 \
#     TESTS="tests/test_cuda_fp8.py tests/test_cuda_int8.py" EXTRA='bash tools/session_queue.sh' BENCH=0 bash tools/device_run.sh
if [ "$PART" = 63 ]; then
TAIL=4 step 120 memcheck compute-sanitizer --tool memcheck --error-exitcode 9 python3 tests/sanitize_fp8.py
TAIL=4 step 150 racecheck compute-sanitizer --tool racecheck --error-exitcode 9 python3 tests/sanitize_fp8.py
TAIL=70 step_table8 150 120
fi
# For session 12: branch s11-mx-round (a8w4_mx_linear / mxfp8_linear round x to MXFP8 and back in
# one kernel instead of quantize_mxfp8 + the MXFP8 dequantizer: one launch fewer; compiled, not run).
# On that branch: the MX tests (a new one: the linears equal quantize + mm bit for bit, NaN / Inf /
# extreme blocks) and the two formats' rows (session 9's table: a8w4_mx 1.28-2.00x at M = 1,
# mxfp8 1.26-1.66x; compare in the same call with LOWBIT_KERNELS on main if time allows).
#   git checkout s11-mx-round && PART=64 LOWBIT_KERNELS=quant,fp8,int8,w4 \
#     TESTS="tests/test_cuda_a8w4_mx.py tests/test_cuda_ops.py" EXTRA='bash tools/session_queue.sh' BENCH=0 bash tools/device_run.sh
if [ "$PART" = 64 ]; then
TAIL=40 step 90 mx8 python3 bench/gemm.py --formats a8w4_mx,mxfp8 --ms 1,16,64,256 \
  --shapes 8192x8192,28672x8192,4096x14336,14336x4096 --peers none --no-ceilings --budget-s 75 --out "$OUT/mx8.json"
fi
# Session 12: branch s12-combo (s11-epilogue-file, which sits on s11-ksplit-normal, merged with
# s11-mx-round, plus the knob LOWBIT_MX_ACT=two_pass for the previous MX activation path): one
# build for the three candidates. Call 1: fp8 / int8 / MX / ops tests (by TESTS), the K-split
# variants, the K-split A/B at 128 / 256 / 512 tokens, the MX activation A/B.
#   PART=67 LOWBIT_KERNELS=quant,fp8,int8,w4 TESTS="tests/test_cuda_fp8.py tests/test_cuda_int8.py \
#     tests/test_cuda_a8w4_mx.py tests/test_cuda_ops.py" EXTRA='bash tools/session_queue.sh' BENCH=0 bash tools/device_run.sh
if [ "$PART" = 67 ]; then
TAIL=8 step 150 variants python3 -m pytest -q -m cuda -p no:cacheprovider tests/test_cuda_variants.py -k "ksplit"
TAIL=24 step_ab 70 ab "off:LOWBIT_SM90_KSPLIT=1" "on:" -- --formats w8a8_int8,w8a8_fp8,fp8_block --ms \
  128,256,512 --shapes 8192x8192,28672x8192,4096x14336 --peers none --no-ceilings --budget-s 50
TAIL=24 step_ab 50 mx "two:LOWBIT_MX_ACT=two_pass" "one:" -- --formats a8w4_mx,mxfp8 --ms 1,16,64,256 \
  --shapes 8192x8192,4096x14336 --peers none --no-ceilings --budget-s 35
fi
# Call 2 on the warm machine: sanitizers, the 8-bit table, w8a8_fp8 in the model.
#   PART=68 OUT=$OUT bash tools/session_queue.sh
if [ "$PART" = 68 ]; then
TAIL=4 step 120 memcheck compute-sanitizer --tool memcheck --error-exitcode 9 python3 tests/sanitize_fp8.py
TAIL=4 step 150 racecheck compute-sanitizer --tool racecheck --error-exitcode 9 python3 tests/sanitize_fp8.py
TAIL=40 step 150 model_graph python3 bench/model.py --fused --formats a16w4,w8a8_fp8 --batch 1,16 --prefill 2048 \
  --profile --out "$OUT/model_graph.json"
TAIL=70 step_table8 150 120
fi
if [ "$PART" = 69 ]; then
TAIL=20 step 120 model python3 bench/model.py --fused --formats w8a8_fp8 --batch 1,16 --prefill 2048 --out "$OUT/model.json"
fi
# Session 12, call 3 (main after the merge of s12-combo; the K-split rule from the A/B: int8 from
# 96 K blocks, none at M <= 64; the bench model's fused RMSNorm and once-per-step additive mask):
# fp8 / int8 tests by TESTS, the rule's cells, the model in graph mode with profiles.
#   PART=70 LOWBIT_KERNELS=quant,fp8,int8,w4 TESTS="tests/test_cuda_fp8.py tests/test_cuda_int8.py" \
#     EXTRA='bash tools/session_queue.sh' BENCH=0 bash tools/device_run.sh
if [ "$PART" = 70 ]; then
TAIL=24 step 60 rule python3 bench/gemm.py --formats w8a8_int8,fp8_block,w8a8_fp8 --ms 64,128,256 \
  --shapes 8192x8192,4096x14336 --peers none --no-ceilings --budget-s 30 --out "$OUT/rule.json"
TAIL=60 step 200 model_graph python3 bench/model.py --fused --formats a16w4,w8a8_fp8 --batch 1,16 --prefill 2048 \
  --profile --out "$OUT/model_graph.json"
fi
# Call 4 on the warm machine: the decode step with every block compiled (regional), profiled;
# the int8 split shape under the sanitizers.
#   PART=71 OUT=$OUT bash tools/session_queue.sh
if [ "$PART" = 71 ]; then
TAIL=60 step 330 model_regional python3 bench/model.py --fused --decode-mode regional --formats a16w4,w8a8_fp8 \
  --batch 1,16 --prefill "" --profile --out "$OUT/model_regional.json"
TAIL=4 step 100 memcheck compute-sanitizer --tool memcheck --error-exitcode 9 python3 tests/sanitize_fp8.py
TAIL=4 step 120 racecheck compute-sanitizer --tool racecheck --error-exitcode 9 python3 tests/sanitize_fp8.py
fi
# Session 12, call 5 (42b4e96+): the K-split rule's M <= 64 line, and the model with every block
# compiled (regional) in four formats, prefill included. No tests (plan selection only: every
# path it picks was tested in s12-call3).
#   PART=72 LOWBIT_KERNELS=quant,fp8,int8,w4 EXTRA='bash tools/session_queue.sh' BENCH=0 bash tools/device_run.sh nothing
if [ "$PART" = 72 ]; then
TAIL=20 step 45 rule2 python3 bench/gemm.py --formats fp8_block,w8a8_fp8,w8a8_int8 --ms 64,128 \
  --shapes 8192x8192,4096x14336 --peers none --no-ceilings --budget-s 20 --out "$OUT/rule2.json"
TAIL=60 step 230 model_regional python3 bench/model.py --fused --decode-mode regional \
  --formats a16w4,w8a8_int8,w8a8_fp8,fp8_block --batch 1,16 --prefill 2048 --profile --out "$OUT/model_regional.json"
fi
# Session 12, call 6: a16w4 / mxfp4 v8 with x's whole slice in shared memory (kXSlice; default at
# M = 1, LOWBIT_A16W4_STREAM_X=slice forces it at 1..8 tokens where it fits): the w4 tests, the
# forced variant, the A/B (off = x by global loads as before, on = default, slice = forced),
# racecheck with it forced, the model's decode step at B = 1.
#   PART=73 LOWBIT_KERNELS=quant,w4 TESTS="tests/test_cuda_a16w4.py tests/test_cuda_mxfp4.py" \
#     EXTRA='bash tools/session_queue.sh' BENCH=0 bash tools/device_run.sh
if [ "$PART" = 73 ]; then
TAIL=30 step_ab 45 xs "off:LOWBIT_A16W4_STREAM_X=off" "on:" "slice:LOWBIT_A16W4_STREAM_X=slice" -- \
  --formats a16w4,mxfp4 --ms 1,2,4,8 --shapes 8192x8192,28672x8192,4096x14336,14336x4096 --peers none \
  --no-ceilings --budget-s 35
TAIL=8 step 120 variants python3 -m pytest -q -m cuda -p no:cacheprovider tests/test_cuda_variants.py -k "xslice"
TAIL=4 step 150 racecheck env LOWBIT_A16W4_STREAM_X=slice compute-sanitizer --tool racecheck --error-exitcode 9 \
  python3 tests/sanitize_w4_int8.py
TAIL=20 step 100 model python3 bench/model.py --fused --decode-mode regional --formats a16w4 --batch 1 --prefill "" \
  --out "$OUT/model.json"
fi
# Session 13, call 1: where GEMV v8 waits at M = 1 (8192^2, g128): an ncu full-set profile at the
# card's own clocks (details + per-SASS-line source page with stall reasons), cuBLAS bf16's GEMV
# beside it for the DRAM picture, and the warps-per-SM sensitivity (LOWBIT_A16W4_STREAM_WARPS).
#   PART=74 LOWBIT_KERNELS=quant,w4 EXTRA='bash tools/session_queue.sh' BENCH=0 bash tools/device_run.sh nothing
if [ "$PART" = 74 ]; then
for v in "v8:a16w4" "cublas:bf16"; do
  IFS=: read -r name fmt <<< "$v"
  ncu -k regex:"gemv|gemm|Kernel" -s 2 -c 1 --set full --import-source yes --clock-control none \
    -o "$OUT/prof_$name" python3 bench/profile_a16w4.py --format "$fmt" 1 1 1 > "$OUT/q_prof_$name.log" 2>&1
  ncu -i "$OUT/prof_$name.ncu-rep" --page details > "$OUT/prof_${name}_details.txt" 2>&1
  ncu -i "$OUT/prof_$name.ncu-rep" --page source --csv --print-source sass > "$OUT/prof_${name}_source.csv" 2>&1
  ncu -i "$OUT/prof_$name.ncu-rep" --page raw --csv > "$OUT/prof_${name}_raw.csv" 2>&1
  rm -f "$OUT/prof_$name.ncu-rep"
  echo "== prof $name"; grep -E "^ +(Duration|DRAM Throughput|Achieved Occupancy|Registers Per|Warp Cycles Per Issued|Issue Slots Busy|L2 Hit|L1/TEX Hit)" \
    "$OUT/prof_${name}_details.txt" | head -12
done
TAIL=30 step_ab 45 warps "w16:" "w12:LOWBIT_A16W4_STREAM_WARPS=12" "w8:LOWBIT_A16W4_STREAM_WARPS=8" -- \
  --formats a16w4 --ms 1,8 --shapes 8192x8192,28672x8192,4096x14336,14336x4096 --peers none --no-ceilings --budget-s 35
fi
# Session 13, call 2 (e496a7a+): GEMV v8's prefetch 2 (default at 1..8 tokens): the a16w4 / mxfp4
# tests with it, the prefetch variants (1 = session 7's, 0 = none), the A/B at 1..8 tokens on the
# four shapes, and the ncu profile of the new default at M = 1 (where the stalls went).
#   PART=75 LOWBIT_KERNELS=quant,fp8,int8,w4 TESTS="tests/test_cuda_a16w4.py tests/test_cuda_mxfp4.py" \
#     EXTRA='bash tools/session_queue.sh' BENCH=0 bash tools/device_run.sh
if [ "$PART" = 75 ]; then
TAIL=30 step_ab 45 pf "pf2:" "pf1:LOWBIT_A16W4_STREAM_PREFETCH=1" "pf0:LOWBIT_A16W4_STREAM_PREFETCH=0" -- \
  --formats a16w4,mxfp4 --ms 1,2,4,8 --shapes 8192x8192,28672x8192,4096x14336,14336x4096 --peers none \
  --no-ceilings --budget-s 35
TAIL=8 step 150 variants python3 -m pytest -q -m cuda -p no:cacheprovider tests/test_cuda_variants.py -k "prefetch"
TAIL=14 step 200 prof_pf2 env VARIANTS="pf2:a16w4:" CLOCKS=none OUT="$OUT" bash tools/gemv_profile.sh
fi
# Session 13, call 3 (warm, after call 2): the compile-path activation quantizers (act_quant,
# 7c56f01): their CUDA tests, and the model (every block compiled, decode in one graph) with them
# (default) and without (LOWBIT_COMPILE_ACT_QUANT=0), plus a16w4's decode step with prefetch 2.
#   PART=76 OUT=$OUT bash tools/session_queue.sh
if [ "$PART" = 76 ]; then
TAIL=8 step 120 act_quant python3 -m pytest -q -m cuda -p no:cacheprovider tests/test_cuda_act_quant.py
TAIL=60 step 230 model python3 bench/model.py --fused --decode-mode regional --formats a16w4,w8a8_fp8,w8a8_int8 \
  --batch 1 --prefill 2048 --profile --out "$OUT/model.json"
TAIL=40 step 150 model_noaq env LOWBIT_COMPILE_ACT_QUANT=0 python3 bench/model.py --fused --decode-mode regional \
  --formats w8a8_fp8,w8a8_int8 --batch 1 --prefill 2048 --profile --out "$OUT/model_noaq.json"
fi
# Session 13, call 4: v8 requests the first block's x and scales before its ring (default) or after
# (LOWBIT_A16W4_STREAM_FIRST=late, as in call 2), both with prefetch 2, and prefetch 1 with the
# early first loads; the ncu profile of the new default; the model's a16w4 decode step.
#   PART=77 LOWBIT_KERNELS=quant,w4 TESTS="tests/test_cuda_a16w4.py tests/test_cuda_mxfp4.py" \
#     EXTRA='bash tools/session_queue.sh' BENCH=0 bash tools/device_run.sh
if [ "$PART" = 77 ]; then
TAIL=30 step_ab 45 first "early:" "late:LOWBIT_A16W4_STREAM_FIRST=late" "pf1:LOWBIT_A16W4_STREAM_PREFETCH=1" -- \
  --formats a16w4,mxfp4 --ms 1,2,4,8 --shapes 8192x8192,28672x8192,4096x14336,14336x4096 --peers none \
  --no-ceilings --budget-s 35
TAIL=14 step 200 prof_early env VARIANTS="early:a16w4:" CLOCKS=none OUT="$OUT" bash tools/gemv_profile.sh
TAIL=20 step 120 model python3 bench/model.py --fused --decode-mode regional --formats a16w4 --batch 1 --prefill "" \
  --out "$OUT/model.json"
fi
# Session 13, call 5: prefetch 2 removed; v8's first loads before its ring, with (default) and
# without (early) an L2 prefetch of blocks 1..3's x, and after it (late, as before session 13):
# tests, variants, A/B at 1..8 tokens, the model's a16w4 decode step (B = 1, 16).
#   PART=78 LOWBIT_KERNELS=quant,w4 TESTS="tests/test_cuda_a16w4.py tests/test_cuda_mxfp4.py" \
#     EXTRA='bash tools/session_queue.sh' BENCH=0 bash tools/device_run.sh
if [ "$PART" = 78 ]; then
TAIL=30 step_ab 45 first "prefetch:" "early:LOWBIT_A16W4_STREAM_FIRST=early" "late:LOWBIT_A16W4_STREAM_FIRST=late" -- \
  --formats a16w4,mxfp4 --ms 1,2,4,8 --shapes 8192x8192,28672x8192,4096x14336,14336x4096 --peers none \
  --no-ceilings --budget-s 35
TAIL=8 step 150 variants python3 -m pytest -q -m cuda -p no:cacheprovider tests/test_cuda_variants.py -k "first or prefetch"
TAIL=20 step 150 model python3 bench/model.py --fused --decode-mode regional --formats a16w4 --batch 1,16 --prefill "" \
  --out "$OUT/model.json"
fi
# Session 13, call 6 (warm, after call 5): the 16-bit-activation table with today's defaults.
#   PART=79 OUT=$OUT bash tools/session_queue.sh
if [ "$PART" = 79 ]; then
TAIL=50 step 150 table16 python3 bench/gemm.py --formats a16w4,mxfp4,a16w8 --ms 1,16,64,256,1024 \
  --shapes 8192x8192,28672x8192,4096x14336,14336x4096 --peers none --no-ceilings --budget-s 130 --out "$OUT/table16.json"
fi
# Session 13's queue for session 14 (written after the last device call, compiled here, not run):
# v8's first loads before the ring at 9..32 tokens too (LOWBIT_A16W4_STREAM_FIRST=early; default
# there: late); v8 requesting 1 / 2 / 4 ring slots before block 0 and the rest after it
# (LOWBIT_A16W4_STREAM_FIRST_SLOTS; default 8); the variants, the A/Bs, racecheck, and the model's
# decode step on the release default (B = 1, 16).
#   PART=80 LOWBIT_KERNELS=quant,w4 TESTS="tests/test_cuda_a16w4.py tests/test_cuda_mxfp4.py" \
#     EXTRA='bash tools/session_queue.sh' BENCH=0 bash tools/device_run.sh
if [ "$PART" = 80 ]; then
TAIL=8 step 200 variants python3 -m pytest -q -m cuda -p no:cacheprovider tests/test_cuda_variants.py -k "first"
TAIL=30 step_ab 45 first9 "default:" "early:LOWBIT_A16W4_STREAM_FIRST=early" -- \
  --formats a16w4,mxfp4 --ms 1,12,16,24,32 --shapes 8192x8192,28672x8192,4096x14336,14336x4096 --peers none \
  --no-ceilings --budget-s 35
TAIL=30 step_ab 45 slots "s8:" "s1:LOWBIT_A16W4_STREAM_FIRST_SLOTS=1" "s2:LOWBIT_A16W4_STREAM_FIRST_SLOTS=2" \
  "s4:LOWBIT_A16W4_STREAM_FIRST_SLOTS=4" -- --formats a16w4,mxfp4 --ms 1,8 \
  --shapes 8192x8192,28672x8192,4096x14336,14336x4096 --peers none --no-ceilings --budget-s 35
fi
# ... and on the warm machine: PART=81 OUT=$OUT bash tools/session_queue.sh
if [ "$PART" = 81 ]; then
TAIL=4 step 150 racecheck env LOWBIT_A16W4_STREAM_FIRST_SLOTS=1 compute-sanitizer --tool racecheck --error-exitcode 9 \
  python3 tests/sanitize_w4_int8.py
TAIL=20 step 150 model python3 bench/model.py --fused --decode-mode regional --formats a16w4 --batch 1,16 --prefill "" \
  --out "$OUT/model.json"
fi
# Session 14: the first profile of the mixed-input wgmma at large M (never run before; README:
# a16w4 g128 0.93x at M = 256, 0.73x at 1024 against the 1.1x / 0.9x targets): ncu full set with
# the source page, int4 g128 folded at M = 1024 and 256, cuBLAS bf16 at M = 1024, 8192^2.
#   PART=82 OUT=$OUT bash tools/session_queue.sh   (after device_run.sh built quant,w4)
if [ "$PART" = 82 ]; then
TAIL=40 step 300 wgprof env SOURCE=1 \
  VARIANTS="int4_m1024:a16w4:1024:wgmma int4_m256:a16w4:256:wgmma bf16_m1024:bf16:1024:nvjet|gemm|xmma|cutlass" \
  OUT="$OUT" bash tools/wgmma_profile.sh
fi
# Session 14, call 4: x permuted before the mixed-input wgmma at 128 tokens per CTA
# (LOWBIT_W4_WGMMA_XPRE=1; no quad shuffles in the operand build): its variant tests, the A/B with
# the wgmma forced at every M > 32 (so mxfp4 and M = 2048 run it too), and its profile at M = 1024.
#   PART=83 LOWBIT_KERNELS=quant,w4 TESTS="tests/test_cuda_a16w4.py tests/test_cuda_mxfp4.py" \
#     EXTRA='bash tools/session_queue.sh' BENCH=0 bash tools/device_run.sh
if [ "$PART" = 83 ]; then
TAIL=8 step 200 variants python3 -m pytest -q -m cuda -p no:cacheprovider tests/test_cuda_variants.py -k "wgmma and pre"
TAIL=40 step_ab 100 xpre "wg:LOWBIT_A16W4_LARGE=wgmma" "xpre:LOWBIT_A16W4_LARGE=wgmma LOWBIT_W4_WGMMA_XPRE=1" -- \
  --formats a16w4,mxfp4 --ms 128,256,512,1024,2048 --shapes 8192x8192,28672x8192,4096x14336,14336x4096 --peers none \
  --no-ceilings --budget-s 80
TAIL=20 step 150 wgprof_xpre env SOURCE=1 LOWBIT_W4_WGMMA_XPRE=1 VARIANTS="xpre_m1024:a16w4:1024:wgmma" OUT="$OUT" \
  bash tools/wgmma_profile.sh
fi
# Session 14, call 5 (the session's last): the operand build reading the quad's words from shared
# memory in 128-row CTAs (the new default; 256-row CTAs keep the shuffles), against x permuted
# before the kernel (LOWBIT_W4_WGMMA_XPRE=1), the wgmma forced at every M > 32.
#   PART=84 LOWBIT_KERNELS=quant,w4 TESTS="tests/test_cuda_a16w4.py tests/test_cuda_mxfp4.py tests/test_cuda_a8w4_mx.py" \
#     EXTRA='bash tools/session_queue.sh' BENCH=0 bash tools/device_run.sh
if [ "$PART" = 84 ]; then
TAIL=40 step_ab 80 lds "base:LOWBIT_A16W4_LARGE=wgmma" "xpre:LOWBIT_A16W4_LARGE=wgmma LOWBIT_W4_WGMMA_XPRE=1" -- \
  --formats a16w4,mxfp4 --ms 128,256,512,1024 --shapes 8192x8192,28672x8192,4096x14336,14336x4096 --peers none \
  --no-ceilings --budget-s 50
fi
# Session 14, call 6: the release default (x permuted before the kernel in 256-row CTAs where
# N >= K): the x-pre variants (128- and 256-row CTAs) and the a16w4 / mxfp4 rows at M = 512 / 1024.
#   PART=85 LOWBIT_KERNELS=quant,w4 TESTS="tests/test_cuda_a16w4.py tests/test_cuda_mxfp4.py tests/test_cuda_a8w4_mx.py" \
#     EXTRA='bash tools/session_queue.sh' BENCH=0 bash tools/device_run.sh
if [ "$PART" = 85 ]; then
TAIL=8 step 120 variants python3 -m pytest -q -m cuda -p no:cacheprovider tests/test_cuda_variants.py -k "wgmma and pre"
TAIL=30 step 60 final python3 bench/gemm.py --formats a16w4,mxfp4 --ms 512,1024 \
  --shapes 8192x8192,28672x8192,4096x14336,14336x4096 --peers none --no-ceilings --budget-s 40 --out "$OUT/final.json"
fi
# Session 14's queue for session 15 (written after the last device call, compiled here, not run):
# racecheck on session 14's defaults (the wgmma's words from shared memory in 128-row CTAs: M = 100
# in the script), the mixed-input wgmma's per-block drain one block later (LOWBIT_W4_WGMMA_LAG=1):
# variants, racecheck on it, the A/B at 128..1024 tokens (wgmma forced, so mxfp4 at 1024 too).
#   PART=86 LOWBIT_KERNELS=quant,w4 TESTS="tests/test_cuda_a16w4.py tests/test_cuda_mxfp4.py tests/test_cuda_a8w4_mx.py" \
#     EXTRA='bash tools/session_queue.sh' BENCH=0 bash tools/device_run.sh
# (LOWBIT_W4_WGMMA_LAG was removed after this part ran, s15-call1: -1..+20%.)
if [ "$PART" = 86 ]; then
TAIL=4 step 150 racecheck_default compute-sanitizer --tool racecheck --error-exitcode 9 python3 tests/sanitize_w4_int8.py
TAIL=8 step 150 variants python3 -m pytest -q -m cuda -p no:cacheprovider tests/test_cuda_variants.py -k "lag"
TAIL=4 step 150 racecheck env LOWBIT_W4_WGMMA_LAG=1 compute-sanitizer --tool racecheck --error-exitcode 9 \
  python3 tests/sanitize_w4_int8.py
TAIL=40 step_ab 80 lag "base:LOWBIT_A16W4_LARGE=wgmma" "lag:LOWBIT_A16W4_LARGE=wgmma LOWBIT_W4_WGMMA_LAG=1" -- \
  --formats a16w4,mxfp4 --ms 128,256,512,1024 --shapes 8192x8192,28672x8192,4096x14336,14336x4096 --peers none \
  --no-ceilings --budget-s 50
fi
# Session 14's second item for session 15 (written without a GPU): the fused activation
# quantizers (ops.silu_mul_quantize_* and ops.rms_norm_quantize_*, per token, int8 / fp8): their
# CUDA tests (bit for bit against the CPU reference), then the model's 2048-token prefill and
# B = 1 decode without them, with the SiLU one (LOWBIT_SILU_MUL_QUANT=1), and with both
# (+ LOWBIT_RMS_NORM_QUANT=1), w8a8_fp8 / w8a8_int8, every block compiled.
#   PART=87 LOWBIT_KERNELS=quant,fp8,int8,w4 TESTS="tests/test_fused_act_quant.py tests/test_cuda_ops.py" \
#     EXTRA='bash tools/session_queue.sh' BENCH=0 bash tools/device_run.sh
if [ "$PART" = 87 ]; then
TAIL=40 step 200 model_silu python3 bench/model.py --fused --decode-mode regional --formats w8a8_fp8,w8a8_int8 \
  --batch 1 --prefill 2048 --profile --out "$OUT/model_silu_off.json"
TAIL=40 step 200 model_silu_on env LOWBIT_SILU_MUL_QUANT=1 python3 bench/model.py --fused --decode-mode regional \
  --formats w8a8_fp8,w8a8_int8 --batch 1 --prefill 2048 --profile --out "$OUT/model_silu_on.json"
TAIL=40 step 200 model_both_on env LOWBIT_SILU_MUL_QUANT=1 LOWBIT_RMS_NORM_QUANT=1 python3 bench/model.py --fused \
  --decode-mode regional --formats w8a8_fp8,w8a8_int8 --batch 1 --prefill 2048 --profile --out "$OUT/model_both_on.json"
fi
# Session 15, call 3: the per-token row kernel rewritten after s15-call2 (the fused SiLU quantizer
# ran at 1/3 of the bandwidth, computing SiLU twice with libm's ldexpf, and one CTA per decode row
# took 18 us): each source value computed once and cached in shared memory, a cluster of up to 8
# CTAs per row where rows are few, exp_f32's 2^k by two exact factors. Its tests ran first
# (TESTS); then the knob variants, the sanitizers, the model off / SiLU / both (part 87's three runs),
# and the quantizers' bench with the default, one CTA a row, and no row cache. $OUT/0_all.tgz is
# re-made after every step (only 8 files come back from a call, and a timeout skips the end).
# Part 89 (warm, the same build): the rest.
#   PART=88 LOWBIT_KERNELS=quant,fp8,int8 TESTS="tests/test_fused_act_quant.py tests/test_cuda_ops.py" \
#     EXTRA='bash tools/session_queue.sh' BENCH=0 bash tools/device_run.sh
snap() { tar czf /tmp/snap.tgz -C "$OUT" --exclude=0_all.tgz . 2>/dev/null && mv /tmp/snap.tgz "$OUT/0_all.tgz"; }
if [ "$PART" = 88 ]; then
TAIL=30 step 200 model_off python3 bench/model.py --fused --decode-mode regional --formats w8a8_fp8,w8a8_int8 \
  --batch 1 --prefill 2048 --profile --out "$OUT/model_off.json"; snap
TAIL=30 step 200 model_silu env LOWBIT_SILU_MUL_QUANT=1 python3 bench/model.py --fused --decode-mode regional \
  --formats w8a8_fp8,w8a8_int8 --batch 1 --prefill 2048 --profile --out "$OUT/model_silu.json"; snap
TAIL=30 step 200 model_both env LOWBIT_SILU_MUL_QUANT=1 LOWBIT_RMS_NORM_QUANT=1 python3 bench/model.py --fused \
  --decode-mode regional --formats w8a8_fp8,w8a8_int8 --batch 1 --prefill 2048 --profile --out "$OUT/model_both.json"; snap
TAIL=40 step 150 aq_default python3 bench/act_quant.py --out "$OUT/aq_default.json"; snap
fi
#   PART=89 OUT=$OUT bash tools/session_queue.sh   (warm, after part 88's call)
if [ "$PART" = 89 ]; then
TAIL=40 step 120 aq_one_cta env LOWBIT_ROW_QUANT_CTAS=1 python3 bench/act_quant.py --ms 1,16,128 --out "$OUT/aq_one_cta.json"; snap
TAIL=4 step 120 memcheck compute-sanitizer --tool memcheck --error-exitcode 9 python3 tests/sanitize_act_quant.py; snap
TAIL=4 step 120 racecheck compute-sanitizer --tool racecheck --error-exitcode 9 python3 tests/sanitize_act_quant.py; snap
TAIL=8 step 150 variants python3 -m pytest -q -m cuda -p no:cacheprovider tests/test_cuda_variants.py -k "row and quant"; snap
TAIL=40 step 100 aq_no_cache env LOWBIT_ROW_QUANT_CACHE=0 python3 bench/act_quant.py --ms 16,2048 --out "$OUT/aq_no_cache.json"; snap
fi
# Session 15, call 5: wide CTAs for the mixed-input wgmma (LOWBIT_W4_WGMMA_WIDE=1: 128 rows x 256
# tokens, m64n256k16, in place of 256-row CTAs of 128 tokens: half the operand build per flop;
# compiled here: 168 registers, no local memory, 8 HGMMA.64x256x16 a block, loop ~243
# instructions vs 378 for the 256-row x-pre kernel). Its variant tests, then the A/B with the wgmma
# forced at every M > 32 (so M = 2048 runs it too).
# (the session's last 470 device seconds: the default tests are skipped by a -k that selects none)
#   PART=90 LOWBIT_KERNELS=quant,w4 TESTS=tests/test_cuda_a16w4.py EXTRA='bash tools/session_queue.sh' BENCH=0 \
#     bash tools/device_run.sh no_such_test
if [ "$PART" = 90 ]; then
TAIL=8 step 70 variants python3 -m pytest -q -m cuda -p no:cacheprovider tests/test_cuda_variants.py -k "wide"; snap
TAIL=40 step_ab 60 wide "base:LOWBIT_A16W4_LARGE=wgmma" "wide:LOWBIT_A16W4_LARGE=wgmma LOWBIT_W4_WGMMA_WIDE=1" -- \
  --formats a16w4,mxfp4 --ms 512,1024,2048 --shapes 8192x8192,28672x8192,4096x14336,14336x4096 --peers none \
  --no-ceilings --budget-s 35; snap
fi
# Session 15's queue for session 16 (written after the last device call; compiled here, not run):
# the wide CTAs, now the default where the rule picks 256-row CTAs at 128 tokens (s15-call5), under
# racecheck / memcheck (ROWS=256 makes sanitize_w4_int8.py's M = 100 x N = 256 case run them; force:
# every group size), their variant tests (not the fp8 / int8 "wide" ones), then the candidate
# LOWBIT_W4_WGMMA_WIDE=all (wide also where halving 128-row CTAs cuts the waves by > 1.6x, and int4
# g32 / g64, and K split where 128-row CTAs fill at most a wave) against the default, and the wgmma
# forced at 4096 against the default's dequantize.
#   PART=91 LOWBIT_KERNELS=quant,w4 TESTS="tests/test_cuda_a16w4.py tests/test_cuda_mxfp4.py tests/test_cuda_a8w4_mx.py" \
#     EXTRA='bash tools/session_queue.sh' BENCH=0 bash tools/device_run.sh
if [ "$PART" = 91 ]; then
TAIL=4 step 150 racecheck_wide env LOWBIT_W4_WGMMA_ROWS=256 compute-sanitizer --tool racecheck --error-exitcode 9 \
  python3 tests/sanitize_w4_int8.py; snap
TAIL=4 step 150 racecheck_force env LOWBIT_W4_WGMMA_WIDE=force compute-sanitizer --tool racecheck --error-exitcode 9 \
  python3 tests/sanitize_w4_int8.py; snap
TAIL=4 step 150 memcheck_force env LOWBIT_W4_WGMMA_WIDE=force compute-sanitizer --tool memcheck --error-exitcode 9 \
  python3 tests/sanitize_w4_int8.py; snap
TAIL=8 step 200 variants python3 -m pytest -q -m cuda -p no:cacheprovider tests/test_cuda_variants.py -k "w4 and wide"; snap
fi
# Then, warm after part 91 (session 16 split the queued part in two to fit the 10-minute calls):
# the candidate LOWBIT_W4_WGMMA_WIDE=all against the default, and the wgmma forced at 4096
# against the default's dequantize.
#   PART=92 OUT=$OUT bash tools/session_queue.sh
if [ "$PART" = 92 ]; then
TAIL=40 step_ab 80 wall "dflt:" "all:LOWBIT_W4_WGMMA_WIDE=all" -- --formats a16w4,mxfp4 --a16w4-groups=32,128 \
  --ms 256,512,1024,2048 --shapes 8192x8192,28672x8192,4096x14336,14336x4096 --peers none --no-ceilings --budget-s 60; snap
TAIL=40 step_ab 80 m4096 "dflt:" "wgmma:LOWBIT_A16W4_LARGE=wgmma" -- --formats a16w4,mxfp4 --ms 4096 \
  --shapes 8192x8192,28672x8192,4096x14336,14336x4096 --peers none --no-ceilings --budget-s 40; snap
fi
# Optional, warm after 92: the wide kernel's first ncu profile at M = 1024 (8192^2, int4 g128: the
# default there) next to the 128-row kernel at M = 256, with the per-instruction stall samples.
#   PART=93 OUT=$OUT bash tools/session_queue.sh
if [ "$PART" = 93 ]; then
TAIL=40 step 300 wgprof_wide env SOURCE=1 VARIANTS="wide_m1024:a16w4:1024:wgmma int4_m256:a16w4:256:wgmma" \
  OUT="$OUT" bash tools/wgmma_profile.sh; snap
fi
# Session 16, written after s16-call3 (compiled here): the fused residual add + RMSNorm quantizer
# (ops.add_rms_norm_quantize_*; bench/llama.py LOWBIT_ADD_RMS_NORM_QUANT=1), the consumer-warpgroup
# skew of the mixed-input wgmma (LOWBIT_W4_WGMMA_SKEW), and the tests of the new wide default.
#   PART=94 LOWBIT_KERNELS=quant,w4,fp8,int8 TESTS="tests/test_cuda_a16w4.py tests/test_cuda_mxfp4.py \
#     tests/test_cuda_a8w4_mx.py tests/test_fused_act_quant.py" EXTRA='bash tools/session_queue.sh' BENCH=0 \
#     bash tools/device_run.sh
if [ "$PART" = 94 ]; then
TAIL=8 step 150 variants python3 -m pytest -q -m cuda -p no:cacheprovider tests/test_cuda_variants.py -k "skew2"; snap
TAIL=40 step_ab 60 skew "dflt:" "s2:LOWBIT_W4_WGMMA_SKEW=2" -- --formats a16w4,mxfp4 \
  --ms 128,256,512,1024,2048 --shapes 8192x8192,28672x8192,4096x14336,14336x4096 --peers none --no-ceilings \
  --budget-s 40; snap
fi
# Then warm after part 94: the quantizer bench (add + RMSNorm fused against add, then the RMSNorm
# quantizer) and the model with the adds in the norms against without.
#   PART=95 OUT=$OUT bash tools/session_queue.sh
if [ "$PART" = 95 ]; then
TAIL=4 step 120 aq_memcheck compute-sanitizer --tool memcheck --error-exitcode 9 python3 tests/sanitize_act_quant.py; snap
TAIL=4 step 120 aq_racecheck compute-sanitizer --tool racecheck --error-exitcode 9 python3 tests/sanitize_act_quant.py; snap
TAIL=40 step 150 aq python3 bench/act_quant.py --ms 1,16,128,2048 --out "$OUT/aq.json"; snap
TAIL=30 step 200 model_base python3 bench/model.py --fused --decode-mode regional --formats w8a8_fp8,w8a8_int8 \
  --batch 1 --prefill 2048 --profile --out "$OUT/model_base.json"; snap
TAIL=30 step 200 model_add env LOWBIT_ADD_RMS_NORM_QUANT=1 python3 bench/model.py --fused --decode-mode regional \
  --formats w8a8_fp8,w8a8_int8 --batch 1 --prefill 2048 --profile --out "$OUT/model_add.json"; snap
fi
# Session 16's last call (after s16-call5): wide CTAs only above 128 tokens (s16-call4 found them at
# M = 128 on 28672x8192: half of a 256-token CTA padding, 0.64x), the M = 64..256 table on the
# four shapes, and the model with and without the adds in the norms once more (in the other order).
#   PART=96 LOWBIT_KERNELS=quant,w4,fp8,int8 TESTS="tests/test_cuda_a16w4.py tests/test_cuda_mxfp4.py \
#     tests/test_cuda_a8w4_mx.py tests/test_nn.py" EXTRA='bash tools/session_queue.sh' BENCH=0 bash tools/device_run.sh
if [ "$PART" = 96 ]; then
TAIL=40 step 90 small python3 bench/gemm.py --formats a16w4,mxfp4 --ms 64,96,128,160,256 \
  --shapes 8192x8192,28672x8192,4096x14336,14336x4096 --peers none --no-ceilings --budget-s 40 --out "$OUT/small.json"; snap
TAIL=30 step 120 model_add python3 bench/model.py --fused --decode-mode regional --formats w8a8_fp8,w8a8_int8 \
  --batch 1 --prefill 2048 --profile --out "$OUT/model_add.json"; snap
TAIL=30 step 120 model_base env LOWBIT_ADD_RMS_NORM_QUANT=0 python3 bench/model.py --fused --decode-mode regional \
  --formats w8a8_fp8,w8a8_int8 --batch 1 --prefill 2048 --profile --out "$OUT/model_base.json"; snap
fi
# Session 16's queue for session 17 (written after the last device call): why wide CTAs on an
# unsplit grid run M = 160 slower than M = 256 (s16-call6: 28672x8192 231.4 vs 176.6 us). The
# M = 129..256 column with wide CTAs and without (256-row CTAs of 128 tokens), then ncu on the
# wide kernel at M = 160 and 256 on 28672x8192 (a16w4 g128).
#   PART=97 LOWBIT_KERNELS=quant,w4 TESTS=tests/test_cuda_a16w4.py EXTRA='bash tools/session_queue.sh' BENCH=0 \
#     bash tools/device_run.sh no_such_test
if [ "$PART" = 97 ]; then
TAIL=40 step_ab 60 m160 "dflt:" "nowide:LOWBIT_W4_WGMMA_WIDE=0" -- --formats a16w4,mxfp4 --ms 136,160,192,224,256 \
  --shapes 8192x8192,28672x8192,4096x14336,14336x4096 --peers none --no-ceilings --budget-s 40; snap
TAIL=40 step 300 wgprof_m160 env PROFILE_SHAPE=28672x8192 VARIANTS="wide_m160:a16w4:160:wgmma wide_m256:a16w4:256:wgmma" \
  OUT="$OUT" bash tools/wgmma_profile.sh; snap
fi
# Branch s16-pipeline (not on main: the restructured consumer loop has not run on a GPU): the
# pipelined consumer loop (LOWBIT_W4_WGMMA_PIPELINE=1; the unpipelined loop is the same code
# reorganized, its SASS within -4..+3% instructions of main's). The default tests first (the
# reorganized default loop), the pipelined variants, racecheck on them, then the A/B.
#   PART=98 LOWBIT_KERNELS=quant,w4 TESTS="tests/test_cuda_a16w4.py tests/test_cuda_mxfp4.py tests/test_cuda_a8w4_mx.py" \
#     EXTRA='bash tools/session_queue.sh' BENCH=0 bash tools/device_run.sh
if [ "$PART" = 98 ]; then
TAIL=8 step 200 variants python3 -m pytest -q -m cuda -p no:cacheprovider tests/test_cuda_variants.py -k "pipeline"; snap
TAIL=4 step 150 racecheck_pipe env LOWBIT_W4_WGMMA_PIPELINE=1 LOWBIT_W4_WGMMA_WIDE=force compute-sanitizer --tool racecheck \
  --error-exitcode 9 python3 tests/sanitize_w4_int8.py; snap
TAIL=40 step_ab 60 pipe "dflt:" "pipe:LOWBIT_W4_WGMMA_PIPELINE=1" -- --formats a16w4,mxfp4 --ms 128,256,512,1024,2048 \
  --shapes 8192x8192,28672x8192,4096x14336,14336x4096 --peers none --no-ceilings --budget-s 40; snap
fi
# Branch s16-silu (merged in session 17 after s17-call1): the fused SiLU quantizer's silu_f32 (the same
# bits as before for all 2^32 fp32 g, tools/check_silu_f32.cpp; its kernel 1432 -> 1128 SASS
# instructions). The CUDA bitwise tests, then the quantizer bench (compare with s16-call5's
# aq.json: SiLU fused 2048 rows 80.3 / 78.6 us fp8 / int8; the unfused column is the drift check).
#   PART=99 LOWBIT_KERNELS=quant TESTS=tests/test_fused_act_quant.py EXTRA='bash tools/session_queue.sh' BENCH=0 \
#     bash tools/device_run.sh
if [ "$PART" = 99 ]; then
TAIL=40 step 150 aq python3 bench/act_quant.py --ms 1,16,128,2048 --out "$OUT/aq.json"; snap
fi
# Session 17, branch s17-cand (main + s16-pipeline + s16-silu, none of the two run on a GPU yet):
# one cold build for both candidates. Call 1: the SiLU bench (part 99), the pipelined variants'
# tests and the pipeline A/B (part 98 less its racecheck). Call 2 (warm): the racecheck, part 97.
#   PART=100 LOWBIT_KERNELS=quant,w4 TESTS="tests/test_cuda_a16w4.py tests/test_cuda_mxfp4.py \
#     tests/test_cuda_a8w4_mx.py tests/test_fused_act_quant.py" EXTRA='bash tools/session_queue.sh' BENCH=0 \
#     bash tools/device_run.sh
if [ "$PART" = 100 ]; then
TAIL=40 step 120 aq python3 bench/act_quant.py --ms 1,16,128,2048 --out "$OUT/aq.json"; snap
TAIL=8 step 150 variants python3 -m pytest -q -m cuda -p no:cacheprovider tests/test_cuda_variants.py -k "pipeline"; snap
TAIL=40 step_ab 60 pipe "dflt:" "pipe:LOWBIT_W4_WGMMA_PIPELINE=1" -- --formats a16w4,mxfp4 --ms 128,256,512,1024,2048 \
  --shapes 8192x8192,28672x8192,4096x14336,14336x4096 --peers none --no-ceilings --budget-s 40; snap
fi
if [ "$PART" = 101 ]; then
TAIL=4 step 150 racecheck_pipe env LOWBIT_W4_WGMMA_PIPELINE=1 LOWBIT_W4_WGMMA_WIDE=force compute-sanitizer --tool racecheck \
  --error-exitcode 9 python3 tests/sanitize_w4_int8.py; snap
PART=97 bash tools/session_queue.sh
fi
# Session 17 call 3 (main, after the SiLU merge): x padded to whole token tiles (LOWBIT_W4_WGMMA_PAD_X=1)
# against the default at the M = 129..255 dip and a ragged large M; its tests; then the w8a8 prefills
# with the cheaper SiLU (compare with s16-call6 model_add.json).
#   PART=102 LOWBIT_KERNELS=quant,w4,fp8,int8 TESTS=tests/test_fused_act_quant.py EXTRA='bash tools/session_queue.sh' \
#     BENCH=0 bash tools/device_run.sh
if [ "$PART" = 102 ]; then
TAIL=4 step 120 pad_tests env LOWBIT_W4_WGMMA_PAD_X=1 python3 -m pytest -q -m cuda -p no:cacheprovider \
  tests/test_cuda_a16w4.py tests/test_cuda_mxfp4.py; snap
TAIL=40 step_ab 60 pad "dflt:" "pad:LOWBIT_W4_WGMMA_PAD_X=1" -- --formats a16w4,mxfp4 --ms 136,160,192,256,1000 \
  --shapes 8192x8192,28672x8192,4096x14336,14336x4096 --peers none --no-ceilings --budget-s 40; snap
TAIL=30 step 150 model_silu python3 bench/model.py --fused --decode-mode regional --formats w8a8_fp8,w8a8_int8 \
  --batch 1 --prefill 2048 --profile --out "$OUT/model_silu.json"; snap
fi
# Session 17 call 4: the padded-x rule as the default (one row of wide CTAs, unsplit, >= a wave) against
# LOWBIT_W4_WGMMA_PAD_X=0, the pad variants' tests, and a second sample of the w8a8 prefills.
#   PART=103 LOWBIT_KERNELS=quant,w4,fp8,int8 TESTS="tests/test_cuda_a16w4.py tests/test_cuda_mxfp4.py" \
#     EXTRA='bash tools/session_queue.sh' BENCH=0 bash tools/device_run.sh
if [ "$PART" = 103 ]; then
TAIL=8 step 150 variants python3 -m pytest -q -m cuda -p no:cacheprovider tests/test_cuda_variants.py -k "pad"; snap
TAIL=40 step_ab 60 padrule "dflt:" "off:LOWBIT_W4_WGMMA_PAD_X=0" -- --formats a16w4,mxfp4 --ms 136,160,192,256,1000 \
  --shapes 8192x8192,28672x8192,4096x14336,14336x4096 --peers none --no-ceilings --budget-s 40; snap
TAIL=30 step 150 model2 python3 bench/model.py --fused --decode-mode regional --formats w8a8_fp8,w8a8_int8 \
  --batch 1 --prefill 2048 --profile --out "$OUT/model2.json"; snap
fi
# Session 17 call 5: 64-token CTAs (LOWBIT_W4_WGMMA_TOKENS=64: three or four token tiles, no wide
# CTAs) against the default at M = 129..255, where a wide CTA's 256 tokens are up to half padding
# (8192^2 M = 136: 0.67x cuBLAS against 1.35x at M = 128). Their tests first.
#   PART=104 LOWBIT_KERNELS=quant,w4 TESTS=tests/test_cuda_a16w4.py EXTRA='bash tools/session_queue.sh' BENCH=0 \
#     bash tools/device_run.sh no_such_test
if [ "$PART" = 104 ]; then
TAIL=4 step 90 tok64_tests env LOWBIT_W4_WGMMA_TOKENS=64 python3 -m pytest -q -m cuda -p no:cacheprovider \
  tests/test_cuda_a16w4.py tests/test_cuda_mxfp4.py -k "large_m or matches_reference or padded"; snap
TAIL=40 step_ab 60 tok "dflt:" "tok64:LOWBIT_W4_WGMMA_TOKENS=64" -- --formats a16w4,mxfp4 --ms 136,160,192,224 \
  --shapes 8192x8192,28672x8192,4096x14336,14336x4096 --peers none --no-ceilings --budget-s 35; snap
fi
# Session 17's queue for session 18 (main code; runs on any build with the quant kernels, e.g. warm
# after part 105): where the two fused quantizers of the w8a8 prefill wait (s17: the SiLU one 65 us
# against a 44 us floor, add + RMSNorm 28 us against 17.5 at 2048 rows; issue 7's 1.5x is ~1-2 ms
# away). ncu --set full with the per-instruction source page, fp8, 2048 rows.
#   PART=106 OUT=$OUT bash tools/session_queue.sh
if [ "$PART" = 106 ]; then
for src in SiluMulRows AddRmsNormRows; do
  TAIL=2 step 150 "ncu_$src" ncu --kernel-name-base demangled -k "regex:quantize_rows_kernel<lowbit::quant::$src" \
    -c 1 --set full --import-source yes -o "$OUT/aq_$src" python3 bench/act_quant.py --ms 2048 --fmt fp8
  ncu -i "$OUT/aq_$src.ncu-rep" --page details > "$OUT/aq_${src}_details.txt" 2>&1
  ncu -i "$OUT/aq_$src.ncu-rep" --page source --csv --print-source sass > "$OUT/aq_${src}_source.csv" 2>&1 \
    && gzip -f "$OUT/aq_${src}_source.csv"
  rm -f "$OUT/aq_$src.ncu-rep"
  grep -E "^ +(Duration|DRAM Throughput|Memory Throughput|Achieved Occupancy|Registers Per Thread|Theoretical Occupancy)" \
    "$OUT/aq_${src}_details.txt" | head -8; snap
done
fi
# Session 18 call 3 (main): the per-token quantizers with each vector's loads one vector ahead
# (for_each_vector), whole-word row-cache loads / stores, the norm weight fetched ahead, and the
# SiLU's rint by the 1.5 * 2^23 add (s18-call2's ncu: SiLU issue-bound at 73% with 17-18% of the
# samples on the loads' first use; add + norm 49% issue, 43% of cycles with no eligible warp).
# Compare aq.json with s17-call1/aq.json and the model with s17-call4/model2.json; ncu as part 106.
#   PART=107 LOWBIT_KERNELS=quant,fp8,int8 TESTS="tests/test_fused_act_quant.py tests/test_cuda_act_quant.py" \
#     EXTRA='bash tools/session_queue.sh' BENCH=0 bash tools/device_run.sh
if [ "$PART" = 107 ]; then
TAIL=40 step 150 aq python3 bench/act_quant.py --ms 1,16,128,2048 --out "$OUT/aq.json"; snap
TAIL=4 step 100 aq_memcheck compute-sanitizer --tool memcheck --error-exitcode 9 python3 tests/sanitize_act_quant.py; snap
TAIL=4 step 100 aq_racecheck compute-sanitizer --tool racecheck --error-exitcode 9 python3 tests/sanitize_act_quant.py; snap
TAIL=30 step 150 model3 python3 bench/model.py --fused --decode-mode regional --formats w8a8_fp8,w8a8_int8 \
  --batch 1 --prefill 2048 --profile --out "$OUT/model3.json"; snap
PART=106 bash tools/session_queue.sh
fi
# Session 18 call 5 (main): a CTA takes several rows where they outnumber the CTAs that fit (plain and
# norm quantizers; LOWBIT_ROW_QUANT_PERSISTENT=0: one row each, the same kernels), the next row's first
# loads in flight during a row's reductions. A/B in the same call, sanitizers (new: CTAs of 2-3 rows),
# the model (compare s18-call3 model3.json), the row-quant variants last.
#   PART=108 LOWBIT_KERNELS=quant,fp8,int8 TESTS="tests/test_fused_act_quant.py tests/test_cuda_ops.py" \
#     EXTRA='bash tools/session_queue.sh' BENCH=0 bash tools/device_run.sh
if [ "$PART" = 108 ]; then
TAIL=20 step 60 aqab_dflt python3 bench/act_quant.py --ms 128,2048 --out "$OUT/aqab_dflt.json"; snap
TAIL=20 step 60 aqab_one env LOWBIT_ROW_QUANT_PERSISTENT=0 python3 bench/act_quant.py --ms 128,2048 \
  --out "$OUT/aqab_one.json"; snap
TAIL=4 step 90 aq_memcheck compute-sanitizer --tool memcheck --error-exitcode 9 python3 tests/sanitize_act_quant.py; snap
TAIL=4 step 90 aq_racecheck compute-sanitizer --tool racecheck --error-exitcode 9 python3 tests/sanitize_act_quant.py; snap
TAIL=30 step 150 model4 python3 bench/model.py --fused --decode-mode regional --formats w8a8_fp8,w8a8_int8 \
  --batch 1 --prefill 2048 --profile --out "$OUT/model4.json"; snap
TAIL=8 step 120 variants python3 -m pytest -q -m cuda -p no:cacheprovider tests/test_cuda_variants.py -k "row-quant"; snap
fi
# Branch s18-fold (written after the last device call of session 18, compiled here, not run): fp8
# chained within a fold of kFold K blocks, one promotion a fold (sm90_gemm.cuh: the old fold loop
# waited for all kFold stages first and drained the ring every fold), kFold = 8 added, and 128 x 192
# tiles in clusters of 2 for it (LOWBIT_FP8_BN=192 LOWBIT_FP8_FOLD_EVERY=4|8). Why: fold 4 kept
# the K = 16384 error at the promoted loop's (s3: 1.69e-3 vs 1.66e-3), the chained 128 x 256 loop
# with clusters ran 1450 TFLOP/s against the promoted halves' 1230, and 128 x 192 is the widest tile
# whose accumulator and fp32 sums fit (96 + 96 registers).
# First the probe (no extension build, ~15 s of nvcc): halves c1 (today's) against the folds.
#   git checkout s18-fold; PART=109 OUT=$OUT bash tools/session_queue.sh
if [ "$PART" = 109 ]; then
TAIL=40 step 300 probe env SETS="5 6" NCU="fp8_promote_256_halves_c1:full:8192:5 fp8_fold8_192_c2:full:8192:6" \
  OUT="$OUT" bash tools/gemm_probe.sh; snap
fi
# Then, if a fold wins in the probe: the library path (tests, variants, accuracy, A/B, the model).
#   PART=110 LOWBIT_KERNELS=quant,fp8 TESTS=tests/test_cuda_fp8.py EXTRA='bash tools/session_queue.sh' \
#     BENCH=0 bash tools/device_run.sh
if [ "$PART" = 110 ]; then
TAIL=8 step 150 variants python3 -m pytest -q -m cuda -p no:cacheprovider tests/test_cuda_variants.py -k "fold"; snap
TAIL=12 step 90 accuracy python3 bench/fp8_accuracy.py --out "$OUT/fp8_accuracy.json"; snap
TAIL=30 step_ab 60 fold "dflt:" "f8x192:LOWBIT_FP8_BN=192 LOWBIT_FP8_FOLD_EVERY=8" \
  "f4x192:LOWBIT_FP8_BN=192 LOWBIT_FP8_FOLD_EVERY=4" -- --formats w8a8_fp8 --ms 256,1024,2048,4096,8192 \
  --shapes 8192x8192,28672x8192,28672x4096,4096x14336 --peers torch_scaled_mm --no-ceilings --budget-s 40; snap
fi
# Session 19's queue for session 20 (written after its last device call; H200 now). Part 112: the
# final fp8 tile rule (cheapest_tile with the 192 tie-break from 1024 rows) in isolation against
# 192 forced and the halves forced, same call, and the prefill with its timeline (idle time before
# which kernels: bench/model.py timeline_gaps) under the rule and under the halves.
#   PART=112 LOWBIT_KERNELS=quant,fp8 TESTS=tests/test_cuda_fp8.py EXTRA='bash tools/session_queue.sh' \
#     BENCH=0 bash tools/device_run.sh
if [ "$PART" = 112 ]; then
TAIL=30 step_ab 80 rule "rule:" "f192:LOWBIT_FP8_BN=192" "halves:LOWBIT_FP8_BN=256" -- --formats w8a8_fp8 \
  --ms 512,1024,1536,2048,3072,4096,8192 --shapes 8192x8192,28672x8192,4096x14336,6144x4096,4096x4096,14336x4096,28672x4096 \
  --peers none --no-ceilings --budget-s 70; snap
TAIL=30 step 120 model_rule python3 bench/model.py --fused --decode-mode regional --formats w8a8_fp8 --batch 1 \
  --prefill 2048 --profile --out "$OUT/model_rule.json"; snap
TAIL=30 step 120 model_halves env LOWBIT_FP8_BN=256 python3 bench/model.py --fused --decode-mode regional \
  --formats w8a8_fp8 --batch 1 --prefill 2048 --profile --out "$OUT/model_halves.json"; snap
# The K split inside clusters at 1..16 tokens, not taken there since session 11 (H100: -2-4% on
# 8192^2, "64 CTAs keep 8 MB in flight"): the H200 streams 1.4x faster, so 64 CTAs on 132 SMs may
# now be short of bytes in flight (8192^2 M = 1 reads 0.79 of cuBLAS bf16's bandwidth, s19-call10).
TAIL=30 step_ab 60 ks "dflt:" "ks2:LOWBIT_SM90_KSPLIT=2" "ks4:LOWBIT_SM90_KSPLIT=4" -- --formats w8a8_fp8,fp8_block \
  --ms 1,4,16 --shapes 8192x8192,4096x14336,6144x4096,4096x4096,28672x4096 --peers none --no-ceilings --budget-s 45; snap
# M = 128..512, where 128 x 128 tiles with two accumulator sets (rate 1 in cheapest_tile) cap
# w8a8_fp8 at 1.22-1.50x (s19-call10): the same tiles chained within folds of 4 (probe s19-call1:
# 1096-1142 TFLOP/s at M = 4096 / 8192, against 974-1104 for two sets in s10) as a candidate for
# the narrow tile. (A forced fold turns off the K split of 4096 x 14336 at M <= 256.)
TAIL=30 step_ab 50 n128 "n128:LOWBIT_FP8_BN=128" "n128f4:LOWBIT_FP8_BN=128 LOWBIT_FP8_FOLD_EVERY=4" -- \
  --formats w8a8_fp8 --ms 128,256,384,512 --shapes 8192x8192,28672x8192,4096x14336,6144x4096,14336x4096 \
  --peers none --no-ceilings --budget-s 40; snap
fi
# Part 113: the H200 baseline of the 4-bit and int8 tables (session 19 ran only fp8 there), with
# torch's peers (gemlite needs .peers, which this checkout no longer has).
#   PART=113 LOWBIT_KERNELS=quant,w4,int8 TESTS="tests/test_cuda_a16w4.py tests/test_cuda_int8.py" \
#     EXTRA='bash tools/session_queue.sh' BENCH=0 bash tools/device_run.sh
if [ "$PART" = 113 ]; then
TAIL=40 step 200 table_w4 python3 bench/gemm.py --formats a16w4,mxfp4 --a16w4-groups=-1,32,128 \
  --ms 1,16,64,256,512,1024,2048,4096 --shapes 8192x8192,28672x8192,4096x14336,14336x4096 --peers tinygemm \
  --budget-s 180 --out "$OUT/table_w4.json"; snap
TAIL=30 step 150 table_int8 python3 bench/gemm.py --formats w8a8_int8 --ms 1,16,64,256,1024,2048,4096,8192 \
  --shapes 8192x8192,28672x8192,4096x14336 --peers torch_int_mm --budget-s 120 --out "$OUT/table_int8.json"; snap
fi
# Session 20: why the a16w4 GEMV v8 streams 0.44-0.53 of cuBLAS bf16's bandwidth at M = 1 on the
# H200 (s20-call2; 0.55-0.74 on the H100): the bare stream of v8's geometry per launch (32 / 112 MB,
# tools/stream_probe.cu), the warps-per-SM and GEMV-version A/B at 1..16 tokens, and ncu of v8,
# cuBLAS's GEMV and the 8-bit-row GEMV at M = 1 (card clocks).
#   PART=114 LOWBIT_KERNELS=quant,w4 TESTS=tests/test_cuda_a16w4.py EXTRA='bash tools/session_queue.sh' \
#     BENCH=0 bash tools/device_run.sh nothing
if [ "$PART" = 114 ]; then
nvcc -gencode arch=compute_90a,code=sm_90a -O3 -std=c++17 -Icsrc/include tools/stream_probe.cu -o /tmp/sp
TAIL=60 step 120 stream_probe /tmp/sp; cp "$OUT/q_stream_probe.log" "$OUT/stream_probe.jsonl"; snap
TAIL=30 step_ab 40 gw "w16:" "w8:LOWBIT_A16W4_STREAM_WARPS=8" "w12:LOWBIT_A16W4_STREAM_WARPS=12" \
  "v7:LOWBIT_A16W4_GEMV=regs" -- --formats a16w4,a16w8 --ms 1,8,16 \
  --shapes 8192x8192,28672x8192,4096x14336,14336x4096 --peers none --no-ceilings --budget-s 30; snap
TAIL=40 step 200 gemv_profile env CLOCKS=none VARIANTS="v8:a16w4: bf16:bf16: rows8:a16w8:" bash tools/gemv_profile.sh; snap
fi
# Session 20, after part 114: v8 with 2 / 4 K blocks per bulk copy at 1..8 tokens (A/B against 1,
# then the copy variants' tests), and the swap-AB K split at 1..16 tokens now on by default on
# cards past 4 TB/s (A/B against LOWBIT_SM90_KSPLIT=1, fp8 row / block and int8).
#   PART=115 LOWBIT_KERNELS=quant,w4,fp8,int8 TESTS="tests/test_cuda_a16w4.py tests/test_cuda_fp8.py" \
#     EXTRA='bash tools/session_queue.sh' BENCH=0 bash tools/device_run.sh
if [ "$PART" = 115 ]; then
TAIL=24 step_ab 40 copy "c1:" "c2:LOWBIT_A16W4_STREAM_COPY=2" "c4:LOWBIT_A16W4_STREAM_COPY=4" -- --formats a16w4,mxfp4 \
  --ms 1,4,8 --shapes 8192x8192,28672x8192,4096x14336,14336x4096 --peers none --no-ceilings --budget-s 25; snap
TAIL=30 step_ab 40 ks "dflt:" "ks1:LOWBIT_SM90_KSPLIT=1" -- --formats w8a8_fp8,fp8_block,w8a8_int8 --ms 1,4,16 \
  --shapes 8192x8192,4096x14336,6144x4096,4096x4096,28672x4096 --peers none --no-ceilings --budget-s 30; snap
TAIL=8 step 170 variants_copy python3 -m pytest -q -m cuda -p no:cacheprovider tests/test_cuda_variants.py -k copy; snap
fi
# Session 20's queue for session 21 (written after its device time ran out). Part 116, on branch
# s20-copy-dyn (d6ee37c): int4 g32 / g64 at 4 blocks a copy, unrolled by two (compiled, not run):
# its variant tests, then the A/B against 1 a copy (session 20: the four-block unroll spilled and
# lost 0-12% there); and the final default's a16w4 / mxfp4 tests, which s20-call8 ran only in part.
#   PART=116 LOWBIT_KERNELS=quant,w4 TESTS="tests/test_cuda_a16w4.py tests/test_cuda_mxfp4.py" \
#     EXTRA='bash tools/session_queue.sh' BENCH=0 bash tools/device_run.sh
if [ "$PART" = 116 ]; then
TAIL=8 step 200 variants_copy python3 -m pytest -q -m cuda -p no:cacheprovider tests/test_cuda_variants.py -k "copy4 or copy1"; snap
TAIL=24 step_ab 40 grp "c1:" "c4:LOWBIT_A16W4_STREAM_COPY=4" -- --formats a16w4 --a16w4-groups=32,64 --ms 1,4,8 \
  --shapes 8192x8192,28672x8192,4096x14336,14336x4096 --peers none --no-ceilings --budget-s 25; snap
fi
# Session 21, after the cluster reduction was measured and reverted (part 121, run on cc15019): the
# default a16w4 / mxfp4 tests of main (device_run.sh), then the H100-tuned rules of 9..64 tokens
# A/B'd on the H200: the GEMVs to 32 tokens (MIN_TOKENS=33), one / two wgmma CTAs per SM, 128 tokens
# per CTA.
#   PART=122 LOWBIT_KERNELS=quant,w4 TESTS="tests/test_cuda_a16w4.py tests/test_cuda_mxfp4.py" EXTRA='bash tools/session_queue.sh' BENCH=0 bash tools/device_run.sh
if [ "$PART" = 122 ]; then
TAIL=30 step_ab 45 mid "def:" "g33:LOWBIT_W4_WGMMA_MIN_TOKENS=33" "c1:LOWBIT_W4_WGMMA_CTAS=1" "c2:LOWBIT_W4_WGMMA_CTAS=2" \
  "t128:LOWBIT_W4_WGMMA_TOKENS=128" -- --formats a16w4,mxfp4 --a16w4-groups=128 --ms 12,16,32,48,64 \
  --shapes 8192x8192,28672x8192,4096x14336,14336x4096 --peers none --no-ceilings --budget-s 30; snap
fi
# Session 21: int4 g128 / per channel at 17..32 tokens now take two wgmma CTAs per SM (s21-call4's
# A/B). Run after the default a16w4 tests: the new default against one CTA (=1) at 17..32 tokens.
#   PART=123 LOWBIT_KERNELS=quant,w4 TESTS="tests/test_cuda_a16w4.py" EXTRA='bash tools/session_queue.sh' BENCH=0 bash tools/device_run.sh
if [ "$PART" = 123 ]; then
TAIL=30 step_ab 45 c32 "two:" "one:LOWBIT_W4_WGMMA_CTAS=1" -- --formats a16w4 --a16w4-groups=128,-1 --ms 17,24,32 \
  --shapes 8192x8192,28672x8192,4096x14336,14336x4096 --peers none --no-ceilings --budget-s 30; snap
fi
# Session 21's blind candidate, branch s21-ptr (8785c16): v8's x and scale loads at immediate
# offsets from bases advanced once per trip (the g128 M = 1 loop 530 -> 497 instructions per 4-block
# trip). Run this part on main and then on the branch, in two calls of one session (each: build
# ~82 s, the a16w4 / mxfp4 tests ~30 s, the bench ~60 s), and compare the two JSONs (cross-call:
# cuBLAS's column says how far the card moved):
#   PART=124 LOWBIT_KERNELS=quant,w4 TESTS="tests/test_cuda_a16w4.py tests/test_cuda_mxfp4.py" EXTRA='bash tools/session_queue.sh' BENCH=0 bash tools/device_run.sh
if [ "$PART" = 124 ]; then
TAIL=30 step 90 gemv python3 bench/gemm.py --formats a16w4,mxfp4 --a16w4-groups=128,-1,64 --ms 1,4,8 \
  --shapes 8192x8192,28672x8192,4096x14336,14336x4096,28672x4096 --peers none --no-ceilings --budget-s 60 \
  --out "$OUT/gemv.json"; snap
fi
# Session 21's second blind candidate, branch s21-cand (s21-ptr + v8's K splits inside the CTA where
# the plan gives 2 or 4 splits at 1..8 tokens, LOWBIT_A16W4_STREAM_MINOR=0|force). After the
# default a16w4 / mxfp4 tests: racecheck with it forced, its variant tests, then the A/B against
# the global partials (=0) on the split shapes (8192^2: 4 splits, 14336 x 4096: 2; 4096 x 14336
# and 4096^2: 8, unchanged; 28672 x 4096: 1, unchanged), and part 124's bench for the comparison
# with main:
#   PART=125 LOWBIT_KERNELS=quant,w4 TESTS="tests/test_cuda_a16w4.py tests/test_cuda_mxfp4.py" EXTRA='bash tools/session_queue.sh' BENCH=0 bash tools/device_run.sh
if [ "$PART" = 125 ]; then
step 90 racecheck_minor env LOWBIT_A16W4_STREAM_MINOR=force compute-sanitizer --tool racecheck --error-exitcode 9 python3 tests/sanitize_w4_int8.py; snap
TAIL=8 step 150 variants_minor python3 -m pytest -q -m cuda -p no:cacheprovider tests/test_cuda_variants.py -k "gemv-stream-minor"; snap
TAIL=30 step_ab 45 minor "on:" "off:LOWBIT_A16W4_STREAM_MINOR=0" -- --formats a16w4,mxfp4 --a16w4-groups=128,-1 --ms 1,4,8 \
  --shapes 8192x8192,14336x4096,4096x14336,4096x4096,28672x4096 --peers none --no-ceilings --budget-s 30; snap
PART=124 bash tools/session_queue.sh
fi
# Session 22: v8's K splits inside the CTA at 8 splits too (branch s22-minor8: a CTA of 8 warps, its
# rings in dynamic shared memory), the default where the plan gives 8 (4096^2, 4096 x 14336). After
# the a16w4 / mxfp4 tests: memcheck and racecheck with it forced to 8, the minor variants, then the
# A/B: default (8 inside the CTA) / off (global partials) / force (4) / force8, on 4096^2 and 4096 x
# 14336 (planned at 8), 6144 x 4096 (planned at 6: global; force and force8 re-plan it) and 8192^2
# (planned at 4: the control):
#   PART=126 LOWBIT_KERNELS=quant,w4 TESTS="tests/test_cuda_a16w4.py tests/test_cuda_mxfp4.py" EXTRA='bash tools/session_queue.sh' BENCH=0 bash tools/device_run.sh "splits or ring_tails or graph or matches_reference"
if [ "$PART" = 126 ]; then
for tool in memcheck racecheck; do
  step 60 ${tool}_minor8 env LOWBIT_A16W4_STREAM_MINOR=force8 compute-sanitizer --tool $tool --error-exitcode 9 python3 tests/sanitize_w4_int8.py; snap
done
TAIL=8 step 150 variants_minor python3 -m pytest -q -m cuda -p no:cacheprovider tests/test_cuda_variants.py -k "gemv-stream-minor"; snap
TAIL=30 step_ab 50 m8 "on:" "off:LOWBIT_A16W4_STREAM_MINOR=0" "f4:LOWBIT_A16W4_STREAM_MINOR=force" "f8:LOWBIT_A16W4_STREAM_MINOR=force8" -- \
  --formats a16w4,mxfp4 --a16w4-groups=128,-1 --ms 1,4,8 \
  --shapes 4096x4096,4096x14336,6144x4096,8192x8192 --peers none --no-ceilings --budget-s 30; snap
fi
# Session 22, call 4: the plan's 3 and 5..7 splits taken down to 2 and 4 inside the CTA (default)
# against the plan's own splits (=plan: global partials there) on 6144 x 4096 (6), 5120 x 4096 (7),
# 11008 x 4096 and 12288 x 4096 (3), 4096^2 (8, the control); then Llama-3-8B's decode step (a16w4,
# mxfp4, batch 1; s20-call6: a16w4 3.61 ms, bf16 5.37):
#   PART=127 LOWBIT_KERNELS=quant,w4 TESTS="tests/test_cuda_a16w4.py tests/test_cuda_mxfp4.py" EXTRA='bash tools/session_queue.sh' BENCH=0 bash tools/device_run.sh "splits or ring_tails or graph"
if [ "$PART" = 127 ]; then
TAIL=30 step_ab 50 round "on:" "plan:LOWBIT_A16W4_STREAM_MINOR=plan" -- --formats a16w4,mxfp4 --a16w4-groups=128,-1 --ms 1,4,8 \
  --shapes 6144x4096,5120x4096,11008x4096,12288x4096,4096x4096 --peers none --no-ceilings --budget-s 30; snap
TAIL=30 step 200 model python3 bench/model.py --fused --decode-mode regional --formats a16w4,mxfp4 --batch 1 --prefill "" \
  --out "$OUT/model.json"; snap
fi
# Session 22, call 5 (main after s22-minor8): Llama-3-8B's decode step with the profile (a16w4 against
# bf16, batch 1: where the step's time goes now), then part 124's bench (compare with s22-call1):
#   PART=128 LOWBIT_KERNELS=quant,w4 TESTS="tests/test_cuda_a16w4.py tests/test_cuda_mxfp4.py" EXTRA='bash tools/session_queue.sh' BENCH=0 bash tools/device_run.sh
if [ "$PART" = 128 ]; then
TAIL=40 step 200 model python3 bench/model.py --fused --decode-mode regional --formats a16w4 --batch 1 --prefill "" \
  --profile --out "$OUT/model.json"; snap
PART=124 bash tools/session_queue.sh
fi
# Session 22, call 6 (main): what bounds v8 now at M = 1: ncu (full set, card clocks) of the 1-split
# GEMV (28672 x 4096, 13.6 warps an SM, 2.4 TB/s) and the 8-split one inside the CTA (4096^2), int4
# g128; then Llama-3-8B's decode step again (s22-call4 2.01x, call5 1.86x: the noise):
#   PART=129 LOWBIT_KERNELS=quant,w4 TESTS=tests/test_cuda_a16w4.py EXTRA='bash tools/session_queue.sh' BENCH=0 bash tools/device_run.sh splits
if [ "$PART" = 129 ]; then
for shape in 28672x4096 4096x4096; do
  mkdir -p "$OUT/ncu_$shape"
  TAIL=14 step 120 "ncu_$shape" env OUT="$OUT/ncu_$shape" PROFILE_SHAPE=$shape CLOCKS=none VARIANTS="v8:a16w4:" \
    bash tools/gemv_profile.sh; snap
done
TAIL=12 step 150 model python3 bench/model.py --fused --decode-mode regional --formats a16w4 --batch 1 --prefill "" \
  --out "$OUT/model.json"; snap
fi
# (Branch s22-sumx, on s22-xstage: int4 at 1..2 tokens also stages x's sums per group, half the
# MMAs. Run the two parts there: its knob gives x only (=1) and off (=0), so one build A/Bs all
# three in part 131; part 130's variants include xstage0 / 1 / 2, ~400 s with the build.)
# Session 22's blind candidate, branch s22-xstage: v8's x staged in shared memory once per CTA at
# 1..8 tokens where the CTA's warps cover all of K (one split, or the splits inside the CTA) and the
# rows fit; s22-call6's ncu put 35% of v8's stall samples at M = 1 on the MMAs waiting for x's
# global loads. After the a16w4 / mxfp4 tests: memcheck and racecheck (sanitize_w4_int8.py stages
# x at 1 x 16384 x 4096 and 5 x 4096 x 4096), the xstage-off and minor variants, the A/B against
# =0 (~450 s with the build; part 131 follows warm):
#   PART=130 LOWBIT_KERNELS=quant,w4 TESTS="tests/test_cuda_a16w4.py tests/test_cuda_mxfp4.py" EXTRA='bash tools/session_queue.sh' BENCH=0 bash tools/device_run.sh "x_staged or splits or ring_tails or graph or matches_reference"
if [ "$PART" = 130 ]; then
for tool in memcheck racecheck; do
  step 60 ${tool}_xstage compute-sanitizer --tool $tool --error-exitcode 9 python3 tests/sanitize_w4_int8.py; snap
done
TAIL=8 step 320 variants_xstage python3 -m pytest -q -m cuda -p no:cacheprovider tests/test_cuda_variants.py -k "xstage or minor"; snap
fi
# Then, warm (no rebuild: OUT=$OUT PART=131 bash tools/session_queue.sh): the A/B (default / off /
# x only) at 1, 2, 4, 8 tokens on 7 shapes, Llama-3-8B's decode step (s22-call6: 2.330 ms, 2.02x
# bf16) and ncu of the staged kernel at 28672 x 4096, M = 1 (compare with s22-call6's stall
# breakdown: tools/ncu_stalls.py). ~400 s.
if [ "$PART" = 131 ]; then
TAIL=30 step_ab 60 xs "on:" "off:LOWBIT_A16W4_STREAM_XSTAGE=0" "x1:LOWBIT_A16W4_STREAM_XSTAGE=1" -- --formats a16w4,mxfp4 --a16w4-groups=128,-1 --ms 1,2,4,8 \
  --shapes 8192x8192,28672x4096,4096x14336,4096x4096,14336x4096,6144x4096,28672x8192 --peers none --no-ceilings --budget-s 40; snap
TAIL=12 step 150 model python3 bench/model.py --fused --decode-mode regional --formats a16w4,mxfp4 --batch 1 --prefill "" \
  --out "$OUT/model.json"; snap
mkdir -p "$OUT/ncu_28672x4096"
TAIL=14 step 120 ncu_28672x4096 env OUT="$OUT/ncu_28672x4096" PROFILE_SHAPE=28672x4096 CLOCKS=none VARIANTS="v8:a16w4:" \
  bash tools/gemv_profile.sh; snap
python3 tools/ncu_stalls.py "$OUT/ncu_28672x4096/gemv_v8_source.csv" > "$OUT/ncu_stalls.txt" 2>&1; snap
fi
# (Parts 132 / 133 ran on s23-xpieces 595521d; the pieces and their knob were removed after
# s23-call4, NOTES "Session 23".)
# Session 23, branch s23-xpieces: staged x in pieces along K, one barrier each (the splits inside
# the CTA one piece per split: a warp waits for its own slice only; one split up to 4 pieces) and
# the sums only where the CTA is one split. s23-call2's ncu put 8.6% of the stall samples of
# 28672 x 4096 at M = 1 on the single wait for all of x; the splits inside the CTA lost 7-18% at
# M = 2 / 4 to it. Part 132 with the build (~330 s):
#   PART=132 LOWBIT_KERNELS=quant,w4 TESTS="tests/test_cuda_a16w4.py tests/test_cuda_mxfp4.py" EXTRA='bash tools/session_queue.sh' BENCH=0 bash tools/device_run.sh "x_staged or splits or ring_tails or graph or matches_reference"
if [ "$PART" = 132 ]; then
LOWBIT_DEBUG=1 python3 - <<'PY' > "$OUT/xpieces_plans.txt" 2>&1
import torch, lowbit_ext
from lowbit_ext import ops
for N, K in [(28672, 4096), (28672, 2176), (4096, 4096), (6144, 4096), (14336, 4096), (4096, 14336), (28672, 8192)]:
    for M in (1, 2, 4):
        x = torch.randn(M, K, dtype=torch.bfloat16, device="cuda")
        w = ops.prepack_w4(torch.randint(0, 256, (N, K // 2), dtype=torch.uint8, device="cuda"))
        s = torch.rand(N, K // 128, dtype=torch.bfloat16, device="cuda")
        ops.a16w4_linear(x, w, s, None, 128, None)
torch.cuda.synchronize()
PY
for tool in memcheck racecheck; do
  step 60 ${tool}_xpieces compute-sanitizer --tool $tool --error-exitcode 9 python3 tests/sanitize_w4_int8.py; snap
done
TAIL=8 step 200 variants_xpieces python3 -m pytest -q -m cuda -p no:cacheprovider tests/test_cuda_variants.py -k "xpieces or xstage1"; snap
fi
# Then warm (OUT=$OUT PART=133 bash tools/session_queue.sh): the A/B at 100 replays a point (on /
# off / one piece / x only in pieces everywhere, then on and off again: the spread of a repeat),
# Llama-3-8B's decode step with it on and off. ~420 s.
if [ "$PART" = 133 ]; then
TAIL=4 step_ab 70 xp "on:" "off:LOWBIT_A16W4_STREAM_XSTAGE=0" "p1:LOWBIT_A16W4_STREAM_XPIECES=1" \
  "x1:LOWBIT_A16W4_STREAM_XSTAGE=1" "on2:" "off2:LOWBIT_A16W4_STREAM_XSTAGE=0" -- --formats a16w4,mxfp4 --a16w4-groups=128,-1 \
  --ms 1,2,4,8 --shapes 8192x8192,28672x4096,4096x14336,4096x4096,14336x4096,6144x4096,28672x8192 --peers none \
  --no-ceilings --reps 100 --budget-s 60; snap
for v in on off; do
  e=""; [ $v = off ] && e="LOWBIT_A16W4_STREAM_XSTAGE=0"
  TAIL=8 step 100 model_$v env $e python3 bench/model.py --fused --decode-mode regional --formats a16w4,mxfp4 --batch 1 \
    --prefill "" --out "$OUT/model_$v.json"; snap
done
fi
# s23-call4 chose the default: x staged (with its sums) only for int4 at 1..2 tokens in one split
# where K <= 4096 or per channel. Part 134 with the build: the A/B on / off twice at 1 / 2 tokens,
# Llama-3-8B's decode on / off (~420 s):
#   PART=134 LOWBIT_KERNELS=quant,w4 TESTS="tests/test_cuda_a16w4.py" EXTRA='bash tools/session_queue.sh' BENCH=0 bash tools/device_run.sh "x_staged or splits or matches_reference"
if [ "$PART" = 134 ]; then
TAIL=4 step_ab 60 xd "on:" "off:LOWBIT_A16W4_STREAM_XSTAGE=0" "on2:" "off2:LOWBIT_A16W4_STREAM_XSTAGE=0" -- \
  --formats a16w4 --a16w4-groups=128,-1 --ms 1,2 --shapes 8192x8192,28672x4096,4096x14336,4096x4096,14336x4096,6144x4096,28672x8192 \
  --peers none --no-ceilings --reps 100 --budget-s 50; snap
for v in on off; do
  e=""; [ $v = off ] && e="LOWBIT_A16W4_STREAM_XSTAGE=0"
  TAIL=8 step 100 model_$v env $e python3 bench/model.py --fused --decode-mode regional --formats a16w4 --batch 1 \
    --prefill "" --out "$OUT/model_$v.json"; snap
done
fi
# Session 23's blind candidate, branch s23-pdl: v8 by programmatic dependent launch (opt-in
# LOWBIT_A16W4_PDL=1): its first weight fills before griddep_wait, x after; launch_dependents after
# its main loop. Part 135 with the build (~450 s): the chain test and the variant (PDL on), racecheck
# with PDL on, the A/B on / off at 1 / 2 / 8 tokens (back-to-back GEMVs in the bench's graph: each
# may start under the one before), then the decode step four ways (neither / lowbit / inductor /
# both PDL):
#   PART=135 LOWBIT_KERNELS=quant,w4 TESTS="tests/test_cuda_a16w4.py" EXTRA='bash tools/session_queue.sh' BENCH=0 bash tools/device_run.sh "chain or x_staged or splits or graph"
if [ "$PART" = 135 ]; then
TAIL=8 step 150 variant_pdl python3 -m pytest -q -m cuda -p no:cacheprovider tests/test_cuda_variants.py -k "gemv-pdl"; snap
step 90 racecheck_pdl env LOWBIT_A16W4_PDL=1 compute-sanitizer --tool racecheck --error-exitcode 9 python3 -m pytest -q -m cuda \
  -p no:cacheprovider tests/test_cuda_a16w4.py -k chain; snap
TAIL=4 step_ab 60 pdl "off:" "on:LOWBIT_A16W4_PDL=1" "off2:" "on2:LOWBIT_A16W4_PDL=1" -- --formats a16w4,mxfp4 \
  --a16w4-groups=128 --ms 1,2,8 --shapes 8192x8192,28672x4096,4096x14336,4096x4096,6144x4096 --peers none --no-ceilings \
  --reps 100 --budget-s 50; snap
for v in none:"" lowbit:LOWBIT_A16W4_PDL=1 inductor:TORCHINDUCTOR_ENABLE_PDL=1 both:"LOWBIT_A16W4_PDL=1 TORCHINDUCTOR_ENABLE_PDL=1"; do
  TAIL=6 step 100 model_${v%%:*} env ${v#*:} python3 bench/model.py --fused --decode-mode regional --formats a16w4 --batch 1 \
    --prefill "" --out "$OUT/model_${v%%:*}.json"; snap
done
fi
# Session 23's open question: the staged x saved 2.6 us a call on 28672 x 4096 in the bench but
# ~19 us a decode step in the model (~80 predicted). Warm after part 135 (or alone on main with the
# build): the decode step profiled (torch.profiler, per kernel) with the staging on and off, and
# the plans of the step's GEMVs (LOWBIT_DEBUG=1, one eager step). ~200 s.
if [ "$PART" = 136 ]; then
for v in on off; do
  e=""; [ $v = off ] && e="LOWBIT_A16W4_STREAM_XSTAGE=0"
  TAIL=30 step 100 model_profile_$v env $e python3 bench/model.py --fused --decode-mode regional --formats a16w4 \
    --batch 1 --prefill "" --profile --out "$OUT/model_profile_$v.json"; snap
done
LOWBIT_DEBUG=1 timeout 120 python3 bench/model.py --fused --decode-mode eager --formats a16w4 --layers 2 --batch 1 --prefill "" \
  --out "$OUT/model_debug.json" 2>&1 | grep "gemv v" | sort | uniq -c > "$OUT/model_gemv_plans.txt"; snap
fi
# Session 24's candidate, branch s24-e2m1: mxfp4's GEMV v8 with e2m1 pairs shifted straight from
# the word (5 instructions a pair, not 6) and a block's four E8M0 scales of a row converted at once
# (numerics.h e8m0x4_to_float: 2 instructions a scale unless a byte is 0x00 / 0xFF): the M = 1
# trip from 1201 to 951 instructions (SASS). Part 137 with the build (~420 s): the same A/B rows as
# s24-call1's PDL-off runs (mxfp4 and the int4 control at 1 / 2 / 8 tokens, two processes), then
# Llama-3-8B's mxfp4 decode step with neither and both PDLs:
#   PART=137 LOWBIT_KERNELS=quant,w4 TESTS="tests/test_cuda_mxfp4.py" EXTRA='bash tools/session_queue.sh' BENCH=0 bash tools/device_run.sh "matches_reference or nan_scale or decode or every_scale or extreme or ring_tails or graph or repeatable"
if [ "$PART" = 137 ]; then
TAIL=4 step_ab 60 e2m1 "new:" "new2:" -- --formats a16w4,mxfp4 \
  --a16w4-groups=128 --ms 1,2,8 --shapes 8192x8192,28672x4096,4096x14336,4096x4096,6144x4096 --peers none --no-ceilings \
  --reps 100 --budget-s 50; snap
for v in none:"" both:"LOWBIT_A16W4_PDL=1 TORCHINDUCTOR_ENABLE_PDL=1"; do
  TAIL=6 step 110 model_mx_${v%%:*} env ${v#*:} python3 bench/model.py --fused --decode-mode regional --formats mxfp4 --batch 1 \
    --prefill "" --out "$OUT/model_mx_${v%%:*}.json"; snap
done
fi
# s24-call5 measured the candidate: mxfp4 +15..+26% at 1..8 tokens (int4 control +1..+5% across
# the calls), decode 3.10 (s22) -> 2.65 ms. Part 138 with the build: v8's knob variants over the
# mxfp4 and int4 files (the changed mma_chunk / scale code in every template), then whether x
# staged now pays for mxfp4 (its trip is shorter: 951 instructions against int4's 460), on / off
# twice at 1 / 2 tokens:
#   PART=138 LOWBIT_KERNELS=quant,w4 TESTS="tests/test_cuda_mxfp4.py" EXTRA='bash tools/session_queue.sh' BENCH=0 bash tools/device_run.sh "every_scale"
if [ "$PART" = 138 ]; then
TAIL=8 step 300 variants_mx python3 -m pytest -q -m cuda -p no:cacheprovider tests/test_cuda_variants.py \
  -k "stream-copy1 or stream-copy2 or stream-minor-force or xstage1 or gemv-pdl"; snap
TAIL=4 step_ab 50 mxs "dflt:" "xs1:LOWBIT_A16W4_STREAM_XSTAGE=1" "dflt2:" "xs12:LOWBIT_A16W4_STREAM_XSTAGE=1" -- --formats mxfp4 \
  --ms 1,2 --shapes 8192x8192,28672x4096,4096x14336,4096x4096,6144x4096,28672x8192 --peers none --no-ceilings \
  --reps 100 --budget-s 40; snap
fi
