#!/usr/bin/env bash
# One call on the GPU machine: build (only the arch and kernel families asked for),
# run the CUDA tests, the registration report and (optionally) the bench, and leave
# logs and JSON under $OUT. Usage (from the repo root, on the device):
#   bash tools/device_run.sh [pytest -k expr] [bench args...]
# Environment: LOWBIT_KERNELS (default all), BENCH=0 to skip the bench, SANITIZE=1 to run
# compute-sanitizer memcheck and racecheck over the CUDA tests.
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
export MAX_JOBS=${MAX_JOBS:-16} LOWBIT_CUDA=1 LOWBIT_CUDA_ARCHS=${LOWBIT_CUDA_ARCHS:-90a} PYTHONUNBUFFERED=1
KEXPR=${1:-}; shift || true
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee "$OUT/gpu.txt"
# clocks, power, temperature and throttle reasons before the build, and traced during the steps:
# to tell a slow card from slow code when times move between calls (session 9: it was the code)
CLOCKS=clocks.sm,clocks.max.sm,clocks.mem,power.draw,power.limit,temperature.gpu,clocks_throttle_reasons.active
nvidia-smi --query-gpu=$CLOCKS --format=csv >> "$OUT/gpu.txt" 2>&1
python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda)' | tee -a "$OUT/gpu.txt"

t0=$(date +%s)
python3 -m pip install --no-build-isolation --no-deps -e . > "$OUT/build.log" 2>&1 || { tail -50 "$OUT/build.log"; exit 1; }
echo "build: $(( $(date +%s) - t0 )) s (MAX_JOBS=$MAX_JOBS, LOWBIT_KERNELS=${LOWBIT_KERNELS:-all})" | tee -a "$OUT/gpu.txt"
grep -E "spill|warning" "$OUT/build.log" | head -20

python3 - <<'PY' | tee "$OUT/registered.txt"
import torch, lowbit_ext
from lowbit_ext import ops
print("library", lowbit_ext.library_path())
for n in ops.OP_NAMES:
    keys = [k for k in ("CPU", "CUDA") if torch._C._dispatch_has_kernel_for_dispatch_key(f"lowbit::{n}", k)]
    print(f"  lowbit::{n:28s} {' '.join(keys)}")
PY

# SASS report: matrix instructions, local memory, registers (per kernel).
SO=$(python3 -c 'import lowbit_ext; print(lowbit_ext.library_path())')
cuobjdump -res-usage "$SO" > "$OUT/resources.txt" 2>&1 || true
cuobjdump -sass "$SO" 2>/dev/null | grep -oE "\b(HGMMA|QGMMA|IGMMA|HMMA|IMMA|LDL|STL)[A-Z0-9._]*" | sort | uniq -c > "$OUT/sass_summary.txt" || true

PYTEST=(python3 -m pytest ${TESTS:-tests} -q -m cuda --no-header -p no:cacheprovider)
[ -n "$KEXPR" ] && PYTEST+=(-k "$KEXPR")
"${PYTEST[@]}" 2>&1 | tee "$OUT/cuda_tests.log" | tail -25
if [ "${SANITIZE:-0}" = 1 ]; then
  for tool in memcheck racecheck; do
    compute-sanitizer --tool $tool --error-exitcode 9 "${PYTEST[@]}" > "$OUT/sanitize_$tool.log" 2>&1
    echo "compute-sanitizer $tool: exit $?"; tail -3 "$OUT/sanitize_$tool.log"
  done
fi
# (a trace every second while the extra steps and benches run: clocks_trace.csv)
nvidia-smi --query-gpu=timestamp,$CLOCKS --format=csv -l 1 > "$OUT/clocks_trace.csv" 2>&1 &
TRACE=$!
[ -n "${EXTRA:-}" ] && bash -c "$EXTRA" 2>&1 | tee "$OUT/extra.log" | tail -40
if [ "${BENCH:-1}" = 1 ]; then
  python3 bench/gemm.py --out "$OUT/bench.json" "$@" 2>&1 | tee "$OUT/bench.log" | tail -80
fi
# Only a few files come back from a device call (the first ones by name): everything under
# $OUT also goes into one archive that sorts first.
kill $TRACE 2>/dev/null
tar czf "$OUT/0_all.tgz" -C "$OUT" --exclude=0_all.tgz . 2>/dev/null || true
