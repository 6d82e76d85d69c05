// The split kernels' arrival counters (lowbit/gemv_split.h): a module-global array, zero when the
// module loads and left at zero by every kernel (the last arrival resets its counter). Memory the
// caching allocator never sees: a buffer it had handed out during a CUDA graph capture (torch.compile's
// cudagraph trees) and that outlived the capture was flagged as an untracked live allocation of
// the graph's pool.
#include <c10/cuda/CUDAException.h>

#include "lowbit/gemv_split.h"

namespace lowbit {
namespace {
__device__ int g_split_counters[kCounterSlots * kCountersPerSlot];
}  // namespace

int* split_counter_array() {
  void* p = nullptr;
  C10_CUDA_CHECK(cudaGetSymbolAddress(&p, g_split_counters));  // this device's copy
  return static_cast<int*>(p);
}

}  // namespace lowbit
