#!/usr/bin/env bash
# fp8 mainloop probe (device, after tools/device_run.sh built the library): A/B timings of
# the kernel variants and an ncu summary of each at one large shape. Output under $OUT.
#   EXTRA='bash tools/fp8_probe.sh' BENCH=0 LOWBIT_KERNELS="quant;fp8" bash tools/device_run.sh
set -uo pipefail
OUT=${OUT:-/tmp/out}
VARIANTS=${VARIANTS:-"base:,cluster:LOWBIT_SM90_CLUSTER=2,oneacc:LOWBIT_FP8_ONE_ACC=1"}
SHAPE=${SHAPE:-4096x8192x8192}
LOWBIT_DEBUG=1 python3 -c "
import torch, lowbit_ext
from lowbit_ext import ops
a = torch.randn(4096, 8192, device='cuda').to(torch.float8_e4m3fn); s = torch.ones(1, device='cuda')
ops.w8a8_fp8_mm(a, s, a, s); torch.cuda.synchronize()" 2>&1 | grep resident
LOWBIT_SM90_CLUSTER=2 LOWBIT_DEBUG=1 python3 -c "
import torch, lowbit_ext
from lowbit_ext import ops
a = torch.randn(4096, 8192, device='cuda').to(torch.float8_e4m3fn); s = torch.ones(1, device='cuda')
ops.w8a8_fp8_mm(a, s, a, s); torch.cuda.synchronize()" 2>&1 | grep resident
python3 bench/fp8_variants.py --shapes ${SHAPES:-8192x8192,28672x8192} --ms ${MS:-256,1024,4096,8192} \
  --only lowbit_fp8_row,scaled_mm --variants "$VARIANTS" --out "$OUT/variants.json" 2>&1 | grep -v "^\[lowbit"
if [ "${NCU:-1}" = 1 ]; then
  IFS=',' read -ra VS <<< "$VARIANTS"
  for spec in "${VS[@]}"; do
    name=${spec%%:*}; envs=${spec#*:}
    env $(echo "$envs" | tr ';' ' ') ncu -k regex:sm90_gemm -c 1 --section SpeedOfLight --section LaunchStats \
      --section Occupancy --section MemoryWorkloadAnalysis --section ComputeWorkloadAnalysis \
      --section WarpStateStats python3 bench/profile_fp8.py "$SHAPE" > "$OUT/ncu_$name.txt" 2>&1
    echo "== ncu $name"; grep -E "Duration|Compute \(SM\) Throughput|L2 Cache Throughput|DRAM Throughput|Cluster|Grid Size|Issue Slots Busy|Warp Cycles Per Issued|Max Bandwidth|L1/TEX Hit|L2 Hit|Mem Busy" "$OUT/ncu_$name.txt" | head -24
  done
fi
