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
