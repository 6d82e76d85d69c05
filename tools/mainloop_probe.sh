#!/usr/bin/env bash
# Hopper mainloop probe (device, after tools/device_run.sh built the library): clock and
# power under each GEMM (bench/clock_probe.py: is a kernel slower per clock, or clocked
# lower?), then ncu summaries of the int8 kernel at 128 x 256 and 128 x 128 with the GPU's own
# clocks (--clock-control none). Output under $OUT.
#   EXTRA='bash tools/mainloop_probe.sh' BENCH=0 bash tools/device_run.sh
set -uo pipefail
OUT=${OUT:-/tmp/out}
SPECS=${SPECS:-"cublas_bf16: scaled_mm_tensor: lowbit_fp8_row: lowbit_int8_row: lowbit_int8_row:LOWBIT_SM90_BN=128 int_mm:"}
for spec in $SPECS; do
  op=${spec%%:*}; envs=${spec#*:}
  env $(echo "$envs" | tr ';' ' ') python3 bench/clock_probe.py --op "$op" --seconds ${SECONDS_PER_OP:-3} | tee -a "$OUT/clock.jsonl"
done
if [ "${NCU:-1}" = 1 ]; then
  for bn in 256 128; do
    LOWBIT_SM90_BN=$bn ncu --clock-control none -k regex:sm90_gemm -s 2 -c 1 --section SpeedOfLight \
      --section WarpStateStats --section ComputeWorkloadAnalysis --section MemoryWorkloadAnalysis \
      python3 bench/clock_probe.py --op lowbit_int8_row --seconds 0.2 > "$OUT/ncu_int8_bn$bn.txt" 2>&1
    echo "== ncu int8 bn=$bn"
    grep -E "SM Frequency|Duration|Compute \(SM\) Throughput|L2 Cache Throughput|DRAM Throughput|Issue Slots Busy|Warp Cycles Per Issued|Stall|Max Bandwidth|L2 Hit|Mem Busy|Executed Ipc" "$OUT/ncu_int8_bn$bn.txt" | head -30
  done
fi
