#pragma once
// Thread-block-cluster instructions, one helper each (sm_90).
#include <cstdint>

namespace lowbit::ptx {

// This CTA's rank inside its cluster.
__device__ __forceinline__ uint32_t cluster_ctarank() {
  uint32_t r;
  asm volatile("mov.u32 %0, %%cluster_ctarank;" : "=r"(r));
  return r;
}

// All threads of all CTAs of the cluster meet here (barriers initialized before, shared
// memory of the peers still alive after).
__device__ __forceinline__ void cluster_sync() {
  asm volatile("barrier.cluster.arrive.release.aligned;\nbarrier.cluster.wait.acquire.aligned;" ::: "memory");
}

// The two halves of cluster_sync, for work in between: arrive (relaxed: orders nothing, e.g.
// "this CTA is running" before its shared memory may be written by peers), then wait.
__device__ __forceinline__ void cluster_arrive_relaxed() {
  asm volatile("barrier.cluster.arrive.relaxed.aligned;" ::: "memory");
}
__device__ __forceinline__ void cluster_wait() { asm volatile("barrier.cluster.wait.aligned;" ::: "memory"); }

// A store into a peer's shared memory (a shared::cluster address: cluster_map_shared), made
// visible to the peer by a cluster barrier (cluster_sync's release / acquire).
__device__ __forceinline__ void st_shared_cluster(uint32_t remote_addr, uint32_t v) {
  asm volatile("st.shared::cluster.u32 [%0], %1;" ::"r"(remote_addr), "r"(v) : "memory");
}
__device__ __forceinline__ void st_shared_cluster(uint32_t remote_addr, double v) {
  asm volatile("st.shared::cluster.f64 [%0], %1;" ::"r"(remote_addr), "d"(v) : "memory");
}

// The shared::cluster address of the same shared-memory offset in CTA `rank` of the cluster.
__device__ __forceinline__ uint32_t cluster_map_shared(uint32_t local_smem_addr, uint32_t rank) {
  uint32_t remote;
  asm volatile("mapa.shared::cluster.u32 %0, %1, %2;" : "=r"(remote) : "r"(local_smem_addr), "r"(rank));
  return remote;
}

// Arrive on the mbarrier at the same shared-memory offset in CTA `rank` of the cluster: a
// consumer releases a stage that a peer's multicast load writes too.
__device__ __forceinline__ void mbarrier_arrive_cluster(uint64_t* bar, uint32_t rank) {
  const uint32_t remote = cluster_map_shared(static_cast<uint32_t>(__cvta_generic_to_shared(bar)), rank);
  // Default (.release.cta) semantics, as CUTLASS's ClusterBarrier::arrive(cta_id): the
  // consumer only read the stage (through wgmma, already complete), so it has no writes a
  // cluster-scope release would have to order; .release.cluster was the suspect in the
  // 2x-slower cluster path (bench/NOTES.md, fp8 v7).
  asm volatile("mbarrier.arrive.shared::cluster.b64 _, [%0];" ::"r"(remote) : "memory");
}

// 16 bytes into a peer's shared memory (shared::cluster addresses of the data and of the peer's
// mbarrier, cluster_map_shared), counted as 16 transaction bytes on that mbarrier when they land:
// the peer's wait on it then sees them, with no memory fence on this side.
__device__ __forceinline__ void st_async_v4(uint32_t remote_addr, const uint4& v, uint32_t remote_bar) {
  asm volatile("st.async.shared::cluster.mbarrier::complete_tx::bytes.v4.b32 [%0], {%1, %2, %3, %4}, [%5];" ::"r"(
                   remote_addr),
               "r"(v.x), "r"(v.y), "r"(v.z), "r"(v.w), "r"(remote_bar)
               : "memory");
}

// 2-D TMA load delivered to the same shared-memory offset (and mbarrier offset) in every
// CTA of `cta_mask`: one L2 read feeds several SMs.
__device__ __forceinline__ void tma_load_2d_multicast(void* dst, const void* map, uint64_t* bar, int32_t c_inner,
                                                      int32_t c_outer, uint16_t cta_mask) {
  asm volatile(
      "cp.async.bulk.tensor.2d.shared::cluster.global.tile.mbarrier::complete_tx::bytes.multicast::cluster [%0], [%1, "
      "{%3, %4}], [%2], %5;" ::"r"(static_cast<uint32_t>(__cvta_generic_to_shared(dst))),
      "l"(reinterpret_cast<uint64_t>(map)), "r"(static_cast<uint32_t>(__cvta_generic_to_shared(bar))), "r"(c_inner),
      "r"(c_outer), "h"(cta_mask)
      : "memory");
}

}  // namespace lowbit::ptx
