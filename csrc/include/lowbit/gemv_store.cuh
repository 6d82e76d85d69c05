#pragma once
// The end of the tensor-core GEMVs (a16w4, a16w8): each warp holds fp32 sums for 16 weight
// rows (r0 = its row g, r1 = g + 8) x kTiles tiles of 8 tokens, in mma.sync's C layout
// (register i: row i < 2 ? r0 : r1, token 8t + 2 tig + i % 2). With one K split they are
// finished and stored directly; with several, each CTA writes fp32 partials and the last CTA
// of a row block to arrive sums them in split order (deterministic) and finishes them.
// store(v, tok, row) finishes one sum (scale, bias, rounding) and writes y[tok, row].
#include <cstdint>

namespace lowbit {

struct GemvSplit {
  int M, N;
  int splits, split, row_cta;
  float* partial;  // fp32 [splits][M][N]
  int* arrivals;   // [row CTAs], zero on entry, left at zero
};

// f(v, tok, row) for each of this thread's sums whose token and row exist (tok < M, row < N).
template <int kTiles, class F>
__device__ __forceinline__ void for_each_sum(const float (&total)[kTiles][4], int r0, int r1, int tig,
                                             const GemvSplit& s, F f) {
#pragma unroll
  for (int t = 0; t < kTiles; ++t)
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const int tok = t * 8 + 2 * tig + (i % 2), row = i < 2 ? r0 : r1;
      if (tok < s.M && row < s.N) f(total[t][i], tok, row);
    }
}

// Split sp's fp32 partial of (tok, row): partial[sp][tok][row].
__device__ __forceinline__ float* partial_at(const GemvSplit& s, int sp, int tok, int row) {
  return &s.partial[(size_t(sp) * s.M + tok) * s.N + row];
}

// This thread's sums as its split's partials.
template <int kTiles>
__device__ __forceinline__ void store_partials(const float (&total)[kTiles][4], int r0, int r1, int tig,
                                               const GemvSplit& s) {
  for_each_sum(total, r0, r1, tig, s, [&](float v, int tok, int row) { *partial_at(s, s.split, tok, row) = v; });
}

// The last CTA (or warp) of a row block: the partials of tokens [tok0, tok0 + tokens) x rows
// [row0, row0 + kRows) (those < N) summed in split order (deterministic: 0 + p0 + p1 + ...) and
// stored by `threads` threads (this one: t). Their time is L2 latency at the end of the kernel, so
// each thread keeps kInFlight float4 of four rows in flight per split (where N % 4 == 0) instead of
// one element per loop trip: that loop was about M x kRows / threads dependent L2 round trips
// (16 at 32 tokens for a 16-row tile's warp; session 8). (kInFlight 2 in the register-capped
// CTA GEMVs: 4 spilled 4 bytes in v6.)
template <int kRows, int kInFlight = 4, class Store>
__device__ __forceinline__ void reduce_partials(const GemvSplit& s, int tok0, int tokens, int row0, int t, int threads,
                                                Store store) {
  static_assert(kRows % 4 == 0, "row blocks of whole float4");
  constexpr int kVecsPerTok = kRows / 4;
  if (s.N % 4 == 0) {  // (row0 % 4 == 0: row blocks of kRows) four rows per float4, all < N or none
    const int vecs = tokens * kVecsPerTok;
    for (int v0 = t; v0 < vecs; v0 += threads * kInFlight) {
      float4 acc[kInFlight];
      int tok[kInFlight], row[kInFlight];
      bool ok[kInFlight];
#pragma unroll
      for (int u = 0; u < kInFlight; ++u) {
        const int v = v0 + u * threads;
        tok[u] = tok0 + v / kVecsPerTok, row[u] = row0 + (v % kVecsPerTok) * 4;
        ok[u] = v < vecs && row[u] < s.N;
        acc[u] = make_float4(0.f, 0.f, 0.f, 0.f);
      }
      for (int sp = 0; sp < s.splits; ++sp) {
#pragma unroll
        for (int u = 0; u < kInFlight; ++u) {
          if (!ok[u]) continue;
          const float4 p = __ldcg(reinterpret_cast<const float4*>(partial_at(s, sp, tok[u], row[u])));
          acc[u].x += p.x, acc[u].y += p.y, acc[u].z += p.z, acc[u].w += p.w;
        }
      }
#pragma unroll
      for (int u = 0; u < kInFlight; ++u) {
        if (!ok[u]) continue;
        store(acc[u].x, tok[u], row[u]);
        store(acc[u].y, tok[u], row[u] + 1);
        store(acc[u].z, tok[u], row[u] + 2);
        store(acc[u].w, tok[u], row[u] + 3);
      }
    }
    return;
  }
  for (int i = t; i < tokens * kRows; i += threads) {
    const int tok = tok0 + i / kRows, row = row0 + i % kRows;
    if (row >= s.N) continue;
    float v = 0.f;
    for (int sp = 0; sp < s.splits; ++sp) v += __ldcg(partial_at(s, sp, tok, row));
    store(v, tok, row);
  }
}

// One group of threads (a CTA, a warp, the consumer warpgroups of a CTA) arrives on its row
// block's counter through its leader, after a barrier of the group ordered every thread's partial
// stores before the leader's gpu-scope fence, which is cumulative (the pattern of CUTLASS's
// split-K semaphore). The last group to arrive fences again (acquire), so the other groups'
// partials are visible to its threads after the group's next barrier.
// It also resets the counter (every arrival has happened): the next kernel on the stream finds it
// at zero (gemv_split.h keeps the counters per stream).
__device__ __forceinline__ bool leader_arrives_last(const GemvSplit& s) {
  __threadfence();
  const bool last = atomicAdd(&s.arrivals[s.row_cta], 1) == s.splits - 1;
  if (last) {
    s.arrivals[s.row_cta] = 0;
    __threadfence();
  }
  return last;
}

template <int kTiles, int kRows, int kThreads, class Store>
__device__ __forceinline__ void gemv_store(const float (&total)[kTiles][4], int r0, int r1, int tig, const GemvSplit& s,
                                           Store store) {
  if (s.splits == 1) return for_each_sum(total, r0, r1, tig, s, store);
  store_partials(total, r0, r1, tig, s);
  __shared__ bool last;
  // One fence per CTA instead of one per thread: ncu attributed ~12% of the a16w4 GEMV's stall
  // samples at M = 1 to the per-thread fences (ERRBAR); the timing did not change (session 5).
  __syncthreads();
  if (threadIdx.x == 0) last = leader_arrives_last(s);
  __syncthreads();
  if (!last) return;
  reduce_partials<kRows, 2>(s, 0, s.M, s.row_cta * kRows, threadIdx.x, kThreads, store);
}

// The same for a GEMV whose warps work alone (a16w4 v8, w4_gemv_stream.cuh): a warp holds one
// 16-row tile (s.row_cta: the tile's index, arrivals per tile) over one K split, and the last
// warp of a tile to arrive reduces the tile's partials (the group: the warp, its barrier
// __syncwarp, its leader lane 0).
template <int kTiles, class Store>
__device__ __forceinline__ void gemv_store_warp(const float (&total)[kTiles][4], int r0, int r1, int lane,
                                                const GemvSplit& s, Store store) {
  const int tig = lane % 4;
  if (s.splits == 1) return for_each_sum(total, r0, r1, tig, s, store);
  store_partials(total, r0, r1, tig, s);
  __syncwarp();
  int last = 0;
  if (lane == 0) last = leader_arrives_last(s);
  last = __shfl_sync(0xffffffffu, last, 0);
  if (!last) return;
  __syncwarp();  // lane 0's acquire before every lane's loads
  reduce_partials<16>(s, 0, s.M, s.row_cta * 16, lane, 32, store);
}

}  // namespace lowbit
