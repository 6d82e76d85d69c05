#pragma once
// Plain-data parameters of the a16w8 GEMV, shared by the host planning code (a16w8_ops.cpp,
// C++ compiler) and the kernel (a16w8_gemv.cuh, nvcc).
#include <cstdint>

namespace lowbit::int8 {

constexpr int kA16w8Warps = 8;
constexpr int kA16w8Threads = 32 * kA16w8Warps;
constexpr int kA16w8Rows = 16 * kA16w8Warps;  // weight rows per CTA
constexpr int kA16w8Chunk = 64;                // K elements per chunk: 4 k16 steps
constexpr int kA16w8MaxTokens = 32;

// The CTAs per SM the kernel's launch bounds leave room for with 1 / 2 / 4 tiles of 8 tokens
// (64 / 85 / 128 registers): the host plan fills those slots once.
constexpr int a16w8_ctas_per_sm(int tiles) { return tiles == 1 ? 4 : tiles == 2 ? 3 : 2; }

// One kernel, two weight formats of 8-bit rows: int8 codes with a per-channel fp32 scale
// (a16w8), or e4m3 codes with an E8M0 scale per 32 along K (MXFP8 weights, bf16 x: mxfp8).
struct A16w8Params {
  const void* x;               // T (M, K)
  const int8_t* w;             // (N, K), row-major: int8, or e4m3 bytes when w_mx_scale is set
  const float* w_scale;        // (N,) per-channel scale; null with w_mx_scale
  const uint8_t* w_mx_scale;   // E8M0 (N, K / 32) for e4m3 weights, else null
  const void* bias;      // T (N,) or null
  void* out;             // T (M, N)
  float* partial;        // fp32 [splits][M][N], splits > 1
  int* arrivals;         // [row CTAs], zero on entry, splits > 1
  int M, N, K;
  int k_slice;           // elements of K per split: a multiple of kA16w8Chunk
  int splits;
};

}  // namespace lowbit::int8
