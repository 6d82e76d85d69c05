// fp8 GEMMs on the Hopper mainloop: w8a8_fp8 (per-token / per-tensor activation scales,
// per-channel / per-tensor weight scales) and fp8_block (DeepSeek-V3 1x128 x 128x128),
// plus their fused linears (activation quantization + GEMM). Semantics: csrc/cpu/linear.cpp.
#include <ATen/cuda/CUDAContext.h>
#include <ATen/ops/empty.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include <cstdlib>
#include <type_traits>

#include "lowbit/contracts.h"
#include "lowbit/gemm/sm90_gemm.cuh"
#include "lowbit/ops.h"
#include "lowbit/tma_desc.h"

namespace lowbit::cuda {
namespace {

using gemm::ScaleMode;

// The shape-dependent choices, made on the host (output shapes never depend on them).
struct Plan {
  bool swap_ab;   // small M: weights on wgmma's M side, tokens on its N side
  int bn;         // Q rows per tile
  int cluster;    // CTAs multicasting one Q tile (1 or 2)
  int splits;     // K splits
  int kb_per_split;
};

// Split-K factor: the fewest K-block steps per CTA over the whole grid (waves x K blocks per
// unit), with a small charge per extra split for the partial tiles it writes and reads.
int choose_splits(int units, int num_kb, int sms) {
  int best = 1;
  double best_cost = 1e30;
  for (int s = 1; s <= 8 && s <= num_kb; ++s) {
    const int kb = (num_kb + s - 1) / s;
    const double waves = double((int64_t(units) * s + sms - 1) / sms);
    const double cost = waves * kb * (1.0 + 0.02 * (s - 1));
    if (cost < best_cost - 1e-9) best_cost = cost, best = s;
  }
  return best;
}

Plan make_plan(int64_t M, int64_t N, int64_t K, int sms, bool block_mode) {
  Plan p;
  p.swap_ab = M <= 64;
  p.bn = p.swap_ab ? (M <= 8 ? 8 : M <= 16 ? 16 : M <= 32 ? 32 : 64) : (block_mode ? 128 : 256);
  const int64_t rows_p = p.swap_ab ? N : M, rows_q = p.swap_ab ? M : N;
  const int64_t tiles_p = (rows_p + gemm::kBlockP - 1) / gemm::kBlockP;
  p.cluster = (!p.swap_ab && tiles_p >= 2) ? 2 : 1;
  const int units = int((tiles_p + p.cluster - 1) / p.cluster * ((rows_q + p.bn - 1) / p.bn));
  const int num_kb = int((K + gemm::kBlockK - 1) / gemm::kBlockK);
  p.splits = choose_splits(units, num_kb, sms / p.cluster);
  p.kb_per_split = (num_kb + p.splits - 1) / p.splits;
  p.splits = (num_kb + p.kb_per_split - 1) / p.kb_per_split;  // no empty split
  return p;
}

// Diagnostic knob for the accuracy study (issue 3): LOWBIT_FP8_NO_PROMOTE=1 accumulates
// w8a8_fp8 in the tensor cores' own accumulator across all of K (no fp32 promotion).
bool promote_w8a8() {
  static const bool on = [] {
    const char* v = std::getenv("LOWBIT_FP8_NO_PROMOTE");
    return !(v && v[0] == '1');
  }();
  return on;
}

template <int kBN>
constexpr int stages_for() {
  return kBN >= 256 ? 4 : kBN >= 128 ? 6 : 8;  // as many as fit 227 KB
}

template <ScaleMode kMode, int kBN, int kHalves, int kCluster, bool kPromote, int kPDiv, int kQDiv, typename OutT>
void launch_kernel(const CUtensorMap& tp, const CUtensorMap& tq, const gemm::GemmParams& params, int units,
                   cudaStream_t stream) {
  constexpr int kStages = stages_for<kBN>();
  auto kernel =
      gemm::sm90_gemm_kernel<gemm::E4M3Operands, kMode, kBN, kHalves, kCluster, kStages, kPromote, kPDiv, kQDiv, OutT>;
  constexpr int smem = gemm::SmemLayout<kBN, kStages>::kBytes;
  cudaLaunchConfig_t cfg{};
  cudaLaunchAttribute attr[1];
  attr[0].id = cudaLaunchAttributeClusterDimension;
  attr[0].val.clusterDim.x = kCluster;
  attr[0].val.clusterDim.y = 1;
  attr[0].val.clusterDim.z = 1;
  cfg.blockDim = dim3(gemm::kThreads);
  cfg.dynamicSmemBytes = smem;
  cfg.stream = stream;
  cfg.attrs = attr;
  cfg.numAttrs = 1;
  // Persistent grid: as many clusters as can be resident at once (cluster placement can
  // leave a few SMs idle), never more than there are units.
  static int max_clusters = [&] {
    C10_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
    int n = 0;
    cfg.gridDim = dim3(kCluster * 132);
    C10_CUDA_CHECK(cudaOccupancyMaxActiveClusters(&n, kernel, &cfg));
    return std::max(n, 1);
  }();
  cfg.gridDim = dim3(kCluster * std::min(units, max_clusters));
  C10_CUDA_CHECK(cudaLaunchKernelEx(&cfg, kernel, tp, tq, params));
}

template <ScaleMode kMode, bool kPromote, typename OutT>
void dispatch_tile(const Plan& plan, const CUtensorMap& tp, const CUtensorMap& tq, const gemm::GemmParams& params,
                   int units, cudaStream_t stream) {
  // Block-scale grouping: activations carry one scale per row, weights one per 128 rows.
  constexpr int kAct = 1, kWgt = kMode == ScaleMode::kBlock ? 128 : 1;
  constexpr int kHalves = kPromote ? 2 : 1;  // see sm90_gemm.cuh: 256 columns in two promoted halves
  if (!plan.swap_ab) {
    // Block mode keeps 128-column tiles: with its per-block scales the 256-column variant
    // spills (ptxas, 200 bytes) where the row/col variant does not.
    constexpr int kBN = kMode == ScaleMode::kBlock ? 128 : 256;
    constexpr int kH = kBN == 256 ? kHalves : 1;
    if (plan.cluster == 2) return launch_kernel<kMode, kBN, kH, 2, kPromote, kAct, kWgt, OutT>(tp, tq, params, units, stream);
    return launch_kernel<kMode, kBN, kH, 1, kPromote, kAct, kWgt, OutT>(tp, tq, params, units, stream);
  }
  switch (plan.bn) {
    case 8: return launch_kernel<kMode, 8, 1, 1, kPromote, kWgt, kAct, OutT>(tp, tq, params, units, stream);
    case 16: return launch_kernel<kMode, 16, 1, 1, kPromote, kWgt, kAct, OutT>(tp, tq, params, units, stream);
    case 32: return launch_kernel<kMode, 32, 1, 1, kPromote, kWgt, kAct, OutT>(tp, tq, params, units, stream);
    default: return launch_kernel<kMode, 64, 1, 1, kPromote, kWgt, kAct, OutT>(tp, tq, params, units, stream);
  }
}

// y (M, N) = a (M, K) x b (N, K)^T with the given scales, both operands e4m3.
Tensor fp8_gemm(ScaleMode mode, const Tensor& a, const Tensor& a_scale, const Tensor& b, const Tensor& b_scale,
                const OptTensor& bias, at::ScalarType out_dtype) {
  c10::cuda::CUDAGuard guard(a.device());
  const int64_t M = a.size(0), K = a.size(1), N = b.size(0);
  Tensor out = at::empty({M, N}, a.options().dtype(out_dtype));
  if (M == 0) return out;
  auto stream = at::cuda::getCurrentCUDAStream();
  const int sms = at::cuda::getCurrentDeviceProperties()->multiProcessorCount;
  const Plan plan = make_plan(M, N, K, sms, mode == ScaleMode::kBlock);

  const Tensor& P = plan.swap_ab ? b : a;
  const Tensor& Q = plan.swap_ab ? a : b;
  const Tensor& p_scale = plan.swap_ab ? b_scale : a_scale;
  const Tensor& q_scale = plan.swap_ab ? a_scale : b_scale;
  const CUtensorMap tp = tma::make_2d_u8_sw128(P.data_ptr(), P.size(0), K, K, gemm::kBlockP, gemm::kBlockK);
  const CUtensorMap tq = tma::make_2d_u8_sw128(Q.data_ptr(), Q.size(0), K, K, plan.bn / plan.cluster, gemm::kBlockK);

  gemm::GemmParams params{};
  params.rows_p = int(P.size(0));
  params.rows_q = int(Q.size(0));
  params.num_kb = int((K + gemm::kBlockK - 1) / gemm::kBlockK);
  params.kb_per_split = plan.kb_per_split;
  const int tiles_p = (params.rows_p + gemm::kBlockP - 1) / gemm::kBlockP;
  params.sched = {(tiles_p + plan.cluster - 1) / plan.cluster, int((params.rows_q + plan.bn - 1) / plan.bn), plan.splits};
  auto& e = params.epi;
  e.out = out.data_ptr();
  e.out_si = plan.swap_ab ? 1 : N;
  e.out_sj = plan.swap_ab ? N : 1;
  e.bias = bias ? bias->data_ptr() : nullptr;
  e.bias_on_p = plan.swap_ab;
  if (mode == ScaleMode::kRowCol) {
    e.p_scale = p_scale.data_ptr<float>();
    e.p_scale_stride = p_scale.numel() == 1 ? 0 : 1;
    e.q_scale = q_scale.data_ptr<float>();
    e.q_scale_stride = q_scale.numel() == 1 ? 0 : 1;
  } else {
    params.block = {p_scale.data_ptr<float>(), p_scale.size(1), q_scale.data_ptr<float>(), q_scale.size(1)};
  }
  Tensor workspace;
  if (plan.splits > 1) {
    workspace = at::empty({plan.splits, params.rows_p, params.rows_q}, a.options().dtype(at::kFloat));
    params.workspace = workspace.data_ptr<float>();
  }
  const int units = params.sched.tiles_p * params.sched.tiles_q * plan.splits;  // cluster units

  auto run = [&](auto out_tag) {
    using OutT = decltype(out_tag);
    if (mode == ScaleMode::kBlock) {
      dispatch_tile<ScaleMode::kBlock, true, OutT>(plan, tp, tq, params, units, stream);
    } else {
      if constexpr (std::is_same_v<OutT, __nv_bfloat16>) {  // the no-promotion diagnostic: bf16 only
        if (!promote_w8a8()) {
          dispatch_tile<ScaleMode::kRowCol, false, OutT>(plan, tp, tq, params, units, stream);
        } else {
          dispatch_tile<ScaleMode::kRowCol, true, OutT>(plan, tp, tq, params, units, stream);
        }
      } else {
        dispatch_tile<ScaleMode::kRowCol, true, OutT>(plan, tp, tq, params, units, stream);
      }
    }
    if (plan.splits > 1) {
      const int64_t n = int64_t(params.rows_p) * params.rows_q;
      const int blocks = int(std::min<int64_t>((n + 255) / 256, int64_t(sms) * 8));
      if (mode == ScaleMode::kBlock)
        gemm::splitk_reduce_kernel<ScaleMode::kBlock, OutT>
            <<<blocks, 256, 0, stream>>>(params.workspace, plan.splits, params.rows_p, params.rows_q, e);
      else
        gemm::splitk_reduce_kernel<ScaleMode::kRowCol, OutT>
            <<<blocks, 256, 0, stream>>>(params.workspace, plan.splits, params.rows_p, params.rows_q, e);
      C10_CUDA_KERNEL_LAUNCH_CHECK();
    }
  };
  if (out_dtype == at::kBFloat16) run(__nv_bfloat16{});
  else run(__half{});
  return out;
}

// ---------------------------------------------------------------- ops
Tensor w8a8_fp8_mm(const Tensor& a, const Tensor& a_scale, const Tensor& b, const Tensor& b_scale,
                   const OptTensor& bias, at::ScalarType out_dtype) {
  contract::scaled_mm_8bit("w8a8_fp8_mm", a, a_scale, b, b_scale, bias, out_dtype, at::kFloat8_e4m3fn);
  return fp8_gemm(ScaleMode::kRowCol, a, a_scale, b, b_scale, bias, out_dtype);
}

Tensor fp8_block_mm(const Tensor& a, const Tensor& a_scale, const Tensor& b, const Tensor& b_scale,
                    const OptTensor& bias, at::ScalarType out_dtype) {
  contract::fp8_block_mm("fp8_block_mm", a, a_scale, b, b_scale, bias, out_dtype);
  return fp8_gemm(ScaleMode::kBlock, a, a_scale, b, b_scale, bias, out_dtype);
}

// The fused linears call the quantizer op through the dispatcher (its CUDA kernel), then
// the GEMM: two launches on the current stream.
Tensor w8a8_fp8_linear(const Tensor& x, const Tensor& w, const Tensor& w_scale, const OptTensor& bias,
                       bool act_per_token) {
  contract::linear_8bit("w8a8_fp8_linear", x, w, w_scale, bias, at::kFloat8_e4m3fn);
  static auto per_token = c10::Dispatcher::singleton().findSchemaOrThrow("lowbit::quantize_fp8_per_token", "")
                              .typed<QuantPair(const Tensor&)>();
  static auto per_tensor = c10::Dispatcher::singleton().findSchemaOrThrow("lowbit::quantize_fp8_per_tensor", "")
                               .typed<QuantPair(const Tensor&, const OptTensor&)>();
  auto [xq, xs] = act_per_token ? per_token.call(x) : per_tensor.call(x, std::nullopt);
  return fp8_gemm(ScaleMode::kRowCol, xq, xs, w, w_scale, bias, x.scalar_type());
}

Tensor fp8_block_linear(const Tensor& x, const Tensor& w, const Tensor& w_scale, const OptTensor& bias) {
  contract::linear_fp8_block("fp8_block_linear", x, w, w_scale, bias);
  static auto quant = c10::Dispatcher::singleton().findSchemaOrThrow("lowbit::quantize_fp8_1x128", "")
                          .typed<QuantPair(const Tensor&)>();
  auto [xq, xs] = quant.call(x);
  return fp8_gemm(ScaleMode::kBlock, xq, xs, w, w_scale, bias, x.scalar_type());
}

}  // namespace
}  // namespace lowbit::cuda

TORCH_LIBRARY_IMPL(lowbit, CUDA, m) {
  using namespace lowbit::cuda;
  m.impl("w8a8_fp8_mm", &w8a8_fp8_mm);
  m.impl("fp8_block_mm", &fp8_block_mm);
  m.impl("w8a8_fp8_linear", &w8a8_fp8_linear);
  m.impl("fp8_block_linear", &fp8_block_linear);
}
