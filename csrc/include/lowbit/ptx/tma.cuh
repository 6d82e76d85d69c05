#pragma once
// Bulk tensor copies (TMA), one helper each. The tensor map is a __grid_constant__ kernel
// parameter (CUtensorMap, made on the host by lowbit/tma_desc.h).
#include <cuda.h>

#include <cstdint>

#include "lowbit/ptx/mbarrier.cuh"

namespace lowbit::ptx {

// Fetch the tensor map into the descriptor cache early, off the critical path.
__device__ __forceinline__ void tma_prefetch_desc(const CUtensorMap* map) {
  asm volatile("prefetch.tensormap [%0];" ::"l"(reinterpret_cast<uint64_t>(map)) : "memory");
}

// 2-D tile load global -> shared, completing `bytes` on `bar`. Coordinates are in
// elements, innermost first; out-of-bounds elements are written as zeros (that is how
// M, N and K tails are handled without branches).
__device__ __forceinline__ void tma_load_2d(void* dst, const CUtensorMap* map, uint64_t* bar, int32_t c_inner,
                                            int32_t c_outer) {
  asm volatile(
      "cp.async.bulk.tensor.2d.shared::cluster.global.tile.mbarrier::complete_tx::bytes [%0], [%1, {%3, %4}], [%2];" ::"r"(
          smem_addr(dst)),
      "l"(reinterpret_cast<uint64_t>(map)), "r"(smem_addr(bar)), "r"(c_inner), "r"(c_outer)
      : "memory");
}

// Same, with an L2 eviction-priority hint (createpolicy): weights streamed once are
// loaded evict-first so they do not push reused activations out of L2.
__device__ __forceinline__ void tma_load_2d_hint(void* dst, const CUtensorMap* map, uint64_t* bar, int32_t c_inner,
                                                 int32_t c_outer, uint64_t policy) {
  asm volatile(
      "cp.async.bulk.tensor.2d.shared::cluster.global.tile.mbarrier::complete_tx::bytes.L2::cache_hint [%0], [%1, {%3, "
      "%4}], [%2], %5;" ::"r"(smem_addr(dst)),
      "l"(reinterpret_cast<uint64_t>(map)), "r"(smem_addr(bar)), "r"(c_inner), "r"(c_outer), "l"(policy)
      : "memory");
}

// An L2 policy that evicts these lines first.
__device__ __forceinline__ uint64_t l2_policy_evict_first() {
  uint64_t p;
  asm volatile("createpolicy.fractional.L2::evict_first.b64 %0, 1.0;" : "=l"(p));
  return p;
}


// 1-D bulk copy global -> shared by the TMA unit (no tensor map): `bytes` (a multiple of 16,
// both addresses 16-byte aligned) land in dst and complete_tx on `bar`. One instruction moves
// a whole contiguous chunk, with none of the per-thread request tracking of cp.async.
__device__ __forceinline__ void bulk_copy_g2s(void* dst, const void* src, uint32_t bytes, uint64_t* bar) {
  asm volatile(
      "cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1], %2, [%3];" ::"r"(
          static_cast<uint32_t>(__cvta_generic_to_shared(dst))),
      "l"(src), "r"(bytes), "r"(static_cast<uint32_t>(__cvta_generic_to_shared(bar)))
      : "memory");
}

// 2-D tile store shared -> global (the epilogue): the box at (c_inner, c_outer) of `map` is
// written from src, laid out as the map's swizzle says; elements outside the tensor are not
// written (that is how M and N tails are clipped). Completion is tracked per thread by bulk
// groups (bulk_commit_group / bulk_wait_group*), not by an mbarrier.
__device__ __forceinline__ void tma_store_2d(const CUtensorMap* map, const void* src, int32_t c_inner,
                                             int32_t c_outer) {
  asm volatile("cp.async.bulk.tensor.2d.global.shared::cta.bulk_group [%0, {%2, %3}], [%1];" ::"l"(
                   reinterpret_cast<uint64_t>(map)),
               "r"(smem_addr(src)), "r"(c_inner), "r"(c_outer)
               : "memory");
}

// Close the group of bulk stores issued by this thread since the last commit.
__device__ __forceinline__ void bulk_commit_group() { asm volatile("cp.async.bulk.commit_group;" ::: "memory"); }

// Wait until at most kPending of this thread's bulk groups are still reading shared memory
// (their source buffers may then be rewritten; the global writes may still be in flight).
template <int kPending>
__device__ __forceinline__ void bulk_wait_group_read() {
  asm volatile("cp.async.bulk.wait_group.read %0;" ::"n"(kPending) : "memory");
}

// Wait until at most kPending of this thread's bulk groups are incomplete (writes done).
template <int kPending>
__device__ __forceinline__ void bulk_wait_group() {
  asm volatile("cp.async.bulk.wait_group %0;" ::"n"(kPending) : "memory");
}

// Order this thread's earlier generic-proxy shared-memory accesses (and those it observed
// through a barrier) before its later async-proxy ones (a bulk copy into a slot just read).
__device__ __forceinline__ void fence_proxy_async_smem() { asm volatile("fence.proxy.async.shared::cta;" ::: "memory"); }

}  // namespace lowbit::ptx
