#!/usr/bin/env bash
# Device: the e4m3 wgmma ceiling (tools/wgmma_rate.cu) and an ncu summary of cuBLAS's fp8
# GEMM at 4096x8192x8192 (kernel name, tile, cluster, SM/L2 use). No library build needed.
set -uo pipefail
OUT=${OUT:-/tmp/out}
nvcc -gencode arch=compute_90a,code=sm_90a -O3 -std=c++17 -Icsrc/include tools/wgmma_rate.cu -o /tmp/wr 2>&1 | grep -E "error|C7514"
/tmp/wr | tee "$OUT/wgmma_rate.jsonl"
ncu -k regex:'.' -c 3 --section SpeedOfLight --section LaunchStats --section Occupancy --section MemoryWorkloadAnalysis \
  --section ComputeWorkloadAnalysis --section WarpStateStats python3 bench/profile_cublas_fp8.py 4096x8192x8192 > "$OUT/ncu_cublas.txt" 2>&1
grep -E "^  [a-zA-Z_].*\(|Duration|Compute \(SM\) Throughput|L2 Cache Throughput|DRAM Throughput|Cluster Size|Grid Size|Block Size|Registers Per|Shared Memory Config|Dynamic Shared|Issue Slots Busy|Warp Cycles Per Issued" "$OUT/ncu_cublas.txt" | head -60
