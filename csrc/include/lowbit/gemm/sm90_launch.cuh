#pragma once
// Kernel instantiation and launch of the Hopper mainloop for one operand policy (Ops):
// tile and cluster dispatch, persistent grid sizing, the split-K reduce. Included by each
// family's <family>_launch.cu and <family>_launch_swap.cu, which instantiate
// launch_sm90<ItsOperands, kSwapAB> for the normal and the swap-AB kernels (two translation
// units, so that the build compiles them in parallel).
#include <c10/cuda/CUDAException.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <type_traits>

#include "lowbit/env.h"
#include "lowbit/gemm/sm90_gemm.cuh"
#include "lowbit/gemm/sm90_launch.h"

namespace lowbit::gemm {
namespace sm90_detail {

// kStoreTma: the normal (not swap-AB) kernels, whose C rows are contiguous (sm90_gemm.cuh).
// kKSplit: CTAs of a cluster splitting K (swap-AB; sm90_gemm.cuh), where kCluster multicasts.
// one_wave: launch only if every unit's cluster can be resident at once (else return false).
template <class Ops, ScaleMode kMode, int kBN, int kCluster, bool kPromote, int kPDiv, int kQDiv, typename OutT,
          int kAccSets = 1, int kFold = 1, bool kStoreTma = false, int kNParts = 1, int kKSplit = 1>
bool launch_kernel(const Launch& a, bool one_wave = false) {
  constexpr int kStages = sm90_stages<kBN, kStoreTma, kKSplit>();
  constexpr int kClusterCtas = kCluster * kKSplit;
  auto kernel = sm90_gemm_kernel<Ops, kMode, kBN, kCluster, kStages, kPromote, kPDiv, kQDiv, OutT, kAccSets, kFold,
                                 kStoreTma, kNParts, kKSplit>;
  constexpr int smem = SmemLayout<kBN, kStages, kStoreTma, kKSplit>::kBytes;
  cudaLaunchConfig_t cfg{};
  cudaLaunchAttribute attr[2];
  attr[0].id = cudaLaunchAttributeClusterDimension;
  attr[0].val.clusterDim.x = kClusterCtas;
  attr[0].val.clusterDim.y = 1;
  attr[0].val.clusterDim.z = 1;
  // Programmatic dependent launch, where the kernel before it in the stream is the activation
  // quantizer (a.pdl: the fused linears): it may start while that one still runs (which lets it:
  // griddep_launch_dependents) and load its first weight tiles meanwhile (sm90_gemm.cuh). Not
  // after any other kernel: that one might be writing the weights. LOWBIT_PDL=0 turns it off.
  static const bool pdl = env::integer("LOWBIT_PDL", 1) != 0;
  attr[1].id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attr[1].val.programmaticStreamSerializationAllowed = 1;
  cfg.blockDim = dim3(kThreads);
  cfg.dynamicSmemBytes = smem;
  cfg.stream = a.stream;
  cfg.attrs = attr;
  cfg.numAttrs = pdl && a.pdl ? 2 : 1;
  // Persistent grid: as many clusters as can be resident at once, never more than there are
  // units. Why ask the occupancy API rather than divide the SM count: a GPC with an odd number
  // of free SMs holds one CTA fewer than SMs / 2 clusters would need, and a persistent cluster
  // that cannot start until another finishes runs its whole share of the tiles after the
  // others: the 2-CTA path measured 2x slower that way (bench/NOTES.md, fp8 v7).
  static const int resident_clusters = [&] {
    C10_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
    if constexpr (kClusterCtas == 1) return a.sms;
    cudaLaunchConfig_t q = cfg;
    q.gridDim = dim3(kClusterCtas * (a.sms / kClusterCtas));
    int n = 0;
    C10_CUDA_CHECK(cudaOccupancyMaxActiveClusters(&n, kernel, &q));
    if (env::flag("LOWBIT_DEBUG"))
      std::fprintf(stderr, "[lowbit sm90] bn=%d cluster=%d ksplit=%d: %d clusters resident (%d SMs)\n", kBN, kCluster,
                   kKSplit, n, a.sms);
    return std::max(1, n);
  }();
  if (one_wave && a.units > resident_clusters) return false;
  cfg.gridDim = dim3(kClusterCtas * std::min(a.units, resident_clusters));
  C10_CUDA_CHECK(cudaLaunchKernelEx(&cfg, kernel, a.tmap_p, a.tmap_q, a.tmap_out, a.params));
  return true;
}

// launch_kernel with the plan's cluster size (1 or 2) as its template argument.
template <class Ops, ScaleMode kMode, int kBN, bool kPromote, int kPDiv, int kQDiv, typename OutT, int kAccSets = 1,
          int kFold = 1, bool kStoreTma = false, int kNParts = 1>
void launch_clustered(const Launch& a) {
  if (a.plan.cluster == 2)
    launch_kernel<Ops, kMode, kBN, 2, kPromote, kPDiv, kQDiv, OutT, kAccSets, kFold, kStoreTma, kNParts>(a);
  else
    launch_kernel<Ops, kMode, kBN, 1, kPromote, kPDiv, kQDiv, OutT, kAccSets, kFold, kStoreTma, kNParts>(a);
}

// The launch with its cluster K split set to s CTAs (1: none), each rank's share of the K blocks
// to match: the fallback when the plan's split cannot have all its clusters resident at once
// (the occupancy API decides: GPCs hold whole clusters), which would leave a second wave.
inline Launch with_ksplit(const Launch& a, int s) {
  Launch b = a;
  b.plan.ksplit = s;
  b.params.kb_per_split = (a.params.num_kb + s - 1) / s;
  return b;
}

// Swap-AB: tokens padded to 8 / 16 / 32 / 64 on wgmma's N side; K split inside clusters of
// plan.ksplit CTAs (1, 2, 4), or the next smaller split where those do not fit at once.
template <class Ops, ScaleMode kMode, bool kPromote, typename OutT, int kBN>
void launch_swap_ab(const Launch& a) {
  constexpr int kAct = 1, kWgt = kMode == ScaleMode::kBlock ? 128 : 1;
  if (a.plan.ksplit == 4 && launch_kernel<Ops, kMode, kBN, 1, kPromote, kWgt, kAct, OutT, 1, 1, false, 1, 4>(a, true))
    return;
  if (a.plan.ksplit >= 2 &&
      launch_kernel<Ops, kMode, kBN, 1, kPromote, kWgt, kAct, OutT, 1, 1, false, 1, 2>(with_ksplit(a, 2), true))
    return;
  launch_kernel<Ops, kMode, kBN, 1, kPromote, kWgt, kAct, OutT>(a.plan.ksplit == 1 ? a : with_ksplit(a, 1));
}

template <class Ops, bool kSwapAB, ScaleMode kMode, bool kPromote, typename OutT>
void dispatch_tile(const Launch& a) {
  if constexpr (!kSwapAB) {
    // Block-scale grouping: activations carry one scale per row, weights one per 128 rows.
    constexpr int kAct = 1, kWgt = kMode == ScaleMode::kBlock ? 128 : 1;
    if (a.plan.ksplit == 2) {
      // Few 128 x 128 tiles: K split in clusters of 2 (sm90_host.h), where the clusters all fit
      // at once; else the tiles unsplit (the plan's tile, cluster and TMA epilogue are those).
      constexpr int kSets = kPromote ? 2 : 1;
      if (launch_kernel<Ops, kMode, 128, 1, kPromote, kAct, kWgt, OutT, kSets, 1, false, 1, 2>(a, true)) return;
      return dispatch_tile<Ops, kSwapAB, kMode, kPromote, OutT>(with_ksplit(a, 1));
    }
    // Promoting: 128 x 128 tiles with two accumulator sets, or 128 x 256 in two halves;
    // chained: 128 x 256 or 128 (make_plan). All store C through shared memory and TMA
    // (kStoreTma) where params.epi.tma_store.
    if constexpr (kPromote && kMode == ScaleMode::kRowCol && std::is_same_v<OutT, __nv_bfloat16>) {
      // 128 x 192 tiles folding 4 K blocks per promotion (the default at large M where they need
      // the fewest waves: sm90_host.h), 8 forced; 128 x 128 folding 2 / 4 / 8 forced (A/B runs)
      if (a.plan.bn == 192) {
        if (a.plan.fold == 4) return launch_clustered<Ops, kMode, 192, kPromote, kAct, kWgt, OutT, 1, 4, true>(a);
        if (a.plan.fold == 8) return launch_clustered<Ops, kMode, 192, kPromote, kAct, kWgt, OutT, 1, 8, true>(a);
      }
      if (a.plan.fold == 2) return launch_clustered<Ops, kMode, 128, kPromote, kAct, kWgt, OutT, 1, 2, true>(a);
      if (a.plan.fold == 4) return launch_clustered<Ops, kMode, 128, kPromote, kAct, kWgt, OutT, 1, 4, true>(a);
      if (a.plan.fold == 8) return launch_clustered<Ops, kMode, 128, kPromote, kAct, kWgt, OutT, 1, 8, true>(a);
    }
    if constexpr (kPromote) {
      // two halves of N per K block (sm90_gemm.cuh kNParts)
      if (a.plan.bn == 256) return launch_clustered<Ops, kMode, 256, kPromote, kAct, kWgt, OutT, 1, 1, true, 2>(a);
      if (a.plan.acc_sets == 2) return launch_clustered<Ops, kMode, 128, kPromote, kAct, kWgt, OutT, 2, 1, true>(a);
    } else if (a.plan.bn == 256) {
      return launch_clustered<Ops, kMode, 256, kPromote, kAct, kWgt, OutT, 1, 1, true>(a);
    }
    return launch_clustered<Ops, kMode, 128, kPromote, kAct, kWgt, OutT, 1, 1, true>(a);
  } else {
    switch (a.plan.bn) {
      case 8: return launch_swap_ab<Ops, kMode, kPromote, OutT, 8>(a);
      case 16: return launch_swap_ab<Ops, kMode, kPromote, OutT, 16>(a);
      case 32: return launch_swap_ab<Ops, kMode, kPromote, OutT, 32>(a);
      default: return launch_swap_ab<Ops, kMode, kPromote, OutT, 64>(a);
    }
  }
}

template <class Ops, bool kSwapAB, typename OutT>
void launch_typed(const Launch& a) {
  if constexpr (!std::is_same_v<typename Ops::Fold, float>) {
    // Integer sums (s8): per-row/per-tensor scales only, one s32 accumulator chained over K
    // (exact); K split only inside a cluster (exact s32 partials; plan.splits is 1: fp32
    // partials in a workspace would round sums above 2^24).
    dispatch_tile<Ops, kSwapAB, ScaleMode::kRowCol, false, OutT>(a);
    return;
  } else if (a.mode == ScaleMode::kBlock) {
    dispatch_tile<Ops, kSwapAB, ScaleMode::kBlock, true, OutT>(a);
  } else if constexpr (std::is_same_v<OutT, __nv_bfloat16>) {  // the no-promotion diagnostic: bf16 only
    if (a.promote) dispatch_tile<Ops, kSwapAB, ScaleMode::kRowCol, true, OutT>(a);
    else dispatch_tile<Ops, kSwapAB, ScaleMode::kRowCol, false, OutT>(a);
  } else {
    dispatch_tile<Ops, kSwapAB, ScaleMode::kRowCol, true, OutT>(a);
  }
  if (a.plan.splits > 1) {
    const auto& p = a.params;
    const int64_t n = int64_t(p.rows_p) * p.rows_q;
    const int blocks = int(std::min<int64_t>((n + 255) / 256, int64_t(a.sms) * 8));
    if (a.mode == ScaleMode::kBlock)
      splitk_reduce_kernel<ScaleMode::kBlock, OutT>
          <<<blocks, 256, 0, a.stream>>>(p.workspace, a.plan.splits, p.rows_p, p.rows_q, p.epi);
    else
      splitk_reduce_kernel<ScaleMode::kRowCol, OutT>
          <<<blocks, 256, 0, a.stream>>>(p.workspace, a.plan.splits, p.rows_p, p.rows_q, p.epi);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  }
}

}  // namespace sm90_detail

// The normal (kSwapAB = false) or the swap-AB kernels of one operand policy; the caller
// passes a plan of that kind (plan.swap_ab == kSwapAB).
template <class Ops, bool kSwapAB>
void launch_sm90(const Launch& a) {
  if (a.out_bf16) sm90_detail::launch_typed<Ops, kSwapAB, __nv_bfloat16>(a);
  else sm90_detail::launch_typed<Ops, kSwapAB, __half>(a);
}

}  // namespace lowbit::gemm
