#!/usr/bin/env bash
# Device: what limits the mixed-input wgmma GEMM (bench/NOTES.md session 4: mxfp4 ~480 TFLOP/s,
# int4 g128 half that), next to cuBLAS bf16 on the same shape, 8192^2. One ncu profile per
# kernel (after device_run.sh built the library): duration, SM / tensor / L2 / DRAM throughput
# and the warp stall breakdown. The hypotheses to separate: the X tile re-read from L2 for every
# 128 weight rows (~4 TB/s of L2 traffic at mxfp4 M = 256-1024: a cluster multicast or 256-row
# CTAs would halve it), the per-block wgmma drain with both warpgroups in step, and int4's
# per-group promotion. Output under $OUT.
set -uo pipefail
OUT=${OUT:-/tmp/out}
SECTIONS="--section SpeedOfLight --section MemoryWorkloadAnalysis --section ComputeWorkloadAnalysis --section WarpStateStats --section Occupancy"
# (LOWBIT_A16W4_LARGE=wgmma: mxfp4 at M = 1024 takes the dequantize path by default)
# VARIANTS="name:format:M:kernel regex ..." replaces the list below; SOURCE=1 adds the full set and
# the per-instruction source page as CSV (the stall samples per SASS line); the environment passes
# through (e.g. LOWBIT_W4_WGMMA_MIN_TOKENS=1 for the wgmma at M = 1).
[ "${SOURCE:-0}" = 1 ] && SECTIONS="--set full --import-source yes"
for v in ${VARIANTS:-"mxfp4_m1024:mxfp4:1024:wgmma" "int4_m256:a16w4:256:wgmma" "bf16_m1024:bf16:1024:nvjet|gemm|xmma|cutlass"}; do
  IFS=: read -r name fmt m kern <<< "$v"
  LOWBIT_A16W4_LARGE=wgmma ncu -k "regex:$kern" -s 1 -c 1 $SECTIONS -o "$OUT/wg_$name" python3 bench/profile_a16w4.py --format "$fmt" "$m" "$m" \
    > /dev/null 2>&1
  ncu -i "$OUT/wg_$name.ncu-rep" --page details > "$OUT/wg_${name}_details.txt" 2>&1
  [ "${SOURCE:-0}" = 1 ] && ncu -i "$OUT/wg_$name.ncu-rep" --page source --csv --print-source sass \
    > "$OUT/wg_${name}_source.csv" 2>&1 && gzip -f "$OUT/wg_${name}_source.csv"
  rm -f "$OUT/wg_$name.ncu-rep"
  echo "== $name"
  grep -E "^ +(Duration|Compute \(SM\) Throughput|Memory Throughput|L2 Cache Throughput|DRAM Throughput|L1/TEX Cache Throughput|Executed Ipc Active|Stall)" \
    "$OUT/wg_${name}_details.txt" | head -14
done
