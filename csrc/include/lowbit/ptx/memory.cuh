#pragma once
// Global-memory access instructions, one helper each.
#include <cstdint>

namespace lowbit::ptx {

// 16-byte load through the non-coherent (read-only) path: the data is not written
// during the kernel, and 16 bytes per thread is the widest load.
__device__ __forceinline__ uint4 ld_global_nc_v4(const void* p) {
  uint4 v;
  asm volatile("ld.global.nc.v4.u32 {%0, %1, %2, %3}, [%4];"
               : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
               : "l"(p));
  return v;
}

}  // namespace lowbit::ptx

namespace lowbit::ptx {

// Asynchronous global -> shared copies (cp.async, sm_80+): the data lands in shared memory
// without passing through registers, so a warp can keep many loads in flight cheaply.
// `bytes` valid source bytes; the rest of the destination is zero-filled (0 = all zeros,
// nothing read).
// 32 bits from shared memory through a generic pointer into it: an LDS, where a pointer the
// compiler cannot prove shared (e.g. one realigned through an integer) becomes a generic LD.
// volatile: kept after the mbarrier wait that makes the data visible.
__device__ __forceinline__ uint32_t ld_shared_b32(const void* p) {
  uint32_t v;
  asm volatile("ld.shared.b32 %0, [%1];" : "=r"(v) : "r"(static_cast<uint32_t>(__cvta_generic_to_shared(p))));
  return v;
}

// 16 bytes from shared memory, the same way (the 4-bit wgmma's weight chunks: a plain uint4
// read of the realigned dynamic shared memory compiled to a generic LD.E.128).
// (At a shared-window address, smem_addr.)
__device__ __forceinline__ uint4 ld_shared_v4(uint32_t addr) {
  uint4 v;
  asm volatile("ld.shared.v4.u32 {%0, %1, %2, %3}, [%4];" : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w) : "r"(addr));
  return v;
}

__device__ __forceinline__ uint4 ld_shared_v4(const void* p) {
  return ld_shared_v4(static_cast<uint32_t>(__cvta_generic_to_shared(p)));
}

// The same pointer, through a move the compiler cannot see into: loads through it cannot be
// hoisted above the volatile asm before it (e.g. a barrier), which read-only (__ldg) loads
// otherwise may be, to the cost of registers.
template <typename T>
__device__ __forceinline__ T* opaque(T* p) {
  uint64_t v = reinterpret_cast<uint64_t>(p);
  asm volatile("mov.b64 %0, %0;" : "+l"(v));
  return reinterpret_cast<T*>(v);
}

// 32 bits to shared memory at a shared-window address (smem_addr).
__device__ __forceinline__ void st_shared_b32(uint32_t addr, uint32_t v) {
  asm volatile("st.shared.b32 [%0], %1;" ::"r"(addr), "r"(v) : "memory");
}

__device__ __forceinline__ void st_shared_v4(void* p, const uint4& v) {
  asm volatile("st.shared.v4.u32 [%0], {%1, %2, %3, %4};" ::"r"(static_cast<uint32_t>(__cvta_generic_to_shared(p))),
               "r"(v.x), "r"(v.y), "r"(v.z), "r"(v.w)
               : "memory");
}

__device__ __forceinline__ void cp_async_16(void* smem_dst, const void* src, uint32_t bytes) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;" ::"r"(
                   static_cast<uint32_t>(__cvta_generic_to_shared(smem_dst))),
               "l"(src), "r"(bytes)
               : "memory");
}
__device__ __forceinline__ void cp_async_4(void* smem_dst, const void* src, uint32_t bytes) {
  asm volatile("cp.async.ca.shared.global [%0], [%1], 4, %2;" ::"r"(
                   static_cast<uint32_t>(__cvta_generic_to_shared(smem_dst))),
               "l"(src), "r"(bytes)
               : "memory");
}
// Close the group of cp.async issued by this thread since the last commit.
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;" ::: "memory"); }
// Wait until at most kPending of this thread's committed groups are still in flight.
template <int kPending>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;" ::"n"(kPending) : "memory");
}

}  // namespace lowbit::ptx
