// Launches of the activation quantizer kernels (quantize_kernels.cuh).
#include <c10/cuda/CUDAException.h>

#include <c10/util/Exception.h>

#include <algorithm>

#include "lowbit/env.h"

#include "quant/quantize_kernels.cuh"
#include "quant/quantize_launch.h"

namespace lowbit::quant {
namespace {

constexpr int kThreads = 256;

int blocks_for(int64_t threads_total) { return int((threads_total + kThreads - 1) / kThreads); }

// Calls f(In* tag) with the CUDA element type of the input.
template <typename F>
void with_input_type(InType in, const void* x, F&& f) {
  switch (in) {
    case InType::kBF16: return f(static_cast<const __nv_bfloat16*>(x));
    case InType::kF16: return f(static_cast<const __half*>(x));
    case InType::kF32: return f(static_cast<const float*>(x));
  }
}

template <class R, class C>
struct RuleCodec {  // a (scale rule, element codec) pair as a value, for the typed launches
  using Rule = R;
  using Codec = C;
};

// Per token (quantize_kernels.cuh quantize_rows_kernel): CTAs per row and the row cache's bytes
// (0: not cached). Where the rows are fewer than the SMs, a row goes to a cluster of up to 8
// CTAs, doubling while each keeps at least half a vector per thread (decode's one row of 14336 on
// one SM took 18 us with the fused SiLU, s15-call2). The cache holds the CTA's share of the row
// (16 bytes per 8 elements, 32 for fp32) up to kMaxRowCache; longer rows are loaded per pass.
// LOWBIT_ROW_QUANT_CTAS=1|2|4|8 and LOWBIT_ROW_QUANT_CACHE=0 force them (A/B runs, tests).
constexpr int kMaxRowCache = 96 * 1024;
struct RowPlan {
  int ctas, cache_bytes;
};
RowPlan plan_rows(int64_t M, int64_t K, int vec_bytes, int sms) {
  static const int forced_ctas = env::integer("LOWBIT_ROW_QUANT_CTAS", 0);
  static const bool no_cache = env::is("LOWBIT_ROW_QUANT_CACHE", "0");
  TORCH_CHECK(forced_ctas == 0 || forced_ctas == 1 || forced_ctas == 2 || forced_ctas == 4 || forced_ctas == 8,
              "lowbit: LOWBIT_ROW_QUANT_CTAS must be 1, 2, 4 or 8, got ", forced_ctas);
  const int64_t n_vec = K / 8;
  int ctas = forced_ctas;
  if (ctas == 0) {
    ctas = 1;
    while (ctas < kMaxRowCtas && M * ctas < sms && n_vec / (2 * ctas) >= kThreads / 2) ctas *= 2;
  }
  const int64_t per_thread = (n_vec + int64_t(ctas) * kThreads - 1) / (int64_t(ctas) * kThreads);
  const int64_t bytes = per_thread * kThreads * vec_bytes;
  return {ctas, no_cache || bytes > kMaxRowCache ? 0 : int(bytes)};
}

// Per token: the row source `src` (quantize_kernels.cuh) with the scale rule and codec of `kind`,
// as plan_rows says.
template <class Rows>
void rows(RowKind kind, const Rows& src, uint8_t* q, float* scale, int64_t M, int64_t K, int sms,
          cudaStream_t stream) {
  using In = typename Rows::In;
  const RowPlan plan = plan_rows(M, K, int(sizeof(RowVec<In>)), sms);
  auto go = [&](auto rule_codec) {
    using RC = decltype(rule_codec);
    auto kernel = quantize_rows_kernel<Rows, typename RC::Rule, typename RC::Codec, kThreads>;
    static const bool configured = [&] {
      C10_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, kMaxRowCache));
      return true;
    }();
    (void)configured;
    cudaLaunchConfig_t cfg{};
    cudaLaunchAttribute cluster[1];
    cluster[0].id = cudaLaunchAttributeClusterDimension;
    cluster[0].val.clusterDim = {unsigned(plan.ctas), 1, 1};
    cfg.gridDim = dim3(unsigned(M * plan.ctas));
    cfg.blockDim = dim3(kThreads);
    cfg.dynamicSmemBytes = plan.cache_bytes;
    cfg.stream = stream;
    cfg.attrs = cluster;
    cfg.numAttrs = plan.ctas > 1 ? 1 : 0;
    C10_CUDA_CHECK(cudaLaunchKernelEx(&cfg, kernel, src, q, scale, K, plan.ctas, plan.cache_bytes > 0));
  };
  if (kind == RowKind::kInt8) go(RuleCodec<AbsmaxRule<127>, Int8Codec>{});
  else go(RuleCodec<AbsmaxRule<448>, E4m3Codec>{});
}

// Calls f(In* tag) with the CUDA type of a 16-bit input (the fused sources take no fp32).
template <typename F>
void with_16bit_type(InType in, F&& f) {
  if (in == InType::kBF16) f(static_cast<__nv_bfloat16*>(nullptr));
  else f(static_cast<__half*>(nullptr));
}

template <int kBlock, class Rule, class Codec>
void blocks(InType in, const void* x, uint8_t* q, void* scale, int64_t n_vec, cudaStream_t stream) {
  with_input_type(in, x, [&](auto* xp) {
    using In = std::remove_const_t<std::remove_pointer_t<decltype(xp)>>;
    quantize_small_blocks_kernel<In, kBlock, Rule, Codec><<<blocks_for(n_vec), kThreads, 0, stream>>>(
        xp, q, static_cast<typename Rule::Stored*>(scale), n_vec);
  });
}

}  // namespace

void launch_rows(RowKind kind, InType in, const void* x, uint8_t* q, float* scale, int64_t M, int64_t K, int sms,
                 cudaStream_t stream) {
  with_input_type(in, x, [&](auto* xp) {
    using In = std::remove_const_t<std::remove_pointer_t<decltype(xp)>>;
    rows(kind, PlainRows<In>{xp, K}, q, scale, M, K, sms, stream);
  });
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

void launch_silu_mul_rows(RowKind kind, InType in, const void* gate, const void* up, int64_t ld_gate, int64_t ld_up,
                          uint8_t* q, float* scale, int64_t M, int64_t K, int sms, cudaStream_t stream) {
  with_16bit_type(in, [&](auto* tag) {
    using In = std::remove_pointer_t<decltype(tag)>;
    rows(kind, SiluMulRows<In>{static_cast<const In*>(gate), static_cast<const In*>(up), ld_gate, ld_up}, q, scale, M,
         K, sms, stream);
  });
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

void launch_rms_norm_rows(RowKind kind, InType in, const void* x, const void* w, float eps, uint8_t* q, float* scale,
                          int64_t M, int64_t K, int sms, cudaStream_t stream) {
  with_16bit_type(in, [&](auto* tag) {
    using In = std::remove_pointer_t<decltype(tag)>;
    rows(kind, RmsNormRows<In>{{static_cast<const In*>(x), K}, static_cast<const In*>(w), eps}, q, scale, M, K, sms,
         stream);
  });
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

void launch_add_rms_norm_rows(RowKind kind, InType in, const void* x, const void* residual, void* sum, const void* w,
                              float eps, uint8_t* q, float* scale, int64_t M, int64_t K, int sms, cudaStream_t stream) {
  with_16bit_type(in, [&](auto* tag) {
    using In = std::remove_pointer_t<decltype(tag)>;
    const AddRmsNormRows<In> src{{{static_cast<const In*>(x), K}, static_cast<const In*>(w), eps},
                                 static_cast<const In*>(residual), static_cast<In*>(sum)};
    rows(kind, src, q, scale, M, K, sms, stream);
  });
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

void launch_blocks(BlockKind kind, InType in, const void* x, uint8_t* q, void* scale, int64_t n_vec,
                   cudaStream_t stream) {
  switch (kind) {
    case BlockKind::kFp8x128: blocks<128, AbsmaxRule<448>, E4m3Codec>(in, x, q, scale, n_vec, stream); break;
    case BlockKind::kMxfp8: blocks<32, MxRule<kE4M3Emax>, E4m3Codec>(in, x, q, scale, n_vec, stream); break;
    case BlockKind::kMxfp4: blocks<32, MxRule<kE2M1Emax>, E2m1Codec>(in, x, q, scale, n_vec, stream); break;
  }
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

void launch_mxfp8_round(InType in, const void* x, void* out, bool fp32_out, int64_t n_vec, cudaStream_t stream) {
  with_input_type(in, x, [&](auto* xp) {
    using In = std::remove_const_t<std::remove_pointer_t<decltype(xp)>>;
    auto* o = static_cast<uint8_t*>(out);
    if (fp32_out)
      quantize_small_blocks_kernel<In, 32, MxRule<kE4M3Emax>, E4m3RoundCodec<float>>
          <<<blocks_for(n_vec), kThreads, 0, stream>>>(xp, o, nullptr, n_vec);
    else
      quantize_small_blocks_kernel<In, 32, MxRule<kE4M3Emax>, E4m3RoundCodec<__nv_bfloat16>>
          <<<blocks_for(n_vec), kThreads, 0, stream>>>(xp, o, nullptr, n_vec);
  });
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

void launch_per_tensor(InType in, const void* x, uint8_t* q, uint32_t* amax, const float* static_scale,
                       float* scale_out, int64_t n_vec, int sms, cudaStream_t stream) {
  const int grid = std::max(1, std::min(blocks_for(n_vec), sms * 4));
  with_input_type(in, x, [&](auto* xp) {
    using In = std::remove_const_t<std::remove_pointer_t<decltype(xp)>>;
    if (!static_scale && n_vec > 0) amax_kernel<In><<<grid, kThreads, 0, stream>>>(xp, amax, n_vec);
    quantize_tensor_kernel<In><<<grid, kThreads, 0, stream>>>(xp, q, amax, static_scale, scale_out, n_vec);
  });
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

}  // namespace lowbit::quant
