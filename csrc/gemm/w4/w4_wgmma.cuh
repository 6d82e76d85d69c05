#pragma once
// a16w4 and mxfp4 for M > 32 (w4_ops.cpp wgmma_applies, measured in sessions 4 and 5,
// bench/NOTES.md), and 8-bit weight rows (kRows8: a16w8's int8, mxfp8's e4m3;
// mixed_wgmma.h): a mixed-input wgmma GEMM, Y^T tile = W tile (weights on wgmma's register A
// side) x X^T (activations, bf16/fp16, K-major through TMA on the shared-memory B side).
//
// The weight policy is one template argument, WgmmaWeights (w4_params.h); kMx, kRows8 and
// kFold below are derived from it.
//
// int4, kFold (the default): each pair of codes becomes w = q s - z s in x's dtype (one fma;
// the weight rounded once, as the dequantize path rounds it) and the sums chain over all of K.
// int4 without kFold (LOWBIT_A16W4_WGMMA=promote), as the GEMV computes it:
//
//   y[m, n] = sum_g s[n, g] * (sum_{k in g} q[n, k] x[m, k] - z[n, g] * sumx[m, g])
//
// the 4-bit codes become exact 16-bit integers in registers, the tensor core sums q x exactly
// in fp32 per group, and the promotion applies scale and zero point in fp32 (sumx[m, g] = sum
// of x over the group, a pre-pass: w4_launch.cu); half the speed (a wgmma wait per group).
//
// CTA: 3 warpgroups. Warpgroup 0, one thread: per 128-element K block, two TMA boxes of X
// (kBN tokens x 64 elements each, 128-byte swizzle) and the 8 one-KB chunks of the CTA's 128
// weight rows (layout v3: a 16-row tile's block is contiguous) by bulk copies, into a stage
// of a ring (full / empty mbarriers); warps 1-3 of it, for 4-bit weights at <= 64 tokens,
// permute each stage's X in place (permute_x_blocks, a third mbarrier per stage). Warpgroups 1
// and 2: 64 weight rows each (a warp: one 16-row tile), all kBN tokens; per block: 8 wgmma
// m64nNk16 (RS), each A fragment built from the warp's chunk in shared memory.
// Grid (w4_ops.cpp wgmma_plan): (rows / 128 or 256, tokens / kBN, K splits). kBN = 16 / 32 / 64
// / 128 tokens by M; where the (rows, tokens) tiles are fewer than the SMs the K blocks are split
// (grid z) and the tile's last CTA sums the splits' fp32 partials (lowbit/gemv_store.cuh
// reduce_partials); kCtas = 2 builds for two CTAs per SM where one would overfill a wave.
//
// The A fragment (mma.m16n8k16 layout: thread (g, t) holds rows g, g + 8 at k = 2t, 2t + 1
// and 2t + 8, 2t + 9 of the k16 step) from layout v3, where quad thread c's word j holds
// elements 32 j + 8 c .. + 7 of its row (element 2u at bits 4u, 2u + 1 at bits 16 + 4u): for
// step s of the 32-element chunk j, elements 16 s + 2t (+1) sit in quad thread 2 s's word
// and 16 s + 8 + 2t (+1) in quad thread 2 s + 1's, so each A register is one of those words (read
// from the chunk in shared memory in 128-row CTAs, by a quad shuffle in 256-row ones),
// a shift by 4t and the GEMV's exact code -> 16-bit conversion (bench/NOTES.md) -- at 128
// tokens. Where x is permuted (wgmma_x_permutable, in shared memory; or kXPre, in global memory by
// the host's pass before the kernel) the thread's own word j holds the pairs of both of its k16
// steps of chunk j (permute_x_blocks says how), so no shuffles.
//
// kRows8: the weights are plain (N, K) byte rows. The producer loads the CTA's 128 rows x 128
// bytes of a block by one TMA box with the 128-byte swizzle (16-byte chunk c of row r at chunk
// c ^ (r % 8)); for k16 step s a thread reads words (s ^ g) * 4 + t / 2 and + 2 of its two
// rows (conflict-free: tools/emulate_rows8_wgmma.py) and converts bytes 2 (t % 2), + 1 of each
// exactly: int8 -> 16-bit (ptx::s8x2_to_pair; the per-channel scale is applied at the end),
// e4m3 x 2^(e - 127) -> bf16 (ptx::e4m3x2_scaled_to_bf16x2, E8M0 per 32 folded as for e2m1).
// Either way the sums chain over all of K: no promotion, no sum of x.
#include <cuda.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>
#include <type_traits>

#include "gemm/w4/w4_gemv.cuh"  // codes_to_pair
#include "gemm/w4/w4_params.h"
#include "lowbit/gemv_store.cuh"  // the K split's partials (GemvSplit, reduce_partials)
#include "lowbit/numerics.h"
#include "lowbit/ptx/convert.cuh"
#include "lowbit/ptx/mbarrier.cuh"
#include "lowbit/ptx/memory.cuh"
#include "lowbit/ptx/tma.cuh"
#include "lowbit/ptx/warpgroup.cuh"
#include "lowbit/ptx/wgmma.cuh"
#include "lowbit/w4_layout.h"

namespace lowbit::w4 {

template <typename T, int kBN>
struct RsMma;
template <int kBN>
struct RsMma<__nv_bfloat16, kBN> {
  using Op = ptx::WgmmaRsBf16<kBN>;
};
template <int kBN>
struct RsMma<__half, kBN> {
  using Op = ptx::WgmmaRsF16<kBN>;
};

// kCtas: CTAs per SM the kernel is built for (1, or 2: w4_params.h wgmma_two_ctas); each gets
// half of the SM's shared memory (228 KB, 1 KB reserved per CTA, this kernel's ~2 KB static).
template <int kBN, bool kRows8 = false, int kRowTiles = 1, int kCtas = 1>
struct W4WgmmaSmem {
  static constexpr int kXHalf = kBN * 128;            // one TMA box: kBN tokens x 64 elements
  static constexpr int kXBytes = 2 * kXHalf;          // a 128-element K block
  // 128 rows (per row tile) x 128 K: 8 KB of 4-bit codes, or 16 KB of bytes (a swizzled box)
  static constexpr int kWBytes = (kRows8 ? kWgRows * 128 : kWgRows * 128 / 2) * kRowTiles;
  static constexpr int kStageBytes = kXBytes + kWBytes;
  // as many stages as fit, at most kWgStages: 40 KB stages 5, 48 KB 4, 64 KB 3
  static constexpr int kBudget = kCtas == 1 ? 227 * 1024 : 110 * 1024;
  // barriers per stage: full, empty, and x_ready (x permuted: permute_x_blocks)
  static constexpr int kFit = (kBudget - 1024 - 3 * kWgStages * 8) / kStageBytes;
  static constexpr int kStages = kFit < kWgStages ? kFit : kWgStages;
  static constexpr int kBytes = 1024 + kStages * kStageBytes + 3 * kStages * 8;
  static_assert(kXHalf % 1024 == 0, "X boxes keep the 1024-byte alignment of the 128B swizzle");
  static_assert(kStageBytes % 1024 == 0, "every stage (and its swizzled W box) 1024-byte aligned");
  static_assert(kBytes <= kBudget, "shared memory per CTA on sm_90 is at most 227 KB (kCtas CTAs per SM share 228)");
  static_assert(kStages >= 3, "at least 3 stages in flight");
};

// mxfp4 weights (kMx, bf16 only): each e2m1 code times its block's 2^(e - 127) is exact in
// bf16 (2 significant bits; bf16 has fp32's exponent range, so values overflow or vanish
// exactly where the fp32 reference's do; E8M0 0xFF gives NaN), so the scales are folded into
// the A operand and the sums chain over all of K with no promotion and no sum of x.
__device__ __forceinline__ uint32_t e8m0_bf16_pair(uint32_t e) {
  const uint32_t v = e == 0xFFu ? 0x7FC0u : e == 0 ? 0x0040u : e << 7;  // 2^(e - 127); e = 0: subnormal
  return v | (v << 16);
}

// 8-bit rows (kRows8): thread (grp, tig)'s A registers for k16 step `step` of the block from
// the swizzled box (row_lo / row_hi: its rows grp and grp + 8): words (step ^ grp) * 4 + tig / 2
// and + 2, bytes 2 (tig % 2) and + 1 of each. kMx: e4m3 codes times the rows' E8M0 scales (low
// bytes of e_lo / e_hi), else int8 codes.
template <typename T, bool kMx>
__device__ __forceinline__ void rows8_fragment(const uint32_t* row_lo, const uint32_t* row_hi, int step, int grp,
                                               int tig, uint32_t e_lo, uint32_t e_hi, uint32_t (&a)[4]) {
  const int wi = (step ^ grp) * 4 + (tig >> 1), b = 2 * (tig & 1);
  const uint32_t lo0 = ptx::ld_shared_b32(row_lo + wi), hi0 = ptx::ld_shared_b32(row_lo + wi + 2);
  const uint32_t lo1 = ptx::ld_shared_b32(row_hi + wi), hi1 = ptx::ld_shared_b32(row_hi + wi + 2);
  if constexpr (kMx) {
    const float f0 = e8m0_to_float(uint8_t(e_lo)), f1 = e8m0_to_float(uint8_t(e_hi));
    a[0] = ptx::e4m3x2_scaled_to_bf16x2(lo0, b, f0), a[1] = ptx::e4m3x2_scaled_to_bf16x2(lo1, b, f1);
    a[2] = ptx::e4m3x2_scaled_to_bf16x2(hi0, b, f0), a[3] = ptx::e4m3x2_scaled_to_bf16x2(hi1, b, f1);
  } else {
    a[0] = ptx::s8x2_to_pair<T>(lo0, b), a[1] = ptx::s8x2_to_pair<T>(lo1, b);
    a[2] = ptx::s8x2_to_pair<T>(hi0, b), a[3] = ptx::s8x2_to_pair<T>(hi1, b);
  }
}

// The 128-element K blocks of this CTA's split: kb0 .. kb1 - 1. (Session 8 measured starting
// each row tile's CTA at its own block, so CTAs read different boxes of x at one time: 0-3%
// slower at 40..128 tokens; removed.)
struct KBlocks {
  int kb0, kb1;
};
__device__ __forceinline__ KBlocks split_k_blocks(const W4WgmmaParams& p) {
  const int kb0 = blockIdx.z * p.kb_per_split;
  return {kb0, min(p.K / kBlockElems, kb0 + p.kb_per_split)};
}

// One 64-byte chunk of x (32 elements) in the order the permuted-x kernels read: its four 16-byte
// units u[0..3] hold 4-byte pairs 4 i .. 4 i + 3, and unit i of the result takes pair i of each
// (a 4 x 4 transpose of the chunk's pairs; permute_x_blocks says why).
__device__ __forceinline__ void permute_x_chunk(const uint4 (&u)[4], uint4 (&v)[4]) {
  v[0] = {u[0].x, u[1].x, u[2].x, u[3].x};
  v[1] = {u[0].y, u[1].y, u[2].y, u[3].y};
  v[2] = {u[0].z, u[1].z, u[2].z, u[3].z};
  v[3] = {u[0].w, u[1].w, u[2].w, u[3].w};
}

// x permuted in shared memory (wgmma_x_permutable: <= 64 tokens, not int4 per channel at 64), so
// that each consumer thread's A fragments come from its own words of the weight chunk. Layout v3
// gives quad thread t's word j the elements 32 j + 8 t .. + 7 of its row, pairs (2u, 2u + 1) at
// bits 4u and 16 + 4u; the thread takes pair u = 2 s + hi for register hi of k16 step s, whose B
// rows are the logical k 16 s + 8 hi + 2 t (+1) of the chunk. So x's physical 4-byte pair 4 t + a of a 64-byte chunk
// (32 elements) must sit at logical pair 4 a + t: a 4 x 4 transpose of the chunk's words, the
// 16-byte units of the 128-byte swizzle being the rows of the transpose. Warps 1-3 of the
// producer warpgroup do it per stage, after the TMA and before the wgmma (x_ready), in place:
// one thread per 64-byte chunk (4 kBN of them a block), four 16-byte loads and stores.
template <int kBN, int kRowTiles, int kCtas>
__device__ __forceinline__ void permute_x_blocks(const W4WgmmaParams& p, uint8_t* smem, uint64_t* full,
                                                 uint64_t* x_ready) {
  using Layout = W4WgmmaSmem<kBN, false, kRowTiles, kCtas>;
  const KBlocks kbs = split_k_blocks(p);
  const int thread = threadIdx.x - 32;
  int stage = 0;
  uint32_t phase = 0;
  for (int kb = kbs.kb0; kb < kbs.kb1; ++kb) {
    ptx::mbarrier_wait(&full[stage], phase);
    uint8_t* x_stage = smem + stage * Layout::kStageBytes;
    for (int c = thread; c < 4 * kBN; c += kXPermuteThreads) {
      const int box = c / (2 * kBN), row = (c / 2) % kBN, half = c % 2;  // 64-byte chunk `half` of the box row
      uint8_t* x_row = x_stage + box * Layout::kXHalf + row * 128;
      uint4 u[4];
#pragma unroll
      for (int i = 0; i < 4; ++i) u[i] = ptx::ld_shared_v4(x_row + 16 * ((4 * half + i) ^ (row % 8)));
      uint4 v[4];
      permute_x_chunk(u, v);
#pragma unroll
      for (int i = 0; i < 4; ++i) ptx::st_shared_v4(x_row + 16 * ((4 * half + i) ^ (row % 8)), v[i]);
    }
    ptx::fence_proxy_async_smem();  // the generic stores before the wgmma's (async proxy) reads
    ptx::mbarrier_arrive(&x_ready[stage]);
    if (++stage == Layout::kStages) stage = 0, phase ^= 1;
  }
}

// The consumer warpgroups (1 and 2): 64 weight rows each per m64 tile (kRowTiles tiles: the
// second 128 rows below the first), a warp one 16-row tile of each, all kBN tokens. kChunks:
// 32-element chunks per group (1, 2, 4 for 32, 64, 128; 0: one group per row).
template <typename T, WgmmaWeights kW, int kBN, int kChunks, bool kZeros, int kRowTiles, int kCtas, bool kXPre>
__device__ __forceinline__ void a16w4_wgmma_consume(const W4WgmmaParams& p, uint8_t* smem) {
  constexpr bool kMx = wgmma_mx(kW), kRows8 = wgmma_rows8(kW), kFold = kW == WgmmaWeights::kInt4Fold;
  static_assert(!kMx || (std::is_same_v<T, __nv_bfloat16> && kChunks == 0 && !kZeros),
                "MX: bf16 activations, scales folded into the operand (no groups, no zero points)");
  static_assert(!kRows8 || (kChunks == 0 && !kZeros), "8-bit rows: per-channel scale or MX, no groups");
  static_assert(!kFold || (!kMx && !kRows8), "kFold: int4 codes with 16-bit scales (and zero points)");
  static_assert(kRowTiles == 1 || (kRowTiles == 2 && (kMx || kRows8 || kFold)),
                "two row tiles per warpgroup only where the sums chain (no promotion registers)");
  constexpr int kAccRegs = kBN / 2;
  constexpr bool kChained = kMx || kRows8 || kFold;  // one accumulator over all of K, no promotion
  constexpr int kBlockGroups = kChunks > 0 ? 4 / kChunks : 1;  // int4 groups per 128-K block
  using Layout = W4WgmmaSmem<kBN, kRows8, kRowTiles, kCtas>;
  using Mma = typename RsMma<T, kBN>::Op;
  uint64_t* full = reinterpret_cast<uint64_t*>(smem + Layout::kStages * Layout::kStageBytes);
  uint64_t* empty = full + Layout::kStages;
  uint64_t* x_ready = empty + Layout::kStages;
  // x permuted: in shared memory by the producer's warps 1-3 (permute_x_blocks; wait for x_ready),
  // or before the kernel (kXPre: it comes by TMA as the consumers read it)
  constexpr bool kXPermuteHere = !kXPre && wgmma_x_permutable(kW, kBN, kChunks);
  constexpr bool kXPermuted = kXPre || kXPermuteHere;
  const int warpgroup = threadIdx.x / 128, warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int wg = warpgroup - 1, warp_in_wg = warp % 4;
  const int grp = lane / 4, tig = lane % 4;
  const int tile = wg * 4 + warp_in_wg;  // this warp's 16-row tile (+ 8 per further row tile)
  int row0[kRowTiles];                   // its rows row0[rt] and row0[rt] + 8
#pragma unroll
  for (int rt = 0; rt < kRowTiles; ++rt) row0[rt] = blockIdx.x * kWgRows * kRowTiles + (tile + 8 * rt) * kTileRows + grp;
  const int tok0 = blockIdx.y * kBN;
  const KBlocks kbs = split_k_blocks(p);
  const int groups = kChunks == 0 ? 1 : p.K / p.group;
  const T* scales = static_cast<const T*>(p.scales);
  const T* zeros = static_cast<const T*>(p.zeros);
  // sum_x rows are padded to a multiple of kBN (rows past M: never stored), so no clamping
  const float* sum_x_thread = kChained ? nullptr : p.sum_x + size_t(tok0 + 2 * tig) * groups;

  float acc[kRowTiles][kAccRegs], fin[kChained ? 1 : kAccRegs];  // (fin: int4's promoted sums)
#pragma unroll
  for (int rt = 0; rt < kRowTiles; ++rt)
#pragma unroll
    for (int r = 0; r < kAccRegs; ++r) acc[rt][r] = 0.f;
#pragma unroll
  for (int r = 0; r < (kChained ? 1 : kAccRegs); ++r) fin[r] = 0.f;

  // Register r = 4c + 2h + u of the m64nN accumulator: weight row row0 + 8h, token
  // tok0 + 8c + 2 tig + u.
  auto promote = [&](int g) {  // int4 (one row tile)
#pragma unroll
    for (int r = 0; r < kAccRegs; ++r) ptx::fence_register(acc[0][r]);
    const size_t i0 = size_t(row0[0]) * groups + g, i1 = size_t(row0[0] + 8) * groups + g;
    const float s0 = ptx::to_f32(scales[i0]), s1 = ptx::to_f32(scales[i1]);
    const float z0 = kZeros ? ptx::to_f32(zeros[i0]) : 8.f, z1 = kZeros ? ptx::to_f32(zeros[i1]) : 8.f;
#pragma unroll
    for (int c = 0; c < kAccRegs / 4; ++c)
#pragma unroll
      for (int u = 0; u < 2; ++u) {
        const float sx = __ldg(sum_x_thread + (8 * c + u) * groups + g);
        fin[4 * c + u] += s0 * (acc[0][4 * c + u] - z0 * sx);
        fin[4 * c + 2 + u] += s1 * (acc[0][4 * c + 2 + u] - z1 * sx);
      }
  };

  // kFold: w = q s - z s in T for the A operand (one fma per pair: the weight rounded once,
  // as the dequantize path rounds it), so the sums chain over K as MX's do. fold_s / fold_z:
  // the pairs (s, s) and (-z s, -z s) of rows row0[rt] and row0[rt] + 8 per group of the block.
  uint32_t fold_s[kRowTiles][kBlockGroups][2] = {}, fold_z[kRowTiles][kBlockGroups][2] = {};
  auto fold_pair = [&](T sv, T zv, uint32_t& fs, uint32_t& fz) {
    const float sc = ptx::to_f32(sv), z = kZeros ? ptx::to_f32(zv) : 8.f;
    fs = ptx::splat_x2<T>(sc), fz = ptx::splat_x2<T>(-z * sc);
  };
  if constexpr (kFold && kChunks == 0) {  // one group per row: once
#pragma unroll
    for (int rt = 0; rt < kRowTiles; ++rt)
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const size_t i = size_t(row0[rt] + 8 * h) * groups;
        fold_pair(scales[i], kZeros ? zeros[i] : T{}, fold_s[rt][0][h], fold_z[rt][0][h]);
      }
  }
  // Per-block scales (MX: the rows' E8M0 words; kFold with groups: s and z) are loaded one block
  // ahead, so their L2 latency overlaps the previous block's work instead of stalling the
  // operand build (session 5: g128 folded ran 0.66x cuBLAS at M = 64 where per channel, with
  // no per-block load, ran 1.01x).
  uint32_t next_e[kRowTiles][2] = {};
  T next_s[kRowTiles][kBlockGroups][2], next_z[kRowTiles][kBlockGroups][2];
  // the rows' scale (and zero point) rows, so a block's loads are an offset from them (the
  // 64-bit index arithmetic per load was ~20 instructions a block in the SASS, s9-call4)
  const uint8_t* e_row[kRowTiles][2];
  const T *s_row[kRowTiles][2], *z_row[kRowTiles][2];
#pragma unroll
  for (int rt = 0; rt < kRowTiles; ++rt)
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      e_row[rt][h] = static_cast<const uint8_t*>(p.scales) + size_t(row0[rt] + 8 * h) * (p.K / 32);
      s_row[rt][h] = scales + size_t(row0[rt] + 8 * h) * groups;
      z_row[rt][h] = kZeros ? zeros + size_t(row0[rt] + 8 * h) * groups : nullptr;
    }
  auto load_block_scales = [&](int kb) {
    if (kb >= kbs.kb1) return;
    if constexpr (kMx) {
#pragma unroll
      for (int rt = 0; rt < kRowTiles; ++rt)
#pragma unroll
        for (int h = 0; h < 2; ++h) next_e[rt][h] = __ldg(reinterpret_cast<const uint32_t*>(e_row[rt][h] + kb * 4));
    }
    if constexpr (kFold && kChunks > 0) {
#pragma unroll
      for (int rt = 0; rt < kRowTiles; ++rt)
#pragma unroll
        for (int bg = 0; bg < kBlockGroups; ++bg)
#pragma unroll
          for (int h = 0; h < 2; ++h) {
            next_s[rt][bg][h] = s_row[rt][h][kb * kBlockGroups + bg];
            if constexpr (kZeros) next_z[rt][bg][h] = z_row[rt][h][kb * kBlockGroups + bg];
          }
    }
  };
  load_block_scales(kbs.kb0);

  int stage = 0;
  uint32_t phase = 0;
  const uint64_t desc_x0 = ptx::smem_desc_k_major_sw128(smem);
  // Skew (p.skew chunks): warpgroup 2 waits until warpgroup 1 has issued its first p.skew chunks,
  // so that the two stay apart: each drains its wgmma at the end of every K block (the wait<0>
  // below), and in step both drain together while the tensor cores idle (s16-call3).
  constexpr uint32_t kBarSkew = 4;  // (1, 2: the 8-bit rows' stage releases; 3: the K split's epilogue)
  // (chained loops only: the promoting int4 variant waits per group anyway, and spilled with it)
  const bool skewed = kChained && p.skew > 0 && kbs.kb1 > kbs.kb0;
  if (skewed && wg == 1) ptx::named_barrier_sync(kBarSkew, 256);
  for (int kb = kbs.kb0; kb < kbs.kb1; ++kb) {
    uint32_t sc0[kRowTiles], sc1[kRowTiles];  // MX: the E8M0 bytes of the rows for this block's 4 chunks
#pragma unroll
    for (int rt = 0; rt < kRowTiles; ++rt) sc0[rt] = next_e[rt][0], sc1[rt] = next_e[rt][1];
    if constexpr (kFold && kChunks > 0) {
#pragma unroll
      for (int rt = 0; rt < kRowTiles; ++rt)
#pragma unroll
        for (int bg = 0; bg < kBlockGroups; ++bg)
#pragma unroll
          for (int h = 0; h < 2; ++h)
            fold_pair(next_s[rt][bg][h], next_z[rt][bg][h], fold_s[rt][bg][h], fold_z[rt][bg][h]);
    }
    load_block_scales(kb + 1);
    ptx::mbarrier_wait(&full[stage], phase);
    if constexpr (kXPermuteHere) ptx::mbarrier_wait(&x_ready[stage], phase);
    // 4-bit codes: this warp's 1 KB chunk per row tile: row grp's 4 words at uint4 4 grp + tig,
    // row grp + 8's at +32
    const uint8_t* w_stage = smem + stage * Layout::kStageBytes + Layout::kXBytes;
    uint32_t wr0[kRowTiles][4] = {}, wr1[kRowTiles][4] = {};
    // x not permuted, 128-row CTAs: the words of quad threads 2 s and 2 s + 1 (h) of rows grp and
    // grp + 8 (r), read from the chunk in shared memory (session 14; before: the thread's own words
    // and four quad shuffles per k16 step, the operand build's critical path in s14-call3's
    // profile). 256-row CTAs, two CTAs per SM (96 registers) and the promotion variant keep the
    // shuffles: with 32 more registers of words they spilled 8-176 bytes.
    constexpr bool kWordsFromSmem = !kXPermuted && !kRows8 && kRowTiles == 1 && kCtas == 1 && kChained;
    uint4 qw[kRowTiles][2][2][2];
    // 8-bit rows: rows (tile + 8 rt) * 16 + grp and + 8 of the swizzled box, 128 bytes each
    const uint32_t* row_lo[kRowTiles];
#pragma unroll
    for (int rt = 0; rt < kRowTiles; ++rt) {
      if constexpr (!kRows8) {
        const uint4* chunk = reinterpret_cast<const uint4*>(w_stage) + (tile + 8 * rt) * 64;
        if constexpr (!kWordsFromSmem) {
          const uint4 c0 = ptx::ld_shared_v4(chunk + 4 * grp + tig), c1 = ptx::ld_shared_v4(chunk + 32 + 4 * grp + tig);
          wr0[rt][0] = c0.x, wr0[rt][1] = c0.y, wr0[rt][2] = c0.z, wr0[rt][3] = c0.w;
          wr1[rt][0] = c1.x, wr1[rt][1] = c1.y, wr1[rt][2] = c1.z, wr1[rt][3] = c1.w;
        } else {  // (a quad reads the same 16 bytes; a quarter warp's two quads distinct banks)
#pragma unroll
          for (int s = 0; s < 2; ++s)
#pragma unroll
            for (int h = 0; h < 2; ++h)
#pragma unroll
              for (int r = 0; r < 2; ++r) qw[rt][s][h][r] = ptx::ld_shared_v4(chunk + 32 * r + 4 * grp + 2 * s + h);
        }
      }
      row_lo[rt] = reinterpret_cast<const uint32_t*>(w_stage) + ((tile + 8 * rt) * 16 + grp) * 32;
    }
    const uint64_t desc_x = desc_x0 + uint64_t((stage * Layout::kStageBytes) >> 4);
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      uint32_t a[kRowTiles][2][4];  // the two k16 steps of chunk j, per row tile
#pragma unroll
      for (int rt = 0; rt < kRowTiles; ++rt)
#pragma unroll
        for (int s = 0; s < 2; ++s) {
          if constexpr (kRows8) {
            rows8_fragment<T, kMx>(row_lo[rt], row_lo[rt] + 8 * 32, 2 * j + s, grp, tig, sc0[rt] >> (8 * j),
                                   sc1[rt] >> (8 * j), a[rt][s]);
            continue;
          }
          // the codes of the four registers at bits 0 and 16: x permuted, pairs 2 s and 2 s + 1 of
          // the thread's own words; else quad thread 2 s's and 2 s + 1's words j, pair tig
          uint32_t lo0, lo1, hi0, hi1;
          if constexpr (kXPermuted) {
            lo0 = wr0[rt][j] >> (8 * s), lo1 = wr1[rt][j] >> (8 * s);
            hi0 = wr0[rt][j] >> (8 * s + 4), hi1 = wr1[rt][j] >> (8 * s + 4);
          } else if constexpr (kWordsFromSmem) {
            auto word = [&](const uint4& u) { return j == 0 ? u.x : j == 1 ? u.y : j == 2 ? u.z : u.w; };
            lo0 = word(qw[rt][s][0][0]) >> (4 * tig), lo1 = word(qw[rt][s][0][1]) >> (4 * tig);
            hi0 = word(qw[rt][s][1][0]) >> (4 * tig), hi1 = word(qw[rt][s][1][1]) >> (4 * tig);
          } else {
            const int quad = lane & ~3;
            lo0 = __shfl_sync(0xffffffffu, wr0[rt][j], quad | (2 * s)) >> (4 * tig);
            lo1 = __shfl_sync(0xffffffffu, wr1[rt][j], quad | (2 * s)) >> (4 * tig);
            hi0 = __shfl_sync(0xffffffffu, wr0[rt][j], quad | (2 * s + 1)) >> (4 * tig);
            hi1 = __shfl_sync(0xffffffffu, wr1[rt][j], quad | (2 * s + 1)) >> (4 * tig);
          }
          if constexpr (kMx) {
            const uint32_t f0 = e8m0_bf16_pair((sc0[rt] >> (8 * j)) & 0xFFu);
            const uint32_t f1 = e8m0_bf16_pair((sc1[rt] >> (8 * j)) & 0xFFu);
            a[rt][s][0] = ptx::mul_x2<T>(e2m1_to_pair<T>(lo0), f0);
            a[rt][s][1] = ptx::mul_x2<T>(e2m1_to_pair<T>(lo1), f1);
            a[rt][s][2] = ptx::mul_x2<T>(e2m1_to_pair<T>(hi0), f0);
            a[rt][s][3] = ptx::mul_x2<T>(e2m1_to_pair<T>(hi1), f1);
          } else if constexpr (kFold) {
            const int bg = kChunks > 0 ? j / kChunks : 0;
            const uint32_t(&fs)[2] = fold_s[rt][bg], (&fz)[2] = fold_z[rt][bg];
            a[rt][s][0] = ptx::fma_x2<T>(codes_to_pair<T>(lo0), fs[0], fz[0]);
            a[rt][s][1] = ptx::fma_x2<T>(codes_to_pair<T>(lo1), fs[1], fz[1]);
            a[rt][s][2] = ptx::fma_x2<T>(codes_to_pair<T>(hi0), fs[0], fz[0]);
            a[rt][s][3] = ptx::fma_x2<T>(codes_to_pair<T>(hi1), fs[1], fz[1]);
          } else {
            a[rt][s][0] = codes_to_pair<T>(lo0);
            a[rt][s][1] = codes_to_pair<T>(lo1);
            a[rt][s][2] = codes_to_pair<T>(hi0);
            a[rt][s][3] = codes_to_pair<T>(hi1);
          }
        }
      // scale-d = 0 starts an accumulator: at a group's first chunk, or (one group per row)
      // at the split's first step
      bool first;
      if constexpr (kChunks > 0 && !kFold) first = j % kChunks == 0;
      else first = kb == kbs.kb0 && j == 0;
      ptx::wgmma_fence();
#pragma unroll
      for (int s = 0; s < 2; ++s) {
        const int step = 2 * j + s;  // k16 step of the block: +32 bytes along each X row
        const uint64_t d = desc_x + uint64_t(((step / 4) * Layout::kXHalf) >> 4) + uint64_t((step % 4) * 2);
#pragma unroll
        for (int rt = 0; rt < kRowTiles; ++rt) Mma::mma(a[rt][s], d, acc[rt], !(first && s == 0));
      }
      ptx::wgmma_commit();
      if (skewed && wg == 0 && kb == kbs.kb0 && j == p.skew - 1) ptx::named_barrier_arrive(kBarSkew, 256);
      if constexpr (kChunks > 0 && !kFold) {
        if (j % kChunks == kChunks - 1) {  // the group is complete: fold it in
          ptx::wgmma_wait<0>();
          promote((kb * kBlockElems + 32 * j) / p.group);
        }
      }
    }
    // This block's wgmma have read the stage. (Session 9 left one wgmma group in flight across
    // chunks and blocks instead, the stage released one chunk later: 0.93-1.11 of this time with
    // the shuffles, 0.97-1.04 with x permuted, s9-call2 / s9-call5; as separate kernels, a clean
    // A/B in session 10: 0.94-1.00 at 1..32 tokens, s10-call1 -- removed. At 128 tokens per CTA,
    // the drain one block later -- 4 A register sets, wait_group 3 per chunk -- measured -1..+20%
    // in s15-call1, worst in 128-row CTAs at M = 128: removed.)
    ptx::wgmma_wait<0>();
    // Release the stage. 4-bit weights (bulk copies): every consumer thread arrives after its
    // own ld.shared of the chunk. 8-bit rows (a tensor TMA box): the warpgroup meets at a named
    // barrier and one thread arrives. Both are ordered under the PTX memory model (a barrier
    // then one release is cumulative), but compute-sanitizer racecheck orders only the arriving
    // thread's accesses before an mbarrier arrive and reported the producer's next bulk copy
    // racing the other lanes' reads (sessions 4 and 5: a __syncwarp() or a named barrier before
    // one arrive did not satisfy it). Every thread arriving in the 8-bit-row kernels made
    // ptxas spill 96-120 bytes (256-row tiles), and racecheck reports nothing on their TMA box.
    if constexpr (kRows8) {
      ptx::named_barrier_sync(1 + wg, 128);
      if (threadIdx.x % 128 == 0) ptx::mbarrier_arrive(&empty[stage]);
    } else {
      ptx::mbarrier_arrive(&empty[stage]);
    }
    if (++stage == Layout::kStages) stage = 0, phase ^= 1;
  }
  if constexpr (kChained) {
#pragma unroll
    for (int rt = 0; rt < kRowTiles; ++rt)
#pragma unroll
      for (int r = 0; r < kAccRegs; ++r) ptx::fence_register(acc[rt][r]);
  } else if constexpr (kChunks == 0) {  // (one split only: sum_x covers all of K)
#pragma unroll
    for (int r = 0; r < kAccRegs; ++r) ptx::fence_register(acc[0][r]);
    promote(0);
  }

  // y[tok, row] = the sums (+ bias): this thread's rows row0[rt], row0[rt] + 8 for its tokens
  const T* bias = static_cast<const T*>(p.bias);
  T* out = static_cast<T*>(p.out);
  // int8 rows: the per-channel scale rs, then the bias (the reference's order, one rounding)
  constexpr bool kRowScale = kRows8 && !kMx;
  // (Bias and row scales by read-only loads: through plain pointers each would be re-read after
  // every store to `out` it might alias, a load -> store chain per element; session 10 found
  // that chain costing the 8-bit GEMMs half their time at 128 x 256.)
  auto store = [&](float sum, float rs, int tok, int row) {
    const float v = kRowScale ? __fmul_rn(sum, rs) : sum;
    out[size_t(tok) * p.N + row] = ptx::from_f32<T>(bias ? v + ptx::to_f32(__ldg(&bias[row])) : v);
  };
  auto for_each_acc = [&](auto f) {  // f(sum, rs, tok, row) for this thread's sums of tokens < M
#pragma unroll
    for (int rt = 0; rt < kRowTiles; ++rt) {
      const float rs[2] = {kRowScale ? __ldg(&p.row_scale[row0[rt]]) : 1.f,
                           kRowScale ? __ldg(&p.row_scale[row0[rt] + 8]) : 1.f};
#pragma unroll
      for (int c = 0; c < kAccRegs / 4; ++c)
#pragma unroll
        for (int u = 0; u < 2; ++u) {
          const int tok = tok0 + 8 * c + 2 * tig + u;
          if (tok >= p.M) continue;
#pragma unroll
          for (int h = 0; h < 2; ++h) {
            const int r = 4 * c + 2 * h + u;
            f(kChained ? acc[rt][r] : fin[kChained ? 0 : r], rs[h], tok, row0[rt] + 8 * h);
          }
        }
    }
  };
  if (!wgmma_splits(kW, kRowTiles, kBN) || p.splits == 1) return for_each_acc(store);

  // K split (small grids, w4_ops.cpp wgmma_plan): the sums go to this split's fp32 partials and
  // the last CTA of the (rows, tokens) tile to arrive adds them in split order (deterministic)
  // and finishes them: the GEMVs' protocol (lowbit/gemv_store.cuh) over the 256 consumer threads,
  // whose named barrier orders every thread's partial stores before thread 128's arrival.
  const GemvSplit split{p.M, p.N, p.splits, int(blockIdx.z), int(blockIdx.y * gridDim.x + blockIdx.x), p.partial,
                        p.arrivals};
  for_each_acc([&](float sum, float, int tok, int row) { *partial_at(split, split.split, tok, row) = sum; });
  constexpr uint32_t kBarSplit = 3;  // (1 and 2: the 8-bit-row warpgroups' stage releases)
  __shared__ int last;
  ptx::named_barrier_sync(kBarSplit, kWgThreads - 128);
  if (threadIdx.x == 128) last = leader_arrives_last(split);
  ptx::named_barrier_sync(kBarSplit, kWgThreads - 128);
  if (!last) return;
  constexpr int kCtaRows = kWgRows * kRowTiles;
  reduce_partials<kCtaRows>(split, tok0, min(kBN, p.M - tok0), blockIdx.x * kCtaRows, threadIdx.x - 128,
                            kWgThreads - 128,
                            [&](float v, int tok, int row) { store(v, kRowScale ? __ldg(&p.row_scale[row]) : 1.f, tok, row); });
}

// kRowTiles = 2 (w4_ops.cpp chained_row_tiles: where it halves the waves): 256 weight rows
// per CTA, so X is read from L2 once per 256 rows instead of 128 (chained formats only).
// kCtas = 2: two CTAs per SM (w4_params.h wgmma_two_ctas), twice the warps to hide the consumers'
// latency, at half the shared memory (fewer stages) and 96 registers per consumer thread.
// kXPre: x arrives permuted (p.x_pre; w4_params.h wgmma_x_pre_built).
template <typename T, WgmmaWeights kW, int kBN, int kChunks, bool kZeros, int kRowTiles, int kCtas = 1,
          bool kXPre = false>
__global__ void __launch_bounds__(kWgThreads, kCtas)
    a16w4_wgmma_kernel(const __grid_constant__ CUtensorMap tmap_x, const __grid_constant__ CUtensorMap tmap_w,
                       const W4WgmmaParams p) {
  constexpr bool kRows8 = wgmma_rows8(kW);
  static_assert(kBN == 16 || kBN == 32 || kBN == 64 || kBN == 128 || kBN == 256, "wgmma N of the RS wrappers");
  static_assert(kChunks == 0 || kChunks == 1 || kChunks == 2 || kChunks == 4, "groups of 32, 64, 128 or per row");
  static_assert(kCtas == 1 || wgmma_two_ctas(kW, kRowTiles, kBN, kChunks), "two CTAs per SM: w4_params.h wgmma_two_ctas");
  using Layout = W4WgmmaSmem<kBN, kRows8, kRowTiles, kCtas>;
  // The producer warpgroup's registers go to the 256 consumer threads: launch 168 -> 40 / 232
  // (128 x 40 + 256 x 232 = 384 x 168); two CTAs: launch 80 -> 48 / 96. Where warps 1-3 permute x
  // (<= 64 tokens: 8-64 accumulators) they keep 56 (ptxas spilled their addresses at 40) and the
  // consumers take 224.
  static_assert(!kXPre || wgmma_x_pre_built(kW, kBN, kCtas), "x permuted before the kernel: w4_params.h wgmma_x_pre_built");
  constexpr bool kXPermuteHere = !kXPre && wgmma_x_permutable(kW, kBN, kChunks);
  constexpr int kProducerRegs = kCtas == 2 ? 48 : kXPermuteHere ? 56 : 40;
  constexpr int kConsumerRegs = kCtas == 2 ? 96 : kXPermuteHere ? 224 : 232;
  static_assert(128 * kProducerRegs + 256 * kConsumerRegs <= kWgThreads * (kCtas == 1 ? 168 : 80),
                "setmaxnreg: the warpgroups' registers within the CTA's allocation");
  extern __shared__ __align__(1024) uint8_t smem_raw[];
  uint8_t* smem = reinterpret_cast<uint8_t*>((reinterpret_cast<uintptr_t>(smem_raw) + 1023) & ~uintptr_t(1023));
  uint64_t* full = reinterpret_cast<uint64_t*>(smem + Layout::kStages * Layout::kStageBytes);
  uint64_t* empty = full + Layout::kStages;
  uint64_t* x_ready = empty + Layout::kStages;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;

  if (threadIdx.x == 0) {
    ptx::tma_prefetch_desc(&tmap_x);
    if constexpr (kRows8) ptx::tma_prefetch_desc(&tmap_w);
    for (int s = 0; s < Layout::kStages; ++s) {
      ptx::mbarrier_init(&full[s], 1);
      ptx::mbarrier_init(&empty[s], kRows8 ? 2 : kWgThreads - 128);  // the consumers' releases (consume)
      ptx::mbarrier_init(&x_ready[s], kXPermuteThreads);              // permute_x_blocks
    }
    ptx::fence_barrier_init();
  }
  __syncthreads();

  if (threadIdx.x < 128) {
    // ------------------------------------------------------------ producer (one thread)
    ptx::setmaxnreg_dec<kProducerRegs>();
    if (warp == 0 && lane == 0) {
      const int words = p.K / 8, tok0 = blockIdx.y * kBN;
      const KBlocks kbs = split_k_blocks(p);
      constexpr int kCtaRows = kWgRows * kRowTiles;
      const uint32_t* tiles = p.w + size_t(blockIdx.x) * kCtaRows * words;  // 8 (16) full 16-row tiles
      int stage = 0;
      uint32_t phase = 0;
      for (int kb = kbs.kb0; kb < kbs.kb1; ++kb) {
        uint8_t* x_dst = smem + stage * Layout::kStageBytes;
        ptx::mbarrier_wait(&empty[stage], phase ^ 1);
        // The consumers read the stage's weights with ld.shared (generic proxy); the copies below
        // write it through the async proxy. As in the GEMV (w4_gemv.cuh), a proxy fence orders
        // the two; without it racecheck reported the bulk copies racing those reads (session 5).
        ptx::fence_proxy_async_smem();
        ptx::mbarrier_arrive_expect_tx(&full[stage], Layout::kStageBytes);  // OOB-filled X rows count too
        ptx::tma_load_2d(x_dst, &tmap_x, &full[stage], kb * kBlockElems, tok0);
        ptx::tma_load_2d(x_dst + Layout::kXHalf, &tmap_x, &full[stage], kb * kBlockElems + 64, tok0);
        if constexpr (kRows8) {  // the CTA's 128 (256) rows x 128 bytes of K: one swizzled box
          ptx::tma_load_2d(x_dst + Layout::kXBytes, &tmap_w, &full[stage], kb * kBlockElems, blockIdx.x * kCtaRows);
        } else {
          for (int t = 0; t < kCtaRows / kTileRows; ++t)
            ptx::bulk_copy_g2s(x_dst + Layout::kXBytes + t * 1024,
                               tiles + size_t(t) * kTileRows * words + size_t(kb) * 256, 1024, &full[stage]);
        }
        if (++stage == Layout::kStages) stage = 0, phase ^= 1;
      }
    }
    if constexpr (kXPermuteHere) {
      if (warp > 0) permute_x_blocks<kBN, kRowTiles, kCtas>(p, smem, full, x_ready);
    }
  } else {
    ptx::setmaxnreg_inc<kConsumerRegs>();
    a16w4_wgmma_consume<T, kW, kBN, kChunks, kZeros, kRowTiles, kCtas, kXPre>(p, smem);
  }
}

}  // namespace lowbit::w4
