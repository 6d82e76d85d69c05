#pragma once
// Warpgroup matrix multiply (wgmma, sm_90a), one helper per instruction; the mma_async
// wrappers themselves are generated (wgmma_gen.inc) because each names N/2 registers.
#include <cstdint>

namespace lowbit::ptx {

// Shared-memory matrix descriptor for a K-major tile stored as rows of 128 bytes with the
// 128-byte swizzle that TMA's CU_TENSOR_MAP_SWIZZLE_128B writes: 8-row groups 1024 bytes
// apart (stride byte offset), leading byte offset unused for this layout (set to 1 as
// CUTLASS does), base offset 0 (tiles start on 1024-byte boundaries). Advancing along K
// inside the 128-byte row is done by adding bytes >> 4 to the start address field.
__device__ __forceinline__ uint64_t smem_desc_k_major_sw128(const void* tile) {
  const uint64_t addr = static_cast<uint32_t>(__cvta_generic_to_shared(tile));
  uint64_t desc = (addr & 0x3FFFF) >> 4;     // bits 0-13: start address >> 4
  desc |= uint64_t(1) << 16;                 // bits 16-29: leading byte offset >> 4
  desc |= uint64_t(1024 >> 4) << 32;         // bits 32-45: stride byte offset >> 4
  desc |= uint64_t(1) << 62;                 // bits 62-63: swizzle mode 1 = 128B
  return desc;
}

// Order this warpgroup's register accesses before the wgmma that follows.
__device__ __forceinline__ void wgmma_fence() { asm volatile("wgmma.fence.sync.aligned;" ::: "memory"); }

// Close the group of wgmma issued since the last commit.
__device__ __forceinline__ void wgmma_commit() { asm volatile("wgmma.commit_group.sync.aligned;" ::: "memory"); }

// Wait until at most kPending committed groups are still in flight.
template <int kPending>
__device__ __forceinline__ void wgmma_wait() {
  static_assert(kPending >= 0 && kPending <= 7, "wgmma.wait_group takes 0..7");
  asm volatile("wgmma.wait_group.sync.aligned %0;" ::"n"(kPending) : "memory");
}

// Keep the compiler from moving accesses of an accumulator register across wgmma
// fences/waits (the asm above cannot name every register it orders).
// One overload per register class: a float fenced through "+r" costs a mov.b32 to an
// integer register and back, and ptxas counts those moves as non-wgmma reads of the
// accumulator, serializing every chained wgmma (C7514).
__device__ __forceinline__ void fence_register(float& r) { asm volatile("" : "+f"(r)::"memory"); }
__device__ __forceinline__ void fence_register(int32_t& r) { asm volatile("" : "+r"(r)::"memory"); }
__device__ __forceinline__ void fence_register(uint32_t& r) { asm volatile("" : "+r"(r)::"memory"); }

#include "lowbit/ptx/wgmma_gen.inc"

}  // namespace lowbit::ptx
