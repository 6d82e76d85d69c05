#pragma once
// a16w4 / mxfp4 GEMV v8 ("stream"): the default for 1..16 tokens when every 16-row tile and
// every 128-element block is full (N % 16 == 0, K % 128 == 0: the shapes of real models).
// Same arithmetic as v6 (w4_gemv.cuh), written for the fewest instructions per weight byte:
// ncu put v6 at M = 1 at 372 warp instructions per KB of weights and at half of cuBLAS's HBM
// bandwidth, bound by instruction issue and by the ~30% of its instructions outside the loop
// (staging x, sums and scales through shared memory behind CTA barriers, for 8 blocks a warp).
//  - Warps work alone: warp w streams one 16-row tile over one K split (its blocks are
//    consecutive 1 KB chunks in the w4 layout v3), through its own ring of kStreamStages bulk
//    copies. No CTA barrier, no staging prologue; the split is chosen so a warp streams 16-64
//    blocks, and the last warp of a tile to arrive sums the split partials (deterministic).
//  - x comes from global (L1: the warps of a CTA share their K split, so their x slice), 16
//    bytes per token tile per 32 elements, loaded one block ahead at 1..8 tokens (kPrefetch).
//  - Measured (H100, session 6, bench/NOTES.md): M = 1 / 16 2.0-2.7x / 1.4-2.0x cuBLAS bf16
//    (v6: 1.6-2.2x / 1.0-1.4x); ncu at M = 1: 188 instructions per KB, issue 30% busy,
//    latency-bound (a quarter of the stalls wait on the previous block's x / scale loads).
//  - int4 codes enter the tensor core as base + q (one LOP3 per pair: bf16 128 + q, fp16
//    1024 + q, exact); the promotion takes base * sum x off with the zero point:
//    y += s * (sum (base + q) x - (z + base) * sum x), sum x from an all-ones MMA (exact).
//    Cost: the fp32 sums are ~16x (bf16) / ~128x (fp16) larger before that subtraction, so
//    their rounding is that much larger: ~1e-6 (bf16) / ~1e-5 (fp16) of |x| |w|, two orders
//    under the output's rounding (tests/test_cuda_a16w4.py states the tolerance).
//  - Scales (and zero points) of a block: one load per row (the block's 1-4 groups as one
//    2-8 byte vector), issued with the x loads (per channel: the same vector every block).
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>
#include <cstring>
#include <type_traits>

#include "gemm/w4/w4_gemv.cuh"  // Magic, mma_chunk
#include "gemm/w4/w4_params.h"
#include "lowbit/gemv_store.cuh"
#include "lowbit/numerics.h"
#include "lowbit/ptx/convert.cuh"
#include "lowbit/ptx/mbarrier.cuh"
#include "lowbit/ptx/memory.cuh"
#include "lowbit/ptx/tma.cuh"
#include "lowbit/w4_layout.h"

namespace lowbit::w4 {

template <int kBytes>
struct ScaleVec;  // the read-only load of one row's scales for a block: 2, 4 or 8 bytes
template <>
struct ScaleVec<2> {
  using type = unsigned short;
};
template <>
struct ScaleVec<4> {
  using type = unsigned int;
};
template <>
struct ScaleVec<8> {
  using type = uint2;
};

// kTiles: 8-token MMA tiles (M <= 8 kTiles, 1 or 2); kChunks: 32-element chunks per group (1, 2,
// 4 for groups of 32, 64, 128; 0 = one group per row); kMx: mxfp4 (e2m1 codes, E8M0 per 32).
// kPrefetch: x and scales one block ahead (default; LOWBIT_A16W4_STREAM_PREFETCH=0: at the top of
// the block that uses them, v8's first version).
template <typename T, int kTiles, int kChunks, bool kZeros, bool kMx = false, bool kPrefetch = true>
__global__ void __launch_bounds__(kStreamWarps * 32, stream_ctas_per_sm(kTiles, kPrefetch))
    a16w4_gemv_stream_kernel(const GemvParams p) {
  static_assert(kTiles == 1 || kTiles == 2 || kTiles == 4, "8, 16 or 32 tokens");
  static_assert(kTiles != 4 || !kPrefetch, "32 tokens: x loaded at the top of the block (registers)");
  static_assert(kChunks == 0 || kChunks == 1 || kChunks == 2 || kChunks == 4, "groups of 32, 64, 128 or per row");
  static_assert(!kMx || (kChunks == 1 && !kZeros), "MX: one E8M0 scale per 32 elements, no zero point");
  constexpr bool kSumX = !kMx;                           // int4: the (z + base) * sum x term
  constexpr int kGroups = kChunks == 0 ? 1 : 4 / kChunks;  // scale entries per row and block
  using Scale = std::conditional_t<kMx, uint8_t, T>;
  using Vec = typename ScaleVec<kGroups * sizeof(Scale)>::type;  // one load per row and block

  __shared__ __align__(128) uint4 ring[kStreamWarps][kStreamStages][64];  // 1 KB per slot
  __shared__ __align__(8) uint64_t full[kStreamWarps][kStreamStages];

  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, grp = lane / 4, tig = lane % 4;
  const int tiles = p.N / kTileRows;
  const int wid = blockIdx.x * kStreamWarps + warp;
  if (wid >= tiles * p.splits) return;  // a whole warp; nothing below synchronizes the CTA
  // Split-major: the warps of a CTA take consecutive tiles of one split, so they share x's slice in L1.
  const int split = wid / tiles, tile = wid % tiles;
  const int slice_blocks = p.k_slice / kBlockElems;
  const int kb0 = split * slice_blocks;
  const int nb = min(p.K / kBlockElems - kb0, slice_blocks);
  const int words = p.K / 8;
  const uint32_t* src = p.w + size_t(tile) * kTileRows * words + size_t(kb0) * 256;  // block b: + 256 b words
  uint4* slots = &ring[warp][0][0];
  uint64_t* bar = full[warp];

  if (lane == 0) {
#pragma unroll
    for (int s = 0; s < kStreamStages; ++s) ptx::mbarrier_init(&bar[s], 1);
    ptx::fence_barrier_init();
#pragma unroll
    for (int s = 0; s < kStreamStages; ++s) {
      if (s < nb) {
        ptx::mbarrier_arrive_expect_tx(&bar[s], 1024);
        ptx::bulk_copy_g2s(slots + s * 64, src + size_t(s) * 256, 1024, &bar[s]);
      }
    }
  }
  __syncwarp();

  const int r0 = tile * kTileRows + grp, r1 = r0 + 8;
  // x's column grp of token tile t is token 8t + grp; past M it reads token M - 1 instead of
  // zeros (no predicates): those MMA columns are tokens >= M, never stored.
  const T* xp[kTiles];
#pragma unroll
  for (int t = 0; t < kTiles; ++t)
    xp[t] = static_cast<const T*>(p.x) + size_t(min(t * 8 + grp, p.M - 1)) * p.K + size_t(kb0) * kBlockElems + 8 * tig;
  // Scales (N, groups) row-major: this block's kGroups entries of rows r0, r1 are contiguous.
  const int groups = kMx ? p.K / 32 : (kChunks == 0 ? 1 : p.K / p.group);
  const int g0 = kChunks == 0 ? 0 : kb0 * kGroups;
  const Vec* s_row0 = reinterpret_cast<const Vec*>(static_cast<const Scale*>(p.scales) + size_t(r0) * groups + g0);
  const Vec* s_row1 = reinterpret_cast<const Vec*>(static_cast<const Scale*>(p.scales) + size_t(r1) * groups + g0);
  const Vec* z_row0 = kZeros ? reinterpret_cast<const Vec*>(static_cast<const T*>(p.zeros) + size_t(r0) * groups + g0) : nullptr;
  const Vec* z_row1 = kZeros ? reinterpret_cast<const Vec*>(static_cast<const T*>(p.zeros) + size_t(r1) * groups + g0) : nullptr;
  constexpr int kVecStep = kChunks == 0 ? 0 : 1;  // vectors per block (per channel: the same one)
  const uint32_t* refill = src + size_t(kStreamStages) * 256;  // the block kStreamStages ahead

  float total[kTiles][4];
#pragma unroll
  for (int t = 0; t < kTiles; ++t)
#pragma unroll
    for (int i = 0; i < 4; ++i) total[t][i] = 0.f;

  // x and the scales of a block are loaded one block ahead (kPrefetch; registers: In[2], swapped
  // by unrolling the loop by two), so their L1 / L2 latency overlaps a whole block of work; v8's
  // first version loads them at the top of the block that uses them.
  struct In {
    uint4 x[4][kTiles];
    Vec s[2], z[2];
  };
  auto load_in = [&](In& in) {  // pointers advance by a constant per block: no index arithmetic
#pragma unroll
    for (int j = 0; j < 4; ++j)
#pragma unroll
      for (int t = 0; t < kTiles; ++t) in.x[j][t] = ptx::ld_global_nc_v4(xp[t] + 32 * j);
#pragma unroll
    for (int t = 0; t < kTiles; ++t) xp[t] += kBlockElems;
    in.s[0] = __ldg(s_row0);
    in.s[1] = __ldg(s_row1);
    s_row0 += kVecStep, s_row1 += kVecStep;
    if constexpr (kZeros) {
      in.z[0] = __ldg(z_row0);
      in.z[1] = __ldg(z_row1);
      z_row0 += kVecStep, z_row1 += kVecStep;
    }
  };
  auto block = [&](int b, In& in, In& next) {
    if constexpr (kPrefetch) {
      if (b + 1 < nb) load_in(next);
    } else {
      load_in(in);
    }
    const int s = b % kStreamStages;
    // ---- the block's weights: this thread's words of rows grp and grp + 8 (layout v3 chunk)
    ptx::mbarrier_wait(&bar[s], (b / kStreamStages) & 1);
    const uint4 c0 = slots[s * 64 + 4 * grp + tig], c1 = slots[s * 64 + 32 + 4 * grp + tig];
    __syncwarp();  // every lane has read the slot before lane 0 refills it
    if (lane == 0 && b + kStreamStages < nb) {
      ptx::fence_proxy_async_smem();  // the slot's reads (generic proxy) before the copy (async proxy)
      ptx::mbarrier_arrive_expect_tx(&bar[s], 1024);
      ptx::bulk_copy_g2s(slots + s * 64, refill, 1024, &bar[s]);
    }
    refill += 256;

    Scale sc[2][kGroups], zc[2][kGroups];
    memcpy(sc[0], &in.s[0], sizeof(Vec));
    memcpy(sc[1], &in.s[1], sizeof(Vec));
    if constexpr (kZeros) {
      memcpy(zc[0], &in.z[0], sizeof(Vec));
      memcpy(zc[1], &in.z[1], sizeof(Vec));
    }
    const uint32_t wr0[4] = {c0.x, c0.y, c0.z, c0.w}, wr1[4] = {c1.x, c1.y, c1.z, c1.w};
    float acc[kTiles][4], sum_x[kTiles][4];
#pragma unroll
    for (int t = 0; t < kTiles; ++t)
#pragma unroll
      for (int i = 0; i < 4; ++i) acc[t][i] = 0.f, sum_x[t][i] = 0.f;
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      mma_chunk<T, kTiles, kMx, kSumX, !kMx>(acc, sum_x, wr0[j], wr1[j], in.x[j]);
      constexpr int kPer = kChunks == 0 ? 4 : kChunks;  // per channel: fold every block (bounded sums)
      if (j % kPer != kPer - 1) continue;
      const int gi = kChunks == 0 ? 0 : j / kChunks;
#pragma unroll
      for (int t = 0; t < kTiles; ++t) {
        if constexpr (kMx) {
          const float s0 = e8m0_to_float(sc[0][gi]), s1 = e8m0_to_float(sc[1][gi]);
          total[t][0] = fmaf(s0, acc[t][0], total[t][0]);
          total[t][1] = fmaf(s0, acc[t][1], total[t][1]);
          total[t][2] = fmaf(s1, acc[t][2], total[t][2]);
          total[t][3] = fmaf(s1, acc[t][3], total[t][3]);
        } else {
          const float s0 = to_f32(sc[0][gi]), s1 = to_f32(sc[1][gi]);
          const float zb0 = (kZeros ? to_f32(zc[0][gi]) : 8.f) + Magic<T>::kBase;
          const float zb1 = (kZeros ? to_f32(zc[1][gi]) : 8.f) + Magic<T>::kBase;
          total[t][0] = fmaf(s0, fmaf(-zb0, sum_x[t][0], acc[t][0]), total[t][0]);
          total[t][1] = fmaf(s0, fmaf(-zb0, sum_x[t][1], acc[t][1]), total[t][1]);
          total[t][2] = fmaf(s1, fmaf(-zb1, sum_x[t][2], acc[t][2]), total[t][2]);
          total[t][3] = fmaf(s1, fmaf(-zb1, sum_x[t][3], acc[t][3]), total[t][3]);
        }
#pragma unroll
        for (int i = 0; i < 4; ++i) acc[t][i] = 0.f, sum_x[t][i] = 0.f;
      }
    }
  };
  In in[2];
  if constexpr (kPrefetch) {
    if (nb > 0) load_in(in[0]);
    int b = 0;
    for (; b + 1 < nb; b += 2) {
      block(b, in[0], in[1]);
      block(b + 1, in[1], in[0]);
    }
    if (b < nb) block(b, in[0], in[1]);
  } else {
    // one block per iteration: unrolled by two like the prefetching loop, the 16- and 32-token
    // kernels spilled 4 bytes at their register caps
    for (int b = 0; b < nb; ++b) block(b, in[0], in[1]);
  }

  const T* bias = static_cast<const T*>(p.bias);
  T* out = static_cast<T*>(p.out);
  gemv_store_warp<kTiles>(
      total, r0, r1, lane, GemvSplit{p.M, p.N, p.splits, split, tile, p.partial, p.arrivals},
      [&](float v, int tok, int row) { out[size_t(tok) * p.N + row] = from_f32<T>(bias ? v + to_f32(bias[row]) : v); });
}

}  // namespace lowbit::w4
