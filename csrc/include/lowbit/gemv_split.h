#pragma once
// Host side of the GEMVs' K split (the device side is lowbit/gemv_store.cuh): how many
// slices of K a grid of row CTAs gets, and the fp32 partials and arrival counters the last
// CTA of a row block reduces. Shared by the a16w4 / mxfp4 and a16w8 GEMVs (C++ op glue).
#include <ATen/ops/empty.h>
#include <ATen/ops/from_blob.h>
#include <ATen/ops/zeros.h>
#include <c10/cuda/CUDAStream.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <mutex>
#include <utility>

#include "lowbit/env.h"

namespace lowbit {

// Tiles of 8 tokens (mma.sync's N side) both GEMVs run for M <= 32 tokens: 1, 2 or 4.
constexpr int gemv_token_tiles(int64_t M) { return M <= 8 ? 1 : M <= 16 ? 2 : 4; }

struct KSplit {
  int64_t slice_steps;  // K steps (blocks / chunks) per split
  int64_t splits;       // no empty split
};

// One wave: row CTAs x splits fill the resident CTA slots (the kernel's launch bounds x SMs)
// at most once; rounding up instead left a second, nearly empty wave (bench/NOTES.md a16w8 v2).
inline KSplit one_wave_split(int64_t steps, int64_t row_ctas, int64_t slots) {
  const int64_t splits = std::min(steps, std::max<int64_t>(1, slots / row_ctas));
  const int64_t slice = (steps + splits - 1) / splits;
  return {slice, (steps + slice - 1) / slice};
}

// The warp-streaming GEMV (a16w4 v8): `units` warps per K split
// (one row unit each) and about `warps` warps in all, each split at least one K step.
inline KSplit warp_stream_split(int64_t steps, int64_t units, int64_t warps) {
  const int64_t splits = std::clamp<int64_t>((warps + units / 2) / units, 1, steps);
  const int64_t slice = (steps + splits - 1) / splits;
  return {slice, (steps + slice - 1) / slice};
}

// Arrival counters at zero for a kernel on the current stream. The kernels leave them at zero
// (the last arrival resets its counter, gemv_store.cuh), so they live in a module-global array
// (split_counters.cu: zero at load, no allocation, no memset node before every split GEMV / wgmma,
// which at M = 1 was one of two graph nodes), one slot per (device, stream), since kernels on two
// streams may run at once. A stream past the slots, or a kernel needing more counters than a
// slot holds, gets fresh zeroed ones per call. LOWBIT_SPLIT_COUNTERS=zeros: always fresh (A/B).
constexpr int kCounterSlots = 16;
constexpr int kCountersPerSlot = 16384;
int* split_counter_array();  // the current device's kCounterSlots x kCountersPerSlot ints

inline at::Tensor zeroed_counters(int64_t n, const at::TensorOptions& opts) {
  static const bool per_call = env::is("LOWBIT_SPLIT_COUNTERS", "zeros");
  auto fresh = [&] { return at::zeros({n}, opts.dtype(at::kInt)); };
  if (per_call || n > kCountersPerSlot) return fresh();
  static std::mutex mutex;
  static std::map<std::pair<int, cudaStream_t>, int*> slot_of;
  static std::map<int, int> slots_used;
  const int device = opts.device().index();
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream(device).stream();
  int* slot = nullptr;
  {
    std::lock_guard<std::mutex> lock(mutex);
    auto it = slot_of.find({device, stream});
    if (it != slot_of.end()) {
      slot = it->second;
    } else if (slots_used[device] < kCounterSlots) {
      slot = split_counter_array() + int64_t(slots_used[device]++) * kCountersPerSlot;
      slot_of[{device, stream}] = slot;
    }
  }
  if (!slot) return fresh();
  return at::from_blob(slot, {n}, opts.dtype(at::kInt));
}

// fp32 partials [splits][M][N] and zeroed arrival counters [row CTAs], when splits > 1.
struct SplitBuffers {
  at::Tensor partial, arrivals;
  float* partial_ptr() { return partial.defined() ? partial.data_ptr<float>() : nullptr; }
  int* arrivals_ptr() { return arrivals.defined() ? arrivals.data_ptr<int>() : nullptr; }
};
inline SplitBuffers split_buffers(int64_t splits, int64_t M, int64_t N, int64_t row_ctas,
                                  const at::TensorOptions& opts) {
  if (splits <= 1) return {};
  return {at::empty({splits, M, N}, opts.dtype(at::kFloat)), zeroed_counters(row_ctas, opts)};
}

}  // namespace lowbit
