#!/usr/bin/env bash
# Device: where the a16w4 GEMV spends its time at M=1, 8192^2, g128 (after device_run.sh built
# the library): nsys kernel/memset durations of the op, and an ncu full-set profile with
# per-instruction stall samples (source page as CSV). Output under $OUT.
set -uo pipefail
OUT=${OUT:-/tmp/out}
if command -v nsys > /dev/null; then
  nsys profile -o "$OUT/gemv_nsys" --force-overwrite true python3 bench/profile_a16w4.py 1 1 1 1 1 > /dev/null 2>&1
  nsys stats --report cuda_gpu_kern_sum,cuda_gpu_mem_time_sum --format csv "$OUT/gemv_nsys.nsys-rep" > "$OUT/gemv_nsys.csv" 2>&1
  rm -f "$OUT/gemv_nsys.nsys-rep" "$OUT"/gemv_nsys.sqlite
  grep -iE "a16w4|memset|Time" "$OUT/gemv_nsys.csv" | head -12
else
  echo "nsys not installed"
fi
ncu -k regex:a16w4_gemv -s 2 -c 1 --set full --import-source yes -o "$OUT/gemv_m1" python3 bench/profile_a16w4.py 1 1 1 > /dev/null 2>&1
ncu -i "$OUT/gemv_m1.ncu-rep" --page details > "$OUT/gemv_m1_details.txt" 2>&1
ncu -i "$OUT/gemv_m1.ncu-rep" --page source --csv --print-source sass > "$OUT/gemv_m1_source.csv" 2>&1
rm -f "$OUT/gemv_m1.ncu-rep"
grep -E "Duration|DRAM Throughput|Achieved Occupancy|Stall|stall" "$OUT/gemv_m1_details.txt" | head -30
wc -l "$OUT/gemv_m1_source.csv"
