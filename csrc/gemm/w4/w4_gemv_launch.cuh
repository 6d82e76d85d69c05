#pragma once
// The 4-bit GEMVs' launch templates (v6 w4_gemv.cuh, v7 / v7b w4_gemv_regs.cuh, v8
// w4_gemv_stream.cuh): from a plan (GemvParams) to the one kernel instantiation that runs it.
// gemv_tiles_typed<T, kTiles> is instantiated in shards, one translation unit each
// (w4_gemv_shard_*.cu), so that nvcc compiles the ~300 GEMV kernels in parallel: in one unit they
// were the longest step of a device call's build (~100-190 s, session 21). The extern declarations
// at the end keep every other unit that includes this from instantiating them again.
#include <c10/cuda/CUDAException.h>
#include <c10/util/Exception.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "gemm/w4/w4_gemv.cuh"
#include "gemm/w4/w4_gemv_regs.cuh"
#include "gemm/w4/w4_gemv_stream.cuh"
#include "gemm/w4/w4_launch.h"
#include "lowbit/dynamic_smem.cuh"
#include "lowbit/gemv_split.h"  // gemv_token_tiles
#include "lowbit/w4_layout.h"

namespace lowbit::w4 {

// kKernel, opened to `bytes` first (for a choice among kernels: the one picked is opened)
template <auto kKernel>
auto opened_to(int bytes) {
  allow_dynamic_smem<kKernel>(bytes);
  return kKernel;
}

// v8's one launch, with programmatic stream serialization where p.pdl says (as sm90_launch.cuh's
// GEMMs): it may then start while the kernel before it in the stream still runs
// (w4_gemv_stream.cuh: its weights' first fills before griddep_wait, x after).
inline void launch_stream_kernel(void (*kernel)(GemvParams, CUtensorMap), int ctas, int threads, int smem,
                                 cudaStream_t stream, const GemvParams& p, const CUtensorMap& x_map) {
  cudaLaunchAttribute attr[1];
  attr[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attr[0].val.programmaticStreamSerializationAllowed = 1;
  cudaLaunchConfig_t cfg{};
  cfg.gridDim = dim3(ctas);
  cfg.blockDim = dim3(threads);
  cfg.dynamicSmemBytes = smem;
  cfg.stream = stream;
  cfg.attrs = attr;
  cfg.numAttrs = p.pdl ? 1 : 0;
  C10_CUDA_CHECK(cudaLaunchKernelEx(&cfg, kernel, p, x_map));
}

// x_map: x's TMA map for v8 with x through the ring (p.xring), else unused.
template <typename T, int kTiles, int kChunks, bool kZeros, bool kMx = false>
void gemv(const GemvParams& p, const CUtensorMap& x_map, cudaStream_t stream) {
  // (v8 exists where stream_built says; w4_ops.cpp gemv_stream_applies sends the rest to v6 / v7 / v7b)
  if constexpr (stream_built(kTiles, kChunks, kMx)) {
    if (p.regs == 3) {  // v8: one warp per (16-row tile, K split); the variant picked, then one launch
      void (*kernel)(GemvParams, CUtensorMap) = nullptr;
      int smem = 0;  // dynamic: the x ring's
      if (p.xring) {  // x through the CTA's ring (dynamic shared memory sized by M), the default prefetch
        TORCH_CHECK(p.prefetch == (kTiles == 1 ? 1 : 0), "lowbit a16w4: v8's x ring is built with the default prefetch");
        constexpr auto kRing = a16w4_gemv_stream_kernel<T, kTiles, kChunks, kZeros, kMx, kTiles == 1, true>;
        kernel = kRing;
        smem = kXRingStages * 256 * p.M + 128;  // + alignment slack
        allow_dynamic_smem<kRing>(smem);
      }
      // 2 or 4 K blocks per bulk copy: 1..8 tokens with the prefetch, without the x ring
      TORCH_CHECK(p.copy <= 1 || (kTiles == 1 && p.prefetch && !p.xring && (p.copy == 2 || p.copy == 4)),
                  "lowbit a16w4: v8 has no kernel for ", p.copy, " blocks per copy here (w4_ops.cpp gemv_stream_copy)");
      int warps = kStreamWarps;  // per CTA
      if constexpr (kTiles == 1) {
        // the K splits inside the CTA (p.minor = 2, 4 or 8), built for the default blocks per copy only
        constexpr int kDefaultCopy = stream_default_copy(kChunks, kMx);
        TORCH_CHECK(!p.minor || (p.prefetch && !p.xring && p.copy == kDefaultCopy &&
                                 (p.minor == 2 || p.minor == 4 || p.minor == 8)),
                    "lowbit a16w4: v8 has no kernel for ", p.minor, " splits inside the CTA here (w4_ops.cpp "
                    "gemv_stream_minor)");
        // x staged in shared memory (p.xstage 1; 2: with its chunk sums, int4), with or without the
        // splits inside the CTA
        TORCH_CHECK(!p.xstage || (p.prefetch && !p.xring && p.copy == kDefaultCopy && p.xstage <= (kMx ? 1 : 2)),
                    "lowbit a16w4: v8 has no kernel with x staged here (w4_ops.cpp gemv_stream_xstage)");
        // (warps and dynamic shared memory first: the kernel picked is opened to it)
        if (p.minor == 8) warps = stream_cta_warps(8), smem = kStreamMinor8Smem;  // its rings: dynamic
        if (p.xstage) smem = (smem ? smem : 128) + int(stream_xstage_bytes(p.M, p.K, sizeof(T), p.xstage));
        // kM splits inside the CTA (0: none), x as p.xstage says (MX: no sums to stage, never asked)
        auto pick = [&]<int kM>() {
          constexpr auto kPlain = a16w4_gemv_stream_kernel<T, 1, kChunks, kZeros, kMx, true, false, kDefaultCopy, kM>;
          constexpr auto kStaged =
              a16w4_gemv_stream_kernel<T, 1, kChunks, kZeros, kMx, true, false, kDefaultCopy, kM, 1>;
          constexpr auto kWithSums =
              a16w4_gemv_stream_kernel<T, 1, kChunks, kZeros, kMx, true, false, kDefaultCopy, kM, kMx ? 1 : 2>;
          kernel = p.xstage == 2 ? opened_to<kWithSums>(smem) : p.xstage ? opened_to<kStaged>(smem)
                                                                          : opened_to<kPlain>(smem);
        };
        if (p.minor == 2) pick.template operator()<2>();
        if (p.minor == 4) pick.template operator()<4>();
        if (p.minor == 8) pick.template operator()<8>();  // a CTA of 8 warps
        if (!p.minor && p.xstage) pick.template operator()<0>();
        if (!kernel && p.copy == 2) kernel = a16w4_gemv_stream_kernel<T, 1, kChunks, kZeros, kMx, true, false, 2>;
        if (!kernel && p.copy == 4) kernel = a16w4_gemv_stream_kernel<T, 1, kChunks, kZeros, kMx, true, false, 4>;
      }
      TORCH_CHECK((!p.minor && !p.xstage) || kTiles == 1,
                  "lowbit a16w4: v8's splits inside the CTA and x staged at 1..8 tokens only");
      if (!kernel)
        kernel = p.prefetch && kTiles <= 2 ? a16w4_gemv_stream_kernel<T, kTiles, kChunks, kZeros, kMx, kTiles <= 2>
                                           : a16w4_gemv_stream_kernel<T, kTiles, kChunks, kZeros, kMx, false>;
      const int ctas = (p.N / kTileRows * p.splits + warps - 1) / warps;
      launch_stream_kernel(kernel, ctas, warps * 32, smem, stream, p, x_map);
      return;
    }
  }
  // v8's plan (per-tile splits and counters) must never reach the other kernels
  TORCH_CHECK(p.regs != 3, "lowbit a16w4: GEMV v8 was planned for a kernel it is not built for (w4_ops.cpp "
              "gemv_stream_applies and w4_gemv_launch.cuh disagree): M=", p.M, " group=", p.group);
  dim3 grid((p.N + kGemvRows - 1) / kGemvRows, p.splits);
  if (p.regs) {  // v7 (regs == 1) or v7b (2): no shared memory
    if (p.regs == 2) a16w4_gemv_regs_kernel<T, kTiles, kChunks, kZeros, kMx, true><<<grid, kGemvThreads, 0, stream>>>(p);
    else a16w4_gemv_regs_kernel<T, kTiles, kChunks, kZeros, kMx><<<grid, kGemvThreads, 0, stream>>>(p);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
    return;
  }
  constexpr auto kernel = a16w4_gemv_kernel<T, kTiles, kChunks, kZeros, kMx>;
  const int smem = int(gemv_smem_layout(p.M, p.k_slice, sizeof(T), p.group, kZeros, kMx ? 1 : sizeof(T)).bytes);
  allow_dynamic_smem<kernel>(smem);
  kernel<<<grid, kGemvThreads, smem, stream>>>(p);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

template <typename T, int kTiles, bool kZeros>
void gemv_group(const GemvParams& p, const CUtensorMap& x_map, cudaStream_t stream) {
  switch (p.group) {
    case 32: return gemv<T, kTiles, gemv_group_chunks(32), kZeros>(p, x_map, stream);
    case 64: return gemv<T, kTiles, gemv_group_chunks(64), kZeros>(p, x_map, stream);
    case 128: return gemv<T, kTiles, gemv_group_chunks(128), kZeros>(p, x_map, stream);
    default: return gemv<T, kTiles, 0, kZeros>(p, x_map, stream);  // one group per row (group == K)
  }
}

template <typename T, int kTiles>
void gemv_tiles_typed(const GemvParams& p, const CUtensorMap& x_map, bool mx, cudaStream_t stream) {
  if (mx) return gemv<T, kTiles, 1, false, true>(p, x_map, stream);  // mxfp4: groups of 32, E8M0 scales, no zero point
  return p.zeros ? gemv_group<T, kTiles, true>(p, x_map, stream) : gemv_group<T, kTiles, false>(p, x_map, stream);
}

// Instantiated by the shards, by x's dtype and 8-token MMA tiles: w4_gemv_shard_bf16_t1.cu (1..8
// tokens), w4_gemv_shard_bf16_t24.cu (9..32), and the same for fp16.
extern template void gemv_tiles_typed<__nv_bfloat16, 1>(const GemvParams&, const CUtensorMap&, bool, cudaStream_t);
extern template void gemv_tiles_typed<__nv_bfloat16, 2>(const GemvParams&, const CUtensorMap&, bool, cudaStream_t);
extern template void gemv_tiles_typed<__nv_bfloat16, 4>(const GemvParams&, const CUtensorMap&, bool, cudaStream_t);
extern template void gemv_tiles_typed<__half, 1>(const GemvParams&, const CUtensorMap&, bool, cudaStream_t);
extern template void gemv_tiles_typed<__half, 2>(const GemvParams&, const CUtensorMap&, bool, cudaStream_t);
extern template void gemv_tiles_typed<__half, 4>(const GemvParams&, const CUtensorMap&, bool, cudaStream_t);

}  // namespace lowbit::w4
