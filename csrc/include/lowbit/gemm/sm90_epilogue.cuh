#pragma once
// The Hopper mainloop's epilogues (sm90_gemm.cuh): how a consumer thread's finished sums of one
// tile leave the kernel. Register r = 4c + 2h + t of a thread holds C[i0 + 8h, j_base + 8c +
// col_in_chunk + t] (wgmma's accumulator layout: the two registers of (c, h) are adjacent
// columns); value(r) / part(r) give them. Three ways out, one function each:
//   store_tile_tma:     normal layout, C rows contiguous: through a swizzled shared-memory
//                       buffer and TMA stores;
//   store_tile_ksplit:  K split inside a cluster (swap-AB at small M, few 128 x 128 tiles at
//                       large M): partial sums exchanged through the peers' shared memory,
//                       each CTA finishing its share of the chunks;
//   store_tile_generic: global stores from registers (swap-AB, N % 8 != 0), or fp32 partials
//                       for the global K split, which splitk_reduce_kernel finishes.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>
#include <type_traits>

#include "lowbit/gemm/params.h"
#include "lowbit/ptx/cluster.cuh"
#include "lowbit/ptx/convert.cuh"
#include "lowbit/ptx/mbarrier.cuh"
#include "lowbit/ptx/memory.cuh"
#include "lowbit/ptx/tma.cuh"
#include "lowbit/ptx/warpgroup.cuh"

namespace lowbit::gemm {

// The epilogue of one element: ((acc * activation scale) * weight scale) + bias, in that
// order, each an fp32 operation (no FMA contraction), matching the CPU reference to the last
// fp32 bit. The activations are P normally and Q under swap-AB (bias_on_p marks swap-AB).
template <ScaleMode kMode, typename OutT>
__device__ __forceinline__ float finish(const EpilogueArgs& e, int i, int j, float acc) {
  float v = acc;
  if constexpr (kMode == ScaleMode::kRowCol) {
    const float sp = __ldg(&e.p_scale[i * e.p_scale_stride]), sq = __ldg(&e.q_scale[j * e.q_scale_stride]);
    v = __fmul_rn(v, e.bias_on_p ? sq : sp);
    v = __fmul_rn(v, e.bias_on_p ? sp : sq);
  }
  if (e.bias) v = __fadd_rn(v, ptx::to_f32(__ldg(&static_cast<const OutT*>(e.bias)[e.bias_on_p ? i : j])));
  return v;
}

// C[i, j] = finish(acc), rounded to OutT, at out[i * out_si + j * out_sj].
template <ScaleMode kMode, typename OutT>
__device__ __forceinline__ void store_finished(const EpilogueArgs& e, int i, int j, float acc) {
  static_cast<OutT*>(e.out)[i * e.out_si + j * e.out_sj] = ptx::from_f32<OutT>(finish<kMode, OutT>(e, i, j, acc));
}

// C[i, j] and C[i, j + 1] = finish(acc0), finish(acc1), for row i inside C: one 4-byte store
// where C's rows are contiguous in out (`pairs`: the normal layout; swap-AB writes C^T) and both
// columns exist, else each column inside C on its own.
template <ScaleMode kMode, typename OutT>
__device__ __forceinline__ void store_finished_pair(const EpilogueArgs& e, int rows_q, bool pairs, int i, int j,
                                                    float acc0, float acc1) {
  if (pairs && j + 1 < rows_q) {
    *reinterpret_cast<uint32_t*>(static_cast<OutT*>(e.out) + i * e.out_si + j) =
        ptx::pack_f32x2<OutT>(finish<kMode, OutT>(e, i, j, acc0), finish<kMode, OutT>(e, i, j + 1, acc1));
  } else {
    const float acc[2] = {acc0, acc1};
#pragma unroll
    for (int t = 0; t < 2; ++t)
      if (j + t < rows_q) store_finished<kMode, OutT>(e, i, j + t, acc[t]);
  }
}

// A 4-byte partial sum (fp32 or s32) as the bits it is exchanged as, and back.
__device__ __forceinline__ uint32_t bits_of(float v) { return __float_as_uint(v); }
__device__ __forceinline__ uint32_t bits_of(int32_t v) { return static_cast<uint32_t>(v); }
template <typename T>
__device__ __forceinline__ T of_bits(uint32_t b) {
  if constexpr (std::is_same_v<T, float>) return __uint_as_float(b);
  else return static_cast<int32_t>(b);
}

// Through shared memory and TMA stores (rows and columns past C's edge are clipped by the TMA
// unit): per 128 columns (two boxes; kBN = 192 ends with one), wait until this warpgroup's
// previous store has read its buffer, write the scaled pairs into it (swizzled), fence them to
// the async proxy, and one thread stores the boxes; the warpgroup moves on without waiting for
// the writes. The scales come by read-only loads, free to run ahead of the shared stores (plain
// loads would be re-issued after each global store they might alias: the old epilogue's cost).
// The arithmetic is finish()'s (not swap-AB: P scale first, then Q, then bias). buf: this
// warpgroup's two boxes (Layout::kEpiWgBytes); bar: its named barrier; row0: its first row of C.
template <ScaleMode kMode, typename OutT, int kBN, class Layout, class Value>
__device__ __forceinline__ void store_tile_tma(Value value, const GemmParams& params, const CUtensorMap* tmap_out,
                                               uint8_t* buf, uint32_t bar, int warp_in_wg, int lane, int row0, int i0,
                                               int j_base, int col_in_chunk) {
  const EpilogueArgs& e = params.epi;
  uint32_t row_addr[2];  // this thread's 4 bytes in chunk 0 of its rows (of the warpgroup's 64), swizzled
#pragma unroll
  for (int h = 0; h < 2; ++h)
    row_addr[h] =
        ptx::smem_addr(buf) + (warp_in_wg * 16 + 8 * h + lane / 4) * 128 + ((lane / 4) << 4) + (lane % 4) * 4;
  float sp[2] = {1.0f, 1.0f};
  if constexpr (kMode == ScaleMode::kRowCol) {
#pragma unroll
    for (int h = 0; h < 2; ++h)
      sp[h] = __ldg(&e.p_scale[min(i0 + 8 * h, params.rows_p - 1) * e.p_scale_stride]);
  }
#pragma unroll
  for (int rd = 0; rd < (kBN + 127) / 128; ++rd) {
    constexpr int kBoxCols = Layout::kEpiBoxCols;
    const int boxes = min(2, (kBN - rd * 128) / kBoxCols);  // (compile-time after unrolling)
    if (threadIdx.x % 128 == 0) ptx::bulk_wait_group_read<0>();
    ptx::named_barrier_sync(bar, 128);
    // Read-only loads may be hoisted anywhere: taken through pointers that come out of an
    // opaque move after the barrier, they stay in their round (fewer live registers; the
    // 128 x 256 kernels' stack came from the bias loaded per column, now per pair).
    const float* q_scale = ptx::opaque(e.q_scale);
    const OutT* bias = ptx::opaque(static_cast<const OutT*>(e.bias));
#pragma unroll
    for (int cc = 0; cc < boxes * kBoxCols / 8; ++cc) {  // 8-column chunks of these (up to) 128 columns
      const int c = rd * 16 + cc;
      const int j = j_base + c * 8 + col_in_chunk;
      float sq[2] = {1.0f, 1.0f}, b[2] = {0.0f, 0.0f};
      // Column pairs (j, j + 1) by one load each: j is even and rows_q % 8 == 0, so a pair is
      // inside C or wholly past it (then the last pair stands in: those columns are clipped);
      // the host checks the 8- / 4-byte alignment of the scale and bias vectors.
      if constexpr (kMode == ScaleMode::kRowCol) {
        if (e.q_scale_stride == 0) {
          sq[0] = sq[1] = __ldg(q_scale);
        } else {
          const float2 q2 = __ldg(reinterpret_cast<const float2*>(q_scale + min(j, params.rows_q - 2)));
          sq[0] = q2.x, sq[1] = q2.y;
        }
      }
      if (bias) {
        const uint32_t pair = __ldg(reinterpret_cast<const unsigned int*>(bias + min(j, params.rows_q - 2)));
        const float2 bf = ptx::unpack_f32x2<OutT>(pair);
        b[0] = bf.x, b[1] = bf.y;
      }
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        float v[2];
#pragma unroll
        for (int t = 0; t < 2; ++t) {
          v[t] = value(4 * c + 2 * h + t);
          if constexpr (kMode == ScaleMode::kRowCol) v[t] = __fmul_rn(__fmul_rn(v[t], sp[h]), sq[t]);
          if (bias) v[t] = __fadd_rn(v[t], b[t]);
        }
        // 16-byte chunk cc % 8 of row `row` sits at chunk (cc % 8) ^ (row % 8) of it:
        // bits 4-6 of row_addr[h] hold row % 8 = lane / 4 (the rest of bits 4-6 is zero).
        ptx::st_shared_b32((row_addr[h] ^ ((cc % 8) << 4)) + (cc / 8) * Layout::kEpiBoxBytes,
                           ptx::pack_f32x2<OutT>(v[0], v[1]));
      }
    }
    ptx::fence_proxy_async_smem();
    ptx::named_barrier_sync(bar, 128);
    if (threadIdx.x % 128 == 0) {
#pragma unroll
      for (int box = 0; box < boxes; ++box)
        ptx::tma_store_2d(tmap_out, buf + box * Layout::kEpiBoxBytes, j_base + rd * 128 + box * kBoxCols,
                          row0);
      ptx::bulk_commit_group();
    }
  }
}

// The cluster's K split (swap-AB, kKSplit CTAs). Chunk c (registers 4c .. 4c + 3: both rows, two
// columns) is summed by rank c % kKSplit; each consumer thread sends its other chunks to their
// ranks, into slot [this rank among the owner's peers][c / kKSplit][thread] of their receive
// buffers (smem_red; peer q of rank o: q - (q > o)), after
// those ranks have summed the previous unit's (red_empty), then waits for its own chunks'
// kKSplit - 1 partials (red_full: one thread arms it with their bytes) and adds them in rank
// order, its own from registers. s32 partials add exactly; fp32 ones in the same order on every
// run. red_round: units this CTA reduced before (the barriers' phase).
template <ScaleMode kMode, typename OutT, typename Part, int kOutRegs, int kKSplit, int kChunksPerRank, class PartFn>
__device__ __forceinline__ void store_tile_ksplit(PartFn part, const GemmParams& params, uint8_t* smem_red,
                                                  uint64_t* red_full, uint64_t* red_empty, uint32_t red_round,
                                                  uint32_t rank, int lane, int i0, int j_base, int col_in_chunk) {
  static_assert(sizeof(Part) == 4, "4-byte partial sums");
  constexpr int kChunks = kOutRegs / 4;
  const EpilogueArgs& e = params.epi;
  const int my_chunks = (kChunks - int(rank) + kKSplit - 1) / kKSplit;
  if (threadIdx.x == 128)
    ptx::mbarrier_arrive_expect_tx(red_full, uint32_t(my_chunks * (kKSplit - 1) * 4096));
  const uint32_t slot0 = ptx::smem_addr(smem_red) + (threadIdx.x - 128) * 16;  // + (peer * kChunksPerRank + c / kKSplit) * 4096
  if (red_round > 0) ptx::mbarrier_wait(red_empty, (red_round - 1) & 1);
#pragma unroll
  for (int c = 0; c < kChunks; ++c) {
    const int owner = c % kKSplit;
    if (owner == int(rank)) continue;
    const uint4 v = make_uint4(bits_of(part(4 * c)), bits_of(part(4 * c + 1)), bits_of(part(4 * c + 2)),
                               bits_of(part(4 * c + 3)));
    const int peer = int(rank) - (int(rank) > owner);  // this rank among the owner's peers
    const uint32_t dst = slot0 + (peer * kChunksPerRank + c / kKSplit) * 4096;
    ptx::st_async_v4(ptx::cluster_map_shared(dst, owner), v,
                     ptx::cluster_map_shared(ptx::smem_addr(red_full), owner));
  }
  ptx::mbarrier_wait(red_full, red_round & 1);
#pragma unroll
  for (int c = 0; c < kChunks; ++c) {
    if (c % kKSplit != int(rank)) continue;
    Part sum[4];
#pragma unroll
    for (int q = 0; q < kKSplit; ++q) {
      uint32_t b[4];
      if (q == int(rank)) {
#pragma unroll
        for (int k = 0; k < 4; ++k) b[k] = bits_of(part(4 * c + k));
      } else {
        const int peer = q - (q > int(rank));
        const uint4 v = ptx::ld_shared_v4(slot0 + (peer * kChunksPerRank + c / kKSplit) * 4096);
        b[0] = v.x, b[1] = v.y, b[2] = v.z, b[3] = v.w;
      }
#pragma unroll
      for (int k = 0; k < 4; ++k) sum[k] = q == 0 ? of_bits<Part>(b[k]) : sum[k] + of_bits<Part>(b[k]);
    }
    const int j = j_base + c * 8 + col_in_chunk;
    // (the normal layout's C rows are contiguous: a 4-byte pair per (i, j, j + 1))
    const bool pairs = e.out_sj == 1 && e.out_si % 2 == 0;
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const int i = i0 + 8 * h;
      if (i < params.rows_p)
        store_finished_pair<kMode, OutT>(e, params.rows_q, pairs, i, j, float(sum[2 * h]), float(sum[2 * h + 1]));
    }
  }
  // This warp is done with the slots the peers sent into: they may send the next unit's.
  __syncwarp();
  if (lane == 0) {
#pragma unroll
    for (int q = 0; q < kKSplit; ++q)
      if (q != int(rank)) ptx::mbarrier_arrive_cluster(red_empty, q);
  }
}

// Generic path: global stores from registers, a 4-byte pair where C's rows are contiguous
// in out (swap-AB writes C^T, so its pairs are not), or fp32 partials for the K split.
// split: this unit's K split (the workspace slice its fp32 partials go to).
template <ScaleMode kMode, typename OutT, int kOutRegs, class Value>
__device__ __forceinline__ void store_tile_generic(Value value, const GemmParams& params, int split, int i0, int j_base,
                                                   int col_in_chunk) {
  const EpilogueArgs& e = params.epi;
  const bool direct = params.sched.splits == 1;
  const bool pairs = direct && e.out_sj == 1 && e.out_si % 2 == 0;
#pragma unroll
  for (int c = 0; c < kOutRegs / 4; ++c) {
    const int j = j_base + c * 8 + col_in_chunk;
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const int i = i0 + 8 * h;
      if (i >= params.rows_p) continue;
      const int r = 4 * c + 2 * h;
      const float v[2] = {value(r), value(r + 1)};
      if (!direct) {
#pragma unroll
        for (int t = 0; t < 2; ++t)
          if (j + t < params.rows_q)
            params.workspace[(int64_t(split) * params.rows_p + i) * params.rows_q + j + t] = v[t];
      } else {
        store_finished_pair<kMode, OutT>(e, params.rows_q, pairs, i, j, v[0], v[1]);
      }
    }
  }
}

// Split-K: C[i, j] = epilogue(sum over splits of the fp32 partials), one thread per element.
template <ScaleMode kMode, typename OutT>
__global__ void splitk_reduce_kernel(const float* __restrict__ ws, int splits, int rows_p, int rows_q,
                                     EpilogueArgs e) {
  const int64_t n = int64_t(rows_p) * rows_q;
  for (int64_t t = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; t < n; t += int64_t(gridDim.x) * blockDim.x) {
    float v = 0.0f;
    for (int s = 0; s < splits; ++s) v += ws[s * n + t];
    const int i = int(t / rows_q), j = int(t % rows_q);
    store_finished<kMode, OutT>(e, i, j, v);
  }
}

}  // namespace lowbit::gemm
