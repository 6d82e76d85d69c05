#pragma once
// a16w4 / mxfp4 GEMV v8 ("stream"): the default for 1..16 tokens (and 17..32 for int4 g128 / per
// channel) when every 16-row tile and every 128-element block is full (N % 16 == 0, K % 128 == 0:
// the shapes of real models). Since session 8 the mixed-input wgmma takes 9..32 tokens where the
// 128-row tiles are full too (w4_ops.cpp wgmma_takes_gemv_tokens), so v8 keeps 1..8 there.
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
//  - Measured (H100, sessions 6-7, bench/NOTES.md): M = 1 / 16 / 32 1.9-2.7x / 1.4-1.9x /
//    0.8-1.0x cuBLAS bf16 (v6 at 1 / 16: 1.6-2.2x / 1.0-1.4x; v7 at 32: 0.7-0.8x); ncu at M = 1:
//    ~200 instructions per KB, issue ~35% busy, latency-bound: 22% of the stall samples on a
//    block's first MMA waiting for x (session 7), the target of kXRing below (session 8: +4-9% at
//    32 tokens, slower at 1..8); the bare stream of these rings runs at 2.8 TB/s
//    (tools/stream_probe.cu).
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
#include <utility>

#include "gemm/w4/w4_gemv.cuh"  // Magic, mma_chunk
#include "gemm/w4/w4_params.h"
#include "lowbit/gemv_store.cuh"
#include "lowbit/ptx/griddep.cuh"
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
// kPrefetch: x and scales one block ahead (default at 1..8 tokens; LOWBIT_A16W4_STREAM_PREFETCH).
// (Session 13 measured and removed a variant that issued the next block's loads only after this
// block's had arrived, through an address dependency: ptxas waits for all of the loop's global
// loads at once (one scoreboard), so with the prefetch every other block's first MMA also waits
// for the loads just issued; ordering them changed where the samples sat, not the time.)
// kXRing (default at 17..32 tokens, w4_ops.cpp gemv_stream_xring; N % 64 == 0 so the four warps
// of a CTA share their K split): x comes through a ring of the CTA, kXRingStages slots of one
// block's x each (M tokens x 128 elements, one TMA box by x_map), filled by warp 0 and released by
// all 128 threads, so the MMAs read x from shared memory instead of waiting on global loads
// (session 7's ncu source page: 22% of v8's stall samples at M = 1 sit on the first MMA of a block,
// waiting for x loaded a block ahead). One copy of x per CTA, not per warp: per-warp copies would
// move M x 256 bytes from L2 per KB of codes (3x the weight bytes at 8 tokens) where the warps'
// global loads of the same x hit L1. Dynamic shared memory: kXRingStages x M x 256 bytes + 128.
// (Session 8 measured and removed a variant with the sums of x per group from a pass instead of
// the all-ones MMA, half of the MMAs at 16-32 tokens: 0-12% slower; bench/NOTES.md.)
// kCopy: K blocks per bulk copy (1, 2 or 4; session 20, LOWBIT_A16W4_STREAM_COPY): the warp's 8 KB
// ring as 8 / kCopy slots of kCopy consecutive blocks (consecutive in the w4 layout), one barrier
// wait, release and refill per slot instead of per block. Why: on the H200 the bare stream of v8's
// geometry runs 12.96 us per 32 MB launch in 1 KB copies against 11.64 / 11.16 in 2 / 4 KB
// (tools/stream_probe.cu, s20-call3), and the per-block refill is ~25 of v8's ~207 instructions a
// block (ncu, s20-call3). Only with the prefetch (1..8 tokens) and without the x ring.
// kMinor (2, 4 or 8; 0: split-major over the grid): the CTA's warps are the kMinor K splits of
// kCtaWarps / kMinor tiles (warp = tile's place x kMinor + split), and their sums meet in shared
// memory behind one CTA barrier: no fp32 partials in global memory, no fence, no counter, no L2
// reads at the end (w4_ops.cpp gemv_stream_minor). Why: session 21 put that end at ~1 us of the
// GEMV's fixed cost at M = 1 (a 2-split cluster reduction gained ~1.1 us on 14336 x 4096, while 4-
// and 8-CTA clusters lost to their scheduling); session 22 measured ~2.3 us saved on 8192^2 at M = 1
// (s22-call2). At 1..8 tokens, without the x ring. kMinor = 8: a
// CTA of 8 warps (one tile's 8 splits; two CTAs per SM, the same 16 warps and registers), its
// 64 KB of rings in dynamic shared memory (over the 48 KB static limit).
// kXStage (1..8 tokens with the prefetch, where the CTA's warps need all of K: one split, or the
// splits inside the CTA): x staged in shared memory once per CTA (one bulk copy per token row, rows
// K + 32 elements apart: a quad phase's two rows in different bank halves), read by LDS next to its
// MMAs, instead of LDGs one block ahead. Why: ncu of v8 at M = 1 (s22-call6) put 35% of the stall
// samples on the first MMA of a block's x, long scoreboard: ptxas puts the next block's x / scale
// loads on the same scoreboard, so the MMA waits for the loads issued just before it. Dynamic
// shared memory: M x (2K + 64) bytes after the rings (kMinor = 8) or alone, + 128.
// kXStage = 2 (int4): also the sums of x per promotion unit (a group; per channel: a block),
// computed once per CTA from the staged rows (at most M x K / 32 floats after them), one LDS per
// column and unit in the promotion instead of the 8 all-ones MMAs a block that summed x (half of
// the block's MMAs at 1..8 tokens).
template <typename T, int kTiles, int kChunks, bool kZeros, bool kMx = false, bool kPrefetch = true,
          bool kXRing = false, int kCopy = 1, int kMinor = 0, int kXStage = 0>
__global__ void __launch_bounds__(stream_cta_warps(kMinor) * 32,
                                  stream_ctas_per_sm(kTiles, kPrefetch) * kStreamWarps / stream_cta_warps(kMinor))
    a16w4_gemv_stream_kernel(const GemvParams p, const __grid_constant__ CUtensorMap x_map) {
  static_assert(kTiles == 1 || kTiles == 2 || kTiles == 4, "8, 16 or 32 tokens");
  static_assert(kTiles != 4 || !kPrefetch, "32 tokens: x loaded at the top of the block (registers)");
  static_assert(kChunks == 0 || kChunks == 1 || kChunks == 2 || kChunks == 4, "groups of 32, 64, 128 or per row");
  static_assert(!kMx || (kChunks == 1 && !kZeros), "MX: one E8M0 scale per 32 elements, no zero point");
  static_assert(kCopy == 1 || ((kCopy == 2 || kCopy == 4) && kPrefetch && !kXRing),
                "blocks per copy: 2 or 4 only on the prefetching loop without the x ring");
  static_assert(kMinor == 0 || ((kMinor == 2 || kMinor == 4 || kMinor == 8) && kTiles == 1 && kPrefetch && !kXRing),
                "splits inside the CTA: 2, 4 or 8, at 1..8 tokens without the x ring");
  static_assert(!kXStage || (kTiles == 1 && kPrefetch && !kXRing), "x staged: at 1..8 tokens, without the x ring");
  static_assert(kXStage >= 0 && kXStage <= 2 && (kXStage != 2 || !kMx), "x staged (1), with its chunk sums (2: int4)");
  constexpr bool kSumStaged = kXStage == 2;
  constexpr int kCtaWarps = stream_cta_warps(kMinor);
  constexpr bool kDynRing = kCtaWarps > kStreamWarps;  // the rings in dynamic shared memory (kMinor = 8)
  constexpr bool kSumX = !kMx && !kSumStaged;  // int4: the (z + base) * sum x term (all-ones MMA, or staged)
  constexpr int kGroups = kChunks == 0 ? 1 : 4 / kChunks;  // scale entries per row and block
  constexpr int kStages = kStreamStages / kCopy;  // ring slots of kCopy KB per warp
  constexpr int kSlot = 64 * kCopy;                // uint4 per slot
  static_assert(kStages >= 2 && kStages * kCopy == kStreamStages, "the ring keeps 8 KB a warp in 2+ slots");
  using Scale = std::conditional_t<kMx, uint8_t, T>;
  using Vec = typename ScaleVec<kGroups * sizeof(Scale)>::type;  // one load per row and block
  static_assert(!kMx || sizeof(Vec) == 4, "MX: a row's four E8M0 scales of a block in one word (e8m0x4_to_float)");

  // 8 KB per warp (kCopy: the same); kDynRing: in the dynamic region instead (a 16-byte stub here)
  __shared__ __align__(128) uint4 ring[kDynRing ? 1 : kCtaWarps][kDynRing ? 1 : kStages * kSlot];
  __shared__ __align__(8) uint64_t full[kCtaWarps][kStages];
  __shared__ __align__(8) uint64_t empty[kCtaWarps][kStages];  // the 32 lanes done reading a slot
  // kXRing: the CTA's x ring (dynamic) and its barriers; kDynRing: the warps' rings
  extern __shared__ __align__(128) uint4 stream_xring[];
  __shared__ __align__(8) uint64_t x_full[kXRing ? kXRingStages : 1];
  __shared__ __align__(8) uint64_t x_empty[kXRing ? kXRingStages : 1];  // all 128 threads done with a slot
  __shared__ __align__(8) uint64_t x_staged;  // kXStage: the M rows of x have landed

  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, grp = lane / 4, tig = lane % 4;
  const int units = p.N / kTileRows;  // a warp's rows: one 16-row tile
  const int wid = blockIdx.x * kStreamWarps + warp;
  // (kMinor: the host launches whole CTAs, N / 16 tiles a multiple of kCtaWarps / kMinor)
  if (!kMinor && wid >= units * p.splits) return;  // a whole warp; only kMinor synchronizes the CTA
  // Split-major: the warps of a CTA take consecutive tiles of one split, so they share x's slice in
  // L1. kMinor: consecutive splits of one tile (the CTAs on an SM share the splits' x slices).
  const int split = kMinor ? warp % kMinor : wid / units;
  const int tile = kMinor ? blockIdx.x * (kCtaWarps / kMinor) + warp / kMinor : wid % units;
  const int slice_blocks = p.k_slice / kBlockElems;
  const int kb0 = split * slice_blocks;
  const int nb = min(p.K / kBlockElems - kb0, slice_blocks);
  const int words = p.K / 8;
  const size_t tile_words = size_t(kTileRows) * words;  // tile + 1 is this far after tile
  const uint32_t* src = p.w + size_t(tile) * tile_words + size_t(kb0) * 256;  // block b: + 256 b words
  // The dynamic region aligned up to 128 bytes (the launch adds 128 bytes of slack; aligned up from
  // the array itself, so its loads stay ld.shared): the x ring's slots (kXRing), or the warps' rings
  // (kDynRing) and then the staged x (kXStage).
  uint4* const dyn = stream_xring + ((128 - (ptx::smem_addr(stream_xring) & 127)) & 127) / 16;
  uint4* slots = kDynRing ? dyn + warp * (kStages * kSlot) : ring[warp];
  uint64_t* bar = full[warp];
  uint64_t* ebar = empty[warp];
  // Blocks u kCopy .. (the slot's unit u, at most kCopy blocks, fewer at the split's end) into slot
  // s (lane 0): one bulk copy on the slot's barrier.
  auto request = [&](int s, const uint32_t* from, int blocks) {
    const uint32_t bytes = uint32_t(kCopy == 1 ? 1 : blocks) * 1024;
    ptx::mbarrier_arrive_expect_tx(&bar[s], bytes);
    ptx::bulk_copy_g2s(slots + s * kSlot, from, bytes, &bar[s]);
  };
  // kXRing: x slot k holds block b's x (b % kXRingStages == k) as M rows of 256 bytes; the TMA
  // boxes land 128-byte aligned (dyn). Warp 0's lane 0 fills the slots.
  uint4* const xs = dyn;
  const int xs_u4 = 16 * p.M;  // uint4 per x slot
  auto request_x = [&](int k, int b) {
    ptx::mbarrier_arrive_expect_tx(&x_full[k], 256 * p.M);
    ptx::tma_load_2d(xs + k * xs_u4, &x_map, &x_full[k], (kb0 + b) * kBlockElems, 0);
  };
  auto request_x_ring = [&] {  // the ring's first kXRingStages blocks of x
#pragma unroll
    for (int k = 0; k < kXRingStages; ++k)
      if (k < nb) request_x(k, k);
  };
  // kXStage: token r's row of x at x_rows + r x row_elems (all of K: the host stages only where the
  // CTA's warps cover it), filled by warp 0's lane 0 with one bulk copy per row.
  const int row_elems = p.K + kXStagePad;
  T* const x_rows = reinterpret_cast<T*>(dyn + (kDynRing ? kCtaWarps * kStages * kSlot : 0));
  auto request_x_rows = [&] {
    ptx::mbarrier_arrive_expect_tx(&x_staged, uint32_t(p.M) * p.K * sizeof(T));
    for (int r = 0; r < p.M; ++r)
      ptx::bulk_copy_g2s(x_rows + size_t(r) * row_elems, static_cast<const T*>(p.x) + size_t(r) * p.K,
                         uint32_t(p.K * sizeof(T)), &x_staged);
  };


  // This thread's rows: r0 = tile row grp and r1 = grp + 8.
  const int r0 = tile * kTileRows + grp, r1 = r0 + 8;
  // x's column grp of token tile t is token 8t + grp; past M it reads token M - 1 instead of
  // zeros (no predicates): those MMA columns are tokens >= M, never stored.
  const T* xp[kTiles];  // the x of the block at the loop's base (advance below); block base + i's at + i x 128
  const T* xsp[kTiles];  // kXStage: the same in shared memory
#pragma unroll
  for (int t = 0; t < kTiles; ++t) {
    xp[t] = static_cast<const T*>(p.x) + size_t(min(t * 8 + grp, p.M - 1)) * p.K + size_t(kb0) * kBlockElems + 8 * tig;
    xsp[t] = x_rows + min(t * 8 + grp, p.M - 1) * row_elems + kb0 * kBlockElems + 8 * tig;
  }
  // kSumStaged: token r's sums per promotion unit (kPer chunks of 32) at x_sums + r x units; this
  // thread's accumulator columns 2 tig and 2 tig + 1 (tokens past M read token M - 1: never stored),
  // at the loop's base block (units: K / (32 kPer) a token)
  constexpr int kPer = kChunks == 0 ? 4 : kChunks;  // chunks per promotion (per channel: every block)
  constexpr int kUnitsPerBlock = 4 / kPer;
  const int sum_units = p.K / (32 * kPer);
  float* const x_sums = reinterpret_cast<float*>(x_rows + p.M * row_elems);
  const float* sum_col[2];
#pragma unroll
  for (int c = 0; c < 2; ++c) sum_col[c] = x_sums + min(2 * tig + c, p.M - 1) * sum_units + kb0 * kUnitsPerBlock;
  // Scales (N, groups) row-major: this block's kGroups entries of a row are contiguous.
  const int groups = kMx ? p.K / 32 : (kChunks == 0 ? 1 : p.K / p.group);
  const int g0 = kChunks == 0 ? 0 : kb0 * kGroups;
  const Vec* s_row[2];
  const Vec* z_row[2];
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    const size_t row = size_t(r0 + 8 * h);
    s_row[h] = reinterpret_cast<const Vec*>(static_cast<const Scale*>(p.scales) + row * groups + g0);
    z_row[h] = kZeros ? reinterpret_cast<const Vec*>(static_cast<const T*>(p.zeros) + row * groups + g0) : nullptr;
  }
  constexpr int kVecStep = kChunks == 0 ? 0 : 1;  // vectors per block (per channel: the same one)
  const uint32_t* refill = src + size_t(kStages) * kCopy * 256;  // the unit kStages ahead

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
  // The loads address blocks relative to a base that the loop advances once per trip (advance), and
  // `rel` is a compile-time constant in the unrolled trips, so each load is the base pointer plus an
  // immediate offset: no address arithmetic per load. (Until session 21: 32-bit offsets from block
  // 0 advanced per load, one 64-bit multiply-add per scale vector and four instructions for x's
  // address, ~10 of the ~132 instructions a block at M = 1.)
  auto load_in = [&](In& in, int rel) {  // block base + rel: its x at xp + rel x 128, scale vectors at s_row / z_row + rel
    if constexpr (!kXRing && !kXStage) {  // (kXRing: x comes with the block's slot; kXStage: staged)
#pragma unroll
      for (int j = 0; j < 4; ++j)
#pragma unroll
        for (int t = 0; t < kTiles; ++t) in.x[j][t] = ptx::ld_global_nc_v4(xp[t] + rel * kBlockElems + 32 * j);
    }
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      in.s[h] = __ldg(s_row[h] + rel * kVecStep);
      if constexpr (kZeros) in.z[h] = __ldg(z_row[h] + rel * kVecStep);
    }
  };
  auto advance = [&](int blocks) {  // the loads' base moves on by `blocks`
#pragma unroll
    for (int t = 0; t < kTiles; ++t) xp[t] += blocks * kBlockElems, xsp[t] += blocks * kBlockElems;
#pragma unroll
    for (int c = 0; c < 2; ++c) sum_col[c] += blocks * kUnitsPerBlock;
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      s_row[h] += blocks * kVecStep;
      if constexpr (kZeros) z_row[h] += blocks * kVecStep;
    }
  };

  // The first block's x and scales are requested before the ring's first kStages blocks (session
  // 13): every warp of the grid asks for its 8 KB at once (half of an 8192^2 matrix), and loads
  // issued behind that queue waited ~6 us at M = 1 (ncu: 28% of the stall samples on the first
  // block's wait for them). Measured +5-9% at M = 1 where a warp streams 16-28 blocks. (An L2
  // prefetch of blocks 1..3's x with them, next in the profile, measured 2-8% slower: removed.)
  // At 9..32 tokens (no prefetch) too since session 14 (s14-call1, same call: 28672x8192 M = 12 /
  // 16 / 32 -5..-6%, 8192^2 -1%, 14336x4096 +1%, mxfp4 within +-2%). p.first = 0
  // (LOWBIT_A16W4_STREAM_FIRST=late, A/B runs): after the ring's requests, as before session 13.
  // p.pdl (programmatic dependent launch, LOWBIT_A16W4_PDL=1): the kernel may start while the
  // kernel before it in the stream still runs. Its weights' first ring fills go out first (the
  // host launches this way only on the user's word that the kernel before does not write the
  // weights or scales), then griddep_wait; x (written by the kernel before), the split's partials
  // and counters, and the output only after it. Without p.pdl the order is session 13's: the
  // first block's x and scales, then the ring's fills.
  In in[2];
  const bool pdl = p.pdl != 0;
  auto first_loads = [&] {
    if (nb > 0 && p.first) {  // (without the prefetch block 0 then skips its load)
      load_in(in[0], 0);
      if constexpr (!kPrefetch) advance(1);
    }
  };
  if (!pdl) first_loads();
  if (lane == 0) {
#pragma unroll
    for (int s = 0; s < kStages; ++s) ptx::mbarrier_init(&bar[s], 1), ptx::mbarrier_init(&ebar[s], 32);
    if constexpr (kXRing) {
      if (warp == 0) {
#pragma unroll
        for (int k = 0; k < kXRingStages; ++k)
          ptx::mbarrier_init(&x_full[k], 1), ptx::mbarrier_init(&x_empty[k], kStreamWarps * 32);
      }
    }
    if constexpr (kXStage) {
      if (warp == 0) ptx::mbarrier_init(&x_staged, 1);
    }
    ptx::fence_barrier_init();
    if constexpr (kXStage) {  // x before the rings' first blocks (as the first block's x, session 13)
      if (warp == 0 && !pdl) request_x_rows();
    }
    // the ring's first fills, blocks 0 .. kStages - 1 of the split (session 13's candidate that
    // requested only 1, 2 or 4 of them before block 0 measured within +-1% of all eight, s14-call1)
#pragma unroll
    for (int s = 0; s < kStages; ++s)
      if (s * kCopy < nb) request(s, src + size_t(s) * kCopy * 256, min(kCopy, nb - s * kCopy));
    if constexpr (kXRing) {
      if (warp == 0 && !pdl) request_x_ring();
    }
  }
  if (pdl) {
    ptx::griddep_wait();  // the kernel before has finished and its writes (x) are visible
    if (lane == 0 && warp == 0) {
      if constexpr (kXStage) request_x_rows();
      if constexpr (kXRing) request_x_ring();
    }
    first_loads();
  }
  // kXRing: the other warps wait on barriers warp 0 initialized (every warp of the CTA is active:
  // the host takes this path only when the CTA's four tiles are in one split)
  // (kXStage: the same, for x_staged; the host stages x only where every warp of the CTA is active)
  if constexpr (kXRing || kXStage) __syncthreads();
  else __syncwarp();
  if constexpr (kXStage) ptx::mbarrier_wait(&x_staged, 0);
  if constexpr (kSumStaged) {
    // the unit sums of the staged rows: a thread sums a chunk of 32, the kPer lanes of a unit (a
    // unit's chunks are consecutive lanes: K / 32 is a multiple of 4) add theirs by shuffles, the
    // unit's first lane stores; every lane runs every round (out-of-range chunks count 0)
    const int chunks = p.K / 32, total = p.M * chunks;
    for (int c0 = 0; c0 < total; c0 += kCtaWarps * 32) {
      const int c = c0 + int(threadIdx.x);
      float sum = 0.f;
      if (c < total) {
        const int tok = c / chunks;
        const uint4* from = reinterpret_cast<const uint4*>(x_rows + tok * row_elems + (c - tok * chunks) * 32);
        float part[4];
#pragma unroll
        for (int q = 0; q < 4; ++q) {
          const uint4 v = from[q];
          const T* e = reinterpret_cast<const T*>(&v);
          part[q] = 0.f;
#pragma unroll
          for (int k = 0; k < 8; ++k) part[q] += to_f32(e[k]);
        }
        sum = (part[0] + part[1]) + (part[2] + part[3]);
      }
#pragma unroll
      for (int off = 1; off < kPer; off *= 2) sum += __shfl_xor_sync(0xffffffffu, sum, off);
      if (c < total && c % kPer == 0) x_sums[c / kPer] = sum;
    }
    __syncthreads();
  }
  if constexpr (kPrefetch) {
    if (nb > 0 && !p.first) load_in(in[0], 0);
  }
  // Release a slot, then refill it: every thread arrives on the slot's empty barrier (its reads
  // are done), and the producing thread waits for all of them before its copy overwrites the slot
  // (the consumer-release / producer-wait pattern of TMA pipelines). Not a proxy fence: that
  // compiles to MEMBAR.ALL.CTA, which waits for every load the thread has in flight (ptxas hoists
  // the prefetch's loads above it).
  auto release_then_refill = [&](uint64_t* empty_bar, uint32_t parity, bool producer, auto&& refill_slot) {
    ptx::mbarrier_arrive(empty_bar);
    if (producer) {
      ptx::mbarrier_wait(empty_bar, parity);
      refill_slot();
    }
  };
  // kPos: b % kCopy where the loop is unrolled by a multiple of kCopy (0 for kCopy = 1), or -1:
  // computed at run time (int4 g32 / g64 at 4 blocks a copy, unrolled by two: unrolled by four
  // they spilled 8-60 bytes).
  // kNext: the next block's place relative to the loads' base (the prefetch: the block's place in
  // its trip + 1).
  auto block = [&](int b, In& in, In& next, auto pos, auto next_rel) {
    [[maybe_unused]] constexpr int kNext = decltype(next_rel)::value;  // (unused without x staged or the prefetch)
    constexpr int kPos = decltype(pos)::value;
    static_assert(kPos >= -1 && kPos < kCopy, "the block's place in its copy");
    const int at = kPos >= 0 ? kPos : (b & (kCopy - 1));
    const int u = b / kCopy, s = u % kStages;  // the block's unit (copy) and slot
    // ---- at a unit's first block, refill the slot the previous unit read (its data already went
    // through that unit's MMAs) with the unit kStages after it. Until session 7 the refill came
    // after this block's slot reads behind a proxy fence (MEMBAR.ALL.CTA), which waited every
    // block for the x / scale loads just issued one block ahead: the prefetch hid nothing (and an
    // L1 prefetch made it slower).
    if (at == 0 && b > 0) {
      const int sp = (u - 1) % kStages, next_unit = u - 1 + kStages;
      if (next_unit * kCopy < nb)  // (warp-uniform) the warp's slot, refilled by its lane 0
        release_then_refill(&ebar[sp], ((u - 1) / kStages) & 1, lane == 0,
                            [&] { request(sp, refill, min(kCopy, nb - next_unit * kCopy)); });
      refill += kCopy * 256;
      if constexpr (kXRing) {  // the CTA's x slot of block b - 1, refilled by warp 0
        const int kp = (b - 1) % kXRingStages;
        if (b - 1 + kXRingStages < nb)  // (CTA-uniform: one split)
          release_then_refill(&x_empty[kp], ((b - 1) / kXRingStages) & 1, warp == 0 && lane == 0,
                              [&] { request_x(kp, b - 1 + kXRingStages); });
      }
    }
    if constexpr (kPrefetch) {
      if (b + 1 < nb) load_in(next, kNext);
    } else if (b > 0 || !p.first) {
      load_in(in, 0);
      advance(1);
    }
    // ---- the block's weights: this thread's words of rows grp and grp + 8 (layout v3 chunks); the
    // unit's barrier is waited on at its first block only (one copy brings all of its blocks)
    if (at == 0) ptx::mbarrier_wait(&bar[s], (u / kStages) & 1);
    const uint4* blk = slots + s * kSlot + at * 64;
    const uint4 c0 = blk[4 * grp + tig], c1 = blk[32 + 4 * grp + tig];
    const uint32_t wr0[4] = {c0.x, c0.y, c0.z, c0.w}, wr1[4] = {c1.x, c1.y, c1.z, c1.w};
    // x of this thread's token of each token tile (8t + grp; past M token M - 1) at its 8 elements
    // of each chunk: from the CTA's x slot (kXRing; rows 256 bytes apart: a quad phase's two
    // tokens share banks, 2-way) or from the registers loaded from global.
    uint4 xv[4][kTiles];
    if constexpr (kXRing) ptx::mbarrier_wait(&x_full[b % kXRingStages], (b / kXRingStages) & 1);
#pragma unroll
    for (int j = 0; j < 4; ++j)
#pragma unroll
      for (int t = 0; t < kTiles; ++t) {
        if constexpr (kXRing) xv[j][t] = xs[(b % kXRingStages) * xs_u4 + 16 * min(8 * t + grp, p.M - 1) + 4 * j + tig];
        else if constexpr (kXStage)
          xv[j][t] = *reinterpret_cast<const uint4*>(xsp[t] + (kNext - 1) * kBlockElems + 32 * j);
        else xv[j][t] = in.x[j][t];
      }

    [[maybe_unused]] Scale sc[2][kGroups], zc[2][kGroups];  // (kMx: sc unused; no zero points: zc)
    [[maybe_unused]] float mx_scale[2][kMx ? 4 : 1];  // kMx: the block's four E8M0 scales of each row as fp32
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      if constexpr (kMx) e8m0x4_to_float(in.s[h], mx_scale[h]);
      else memcpy(sc[h], &in.s[h], sizeof(Vec));
      if constexpr (kZeros) memcpy(zc[h], &in.z[h], sizeof(Vec));
    }
    float acc[kTiles][4], sum_x[kTiles][4];  // one group's sums, zeroed per group
    auto zero_sums = [&] {
#pragma unroll
      for (int t = 0; t < kTiles; ++t)
#pragma unroll
        for (int i = 0; i < 4; ++i) sum_x[t][i] = 0.f, acc[t][i] = 0.f;
    };
    zero_sums();
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      mma_chunk<T, kTiles, kMx, kSumX, !kMx>(acc, sum_x, wr0[j], wr1[j], xv[j]);
      if (j % kPer != kPer - 1) continue;  // (kPer: per channel, every block: bounded sums)
      const int gi = kChunks == 0 ? 0 : j / kChunks;
#pragma unroll
      for (int t = 0; t < kTiles; ++t) {
        float(&tot)[4] = total[t];
        const float(&a)[4] = acc[t];
        if constexpr (kMx) {
          const float s0 = mx_scale[0][gi], s1 = mx_scale[1][gi];
          tot[0] = fmaf(s0, a[0], tot[0]);
          tot[1] = fmaf(s0, a[1], tot[1]);
          tot[2] = fmaf(s1, a[2], tot[2]);
          tot[3] = fmaf(s1, a[3], tot[3]);
        } else {
          const float s0 = to_f32(sc[0][gi]), s1 = to_f32(sc[1][gi]);
          const float zb0 = (kZeros ? to_f32(zc[0][gi]) : 8.f) + Magic<T>::kBase;
          const float zb1 = (kZeros ? to_f32(zc[1][gi]) : 8.f) + Magic<T>::kBase;
          float sx[4];  // sum x of accumulator column 2 tig + (i & 1): from the MMAs, or staged
          if constexpr (kSumStaged) {
            const int unit = (kNext - 1) * kUnitsPerBlock + gi;  // (per channel: gi = 0, one unit a block)
            sx[0] = sx[2] = sum_col[0][unit];
            sx[1] = sx[3] = sum_col[1][unit];
          } else {
#pragma unroll
            for (int i = 0; i < 4; ++i) sx[i] = sum_x[t][i];
          }
          tot[0] = fmaf(s0, fmaf(-zb0, sx[0], a[0]), tot[0]);
          tot[1] = fmaf(s0, fmaf(-zb0, sx[1], a[1]), tot[1]);
          tot[2] = fmaf(s1, fmaf(-zb1, sx[2], a[2]), tot[2]);
          tot[3] = fmaf(s1, fmaf(-zb1, sx[3], a[3]), tot[3]);
        }
      }
      zero_sums();
    }
  };
  if constexpr (kPrefetch) {
    // kUnroll blocks a trip: an even count, so the prefetch's registers swap (in[0] / in[1]) by
    // name, and where it can be a multiple of kCopy, so each block knows its place in its copy
    // (kStaticPos; int4 g32 / g64 at 4 blocks a copy spilled unrolled by four: there the place is
    // computed); then the last blocks one by one in the same pattern.
    constexpr bool kStaticPos = kCopy <= 2 || kMx || kChunks == 0 || kChunks == 4;
    constexpr int kUnroll = kStaticPos && kCopy > 2 ? kCopy : 2;
    auto step = [&](int b, auto j) {
      constexpr int kJ = decltype(j)::value;
      block(b, in[kJ % 2], in[(kJ + 1) % 2], std::integral_constant<int, kStaticPos ? kJ % kCopy : -1>{},
            std::integral_constant<int, kJ + 1>{});
    };
    auto trips = [&]<int... kJ>(std::integer_sequence<int, kJ...>) {
      int b = 0;
      for (; b + kUnroll - 1 < nb; b += kUnroll) {
        (step(b + kJ, std::integral_constant<int, kJ>{}), ...);
        advance(kUnroll);
      }
      ((b + kJ < nb ? step(b + kJ, std::integral_constant<int, kJ>{}) : void()), ...);
    };
    trips(std::make_integer_sequence<int, kUnroll>{});
  } else {
    // one block per iteration: unrolled by two like the prefetching loop, the 16- and 32-token
    // kernels spilled 4 bytes at their register caps
    for (int b = 0; b < nb; ++b) block(b, in[0], in[1], std::integral_constant<int, 0>{}, std::integral_constant<int, 0>{});
  }

  const T* bias = static_cast<const T*>(p.bias);
  T* out = static_cast<T*>(p.out);
  auto store = [&](float v, int tok, int row) {
    out[size_t(tok) * p.N + row] = from_f32<T>(bias ? v + to_f32(bias[row]) : v);
  };
  // p.pdl: a dependent launched the same way may start now (its weights' first fills; it waits
  // for this grid's end before it reads what this one writes)
  if (pdl) ptx::griddep_launch_dependents();
  if constexpr (kMinor > 0) {
    // each warp's sums of tokens < M as [token][16 rows], then the tile's split-0 warp adds its
    // tile's kMinor in split order (0 + p0 + p1 + ...: the arithmetic of the global reduction)
    __shared__ float red[kCtaWarps][8 * kTileRows];
    for_each_sum(total, grp, grp + 8, tig, GemvSplit{p.M, kTileRows},  // (rows within the tile)
                 [&](float v, int tok, int row) { red[warp][tok * kTileRows + row] = v; });
    __syncthreads();
    if (split != 0) return;
    for (int i = lane; i < kTileRows * p.M; i += 32) {
      float v = 0.f;
#pragma unroll
      for (int sp = 0; sp < kMinor; ++sp) v += red[warp + sp][i];
      store(v, i / kTileRows, tile * kTileRows + i % kTileRows);
    }
  } else {
    gemv_store_warp<kTiles>(total, r0, r1, lane, GemvSplit{p.M, p.N, p.splits, split, tile, p.partial, p.arrivals},
                            store);
  }
}

}  // namespace lowbit::w4
