#pragma once
// a16w4 at small M (decode): a memory-bound tensor-core GEMV. The weights stream from HBM
// once, 16 bytes per thread per 128-element block, and the tokens ride on mma.sync's
// 8-wide N side (1 to 4 tiles of 8 tokens).
//
//   y[m, n] = sum_g s[n, g] * (sum_{k in g} q[n, k] x[m, k] - z[n, g] * sum_{k in g} x[m, k])
//
// which is sum_k (q - z) s x regrouped: the 4-bit codes q (0..15) go through the tensor
// core exactly (LOP3 into a magic exponent, one exact 16-bit subtraction), the sums are
// fp32, and the scale and zero point are applied once per group in fp32 (the
// "promotion"), so the result equals the fp32 reference up to summation order and no
// weight is ever rounded to 16 bits. The per-group sums of x come from shared memory.
//
// Work split: a CTA of 8 warps owns 128 rows (16 per warp: mma's M side) and one slice of
// K; the slice of x lives in shared memory, shared by the 8 warps (so x is read from L2
// once per 128 rows, not per 16). K slices ("splits") give the grid enough CTAs to keep
// HBM busy; each writes fp32 partials and the last CTA of a row block to arrive sums them
// in split order (deterministic) and writes y.
//
// Weight layout: csrc/include/lowbit/w4_layout.h (v2). Thread tig (0..3) of a quad loads
// stored words 4tig..4tig+3 of a 128-element block = logical words tig, 4+tig, 8+tig,
// 12+tig: for each j the quad holds the 32 consecutive elements 32j..32j+31, which feed
// two k16 MMAs (the K order inside an MMA is ours to choose; x is loaded in the same order).
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>
#include <type_traits>

#include "gemm/w4/w4_params.h"
#include "lowbit/ptx/mbarrier.cuh"
#include "lowbit/ptx/memory.cuh"
#include "lowbit/ptx/tma.cuh"
#include "lowbit/gemv_store.cuh"
#include "lowbit/numerics.h"
#include "lowbit/ptx/convert.cuh"
#include "lowbit/ptx/mma.cuh"
#include "lowbit/w4_layout.h"

namespace lowbit::w4 {

using ptx::from_f32;
using ptx::to_f32;

template <typename T>
struct Magic;  // a 16-bit pair whose low mantissa bits take a 4-bit code: value = base + code
template <>
struct Magic<__nv_bfloat16> {
  static constexpr uint32_t kPair = 0x43004300u;  // bf16 128.0: 7 mantissa bits
  static constexpr float kBase = 128.f;
};
template <>
struct Magic<__half> {
  static constexpr uint32_t kPair = 0x64006400u;  // fp16 1024.0: 10 mantissa bits
  static constexpr float kBase = 1024.f;
};

// Codes (bits 0-3 and 16-19 of v) -> the exact 16-bit pair (base + q_lo, base + q_hi), one LOP3.
template <typename T>
__device__ __forceinline__ uint32_t codes_to_biased_pair(uint32_t v) {
  return ptx::lop3_and_or(v, 0x000F000Fu, Magic<T>::kPair);
}

// Codes (bits 0-3 and 16-19 of v) -> the exact 16-bit pair (q_lo, q_hi).
template <typename T>
__device__ __forceinline__ uint32_t codes_to_pair(uint32_t v) {
  return ptx::sub_x2<T>(codes_to_biased_pair<T>(v), Magic<T>::kPair);
}

// e2m1 codes (S E E M in bits 0-3 and 16-19 of v) -> the exact 16-bit pair (e2m1_lo, e2m1_hi).
// S goes to the sign bit and E E M to the two lowest exponent bits and the top mantissa bit:
// the 16-bit value is then e2m1 * 2^-(bias - 1) (bf16: 2^-126, fp16: 2^-14), a subnormal
// exactly when e2m1 is (E = 0), and one exact multiplication by 2^(bias - 1) restores it.
template <typename T>
struct E2m1Place;
template <>
struct E2m1Place<__nv_bfloat16> {
  static constexpr int kShift = 6;                   // E E M -> bits 8..6
  static constexpr uint32_t kRestore = 0x7E807E80u;  // bf16 2^126
};
template <>
struct E2m1Place<__half> {
  static constexpr int kShift = 9;                   // E E M -> bits 11..9
  static constexpr uint32_t kRestore = 0x74007400u;  // fp16 2^14
};
// w shifted left by k bits (k < 0: right by -k); k is a constant once the callers' loops unroll.
__device__ __forceinline__ uint32_t shift_by(uint32_t w, int k) { return k >= 0 ? w << k : w >> -k; }

// The e2m1 pair whose codes sit at bits s .. s + 3 and s + 16 .. s + 19 of w (s = 0, 4, 8, 12: a
// layout word's four pairs), shifted straight from w: E E M by kShift - s, S by 12 - s (none at
// s = 12). Why: e2m1_to_pair(w >> s) shifted twice, and ptxas kept the mask of the double shift
// as its own LOP3 (the inline lop3 below cannot absorb it): 6 instructions a pair, now 5 (4 at
// s = 12); mxfp4's GEMV at M = 1 spends most of its loop here (SASS, session 24).
template <typename T>
__device__ __forceinline__ uint32_t e2m1_pair_at(uint32_t w, int s) {
  constexpr int kS = E2m1Place<T>::kShift;
  const uint32_t mag = shift_by(w, kS - s) & (0x00070007u << kS);
  return ptx::mul_x2<T>(ptx::lop3_and_or(shift_by(w, 12 - s), 0x80008000u, mag), E2m1Place<T>::kRestore);
}
template <typename T>
__device__ __forceinline__ uint32_t e2m1_to_pair(uint32_t v) {
  return e2m1_pair_at<T>(v, 0);
}

template <typename T>
struct OnePair;  // the 16-bit pair (1, 1): the A operand that turns an MMA into a sum of x
template <>
struct OnePair<__nv_bfloat16> {
  static constexpr uint32_t kValue = 0x3F803F80u;
};
template <>
struct OnePair<__half> {
  static constexpr uint32_t kValue = 0x3C003C00u;
};

// One 32-element chunk j of a warp's 16 rows (w0: row g's word j, w1: row g + 8's) against
// kTiles tiles of 8 tokens: the two k16 MMAs in the layout's K order (nibbles 8h .. 8h + 7 of a
// word hold elements 4h .. 4h + 3 of its 8-element run, as fragment pairs), x in the same order
// (xv[t] = x[token 8t + g][32 j + 8 tig .. + 7]). kSumX also sums x into sum_x (an all-ones A
// operand: the sums land in the C layout the zero-point term needs). kBiased (int4 only): the
// codes enter as base + q (Magic<T>::kBase; one LOP3 per pair instead of LOP3 + subtraction),
// and the caller takes base * sum x off with the zero point: sum (base + q) x - (z + base) sum x.
template <typename T, int kTiles, bool kMx, bool kSumX = false, bool kBiased = false>
__device__ __forceinline__ void mma_chunk(float (&acc)[kTiles][4], float (&sum_x)[kTiles][4], uint32_t w0, uint32_t w1,
                                          const uint4 (&xv)[kTiles]) {
  static_assert(!(kBiased && kMx), "biased codes: int4 only");
  constexpr uint32_t kOnes[4] = {OnePair<T>::kValue, OnePair<T>::kValue, OnePair<T>::kValue, OnePair<T>::kValue};
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    auto pair = [](uint32_t w, int s) {  // the pair at bits s and s + 16 of w
      return kMx ? e2m1_pair_at<T>(w, s) : kBiased ? codes_to_biased_pair<T>(w >> s) : codes_to_pair<T>(w >> s);
    };
    const uint32_t a[4] = {pair(w0, 8 * h), pair(w1, 8 * h), pair(w0, 8 * h + 4), pair(w1, 8 * h + 4)};
#pragma unroll
    for (int t = 0; t < kTiles; ++t) {
      const uint32_t b0 = h ? xv[t].z : xv[t].x, b1 = h ? xv[t].w : xv[t].y;
      ptx::mma_m16n8k16<T>(acc[t], a, b0, b1);
      if constexpr (kSumX) ptx::mma_m16n8k16<T>(sum_x[t], kOnes, b0, b1);
    }
  }
}

// Request block `block` of a row for quad thread tig (logical words tig + 4j, j = 0..3)
// into dst (16 bytes) with cp.async; words past the row (a partial last block, or a block
// past the slice) are zero-filled.
__device__ __forceinline__ void request_block(uint4* dst, const uint32_t* row, int block, int words, int tig) {
  const int word0 = block * kBlockWords;
  if (word0 + kBlockWords <= words) {  // a full block: transposed, one 16-byte copy
    ptx::cp_async_16(dst, row + word0 + 4 * tig, 16);
    return;
  }
  uint32_t* d = reinterpret_cast<uint32_t*>(dst);  // a partial last block keeps logical order
#pragma unroll
  for (int j = 0; j < 4; ++j) {
    const int w = word0 + 4 * j + tig;
    ptx::cp_async_4(d + j, row + (w < words ? w : 0), w < words ? 4 : 0);
  }
}

// Where a thread of either 4-bit GEMV (v6 below, v7 in w4_gemv_regs.cuh) works: the CTA's 128
// rows (grid x) and K slice (grid y), its warp's 16-row tile, and its rows r0 = grp, r1 = grp + 8
// of the tile in mma's layout (past N for a partial tile: clamped for loads, never stored).
struct GemvCoords {
  int row_cta, split, k_begin, k_len;  // k_len: the slice's length, a multiple of 32
  int lane, warp, grp, tig, r0, r1;
  int words;                           // 32-bit words per weight row: K / 8
  int nb, block0;                      // 128-element blocks in the slice; the first one's index
  int tile_row0;                       // the warp's first row
  bool full_tile;                      // 16 rows below N: stored tile-contiguously (layout v3)
  int full_blocks;                     // whole 128-element blocks per row
  __device__ explicit GemvCoords(const GemvParams& p)
      : row_cta(blockIdx.x),
        split(blockIdx.y),
        k_begin(split * p.k_slice),
        k_len(min(p.K, k_begin + p.k_slice) - k_begin),
        lane(threadIdx.x % 32),
        warp(threadIdx.x / 32),
        grp(lane / 4),
        tig(lane % 4),
        r0(row_cta * kGemvRows + warp * 16 + grp),
        r1(r0 + 8),
        words(p.K / 8),
        nb((k_len + kBlockElems - 1) / kBlockElems),
        block0(k_begin / kBlockElems),
        tile_row0(row_cta * kGemvRows + warp * 16),
        full_tile(tile_row0 + kTileRows <= p.N),
        full_blocks(words / kBlockWords) {}
};

// kTiles: 8-token MMA tiles (M <= 8 * kTiles); kChunks: 32-element chunks per group
// (1, 2, 4 for groups of 32, 64, 128; 0 = one group per row, the scale applied once).
// kMx: the weight policy: false = int4 codes with 16-bit scales (and zero points),
// y += s * (sum q x - z * sum x); true = mxfp4: e2m1 codes with E8M0 scales per 32,
// y += 2^(e - 127) * sum v x (v = the e2m1 value; scale 0xFF = NaN, as the spec says).
template <typename T, int kTiles, int kChunks, bool kZeros, bool kMx = false>
// Launch bounds: 64 registers for the 8- and 16-token kernels, so four CTAs fit an SM (the
// measured v4/v5 configuration); 128 for the 32-token ones, two CTAs per SM (with one, at
// ~150 registers, M = 32 ran 0.35x cuBLAS instead of v5's 0.47x: bench/NOTES.md a16w4 v6).
__global__ void __launch_bounds__(kGemvThreads, kTiles == 4 ? 2 : 4) a16w4_gemv_kernel(const GemvParams p) {
  static_assert(kTiles == 1 || kTiles == 2 || kTiles == 4, "8, 16 or 32 tokens");
  static_assert(kChunks == 0 || kChunks == 1 || kChunks == 2 || kChunks == 4, "groups of 32, 64, 128 or per row");
  static_assert(!kMx || (kChunks == 1 && !kZeros), "MX: one E8M0 scale per 32 elements, no zero point");
  using Scale = std::conditional_t<kMx, uint8_t, T>;  // as stored: 16-bit scale or E8M0 byte
  extern __shared__ __align__(16) uint8_t smem[];
  // Only the M real tokens live in shared memory; the MMA's padding columns get zeros.
  const GemvSmem L = gemv_smem_layout(p.M, p.k_slice, sizeof(T), p.group, kZeros, sizeof(Scale));
  T* x_s = reinterpret_cast<T*>(smem);                               // [M][x_ld]
  float* chunk_sum = reinterpret_cast<float*>(smem + L.chunk_off);   // [M][chunks_ld]
  Scale* s_s = reinterpret_cast<Scale*>(smem + L.scale_off);         // [kGemvRows][gps]
  T* z_s = reinterpret_cast<T*>(smem + L.zero_off);

  const auto [row_cta, split, k_begin, k_len, lane, warp, grp, tig, r0, r1, words, nb, block0, tile_row0, full_tile,
              full_blocks] = GemvCoords(p);
  const T* x = static_cast<const T*>(p.x);
  const uint32_t* w0 = p.w + size_t(min(r0, p.N - 1)) * words;  // rows past N: clamped, never stored
  const uint32_t* w1 = p.w + size_t(min(r1, p.N - 1)) * words;

  // ---- 1. this warp's first kGemvStages blocks are requested first, so their HBM latency
  // overlaps the staging below; afterwards each block is requested kGemvStages blocks ahead
  // of its use. cp.async into a per-warp shared-memory ring: 1 KB per block, no registers.
  // Addresses: a full 16-row tile is stored tile-contiguously (w4 layout v3: each block one
  // 1 KB chunk, rows 0-7 then 8-15, 16 bytes per quad thread); the rows of a partial last
  // tile keep the per-row layout.
  uint4* ring = reinterpret_cast<uint4*>(smem + L.ring_off) + size_t(warp) * kGemvStages * 64;  // [stage][lane][2]
  const uint32_t* tile = p.w + size_t(min(tile_row0, p.N - 1)) * words;
  const int pwords = words - full_blocks * kBlockWords;
  // Full blocks of full tiles come as one 1 KB bulk copy per warp (lane 0, TMA unit, an
  // mbarrier per ring slot) instead of 64 cp.async of 16 bytes: +12-16% weight bandwidth at
  // M <= 8 (bench/NOTES.md, a16w4 v6), fewer requests for the same bytes. The slot then holds
  // the chunk as stored in global memory. p.bulk = 0 (LOWBIT_A16W4_BULK=0) for A/B runs.
  __shared__ __align__(8) uint64_t bulk_bar[kGemvWarps][kGemvStages];
  const bool bulk = p.bulk && full_tile;  // warp-uniform
  if (bulk && lane == 0) {
#pragma unroll
    for (int s = 0; s < kGemvStages; ++s) ptx::mbarrier_init(&bulk_bar[warp][s], 1);
    ptx::fence_barrier_init();
  }
  __syncwarp();
  auto is_bulk = [&](int b) { return bulk && block0 + b < full_blocks; };
  auto request = [&](int b) {
    if (b < nb) {
      uint4* slot = ring + (b % kGemvStages) * 64 + lane * 2;
      const int blk = block0 + b;
      if (is_bulk(b)) {
        if (lane == 0) {
          uint64_t* bar = &bulk_bar[warp][b % kGemvStages];
          ptx::fence_proxy_async_smem();  // the slot's previous contents were read (generic proxy)
          ptx::mbarrier_arrive_expect_tx(bar, 1024);
          ptx::bulk_copy_g2s(ring + (b % kGemvStages) * 64, tile + size_t(blk) * 256, 1024, bar);
        }
      } else if (!full_tile) {
        request_block(slot, w0, blk, words, tig);
        request_block(slot + 1, w1, blk, words, tig);
      } else if (blk < full_blocks) {
        const uint32_t* chunk = tile + size_t(blk) * 256 + 16 * grp + 4 * tig;
        ptx::cp_async_16(slot, chunk, 16);
        ptx::cp_async_16(slot + 1, chunk + 128, 16);
      } else {  // the partial last block of a full tile: row after row, logical order
        const uint32_t* part = tile + size_t(full_blocks) * 256;
#pragma unroll
        for (int h = 0; h < 2; ++h) {
          uint32_t* d = reinterpret_cast<uint32_t*>(slot + h);
#pragma unroll
          for (int j = 0; j < 4; ++j) {
            const int l = 4 * j + tig;
            ptx::cp_async_4(d + j, part + (l < pwords ? pwords * (grp + 8 * h) + l : 0), l < pwords ? 4 : 0);
          }
        }
      }
    }
    ptx::cp_async_commit();  // one group per block, empty past the slice: the wait count stays fixed
  };
#pragma unroll
  for (int b = 0; b < kGemvStages; ++b) request(b);

  // ---- 2. stage x's slice (tokens >= M as zeros) with its sums per group (per 32 elements
  // with one group per row): the 4 kSumLanes consecutive lanes holding one group reduce by
  // shuffles. Then the scales and zero points of this CTA's 128 rows over the slice's groups.
  // Item indices advance by a precomputed step (no integer division per item).
  {
    constexpr int kSumLanes = 4 * (kChunks > 0 ? kChunks : 1);  // 8-element vectors per sum
    const int vecs = p.k_slice / 8;  // a multiple of 16: a group's vectors lie in aligned lanes
    const int items = p.M * vecs, items_pad = (items + 31) / 32 * 32;  // whole warps for the shuffles
    const int dt = kGemvThreads / vecs, dv = kGemvThreads % vecs;
    int t = threadIdx.x / vecs, v = threadIdx.x % vecs;
    for (int i = threadIdx.x; i < items_pad; i += kGemvThreads) {
      uint4 val = make_uint4(0, 0, 0, 0);
      if (i < items && v * 8 < k_len) val = ptx::ld_global_nc_v4(x + size_t(t) * p.K + k_begin + v * 8);
      if (i < items) *reinterpret_cast<uint4*>(x_s + t * L.x_ld + v * 8) = val;
      if constexpr (!kMx) {  // the sums serve the zero-point term only; MX has none
        const T* e = reinterpret_cast<const T*>(&val);
        float sum = 0.f;
#pragma unroll
        for (int k = 0; k < 8; ++k) sum += to_f32(e[k]);
#pragma unroll
        for (int o = 1; o < kSumLanes; o <<= 1) sum += __shfl_xor_sync(0xffffffffu, sum, o);
        if (i < items && v % kSumLanes == 0) chunk_sum[t * L.chunks_ld + v / kSumLanes] = sum;
      }
      v += dv, t += dt;
      if (v >= vecs) v -= vecs, ++t;
    }
    const Scale* scales = static_cast<const Scale*>(p.scales);
    const T* zeros = static_cast<const T*>(p.zeros);
    const int groups = p.K / p.group, g_first = k_begin / p.group;
    const int dr = kGemvThreads / L.gps, dg = kGemvThreads % L.gps;
    int r = threadIdx.x / L.gps, gl = threadIdx.x % L.gps;
    for (int i = threadIdx.x; i < kGemvRows * L.gps; i += kGemvThreads) {
      const int row = row_cta * kGemvRows + r, g = g_first + gl;
      const bool ok = row < p.N && g < groups;
      s_s[i] = ok ? scales[size_t(row) * groups + g] : Scale(0);
      if constexpr (kZeros) z_s[i] = ok ? zeros[size_t(row) * groups + g] : from_f32<T>(0.f);
      gl += dg, r += dr;
      if (gl >= L.gps) gl -= L.gps, ++r;
    }
    __syncthreads();
  }

  // ---- 3. this warp's 16 rows over the slice
  float total[kTiles][4];
  float acc[kTiles][4];
#pragma unroll
  for (int t = 0; t < kTiles; ++t)
#pragma unroll
    for (int i = 0; i < 4; ++i) total[t][i] = 0.f, acc[t][i] = 0.f;

  // Fold acc (one group's sum of q * x) into total: s * (acc - z * sum of x). chunk_sum holds
  // the sums of x per group (kChunks > 0: one entry, g_local) or per 32 elements (one group per
  // row: the nchunks entries of the slice).
  const int srow0 = (warp * 16 + grp) * L.gps, srow1 = srow0 + 8 * L.gps;
  auto promote = [&](int g_local, int nchunks) {
    if constexpr (kMx) {
      const float s0 = e8m0_to_float(s_s[srow0 + g_local]), s1 = e8m0_to_float(s_s[srow1 + g_local]);
#pragma unroll
      for (int t = 0; t < kTiles; ++t) {
        total[t][0] += s0 * acc[t][0];
        total[t][1] += s0 * acc[t][1];
        total[t][2] += s1 * acc[t][2];
        total[t][3] += s1 * acc[t][3];
#pragma unroll
        for (int i = 0; i < 4; ++i) acc[t][i] = 0.f;
      }
      return;
    }
    const float s0 = to_f32(s_s[srow0 + g_local]), s1 = to_f32(s_s[srow1 + g_local]);
    const float z0 = kZeros ? to_f32(z_s[srow0 + g_local]) : 8.f;
    const float z1 = kZeros ? to_f32(z_s[srow1 + g_local]) : 8.f;
#pragma unroll
    for (int t = 0; t < kTiles; ++t) {
      const int tok = t * 8 + 2 * tig;
      float xs0 = 0.f, xs1 = 0.f;
      if constexpr (kChunks > 0) {
        if (tok < p.M) xs0 = chunk_sum[tok * L.chunks_ld + g_local];
        if (tok + 1 < p.M) xs1 = chunk_sum[(tok + 1) * L.chunks_ld + g_local];
      } else {
        for (int c = 0; c < nchunks; ++c) {
          if (tok < p.M) xs0 += chunk_sum[tok * L.chunks_ld + c];
          if (tok + 1 < p.M) xs1 += chunk_sum[(tok + 1) * L.chunks_ld + c];
        }
      }
      total[t][0] += s0 * (acc[t][0] - z0 * xs0);
      total[t][1] += s0 * (acc[t][1] - z0 * xs1);
      total[t][2] += s1 * (acc[t][2] - z1 * xs0);
      total[t][3] += s1 * (acc[t][3] - z1 * xs1);
#pragma unroll
      for (int i = 0; i < 4; ++i) acc[t][i] = 0.f;
    }
  };

  auto compute_block = [&](int b, const uint4& c0, const uint4& c1) {
    const uint32_t wr0[4] = {c0.x, c0.y, c0.z, c0.w}, wr1[4] = {c1.x, c1.y, c1.z, c1.w};
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const int k_local = b * kBlockElems + 32 * j;  // first element of this 32-chunk in the slice
      if (k_local >= k_len) break;                   // a partial last block
      uint4 xv[kTiles];
#pragma unroll
      for (int t = 0; t < kTiles; ++t)
        xv[t] = t * 8 + grp < p.M ? *reinterpret_cast<const uint4*>(x_s + (t * 8 + grp) * L.x_ld + k_local + 8 * tig)
                                  : make_uint4(0, 0, 0, 0);
      mma_chunk<T, kTiles, kMx>(acc, acc, wr0[j], wr1[j], xv);
      if constexpr (kChunks > 0) {
        if (j % kChunks == kChunks - 1) promote(k_local / 32 / kChunks, 0);
      }
    }
  };

  for (int b = 0; b < nb; ++b) {
    ptx::cp_async_wait<kGemvStages - 1>();  // block b has landed (this thread's own copies)
    const uint4* slot = ring + (b % kGemvStages) * 64;
    uint4 c0, c1;
    if (is_bulk(b)) {  // the chunk as stored: row grp at words 16 grp + 4 tig, row grp + 8 at +128
      ptx::mbarrier_wait(&bulk_bar[warp][b % kGemvStages], (b / kGemvStages) & 1);
      c0 = slot[4 * grp + tig];
      c1 = slot[32 + 4 * grp + tig];
    } else {
      c0 = slot[lane * 2];
      c1 = slot[lane * 2 + 1];
    }
    if (bulk) __syncwarp();  // every lane has read the slot before lane 0 refills it
    request(b + kGemvStages);           // into the slot just read
    compute_block(b, c0, c1);
  }
  if constexpr (kChunks == 0) promote(0, k_len / 32);  // one group per row: this slice's share

  // ---- 3. results: y directly, or fp32 partials reduced by the last CTA of the row block
  const T* bias = static_cast<const T*>(p.bias);
  T* out = static_cast<T*>(p.out);
  gemv_store<kTiles, kGemvRows, kGemvThreads>(
      total, r0, r1, tig, GemvSplit{p.M, p.N, p.splits, split, row_cta, p.partial, p.arrivals},
      [&](float v, int tok, int row) { out[size_t(tok) * p.N + row] = from_f32<T>(bias ? v + to_f32(bias[row]) : v); });
}

}  // namespace lowbit::w4
