#pragma once
// The Hopper GEMM mainloop: warp-specialized, persistent, TMA -> shared-memory stage ring
// (mbarriers) -> wgmma, written once; the operand type and the scaling scheme are
// policies (template parameters), not copies.
//
// It computes C[i, j] = sum_k P[i, k] * Q[j, k] with P and Q both K-major 8-bit tiles:
//   normal:  P = activations (M rows), Q = weights (N rows): C = Y
//   swap-AB: P = weights, Q = activations (small M): C = Y^T; the few tokens fill wgmma's
//            N side (8..64) and the weights its 64-row M side, so the tensor cores stay
//            usable while the kernel streams weights (BRIEF section 4).
// The epilogue writes C[i, j] to out[i * out_si + j * out_sj], so both cases share it
// (sm90_epilogue.cuh: the three ways a tile leaves the kernel).
//
// Roles (384 threads = 3 warpgroups, one CTA per SM):
//   warpgroup 0: producer. One thread issues the TMA loads of P and Q tiles for each
//                K block into stage s, arriving on full[s] with the byte count; it first
//                waits on empty[s] until the consumers released that stage.
//   warpgroups 1, 2: consumers. Each owns 64 rows of the 128-row P tile: waits on full[s],
//                issues 4 wgmma k32 (one 128-byte K block), waits for them, releases
//                empty[s], and (kPromote) adds the block's partial sums into fp32
//                registers, times the block's scales in block-scaled mode. Hopper's fp8
//                accumulation keeps ~14 bits (DeepSeek-V3): a fresh accumulator per
//                128 of K keeps the error at fp32 level (HOPPER_NOTES.md).
// Split-K, two ways. Through global memory: a unit may cover a slice of the K blocks; its fp32
// partial tile goes to a workspace and splitk_reduce_kernel finishes it (a second launch).
// Inside a cluster (kKSplit CTAs, without multicast): CTA r of the cluster runs slice r of every unit's K
// blocks; the tile's 8-column chunks are dealt out to the CTAs (chunk c to rank c % kKSplit),
// each CTA sends its partial sums (fp32, or exact s32) of the others' chunks into their shared
// memory (st.async, counted on their mbarrier), sums its own chunks in rank order and stores
// them through the epilogue: no workspace, no second launch, the same bits on every run. Small
// M on few weight tiles (4096 x 14336: 32 tiles for 132 SMs) streams its weights on kKSplit
// times the SMs; at M ~ 128..256 the normal layout's few 128 x 128 tiles (64 on 4096 rows at
// M = 256) run on twice the SMs the same way (generic stores, no TMA epilogue).
// Chained (kPromote = false: s8, whose s32 sums are exact; fp8's unpromoted diagnostic): wgmma
// chains on one accumulator and a warpgroup keeps one K block in flight while it releases the
// previous stage. Promoted (fp8): each block's sums are folded into fp32 registers; two
// accumulator sets in pairs of K blocks (kAccSets = 2) keep the tensor cores fed meanwhile.
// Clusters (kCluster = 2): the two CTAs of a cluster take P tiles 2c and 2c+1 with the same Q
// (weight) tile; each loads half of it and multicasts to both (half the L2 reads of Q). A
// consumer warp releases a stage in both CTAs (the peer's producer writes into it too).
// Default for chained loops (+13-20% for int8 at large M), off for promoted ones (no gain).
#include <cuda.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>
#include <type_traits>

#include "lowbit/gemm/params.h"
#include "lowbit/gemm/sm90_epilogue.cuh"
#include "lowbit/ptx/cluster.cuh"
#include "lowbit/ptx/convert.cuh"
#include "lowbit/ptx/griddep.cuh"
#include "lowbit/ptx/mbarrier.cuh"
#include "lowbit/ptx/memory.cuh"
#include "lowbit/ptx/tma.cuh"
#include "lowbit/ptx/warpgroup.cuh"
#include "lowbit/ptx/wgmma.cuh"

namespace lowbit::gemm {

// Operand policies: the tensor-core instruction, its accumulator type, and the type the
// per-K-block partial sums are folded into ("promotion").
//   e4m3: fp32 accumulators that keep ~14 bits in the tensor core (DeepSeek-V3), folded
//         into true fp32 every 128 of K.
//   s8:   s32 accumulators, exact; folded into s32 (exact as long as |sum| < 2^31:
//         127 * 127 * K < 2^31 for K < 133143), so the result is the integer product.
struct E4M3Operands {
  using Acc = float;
  using Fold = float;
  template <int N>
  using Mma = ptx::WgmmaE4M3<N>;
};
struct S8Operands {
  using Acc = int32_t;
  using Fold = int32_t;
  template <int N>
  using Mma = ptx::WgmmaS8<N>;
};

// Shared memory: the stage ring, then (kStoreTma) the epilogue's output buffers, then the
// barriers. With kStoreTma each consumer warpgroup stages its 64 output rows, 128 columns at a
// time, as two 64 x 64 boxes of 2-byte elements in the 128-byte swizzle (rows of 128 bytes; a
// quad's 16-byte chunk lands in a different bank group for each of a warp's 8 rows), which the
// TMA unit then stores while the warpgroup goes on to its next tile.
// kKSplit > 1 adds the K split's receive buffer: for each of the kKSplit - 1 other ranks and each
// 8-column chunk this CTA sums, the consumers' 256 threads x 4 partial sums of 4 bytes (4 KB: a
// warp's 16-byte pieces contiguous), 16 KB at kBN = 64 and 32 KB at kBN = 128 in clusters of 2;
// and its two mbarriers.
template <int kBN, int kStages, bool kStoreTma = false, int kKSplit = 1>
struct SmemLayout {
  static constexpr int kPBytes = kBlockP * kBlockK;  // per stage
  static constexpr int kQBytes = kBN * kBlockK;
  static constexpr int kStageBytes = kPBytes + kQBytes;
  static constexpr int kTileBytes = kStages * kStageBytes;
  static constexpr int kEpiBoxCols = 64;                        // 2-byte elements: one 128-byte swizzle row
  static constexpr int kEpiBoxBytes = 64 * kEpiBoxCols * 2;     // 64 rows
  static constexpr int kEpiWgBytes = kStoreTma ? 2 * kEpiBoxBytes : 0;
  static constexpr int kEpiBytes = 2 * kEpiWgBytes;             // two consumer warpgroups
  static constexpr int kChunksPerRank = (kBN / 8 + kKSplit - 1) / kKSplit;  // 8-column chunks a CTA sums
  static constexpr int kRedBytes = kKSplit > 1 ? (kKSplit - 1) * kChunksPerRank * 4096 : 0;
  static constexpr int kBarriers = 2 * kStages + (kKSplit > 1 ? 2 : 0);
  static constexpr int kBytes = 1024 /*alignment slack*/ + kTileBytes + kEpiBytes + kRedBytes + kBarriers * 8;
  static_assert(kQBytes % 1024 == 0, "Q tiles must keep 1024-byte alignment (8 rows of 128B swizzle atoms)");
  static_assert(kEpiBoxBytes % 1024 == 0, "epilogue boxes keep the 1024-byte alignment of the 128-byte swizzle");
  static_assert(kBytes <= 227 * 1024, "shared memory per CTA on sm_90 is at most 227 KB");
};

// Stages: as many as fit 227 KB next to the epilogue and K-split buffers, at most 8.
template <int kBN, bool kStoreTma, int kKSplit = 1>
constexpr int sm90_stages() {
  using One = SmemLayout<kBN, 1, kStoreTma, kKSplit>;
  constexpr int fit = (227 * 1024 - 2048 - One::kEpiBytes - One::kRedBytes) / (kBlockP * kBlockK + kBN * kBlockK);
  return fit < 8 ? fit : 8;
}

// kBN: Q rows per tile (wgmma N); kCluster: CTAs sharing (multicasting) the Q tile;
// kPDiv / kQDiv: rows sharing one block scale (kBlock mode). kFold (promoting, per-row
// scales): K blocks chained on the accumulator per promotion (1: every block; 4 at the 128 x 192
// tiles of large M, sm90_host.h; 2, 4 or 8 forced by LOWBIT_FP8_FOLD_EVERY: A/B runs), trading
// fp8 accumulation length for promotion work.
// kStoreTma: the epilogue can go out through shared memory and TMA stores (tmap_out: C as a
// row-major (rows_p, rows_q) map of 64 x 64 boxes, 128-byte swizzle) where params.epi.tma_store
// says so; the normal (not swap-AB) kernels have it, since there C's rows are contiguous.
// kNParts = 2 (promoting, one accumulator set): each K block is issued as two wgmma of N = kBN / 2
// into one accumulator, each promoted before the next is issued, so a 128 x 256 tile needs 64
// accumulator + 128 fp32 registers (its full accumulator + result would need 256); ping-pong
// keeps the other warpgroup's half on the tensor cores meanwhile. In block mode each half is one
// 128-row weight block, with its own scale.
// kKSplit = 2 or 4: the CTAs of a cluster split each unit's K blocks and reduce through shared
// memory (above); units are then (P tile, Q tile) pairs and params.sched.splits is 1.
template <class Ops, ScaleMode kMode, int kBN, int kCluster, int kStages, bool kPromote, int kPDiv, int kQDiv,
          typename OutT, int kAccSets = 1, int kFold = 1, bool kStoreTma = false, int kNParts = 1, int kKSplit = 1>
__global__ void __launch_bounds__(kThreads, 1)
    sm90_gemm_kernel(const __grid_constant__ CUtensorMap tmap_p, const __grid_constant__ CUtensorMap tmap_q,
                     const __grid_constant__ CUtensorMap tmap_out, const GemmParams params) {
  constexpr int kIssueN = kBN / kNParts;   // wgmma N
  constexpr int kAccRegs = kIssueN / 2;    // m64nN accumulator: N/2 registers per thread
  constexpr int kOutRegs = kBN / 2;        // the tile's results per thread (fin when promoting)
  constexpr int kQSlice = kBN / kCluster;  // Q rows this CTA loads and multicasts
  constexpr int kClusterCtas = kCluster * kKSplit;
  // Q scales in kBlock mode: one per tile when a Q scale block spans the tile (weights on
  // the Q side), else one per distinct column of this thread (activations on the Q side).
  constexpr int kQScales = kMode != ScaleMode::kBlock ? 1 : kQDiv > 1 ? kNParts : kAccRegs / 2;
  static_assert(kBN % 8 == 0 && kBN >= 8 && kBN <= 256, "wgmma N is 8..256");
  static_assert(kQSlice % 8 == 0 && (kQSlice * kBlockK) % 1024 == 0, "multicast slices keep 1024-byte alignment");
  static_assert(kCluster == 1 || kCluster == 2, "clusters of 1 or 2 CTAs");
  static_assert(!kPromote || kAccRegs + kOutRegs <= 192,
                "accumulator + fp32 result: at most 192 registers per thread (of 232)");
  static_assert(kNParts == 1 || (kNParts == 2 && kPromote && kAccSets == 1 && kFold == 1 && kBN == 256),
                "N in two parts: promoting 128 x 256 tiles with one accumulator set");
  static_assert(kMode != ScaleMode::kBlock || kPromote, "block scales are applied at promotion");
  static_assert(kMode != ScaleMode::kBlock || std::is_same_v<typename Ops::Fold, float>, "block scales fold into fp32");
  static_assert(kAccSets == 1 || (kAccSets == 2 && kPromote && kBN <= 128),
                "two accumulator sets + the fp32 result: 3 x kBN / 2 registers per thread (of 232)");
  static_assert(kFold == 1 || ((kFold == 2 || kFold == 4 || kFold == 8) && kPromote && kAccSets == 1 &&
                                kMode == ScaleMode::kRowCol && kNParts == 1),
                "folding every 2, 4 or 8 K blocks: promoting loops with per-row scales, one accumulator set");
  static_assert(kMode != ScaleMode::kBlock || kPDiv == 1 || kBlockP % kPDiv == 0, "P scale blocks align with tiles");
  static_assert(kMode != ScaleMode::kBlock || kQDiv == 1 || kQDiv % kIssueN == 0, "a Q scale block covers each part");
  static_assert(!kStoreTma || kBN % 64 == 0, "TMA-stored tiles go out in 64-column boxes");
  static_assert(kKSplit == 1 || ((kKSplit == 2 || kKSplit == 4) && kCluster == 1 && !kStoreTma && kNParts == 1 &&
                                 kFold == 1),
                "K split in a cluster of 2 or 4: no multicast, generic stores, N in one part, promotion per block");
  using Acc = typename Ops::Acc;
  using Layout = SmemLayout<kBN, kStages, kStoreTma, kKSplit>;

  extern __shared__ __align__(1024) uint8_t smem_raw[];
  uint8_t* smem = reinterpret_cast<uint8_t*>((reinterpret_cast<uintptr_t>(smem_raw) + 1023) & ~uintptr_t(1023));
  uint8_t* smem_p = smem;                                  // [kStages][128][128]
  uint8_t* smem_q = smem + kStages * Layout::kPBytes;      // [kStages][kBN][128]
  uint8_t* smem_epi = smem + Layout::kTileBytes;            // [2 warpgroups][2 boxes][64][64] (kStoreTma)
  uint8_t* smem_red = smem_epi + Layout::kEpiBytes;         // [other rank][chunk / kKSplit][256 threads][4] (kKSplit > 1)
  uint64_t* full = reinterpret_cast<uint64_t*>(smem_red + Layout::kRedBytes);
  uint64_t* empty = full + kStages;
  uint64_t* red_full = empty + kStages;   // kKSplit > 1: the peers' partials of this CTA's chunks landed
  uint64_t* red_empty = red_full + 1;     //              the peers summed what this CTA sent them

  const int warpgroup = threadIdx.x / 128;
  const int warp = threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  const uint32_t rank = kClusterCtas > 1 ? ptx::cluster_ctarank() : 0;
  const uint32_t mc_rank = kCluster > 1 ? rank : 0;  // which P tile of a multicast cluster
  const int cluster_id = blockIdx.x / kClusterCtas, num_clusters = gridDim.x / kClusterCtas;
  const int num_units = params.sched.num_units();  // in cluster units: tile_p = unit's tile_p * kCluster + mc_rank
  // This CTA's K blocks of a unit: split `split` of the K range (the unit's, or its rank in a K-split cluster).
  auto k_range = [&](const WorkUnit& w, int& kb0, int& kb1) {
    const int split = kKSplit > 1 ? int(rank) : w.split;
    kb0 = split * params.kb_per_split;
    kb1 = min(params.num_kb, kb0 + params.kb_per_split);
  };

  if (threadIdx.x == 0) {
    ptx::tma_prefetch_desc(&tmap_p);
    ptx::tma_prefetch_desc(&tmap_q);
    if constexpr (kStoreTma)
      if (params.epi.tma_store) ptx::tma_prefetch_desc(&tmap_out);
    for (int s = 0; s < kStages; ++s) {
      ptx::mbarrier_init(&full[s], 1);                // this CTA's producer: arrive_expect_tx
      ptx::mbarrier_init(&empty[s], 8 * kCluster);    // every consumer warp of every CTA reading it
    }
    if constexpr (kKSplit > 1) {
      ptx::mbarrier_init(red_full, 1);                     // this CTA's expect_tx of the unit's bytes
      ptx::mbarrier_init(red_empty, 8 * (kKSplit - 1));   // every consumer warp of every peer
    }
    ptx::fence_barrier_init();
  }
  if constexpr (kClusterCtas > 1) ptx::cluster_sync();  // peers' barriers exist before anyone signals them
  else __syncthreads();

  if (warpgroup == 0) {
    // ------------------------------------------------------------ producer
    ptx::setmaxnreg_dec<40>();
    if (warp == 0 && lane == 0) {
      auto load_p = [&](int s, int kb, int tile_p) {
        ptx::tma_load_2d(smem_p + s * Layout::kPBytes, &tmap_p, &full[s], kb * kBlockK, tile_p * kBlockP);
      };
      auto load_q = [&](int s, int kb, const WorkUnit& w) {  // this CTA's slice, to every CTA of a multicast cluster
        uint8_t* q_dst = smem_q + s * Layout::kQBytes + mc_rank * kQSlice * kBlockK;
        const int q_row = w.tile_q * kBN + mc_rank * kQSlice;
        if constexpr (kCluster > 1)
          ptx::tma_load_2d_multicast(q_dst, &tmap_q, &full[s], kb * kBlockK, q_row, (1u << kCluster) - 1);
        else
          ptx::tma_load_2d(q_dst, &tmap_q, &full[s], kb * kBlockK, q_row);
      };
      // Launched as a programmatic dependent (PDL), this grid may start while the kernel before
      // it (the activation quantizer) still runs. The weights do not depend on it: the first
      // ring's worth of weight tiles is requested before waiting for that kernel's results, the
      // activation tiles of those stages after.
      int early = 0;  // stages of the first unit whose weight tile is already requested
      if (cluster_id < num_units) {
        const WorkUnit w = params.sched.unit(cluster_id);
        int kb0, kb1;
        k_range(w, kb0, kb1);
        for (int kb = kb0; kb < kb1 && early < kStages; ++kb, ++early) {
          // the whole stage lands here: own P, own Q slice, the peers' Q slices (OOB-filled bytes count too)
          ptx::mbarrier_arrive_expect_tx(&full[early], Layout::kStageBytes);
          if (params.p_is_weight) load_p(early, kb, w.tile_p * kCluster + mc_rank);
          else load_q(early, kb, w);
        }
      }
      ptx::griddep_wait();
      int stage = 0;
      uint32_t phase = 0;
      for (int u = cluster_id; u < num_units; u += num_clusters) {
        const WorkUnit w = params.sched.unit(u);
        const int tile_p = w.tile_p * kCluster + mc_rank;
        int kb0, kb1;
        k_range(w, kb0, kb1);
        for (int kb = kb0; kb < kb1; ++kb) {
          if (early > 0) {  // (the first unit's first stages: fresh, armed above)
            --early;
            if (params.p_is_weight) load_q(stage, kb, w);
            else load_p(stage, kb, tile_p);
          } else {
            ptx::mbarrier_wait(&empty[stage], phase ^ 1);  // a fresh barrier passes parity 1
            ptx::mbarrier_arrive_expect_tx(&full[stage], Layout::kStageBytes);
            load_p(stage, kb, tile_p);
            load_q(stage, kb, w);
          }
          if (++stage == kStages) stage = 0, phase ^= 1;
        }
      }
    }
  } else {
    // ------------------------------------------------------------ consumers
    ptx::setmaxnreg_inc<232>();
    ptx::griddep_wait();  // (scales of the activations: written by the kernel before, under PDL)
    const int wg = warpgroup - 1;              // which 64 rows of the P tile
    const int warp_in_wg = warp % 4;
    const int row_in_tile = wg * 64 + warp_in_wg * 16 + lane / 4;  // and +8
    const int col_in_chunk = (lane % 4) * 2;                         // and +1, per 8-column chunk
    int stage = 0;
    uint32_t phase = 0;
    // Descriptors of stage 0; a stage is a fixed byte offset from them.
    const uint64_t desc_p0 = ptx::smem_desc_k_major_sw128(smem_p + wg * 64 * kBlockK);
    const uint64_t desc_q0 = ptx::smem_desc_k_major_sw128(smem_q);
    constexpr uint32_t kBarWg0Issued = 1, kBarWg1Issued = 2;  // named barriers (0 is __syncthreads)
    constexpr uint32_t kBarEpi = 3;                             // + wg: a warpgroup's epilogue buffer
    constexpr bool kPingPong = kPromote && kAccSets == 1 && kFold == 1;
    bool issued_any = false;
    uint32_t red_round = 0;  // kKSplit > 1: units reduced so far (the exchange barriers' phase)

    for (int u = cluster_id; u < num_units; u += num_clusters) {
      const WorkUnit w = params.sched.unit(u);
      const int tile_p = w.tile_p * kCluster + mc_rank;
      int kb0, kb1;
      k_range(w, kb0, kb1);
      const int i0 = tile_p * kBlockP + row_in_tile;  // this thread's rows: i0, i0 + 8
      const int j_base = w.tile_q * kBN;

      struct Scales {  // kBlock: this thread's factors for one K block
        float p[2], q[kQScales];
      };
      auto load_scales = [&](int kb, Scales& sc) {
        if constexpr (kMode == ScaleMode::kBlock) {
#pragma unroll
          for (int h = 0; h < 2; ++h) {
            const int i = min(i0 + 8 * h, params.rows_p - 1);
            sc.p[h] = __ldg(&params.block.p[(i / kPDiv) * params.block.p_ld + kb]);
          }
#pragma unroll
          for (int c = 0; c < kQScales; ++c) {
            const int j = kQDiv > 1 ? min(j_base + c * kIssueN, params.rows_q - 1)  // part c's scale block
                                    : min(j_base + (c / 2) * 8 + col_in_chunk + (c % 2), params.rows_q - 1);
            sc.q[c] = __ldg(&params.block.q[(j / kQDiv) * params.block.q_ld + kb]);
          }
        }
      };
      // Wait for the stage, then issue the 4 wgmma k32 of one 128-byte K block into `acc`
      // (a fresh accumulator when promoting, else accumulating), and commit them as a group.
      // (`wait_full`: false when the caller already waited for this stage; see the pairs below.)
      // (`fresh`: chained loops start the accumulator with the first wgmma's scale-d = 0.)
      // (`part`: which kIssueN rows of the Q tile, kNParts = 2.)
      auto issue = [&](Acc (&acc)[kAccRegs], bool wait_full = true, bool fresh = false, int part = 0) {
        if (wait_full) ptx::mbarrier_wait(&full[stage], phase);
        // Ping-pong issue order: warpgroup 0 issues a block, then warpgroup 1, then 0 again.
        // Both wait on the same stage, so without this they issue together, the tensor cores
        // interleave the two groups, both finish together and both promote while the tensor
        // cores idle (ncu: 20% of warp samples on the wgmma wait, 54% SM throughput).
        // (Promoting loops only: a chained warpgroup keeps its own block in flight instead.)
        if constexpr (kPingPong) {
          if (wg == 1) ptx::named_barrier_sync(kBarWg0Issued, 256);
          else if (issued_any) ptx::named_barrier_sync(kBarWg1Issued, 256);
        }
        const uint64_t desc_p = desc_p0 + uint64_t((stage * Layout::kPBytes) >> 4);
        const uint64_t desc_q = desc_q0 + uint64_t((stage * Layout::kQBytes + part * kIssueN * kBlockK) >> 4);
        // Chained accumulation fences the accumulator only around the loop: a register fence
        // between two groups on the same accumulator counts as a use, and ptxas then waits for
        // the group in flight before the next (C7517), serializing the loop.
        if (kPromote && (kFold == 1 || fresh)) {  // (a folded group: its first block only)
#pragma unroll
          for (int r = 0; r < kAccRegs; ++r) ptx::fence_register(acc[r]);
        }
        ptx::wgmma_fence();
#pragma unroll
        for (int k = 0; k < kBlockK / kWgmmaK; ++k)  // +32 bytes along K = +2 in the descriptor address
          Ops::template Mma<kIssueN>::mma(desc_p + (k * kWgmmaK >> 4), desc_q + (k * kWgmmaK >> 4), acc,
                                      (kPromote && kFold == 1) ? (k > 0) : !(fresh && k == 0));
        ptx::wgmma_commit();
        if constexpr (kPingPong) ptx::named_barrier_arrive(wg == 0 ? kBarWg0Issued : kBarWg1Issued, 256);
        issued_any = true;
      };
      // This warp is done reading a stage, in every CTA that holds a copy of it.
      auto release = [&](int s) {
        if (lane == 0) {
#pragma unroll
          for (int c = 0; c < kCluster; ++c) {
            if (kCluster == 1 || c == int(rank)) ptx::mbarrier_arrive(&empty[s]);
            else ptx::mbarrier_arrive_cluster(&empty[s], c);
          }
        }
      };
      auto advance = [&] {
        if (++stage == kStages) stage = 0, phase ^= 1;
      };

      Acc acc[kAccRegs];
      using Fold = typename Ops::Fold;
      Fold fin[kPromote ? kOutRegs : 1];
      // Chained loops zero the accumulator with the first wgmma (scale-d = 0), not with
      // register moves: ptxas keeps known-zero float accumulators as constants and then
      // serializes the chain (C7514, seen on the e4m3 kernels); an empty K range (K = 0)
      // reads as zeros in the epilogue instead.
      if constexpr (kPromote) {
#pragma unroll
        for (int r = 0; r < kAccRegs; ++r) acc[r] = Acc(0);
      }
#pragma unroll
      for (int r = 0; r < (kPromote ? kOutRegs : 1); ++r) fin[r] = Fold(0);

      // Fold one K block's partial sums into fp32 (x its block scales): the promotion. (`part`:
      // the accumulator holds part `part` of the tile's columns, kNParts = 2.)
      auto promote = [&](Acc (&acc)[kAccRegs], const Scales& sc, int part = 0) {
#pragma unroll
        for (int r = 0; r < kAccRegs; ++r) ptx::fence_register(acc[r]);
#pragma unroll
        for (int r = 0; r < kAccRegs; ++r) {
          if constexpr (kMode == ScaleMode::kBlock)
            fin[part * kAccRegs + r] +=
                float(acc[r]) * (sc.p[(r / 2) % 2] * sc.q[kQDiv > 1 ? part : (r / 4) * 2 + (r % 2)]);
          else
            fin[part * kAccRegs + r] += acc[r];  // same type: fp32 + fp32, or s32 + s32 (exact)
        }
      };

      if constexpr (kFold > 1) {
        // kFold K blocks chained on one accumulator, then one promotion: within a fold the blocks
        // go as in the chained loop below (each issued while the previous is in flight, whose stage
        // is released once wait<1> says it is done; no register fence inside), so the tensor cores
        // idle only while the fold drains and is promoted. (Session 10's fold loop waited for all
        // kFold stages before issuing any: with 4 stages the ring drained every fold, no gain.)
        // Fold 4 kept the K = 16384 error at the promoted loop's (1.69e-3 vs 1.66e-3; unpromoted
        // 3.54e-3: bench/NOTES.md fp8 v9).
        Scales sc{};
        for (int kb = kb0; kb < kb1;) {
          const int kb_end = min(kb + kFold, kb1);
          int prev_stage = stage;
          issue(acc, true, /*fresh=*/true);
          advance();
          for (++kb; kb < kb_end; ++kb) {
            const int cur_stage = stage;
            issue(acc);
            advance();
            ptx::wgmma_wait<1>();
            release(prev_stage);
            prev_stage = cur_stage;
          }
          ptx::wgmma_wait<0>();
          release(prev_stage);
          promote(acc, sc);
        }
      } else if constexpr (kAccSets == 2) {
        // Two accumulator sets, K blocks in pairs: block kb + 1 is issued before block kb is
        // waited for, so this warpgroup's own wgmma keep the tensor cores busy while it
        // promotes block kb; one idle gap per pair instead of per block. ptxas serializes the
        // wgmma (C7514) or waits for the first group before issuing the second (C7517) when
        // control flow separates them or a group stays in flight across the loop's back edge
        // (tools/wgmma_rate.cu), so: both stages are waited for first, the two groups are
        // issued back to back with no branch between, and each pair ends with nothing in flight.
        Acc acc2[kAccRegs];
        Scales sc_a{}, sc_b{};
        int kb = kb0;
        for (; kb + 1 < kb1; kb += 2) {
          load_scales(kb, sc_a);
          load_scales(kb + 1, sc_b);
          const int st_a = stage;
          ptx::mbarrier_wait(&full[stage], phase);
          advance();
          const int st_b = stage;
          ptx::mbarrier_wait(&full[stage], phase);
          stage = st_a;  // issue() takes the descriptors of `stage`
          issue(acc, false);
          stage = st_b;
          issue(acc2, false);
          advance();
          ptx::wgmma_wait<1>();
          release(st_a);
          promote(acc, sc_a);
          ptx::wgmma_wait<0>();
          release(st_b);
          promote(acc2, sc_b);
        }
        if (kb < kb1) {  // an odd last block
          load_scales(kb, sc_a);
          const int st_a = stage;
          issue(acc);
          advance();
          ptx::wgmma_wait<0>();
          release(st_a);
          promote(acc, sc_a);
        }
      } else if constexpr (!kPromote) {
        // Chained: one accumulator across all K blocks (exact s32 sums; or fp8's unpromoted
        // diagnostic). Each block is issued while the previous one is still in flight, whose
        // stage is released once wait<1> says it is done: the tensor cores never wait for
        // this warpgroup, so no ping-pong either. No register fence inside the loop (see issue).
#pragma unroll
        for (int r = 0; r < kAccRegs; ++r) ptx::fence_register(acc[r]);
        if (kb1 > kb0) {
          int prev_stage = stage;
          issue(acc, true, /*fresh=*/true);
          advance();
          for (int kb = kb0 + 1; kb < kb1; ++kb) {
            const int cur_stage = stage;
            issue(acc);
            advance();
            ptx::wgmma_wait<1>();
            release(prev_stage);
            prev_stage = cur_stage;
          }
          ptx::wgmma_wait<0>();
          release(prev_stage);
        }
#pragma unroll
        for (int r = 0; r < kAccRegs; ++r) ptx::fence_register(acc[r]);
      } else if constexpr (kNParts == 2) {
        // Each half of the tile's columns in turn through the one accumulator: issue, wait,
        // promote (ping-pong: the other warpgroup's half runs on the tensor cores meanwhile);
        // the stage is free once the second half has read it.
        Scales sc{};
        for (int kb = kb0; kb < kb1; ++kb) {
          load_scales(kb, sc);
          const int cur_stage = stage;
          issue(acc, true, false, 0);
          ptx::wgmma_wait<0>();
          promote(acc, sc, 0);
          issue(acc, false, false, 1);
          advance();
          ptx::wgmma_wait<0>();
          release(cur_stage);
          promote(acc, sc, 1);
        }
      } else {
        Scales sc{};
        for (int kb = kb0; kb < kb1; ++kb) {
          load_scales(kb, sc);  // before the wait, so its latency hides
          const int cur_stage = stage;
          issue(acc);
          advance();
          // The block's partial sums are needed before the next block reuses the
          // accumulator: wait, free the stage, fold them into fp32 (x block scales).
          ptx::wgmma_wait<0>();
          release(cur_stage);
          promote(acc, sc);
        }
      }

      // ---------------------------------------------------------- epilogue
      // Register r = 4c + 2h + t holds C[i0 + 8h, j_base + 8c + col_in_chunk + t]: the two
      // registers of (c, h) are adjacent columns.
      const EpilogueArgs& e = params.epi;
      const bool direct = params.sched.splits == 1;
      auto value = [&](int r) -> float {
        if constexpr (kPromote) return float(fin[r]);
        else return kb1 > kb0 ? float(acc[r]) : 0.0f;
      };
      // Through the cluster's K split, through shared memory and TMA stores, or from registers
      // (sm90_epilogue.cuh).
      bool stored = false;
      if constexpr (kKSplit > 1) {
        using Part = std::conditional_t<kPromote, typename Ops::Fold, Acc>;
        auto part = [&](int r) -> Part {
          if constexpr (kPromote) return fin[r];
          else return kb1 > kb0 ? acc[r] : Part(0);
        };
        store_tile_ksplit<kMode, OutT, Part, kOutRegs, kKSplit, Layout::kChunksPerRank>(
            part, params, smem_red, red_full, red_empty, red_round, rank, lane, i0, j_base, col_in_chunk);
        ++red_round;
        stored = true;
      }
      if constexpr (kStoreTma) {
        if (direct && e.tma_store) {
          store_tile_tma<kMode, OutT, kBN, Layout>(value, params, &tmap_out, smem_epi + wg * Layout::kEpiWgBytes,
                                                   kBarEpi + wg, warp_in_wg, lane, tile_p * kBlockP + wg * 64, i0,
                                                   j_base, col_in_chunk);
          stored = true;
        }
      }
      if (!stored) store_tile_generic<kMode, OutT, kOutRegs>(value, params, w.split, i0, j_base, col_in_chunk);
    }
    // Warpgroup 1's last "issued" arrival is still pending: consume it, so both named
    // barriers end the kernel with no arrivals outstanding.
    if (kPingPong && wg == 0 && issued_any) ptx::named_barrier_sync(kBarWg1Issued, 256);
    // The buffers must outlive this warpgroup's last TMA stores from them.
    if constexpr (kStoreTma)
      if (threadIdx.x % 128 == 0) ptx::bulk_wait_group<0>();
  }
  // A CTA's shared memory must outlive the peer's last multicast into it, last remote arrival
  // on its barriers and (K split) last read of its exchange buffer.
  if constexpr (kClusterCtas > 1) ptx::cluster_sync();
}

}  // namespace lowbit::gemm
