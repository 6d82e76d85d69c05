#pragma once
// Plain-data parameters of the 4-bit weight kernels, shared by the host planning code
// (w4_ops.cpp, C++ compiler) and the kernels (w4_gemv.cuh, w4_launch.cu, nvcc).
#include <cstdint>

namespace lowbit::w4 {

constexpr int kGemvWarps = 8;                  // warps per CTA, 16 rows each (mma M)
constexpr int kGemvThreads = 32 * kGemvWarps;
constexpr int kGemvRows = 16 * kGemvWarps;     // rows of W per CTA
constexpr int kXPad = 32;                      // elements of padding per token row of x in shared memory
constexpr int kGemvMaxTokens = 32;             // the GEMV path takes M <= 32

struct GemvParams {
  const void* x;          // T (M, K)
  const uint32_t* w;      // int32 (N, K/8), w4 layout v2
  const void* scales;     // T (N, K / group)
  const void* zeros;      // T (N, K / group), or null: symmetric, z = 8
  const void* bias;       // T (N,), or null
  void* out;              // T (M, N)
  float* partial;         // fp32 [splits][M][N], splits > 1
  int* arrivals;          // [row CTAs], zero on entry, splits > 1
  int M, N, K, group;     // group: elements per group (K for one group per row)
  int k_slice;            // elements of K per split: a multiple of 128
  int splits;
};

// Shared memory of one GEMV CTA: the slice of x (tokens x (k_slice + pad)) and its sums per
// 32 elements.
inline int64_t gemv_smem_bytes(int tokens, int k_slice, int elem_bytes) {
  return int64_t(tokens) * (k_slice + kXPad) * elem_bytes + int64_t(tokens) * (k_slice / 32) * 4;
}

}  // namespace lowbit::w4
