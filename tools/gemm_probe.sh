#!/usr/bin/env bash
# Device: build tools/gemm_probe.cu's sets (no torch, ~15 s) and run them, then ncu summaries of
# a few cases. JSON lines in $OUT/gemm_probe.jsonl. No extension build needed:
#   bash tools/gemm_probe.sh      (SETS="1 2 3 4", NCU="config:mode:M:set ..." to override, NCU=0: none)
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT" build
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,power.draw,clocks_throttle_reasons.active --format=csv | tee "$OUT/probe_gpu.txt"
SETS=${SETS:-"1 2 3 4"}
for s in $SETS; do
  nvcc -gencode arch=compute_90a,code=sm_90a -O3 -std=c++20 -Icsrc/include -DPROBE_SET=$s tools/gemm_probe.cu \
    -o build/gemm_probe_$s > "$OUT/build_$s.log" 2>&1 &
done
wait
nvidia-smi --query-gpu=timestamp,clocks.sm,power.draw,temperature.gpu,clocks_throttle_reasons.active --format=csv -l 1 > "$OUT/probe_clocks.csv" 2>&1 &
TRACE=$!
for s in $SETS; do timeout 120 build/gemm_probe_$s 2>&1 | tee -a "$OUT/gemm_probe.jsonl"; done
kill $TRACE 2>/dev/null
[ "${NCU:-}" = 0 ] && NCU_SPECS="" || NCU_SPECS=${NCU:-"fp8_promote_128_c1_acc2:full:8192:1 s8_chain_256_c2:full:8192:2 s8_chain_128_c2:full:8192:2"}
for spec in $NCU_SPECS; do
  IFS=: read -r cfg mode m set <<< "$spec"
  PROBE_CONFIG=$cfg PROBE_MODE=$mode PROBE_M=$m timeout 120 ncu -k regex:sm90_gemm -s 2 -c 1 --section SpeedOfLight \
    --section WarpStateStats --section ComputeWorkloadAnalysis --section MemoryWorkloadAnalysis --section Occupancy \
    build/gemm_probe_$set > "$OUT/ncu_${cfg}_${mode}_$m.txt" 2>&1
  echo "== ncu $cfg $mode $m"
  grep -E "SM Frequency|Duration|Compute \(SM\) Throughput|L2 Cache Throughput|DRAM Throughput|Issue Slots Busy|Warp Cycles Per Issued|Stall|L2 Hit|Mem Busy|Executed Ipc|Max Bandwidth" "$OUT/ncu_${cfg}_${mode}_$m.txt" | head -20
done
tar czf "$OUT/0_all.tgz" -C "$OUT" --exclude=0_all.tgz . 2>/dev/null || true
