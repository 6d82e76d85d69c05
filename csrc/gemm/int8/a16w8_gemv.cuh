#pragma once
// a16w8 at small M (decode): a memory-bound tensor-core GEMV on plain row-major int8 weights.
//
//   y[m, n] = s[n] * sum_k q[n, k] x[m, k]   (+ bias[n])
//
// The int8 codes become 16-bit values exactly (ptx::s8x2_to_pair: |q| <= 128 fits bf16 and
// fp16), mma.sync m16n8k16 multiplies them by x exactly and sums in fp32, and the per-channel
// scale is applied once in fp32 at the end: the result equals the fp32 reference up to
// summation order, and no weight is ever rounded.
//
// Work split: a CTA of 8 warps owns 128 rows (16 per warp: mma's M side) and one K slice
// (blockIdx.y); tokens ride on mma's N side in 1, 2 or 4 tiles of 8. Each thread loads 16
// bytes of each of its two rows (g and g + 8) per 64-element chunk, kUnroll chunks ahead.
// K order inside an MMA is ours to choose, as long as x uses the same: for k16 step j of a
// chunk, thread tig's A slots (2 tig, 2 tig + 1, 2 tig + 8, 2 tig + 9) hold weight bytes
// 16 tig + 4 j + (0, 1, 2, 3), and its B slots hold x at the same four k, i.e. 8 contiguous
// bytes of x: no shuffles, no prepacked layout.
//
// kMx: MXFP8 weights (e4m3 bytes, E8M0 scale per 32 along K; bf16 x): a thread's 16 bytes of a
// chunk start at a multiple of 16, so they lie in one 32-block and share one scale, applied
// exactly while the bytes become bf16 (ptx::e4m3x2_scaled_to_bf16x2); the sums then chain
// over all of K with no promotion and no per-channel scale.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>
#include <type_traits>

#include "gemm/int8/a16w8_params.h"
#include "lowbit/gemv_store.cuh"
#include "lowbit/numerics.h"
#include "lowbit/ptx/convert.cuh"
#include "lowbit/ptx/memory.cuh"
#include "lowbit/ptx/mma.cuh"

namespace lowbit::int8 {

// One 64-element chunk of rows g and g + 8 (c0 / c1: the thread's 16 bytes of each, at k = 16 tig)
// against x's 16 values at the same k per token tile (xv[t][0..1]): 4 k16 MMAs. The bytes become
// 16-bit values exactly: int8 codes (ptx::s8x2_to_pair), or e4m3 times their E8M0 scale sc0 / sc1
// (kMx, bf16).
template <typename T, int kTiles, bool kMx>
__device__ __forceinline__ void rows8_mma_chunk(float (&acc)[kTiles][4], const uint4& c0, const uint4& c1,
                                                const uint4 (&xv)[kTiles][2], float sc0, float sc1) {
  const uint32_t wr0[4] = {c0.x, c0.y, c0.z, c0.w}, wr1[4] = {c1.x, c1.y, c1.z, c1.w};
#pragma unroll
  for (int j = 0; j < 4; ++j) {  // k16 step j: bytes 4 j .. 4 j + 3 of the thread's 16
    uint32_t a[4];
    if constexpr (kMx) {
      a[0] = ptx::e4m3x2_scaled_to_bf16x2(wr0[j], 0, sc0), a[1] = ptx::e4m3x2_scaled_to_bf16x2(wr1[j], 0, sc1);
      a[2] = ptx::e4m3x2_scaled_to_bf16x2(wr0[j], 2, sc0), a[3] = ptx::e4m3x2_scaled_to_bf16x2(wr1[j], 2, sc1);
    } else {
      a[0] = ptx::s8x2_to_pair<T>(wr0[j], 0), a[1] = ptx::s8x2_to_pair<T>(wr1[j], 0);
      a[2] = ptx::s8x2_to_pair<T>(wr0[j], 2), a[3] = ptx::s8x2_to_pair<T>(wr1[j], 2);
    }
#pragma unroll
    for (int t = 0; t < kTiles; ++t) {
      const uint4& h = xv[t][j / 2];  // step j: x values 4j .. 4j + 3 = words 2 (j % 2), + 1
      const uint32_t b0 = (j % 2) ? h.z : h.x, b1 = (j % 2) ? h.w : h.y;
      ptx::mma_m16n8k16<T>(acc[t], a, b0, b1);
    }
  }
}

template <typename T, int kTiles, bool kMx>
__global__ void __launch_bounds__(kA16w8Threads, a16w8_ctas_per_sm(kTiles)) a16w8_gemv_kernel(const A16w8Params p) {
  static_assert(kTiles == 1 || kTiles == 2 || kTiles == 4, "8, 16 or 32 tokens");
  static_assert(!kMx || std::is_same_v<T, __nv_bfloat16>, "MXFP8 weights: bf16 x (their range)");
  static_assert(kA16w8Chunk % 32 == 0, "a thread's 16 bytes must stay inside one MX block");
  // 4 chunks (128 bytes per thread) in flight: enough bytes per SM for HBM at 4 CTAs per SM.
  constexpr int kUnroll = 4;
  const int row_cta = blockIdx.x, split = blockIdx.y;
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  const int grp = lane / 4, tig = lane % 4;
  const int r0 = row_cta * kA16w8Rows + warp * 16 + grp, r1 = r0 + 8;
  const int8_t* w0 = p.w + size_t(min(r0, p.N - 1)) * p.K;  // rows past N: clamped, never stored
  const int8_t* w1 = p.w + size_t(min(r1, p.N - 1)) * p.K;
  const int mx_blocks = p.K / 32;
  const uint8_t* s0 = kMx ? p.w_mx_scale + size_t(min(r0, p.N - 1)) * mx_blocks : nullptr;
  const uint8_t* s1 = kMx ? p.w_mx_scale + size_t(min(r1, p.N - 1)) * mx_blocks : nullptr;
  const T* x = static_cast<const T*>(p.x);
  const int k_begin = split * p.k_slice, k_end = min(p.K, k_begin + p.k_slice);

  float acc[kTiles][4];
#pragma unroll
  for (int t = 0; t < kTiles; ++t)
#pragma unroll
    for (int i = 0; i < 4; ++i) acc[t][i] = 0.f;

  // This thread's 16 bytes of a chunk start at k0 + 16 tig; K % 16 == 0, so they are either
  // all inside the row or all past its end (zeros then).
  auto load_w = [&](const int8_t* row, int k0) {
    const int k = k0 + 16 * tig;
    return k < k_end ? ptx::ld_global_nc_v4(row + k) : make_uint4(0, 0, 0, 0);
  };
  // kMx: the E8M0 byte of this thread's 32-block of a chunk (past the row's end: unused). The
  // bytes of the kUnroll chunks in flight are packed into one register per row (at 64
  // registers a thread, kUnroll floats per row spilled).
  auto load_scale = [&](const uint8_t* row, int k0) {
    const int k = k0 + 16 * tig;
    return k < k_end ? uint32_t(__ldg(row + k / 32)) : 127u;
  };
  auto compute = [&](int k0, const uint4& c0, const uint4& c1, float sc0, float sc1) {
    const int k = k0 + 16 * tig;
    uint4 xv[kTiles][2];  // x[tok][k .. k + 15]: 16 values, 4 per k16 step
#pragma unroll
    for (int t = 0; t < kTiles; ++t) {
      const int tok = t * 8 + grp;
      const bool ok = tok < p.M && k < k_end;
      const uint4* src = reinterpret_cast<const uint4*>(x + size_t(ok ? tok : 0) * p.K + (ok ? k : 0));
      xv[t][0] = ok ? __ldg(src) : make_uint4(0, 0, 0, 0);
      xv[t][1] = ok ? __ldg(src + 1) : make_uint4(0, 0, 0, 0);
    }
    rows8_mma_chunk<T, kTiles, kMx>(acc, c0, c1, xv, sc0, sc1);
  };

  for (int k0 = k_begin; k0 < k_end; k0 += kUnroll * kA16w8Chunk) {
    static_assert(kUnroll <= 4, "the scale bytes of the chunks in flight: one 32-bit register per row");
    uint4 c0[kUnroll], c1[kUnroll];
    uint32_t sc0 = 0, sc1 = 0;
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {  // all loads first: kUnroll x 32 bytes in flight
      c0[u] = load_w(w0, k0 + u * kA16w8Chunk);
      c1[u] = load_w(w1, k0 + u * kA16w8Chunk);
      if constexpr (kMx) {
        sc0 |= load_scale(s0, k0 + u * kA16w8Chunk) << (8 * u);
        sc1 |= load_scale(s1, k0 + u * kA16w8Chunk) << (8 * u);
      }
    }
#pragma unroll
    for (int u = 0; u < kUnroll; ++u)
      if (k0 + u * kA16w8Chunk < k_end)
        compute(k0 + u * kA16w8Chunk, c0[u], c1[u], kMx ? e8m0_to_float(uint8_t(sc0 >> (8 * u))) : 1.f,
                kMx ? e8m0_to_float(uint8_t(sc1 >> (8 * u))) : 1.f);
  }

  const T* bias = static_cast<const T*>(p.bias);
  T* out = static_cast<T*>(p.out);
  gemv_store<kTiles, kA16w8Rows, kA16w8Threads>(
      acc, r0, r1, tig, GemvSplit{p.M, p.N, p.splits, split, row_cta, p.partial, p.arrivals},
      [&](float v, int tok, int row) {
        // the reference's order: (sum * scale) + bias in fp32, one rounding
        if constexpr (!kMx) v = __fmul_rn(v, p.w_scale[row]);
        if (bias) v = __fadd_rn(v, ptx::to_f32(bias[row]));
        out[size_t(tok) * p.N + row] = ptx::from_f32<T>(v);
      });
}

}  // namespace lowbit::int8
