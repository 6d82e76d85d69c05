#!/usr/bin/env bash
# Device: where the small-M GEMVs spend their time at M=1, 8192^2 (after device_run.sh built the
# library): for the a16w4 GEMVs v6 / v7 / v7b (LOWBIT_A16W4_GEMV=smem|regs|pipe, g128) and the
# 8-bit-row GEMV (a16w8), which streams best, an ncu full-set profile of one call: duration,
# DRAM throughput, occupancy, registers, the warp-state (stall) breakdown, and the per-
# instruction source page as CSV. The question (bench/NOTES.md session 4): what keeps the int4
# GEMVs at 0.41-0.59 of cuBLAS's bandwidth where the 8-bit one reaches 0.69-0.83. Output under $OUT.
set -uo pipefail
OUT=${OUT:-/tmp/out}
M=${M:-1}
# CLOCKS=none: ncu at the card's own clocks (--clock-control none) instead of its locked base clock
CLOCK_ARGS=(); [ "${CLOCKS:-}" = none ] && CLOCK_ARGS=(--clock-control none)
# VARIANTS="name:format:knob ..." replaces the list below (knob: LOWBIT_A16W4_GEMV's value, or
# empty for the default kernel, e.g. VARIANTS="v8:a16w4:" for GEMV v8).
for v in ${VARIANTS:-"v6:a16w4:smem" "v7:a16w4:regs" "v7b:a16w4:pipe" "rows8:a16w8:"}; do
  IFS=: read -r name fmt knob <<< "$v"
  # (cuBLAS bf16's GEMV on torch 2.11 is an nvjet_* kernel: "bf16:bf16:" profiles it)
  kre=gemv; [ "$fmt" = bf16 ] && kre="nvjet|gemv|gemm"
  LOWBIT_A16W4_GEMV=$knob ncu -k regex:"$kre" -s 2 -c 1 --set full --import-source yes "${CLOCK_ARGS[@]}" -o "$OUT/gemv_$name" \
    python3 bench/profile_a16w4.py --format "$fmt" $M $M $M > /dev/null 2>&1
  ncu -i "$OUT/gemv_$name.ncu-rep" --page details > "$OUT/gemv_${name}_details.txt" 2>&1
  ncu -i "$OUT/gemv_$name.ncu-rep" --page source --csv --print-source sass > "$OUT/gemv_${name}_source.csv" 2>&1
  rm -f "$OUT/gemv_$name.ncu-rep"
  echo "== $name ($fmt ${knob:-default}), M=$M"
  grep -E "^ +(Duration|DRAM Throughput|Memory Throughput|Achieved Occupancy|Registers Per Thread|Stall|Warp Cycles Per Issued)" \
    "$OUT/gemv_${name}_details.txt" | head -12
done
