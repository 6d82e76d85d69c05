#pragma once
// The 8-bit-row GEMV (a16w8 int8 rows, mxfp8 e4m3 rows) in the shape of the a16w4 GEMV v8
// (csrc/gemm/w4/w4_gemv_stream.cuh): warps that stream alone. Written in session 6 and not run
// yet: LOWBIT_ROWS8_GEMV=stream selects it for 1..16 tokens on N % 16 == 0, K % 128 == 0
// (a16w8_ops.cpp rows8_gemv); bench/NOTES.md "Session 6".
//
// Why: the default (a16w8_gemv.cuh) is shaped like the int4 v7: it loads 4 chunks, then
// computes all of them with nothing in flight, and loads x inside the compute; at M = 16 it runs
// at 1.07x cuBLAS (a16w8) and 0.98x (mxfp8), where v8 took the int4 GEMV from 1.1x to 1.5x.
//
// Each warp owns one 16-row tile over one K split. A block is 16 rows x 128 bytes of the plain
// row-major (N, K) weights: 32 bulk copies of 64 bytes (one per lane: row l / 2, half l % 2)
// into a 2 KB ring slot, all on one mbarrier. Odd rows store their two 64-byte halves swapped,
// so the 16-byte reads of a quad phase (rows g and g + 1, 4 lanes each) fall on the two halves
// of the banks (no conflict). The arithmetic per 64-element chunk is a16w8_gemv.cuh's
// (rows8_mma_chunk: thread tig's 16 bytes with x's 16 values at the same k), fp32 sums, the per-channel
// scale (or E8M0 per 32, exact while the bytes become bf16) as there; the split partials are
// reduced by the last warp of each tile (gemv_store_warp, deterministic).
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>
#include <type_traits>

#include "gemm/int8/a16w8_gemv.cuh"  // rows8_mma_chunk
#include "gemm/int8/a16w8_params.h"
#include "lowbit/gemv_store.cuh"
#include "lowbit/numerics.h"
#include "lowbit/ptx/convert.cuh"
#include "lowbit/ptx/mbarrier.cuh"
#include "lowbit/ptx/memory.cuh"
#include "lowbit/ptx/mma.cuh"
#include "lowbit/ptx/tma.cuh"

namespace lowbit::int8 {

template <typename T, int kTiles, bool kMx>
__global__ void __launch_bounds__(kR8StreamWarps * 32, 4) rows8_gemv_stream_kernel(const A16w8Params p) {
  static_assert(kTiles == 1 || kTiles == 2, "8 or 16 tokens");
  static_assert(!kMx || std::is_same_v<T, __nv_bfloat16>, "MXFP8 weights: bf16 x (their range)");
  constexpr int kStages = kR8StreamStages;
  constexpr int kSlot = 16 * kR8StreamBlock;  // bytes per slot: 16 rows x 128 bytes
  __shared__ __align__(128) uint8_t ring[kR8StreamWarps][kStages * kSlot];
  __shared__ __align__(8) uint64_t full[kR8StreamWarps][kStages];
  __shared__ __align__(8) uint64_t empty[kR8StreamWarps][kStages];  // the 32 lanes done reading a slot

  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, grp = lane / 4, tig = lane % 4;
  const int tiles = p.N / 16;
  const int wid = blockIdx.x * kR8StreamWarps + warp;
  if (wid >= tiles * p.splits) return;  // a whole warp; nothing below synchronizes the CTA
  const int split = wid / tiles, tile = wid % tiles;  // split-major: a CTA's warps share x's slice
  const int kb0 = split * (p.k_slice / kR8StreamBlock);
  const int nb = min(p.K / kR8StreamBlock - kb0, p.k_slice / kR8StreamBlock);
  uint8_t* slots = ring[warp];
  uint64_t* bar = full[warp];
  uint64_t* ebar = empty[warp];

  // This lane's copy: row cr = lane / 2 of the tile, half ch = lane % 2 of each 128-byte block,
  // stored at half ch ^ (cr & 1) of the row's 128 bytes in the slot.
  const int cr = lane / 2, ch = lane % 2;
  const int8_t* copy_src = p.w + size_t(tile * 16 + cr) * p.K + size_t(kb0) * kR8StreamBlock + 64 * ch;
  const int copy_dst = cr * kR8StreamBlock + 64 * (ch ^ (cr & 1));
  // Slot s <- block b: lane 0 announces the bytes, then every lane copies its 64.
  auto request = [&](int s, int b) {
    if (lane == 0) ptx::mbarrier_arrive_expect_tx(&bar[s], kSlot);
    __syncwarp();
    ptx::bulk_copy_g2s(slots + s * kSlot + copy_dst, copy_src + size_t(b) * kR8StreamBlock, 64, &bar[s]);
  };
  if (lane == 0) {
#pragma unroll
    for (int s = 0; s < kStages; ++s) ptx::mbarrier_init(&bar[s], 1), ptx::mbarrier_init(&ebar[s], 32);
    ptx::fence_barrier_init();
  }
  __syncwarp();
#pragma unroll
  for (int s = 0; s < kStages; ++s)
    if (s < nb) request(s, s);

  const int r0 = tile * 16 + grp, r1 = r0 + 8;
  // x of token tile t: token 8t + grp (past M: token M - 1, whose MMA columns are never stored)
  const T* xp[kTiles];
#pragma unroll
  for (int t = 0; t < kTiles; ++t)
    xp[t] = static_cast<const T*>(p.x) + size_t(min(t * 8 + grp, p.M - 1)) * p.K + size_t(kb0) * kR8StreamBlock + 16 * tig;
  const int mx_blocks = p.K / 32;
  const uint8_t* ms0 = kMx ? p.w_mx_scale + size_t(r0) * mx_blocks + kb0 * (kR8StreamBlock / 32) + tig / 2 : nullptr;
  const uint8_t* ms1 = kMx ? p.w_mx_scale + size_t(r1) * mx_blocks + kb0 * (kR8StreamBlock / 32) + tig / 2 : nullptr;

  float acc[kTiles][4];
#pragma unroll
  for (int t = 0; t < kTiles; ++t)
#pragma unroll
    for (int i = 0; i < 4; ++i) acc[t][i] = 0.f;

  for (int b = 0; b < nb; ++b) {
    const int s = b % kStages;
    // Refill the slot block b - 1 read (its data already went through block b - 1's MMAs) with
    // block b - 1 + kStages: each lane releases its reads on the slot's empty barrier and waits
    // for all 32 before its copy (the TMA pipelines' consumer-release / producer-wait). Not a
    // proxy fence: that compiles to MEMBAR.ALL.CTA, which waits for every load in flight (after
    // this block's x loads, as until session 7, it exposed their latency every block).
    if (b > 0 && b - 1 + kStages < nb) {  // (warp-uniform)
      const int sp = (b - 1) % kStages;
      ptx::mbarrier_arrive(&ebar[sp]);
      ptx::mbarrier_wait(&ebar[sp], ((b - 1) / kStages) & 1);
      request(sp, b - 1 + kStages);
    }
    // x (2 chunks x 16 values per token tile) and the E8M0 bytes of this thread's two 32-blocks
    // per row, issued before the barrier wait
    uint4 xv[2][kTiles][2];
#pragma unroll
    for (int c = 0; c < 2; ++c)
#pragma unroll
      for (int t = 0; t < kTiles; ++t) {
        const uint4* src = reinterpret_cast<const uint4*>(xp[t] + b * kR8StreamBlock + 64 * c);
        xv[c][t][0] = __ldg(src);
        xv[c][t][1] = __ldg(src + 1);
      }
    float sc0[2] = {1.f, 1.f}, sc1[2] = {1.f, 1.f};
    if constexpr (kMx) {
#pragma unroll
      for (int c = 0; c < 2; ++c) {  // chunk c, bytes 64 c + 16 tig: 32-block 2 c + tig / 2
        sc0[c] = e8m0_to_float(__ldg(ms0 + b * (kR8StreamBlock / 32) + 2 * c));
        sc1[c] = e8m0_to_float(__ldg(ms1 + b * (kR8StreamBlock / 32) + 2 * c));
      }
    }
    ptx::mbarrier_wait(&bar[s], (b / kStages) & 1);
    uint4 w0[2], w1[2];  // rows grp and grp + 8 (same parity), chunk c at half c ^ (row & 1)
#pragma unroll
    for (int c = 0; c < 2; ++c) {
      const int half = c ^ (grp & 1);
      w0[c] = *reinterpret_cast<const uint4*>(slots + s * kSlot + grp * kR8StreamBlock + 64 * half + 16 * tig);
      w1[c] = *reinterpret_cast<const uint4*>(slots + s * kSlot + (grp + 8) * kR8StreamBlock + 64 * half + 16 * tig);
    }
#pragma unroll
    for (int c = 0; c < 2; ++c) rows8_mma_chunk<T, kTiles, kMx>(acc, w0[c], w1[c], xv[c], sc0[c], sc1[c]);
  }

  const T* bias = static_cast<const T*>(p.bias);
  T* out = static_cast<T*>(p.out);
  gemv_store_warp<kTiles>(acc, r0, r1, lane, GemvSplit{p.M, p.N, p.splits, split, tile, p.partial, p.arrivals},
                          [&](float v, int tok, int row) {
                            // the reference's order: (sum * scale) + bias in fp32, one rounding
                            if constexpr (!kMx) v = __fmul_rn(v, p.w_scale[row]);
                            if (bias) v = __fadd_rn(v, ptx::to_f32(bias[row]));
                            out[size_t(tok) * p.N + row] = ptx::from_f32<T>(v);
                          });
}

}  // namespace lowbit::int8
