#pragma once
// a16w4 / mxfp4 GEMV v7, the default for 17..32 tokens where neither the wgmma (full 128-row tiles,
// session 8) nor v8 takes them (w4_ops.cpp gemv_uses_regs; measured
// in session 4: faster than v6 at 32 tokens, slower at 1..16): the same arithmetic as
// w4_gemv.cuh, streamed the way the a16w8 GEMV streams: no shared memory.
//  - weights: each thread loads its two 16-byte words per 128-element block straight into
//    registers, kUnroll blocks ahead (the w4 layout v3 addresses of w4_gemv.cuh's cp.async);
//  - x: read per 32-element step from global (L1/L2; 16 bytes per token tile), in the K order
//    of the layout, instead of staging the K slice in shared memory first;
//  - the zero-point term's sum of x per group comes from the tensor core: one more MMA per
//    step with an all-ones A operand gives sum_k x[token, k] in exactly the C layout the
//    promotion needs (no shared-memory chunk sums, no shuffles);
//  - scales and zero points are read from global at each promotion (two rows per thread).
// Hypothesis under test: v6's shared-memory staging (x slice, sums, scales, ring) before and
// around the weight stream is what holds it at half of HBM bandwidth.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>
#include <type_traits>

#include "gemm/w4/w4_gemv.cuh"  // Magic, codes_to_pair, e2m1_to_pair
#include "gemm/w4/w4_params.h"
#include "lowbit/gemv_store.cuh"
#include "lowbit/numerics.h"
#include "lowbit/ptx/convert.cuh"
#include "lowbit/ptx/memory.cuh"
#include "lowbit/ptx/mma.cuh"
#include "lowbit/w4_layout.h"

namespace lowbit::w4 {

// kPipe (v7b; default for mxfp4 at 17..32 tokens, LOWBIT_A16W4_GEMV=pipe forces it): v7
// issues kUnroll blocks' loads, then computes all of them with nothing in flight, and every g128
// promotion waits on its scale / zero loads from L2. v7b keeps a ring of kUnroll blocks in
// registers: computing block b is followed by the load of block b + kUnroll into its slot, so
// kUnroll - 1 blocks stay in flight during the compute; with groups of 128 each slot also
// carries its block's scales and zero points, loaded with the weights. (8 and 32 tokens; 16
// keep v7's loop.) Measured (H100, session 5): the hypothesis that the promotion chain held v7
// back failed: at 1..8 tokens v7b is 5-15% faster than v7 and still 15-40% slower than v6; at
// 32 tokens int4 loses 13% to v7, mxfp4 gains 4-8% (bench/NOTES.md).
template <typename T, int kTiles, int kChunks, bool kZeros, bool kMx, bool kPipe = false>
__global__ void __launch_bounds__(kGemvThreads, gemv_regs_ctas_per_sm(kTiles))
    a16w4_gemv_regs_kernel(const GemvParams p) {
  static_assert(kTiles == 1 || kTiles == 2 || kTiles == 4, "8, 16 or 32 tokens");
  static_assert(kChunks == 0 || kChunks == 1 || kChunks == 2 || kChunks == 4, "groups of 32, 64, 128 or per row");
  static_assert(!kMx || (kChunks == 1 && !kZeros), "MX: one E8M0 scale per 32 elements, no zero point");
  constexpr bool kSumX = !kMx;              // the zero-point term needs sum x (z = 8 when symmetric)
  // v7b's ring keeps every slot live: at 16 tokens (85 registers, 2 slots) it spilled 36-76
  // bytes, so 16 tokens keep v7's loop; at 8 tokens 3 slots (4 spilled 60-176 bytes).
  constexpr bool kRing = kPipe && kTiles != 2;
  constexpr int kUnroll = kTiles == 1 ? (kRing ? 3 : 4) : 2;  // blocks in flight per thread
  using Scale = std::conditional_t<kMx, uint8_t, T>;

  const auto [row_cta, split, k_begin, k_len, lane, warp, grp, tig, r0, r1, words, nb, block0, tile_row0, full_tile,
              full_blocks] = GemvCoords(p);
  const T* x = static_cast<const T*>(p.x);
  const int r0c = min(r0, p.N - 1), r1c = min(r1, p.N - 1);  // rows past N: clamped, never stored
  const uint32_t* tile = p.w + size_t(min(tile_row0, p.N - 1)) * words;

  // Block b of the slice: this thread's logical words 4j + tig (j = 0..3) of rows r0 and r1.
  auto load_block = [&](int b, uint4& c0, uint4& c1) {
    const int blk = block0 + b;
    if (b >= nb) {
      c0 = c1 = make_uint4(0, 0, 0, 0);
    } else if (full_tile && blk < full_blocks) {  // one 1 KB chunk per warp (layout v3)
      const uint32_t* chunk = tile + size_t(blk) * 256 + 16 * grp + 4 * tig;
      c0 = ptx::ld_global_nc_v4(chunk);
      c1 = ptx::ld_global_nc_v4(chunk + 128);
    } else {  // a partial tile or a partial last block: word by word (words past K: zero)
      // w4_layout.h stored_index, specialized (32-bit, no divisions): the rows of a partial
      // tile keep the per-row layout (full blocks transposed: logical word 4j + tig at
      // 16 blk + 4 tig + j); a full tile's partial last block is row after row, logical order.
      const int pw = words - full_blocks * kBlockWords;
      auto word = [&](int row, int i_in_tile, int j) -> uint32_t {
        const int l = blk * kBlockWords + 4 * j + tig;
        if (l >= words) return 0u;
        int idx;
        if (!full_tile) idx = row * words + (blk < full_blocks ? blk * kBlockWords + 4 * tig + j : l);
        else idx = tile_row0 * words + full_blocks * 256 + pw * i_in_tile + (l - full_blocks * kBlockWords);
        return __ldg(p.w + idx);
      };
      c0 = make_uint4(word(r0c, grp, 0), word(r0c, grp, 1), word(r0c, grp, 2), word(r0c, grp, 3));
      c1 = make_uint4(word(r1c, grp + 8, 0), word(r1c, grp + 8, 1), word(r1c, grp + 8, 2), word(r1c, grp + 8, 3));
    }
  };

  float total[kTiles][4], acc[kTiles][4], sum_x[kTiles][4];  // (sum_x: unused for MX)
#pragma unroll
  for (int t = 0; t < kTiles; ++t)
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      total[t][i] = 0.f, acc[t][i] = 0.f, sum_x[t][i] = 0.f;
    }

  // Fold one group's sums into total: s * (sum q x - z * sum x), or 2^e * sum v x (MX).
  const Scale* scales = static_cast<const Scale*>(p.scales);
  const T* zeros = static_cast<const T*>(p.zeros);
  const int groups = kChunks == 0 ? 1 : p.K / p.group;
  // (fold: the promotion with this group's scales and zero points, already in registers)
  auto fold = [&](float s0, float s1, float z0, float z1) {
#pragma unroll
    for (int t = 0; t < kTiles; ++t) {
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        const float s = i < 2 ? s0 : s1;
        if constexpr (kSumX) {
          total[t][i] += s * (acc[t][i] - (i < 2 ? z0 : z1) * sum_x[t][i]);
          sum_x[t][i] = 0.f;
        } else {
          total[t][i] += s * acc[t][i];
        }
        acc[t][i] = 0.f;
      }
    }
  };
  auto promote = [&](int g) {
    const size_t i0 = size_t(r0c) * groups + g, i1 = size_t(r1c) * groups + g;
    float s0, s1;
    if constexpr (kMx) s0 = e8m0_to_float(scales[i0]), s1 = e8m0_to_float(scales[i1]);
    else s0 = ptx::to_f32(scales[i0]), s1 = ptx::to_f32(scales[i1]);
    const float z0 = kZeros ? ptx::to_f32(zeros[i0]) : 8.f, z1 = kZeros ? ptx::to_f32(zeros[i1]) : 8.f;
    fold(s0, s1, z0, z1);
  };

  // kPipe with groups of 128: block b's group is block0 + b; its scales / zero points
  // (as T; rows clamped like the weights; past the slice: unused).
  constexpr bool kPrefetch = kRing && kChunks == 4 && !kMx;
  struct GroupVals {  // the two rows' 16-bit values, packed (row r0 low, r1 high)
    uint32_t s, z;
  };
  auto bits = [](T v) { return uint32_t(*reinterpret_cast<const uint16_t*>(&v)); };
  auto unpack = [](uint32_t packed, int hi) {
    const uint16_t b = uint16_t(hi ? packed >> 16 : packed);
    return ptx::to_f32(*reinterpret_cast<const T*>(&b));
  };
  auto load_group = [&](int b) {
    GroupVals v{0u, 0u};
    if constexpr (kPrefetch) {
      if (b < nb) {
        const size_t i0 = size_t(r0c) * groups + block0 + b, i1 = size_t(r1c) * groups + block0 + b;
        v.s = bits(scales[i0]) | bits(scales[i1]) << 16;
        if constexpr (kZeros) v.z = bits(zeros[i0]) | bits(zeros[i1]) << 16;
      }
    }
    return v;
  };

  auto compute_block = [&](int b, const uint4& c0, const uint4& c1, const GroupVals& gv) {
    const uint32_t wr0[4] = {c0.x, c0.y, c0.z, c0.w}, wr1[4] = {c1.x, c1.y, c1.z, c1.w};
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const int k_local = b * kBlockElems + 32 * j;  // first element of this 32-chunk in the slice
      if (k_local >= k_len) break;                   // a partial last block
      uint4 xv[kTiles];  // x[token][32 j + 8 tig .. + 7]: the K order of this thread's word j
#pragma unroll
      for (int t = 0; t < kTiles; ++t) {
        const int tok = t * 8 + grp;
        xv[t] = tok < p.M ? __ldg(reinterpret_cast<const uint4*>(x + size_t(tok) * p.K + k_begin + k_local + 8 * tig))
                          : make_uint4(0, 0, 0, 0);
      }
      mma_chunk<T, kTiles, kMx, kSumX>(acc, sum_x, wr0[j], wr1[j], xv);
      if constexpr (kPrefetch) {
        if (j == 3)
          fold(unpack(gv.s, 0), unpack(gv.s, 1), kZeros ? unpack(gv.z, 0) : 8.f, kZeros ? unpack(gv.z, 1) : 8.f);
      } else if constexpr (kChunks > 0) {
        if (j % kChunks == kChunks - 1) promote((k_begin + k_local) / p.group);
      }
    }
  };

  if constexpr (kRing) {
    // A ring of kUnroll blocks in registers; slot u holds block b0 + u.
    uint4 c0[kUnroll], c1[kUnroll];
    GroupVals gv[kUnroll];
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) load_block(u, c0[u], c1[u]), gv[u] = load_group(u);
    for (int b0 = 0; b0 < nb; b0 += kUnroll) {
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) {
        if (b0 + u < nb) compute_block(b0 + u, c0[u], c1[u], gv[u]);
        load_block(b0 + u + kUnroll, c0[u], c1[u]);  // past the slice: zeros, no access
        gv[u] = load_group(b0 + u + kUnroll);
      }
    }
  } else {
    for (int b0 = 0; b0 < nb; b0 += kUnroll) {
      uint4 c0[kUnroll], c1[kUnroll];
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) load_block(b0 + u, c0[u], c1[u]);  // all loads first
#pragma unroll
      for (int u = 0; u < kUnroll; ++u)
        if (b0 + u < nb) compute_block(b0 + u, c0[u], c1[u], GroupVals{0u, 0u});
    }
  }
  if constexpr (kChunks == 0) promote(0);  // one group per row: this slice's share

  const T* bias = static_cast<const T*>(p.bias);
  T* out = static_cast<T*>(p.out);
  gemv_store<kTiles, kGemvRows, kGemvThreads>(
      total, r0, r1, tig, GemvSplit{p.M, p.N, p.splits, split, row_cta, p.partial, p.arrivals},
      [&](float v, int tok, int row) {
        out[size_t(tok) * p.N + row] = ptx::from_f32<T>(bias ? v + ptx::to_f32(bias[row]) : v);
      });
}

}  // namespace lowbit::w4
