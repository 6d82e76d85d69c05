#pragma once
// The mixed-input wgmma GEMM's launch templates (w4_wgmma.cuh): from a plan (W4WgmmaParams) to the
// one kernel instantiation that runs it, by weight policy, group, tokens per CTA (16 / 32 / 64 /
// 128 / 256), rows per CTA (128 / 256) and CTAs per SM (1 / 2). The int4 folded kernels (82 per
// dtype of the ~220) are instantiated in shards of their own (w4_wgmma_shard_fold_bf16.cu, _f16.cu)
// so that nvcc compiles them in parallel with the rest (w4_wgmma_launch.cu); in one unit they were,
// with the GEMVs', the longest step of a device call's build (session 21). The extern declarations
// at the end keep the other units from instantiating them again.
#include <c10/cuda/CUDAException.h>
#include <c10/util/Exception.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "gemm/w4/w4_launch.h"
#include "gemm/w4/w4_wgmma.cuh"
#include "lowbit/dynamic_smem.cuh"

namespace lowbit::w4 {

// tmap_w: the 8-bit rows' map (kRows8); 4-bit weights come by bulk copies and ignore it.
template <typename T, WgmmaWeights kW, int kChunks, bool kZeros, int kRowTiles, int kBN, int kCtas, bool kXPre = false>
void wgmma_launch(const CUtensorMap& tmap_x, const CUtensorMap& tmap_w, const W4WgmmaParams& p, cudaStream_t stream) {
  constexpr auto kernel = a16w4_wgmma_kernel<T, kW, kBN, kChunks, kZeros, kRowTiles, kCtas, kXPre>;
  constexpr int smem = W4WgmmaSmem<kBN, wgmma_rows8(kW), kRowTiles, kCtas>::kBytes;
  allow_dynamic_smem<kernel>(smem);
  dim3 grid(p.N / (kWgRows * kRowTiles), (p.M + kBN - 1) / kBN, p.splits);
  kernel<<<grid, kWgThreads, smem, stream>>>(tmap_x, tmap_w, p);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

// p.ctas_per_sm: the two-CTA build where it exists (w4_params.h wgmma_two_ctas)
template <typename T, WgmmaWeights kW, int kChunks, bool kZeros, int kRowTiles, int kBN>
void wgmma_tokens_typed(const CUtensorMap& tmap_x, const CUtensorMap& tmap_w, const W4WgmmaParams& p,
                        cudaStream_t stream) {
  if constexpr (wgmma_two_ctas(kW, kRowTiles, kBN, kChunks)) {
    if (p.ctas_per_sm == 2) return wgmma_launch<T, kW, kChunks, kZeros, kRowTiles, kBN, 2>(tmap_x, tmap_w, p, stream);
  }
  TORCH_CHECK(p.ctas_per_sm == 1, "lowbit: two CTAs per SM planned for a wgmma kernel built for one");
  if constexpr (wgmma_x_pre_built(kW, kBN, 1)) {
    if (p.x_pre) return wgmma_launch<T, kW, kChunks, kZeros, kRowTiles, kBN, 1, true>(tmap_x, tmap_w, p, stream);
  }
  TORCH_CHECK(!p.x_pre, "lowbit: x permuted before a wgmma kernel built without it");
  wgmma_launch<T, kW, kChunks, kZeros, kRowTiles, kBN, 1>(tmap_x, tmap_w, p, stream);
}

// p.tokens per CTA (the host's TMA box of x has as many rows): 16 or 32 (128-row CTAs), 64, 128, or
// 256 (wide CTAs); the promotion variant (LOWBIT_A16W4_WGMMA=promote, not the default) 128 only. K
// splits where wgmma_splits says.
template <typename T, WgmmaWeights kW, int kChunks = 0, bool kZeros = false, int kRowTiles = 1>
void wgmma_typed(const CUtensorMap& tmap_x, const CUtensorMap& tmap_w, const W4WgmmaParams& p, cudaStream_t stream) {
  constexpr bool kWide = kRowTiles == 1 && wgmma_wide_built(kW);  // 256 tokens per CTA built
  TORCH_CHECK(p.tokens == 16 || p.tokens == 32 || p.tokens == 64 || p.tokens == kWgTokens ||
                  (kWide && p.tokens == kWgWideTokens),
              "lowbit: the mixed-input wgmma runs 16, 32, 64 or 128 tokens per CTA (256: wide CTAs, where built)");
  TORCH_CHECK(p.tokens > 32 || kRowTiles == 1 || (p.tokens == 16 && !wgmma_rows8(kW)),
              "lowbit: 256-row CTAs of 16 tokens for 4-bit weights only, none of 32 tokens");
  TORCH_CHECK(p.splits == 1 || wgmma_splits(kW, kRowTiles, p.tokens),
              "lowbit: a K split planned for a wgmma kernel without one");
  if constexpr (kW == WgmmaWeights::kInt4Promote) {
    TORCH_CHECK(p.tokens == kWgTokens, "lowbit: the int4 promotion variant runs 128 tokens per CTA");
  } else {
    if constexpr (kWide) {
      if (p.tokens == kWgWideTokens)
        return wgmma_tokens_typed<T, kW, kChunks, kZeros, 1, kWgWideTokens>(tmap_x, tmap_w, p, stream);
    }
    if constexpr (kRowTiles == 1 || !wgmma_rows8(kW)) {
      if (p.tokens == 16) return wgmma_tokens_typed<T, kW, kChunks, kZeros, kRowTiles, 16>(tmap_x, tmap_w, p, stream);
    }
    if constexpr (kRowTiles == 1) {
      if (p.tokens == 32) return wgmma_tokens_typed<T, kW, kChunks, kZeros, kRowTiles, 32>(tmap_x, tmap_w, p, stream);
    }
    if (p.tokens == 64) return wgmma_tokens_typed<T, kW, kChunks, kZeros, kRowTiles, 64>(tmap_x, tmap_w, p, stream);
  }
  wgmma_tokens_typed<T, kW, kChunks, kZeros, kRowTiles, kWgTokens>(tmap_x, tmap_w, p, stream);
}

// int4 by group size (kChunks); 256-row CTAs (kRowTiles = 2) for groups of 128 or per channel only
template <typename T, WgmmaWeights kW, bool kZeros, int kRowTiles>
void wgmma_group(const CUtensorMap& tmap_x, const W4WgmmaParams& p, cudaStream_t stream) {
  if constexpr (kRowTiles == 1) {
    if (p.group == 32) return wgmma_typed<T, kW, 1, kZeros>(tmap_x, tmap_x, p, stream);
    if (p.group == 64) return wgmma_typed<T, kW, 2, kZeros>(tmap_x, tmap_x, p, stream);
  } else {
    TORCH_CHECK(p.group == 128 || p.group == p.K, "lowbit: 256-row int4 wgmma CTAs for groups of 128 or per channel");
  }
  if (p.group == 128) return wgmma_typed<T, kW, 4, kZeros, kRowTiles>(tmap_x, tmap_x, p, stream);
  wgmma_typed<T, kW, 0, kZeros, kRowTiles>(tmap_x, tmap_x, p, stream);  // one group per row (group == K)
}

template <typename T, WgmmaWeights kW, int kRowTiles = 1>
void wgmma_int4(const CUtensorMap& tmap_x, const W4WgmmaParams& p, cudaStream_t stream) {
  if (p.zeros) wgmma_group<T, kW, true, kRowTiles>(tmap_x, p, stream);
  else wgmma_group<T, kW, false, kRowTiles>(tmap_x, p, stream);
}

extern template void wgmma_int4<__nv_bfloat16, WgmmaWeights::kInt4Fold, 1>(const CUtensorMap&, const W4WgmmaParams&,
                                                                          cudaStream_t);
extern template void wgmma_int4<__nv_bfloat16, WgmmaWeights::kInt4Fold, 2>(const CUtensorMap&, const W4WgmmaParams&,
                                                                          cudaStream_t);
extern template void wgmma_int4<__half, WgmmaWeights::kInt4Fold, 1>(const CUtensorMap&, const W4WgmmaParams&,
                                                                   cudaStream_t);
extern template void wgmma_int4<__half, WgmmaWeights::kInt4Fold, 2>(const CUtensorMap&, const W4WgmmaParams&,
                                                                   cudaStream_t);

}  // namespace lowbit::w4
