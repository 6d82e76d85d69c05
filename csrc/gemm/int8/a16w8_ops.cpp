// a16w8_linear on CUDA: 16-bit activations times int8 weights (per-channel fp32 scale).
// M <= 1024 with N and K multiples of 128: the mixed-input wgmma GEMM on the int8 rows
// (gemm/w4/mixed_wgmma.h: exact products, fp32 sums, the scale in the epilogue; from 1 token
// since session 8). Other shapes at M <= 32: the tensor-core GEMV on the plain int8 weights
// (a16w8_gemv.cuh): exact products, fp32 sums, the scale applied once, so either equals the CPU
// reference (csrc/cpu/linear.cpp) up to summation order. Otherwise the weight dequantized
// (q * s rounded once to x's dtype) and cuBLAS.
// LOWBIT_A16W8_PATH=dequant takes the dequantize path at every M (A/B benches).
#include <ATen/cuda/CUDAContext.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/linear.h>
#include <ATen/ops/zeros.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include <algorithm>

#include "gemm/int8/a16w8_launch.h"
#include "gemm/int8/rows8_gemv.h"
#include "gemm/w4/mixed_wgmma.h"
#include "lowbit/contracts.h"
#include "lowbit/env.h"
#include "lowbit/gemv_split.h"

namespace lowbit::int8 {
namespace {

// K splits: one wave over the kernel's resident CTA slots (lowbit/gemv_split.h); measured
// better than v1's rounding up at M = 1, 8, 16, 32 except 28672 x 8192 at M = 16 (one split:
// 224 CTAs for 396 slots, 1.13x vs 1.24x): bench/NOTES.md a16w8 v2. Slices of whole chunks.
A16w8Params plan(int64_t M, int64_t N, int64_t K, int sms) {
  A16w8Params p{};
  const int64_t row_ctas = (N + kA16w8Rows - 1) / kA16w8Rows;
  const KSplit s = one_wave_split((K + kA16w8Chunk - 1) / kA16w8Chunk, row_ctas,
                                  int64_t(a16w8_ctas_per_sm(gemv_token_tiles(M))) * sms);
  p.M = int(M), p.N = int(N), p.K = int(K);
  p.k_slice = int(s.slice_steps * kA16w8Chunk);
  p.splits = int(s.splits);
  return p;
}

}  // namespace

Tensor rows8_gemv(const Tensor& x, const Tensor& w, const Tensor& w_scale, const OptTensor& bias, bool mx) {
  const int64_t M = x.size(0), K = x.size(1), N = w.size(0);
  Tensor out = at::empty({M, N}, x.options());
  const int sms = at::cuda::getCurrentDeviceProperties()->multiProcessorCount;
  A16w8Params p = plan(M, N, K, sms);
  p.x = x.data_ptr();
  p.w = static_cast<const int8_t*>(w.data_ptr());
  p.w_scale = mx ? nullptr : w_scale.data_ptr<float>();
  p.w_mx_scale = mx ? w_scale.data_ptr<uint8_t>() : nullptr;
  p.bias = bias ? bias->data_ptr() : nullptr;
  p.out = out.data_ptr();
  SplitBuffers split = split_buffers(p.splits, M, N, (N + kA16w8Rows - 1) / kA16w8Rows, x.options());
  p.partial = split.partial_ptr();
  p.arrivals = split.arrivals_ptr();
  launch_a16w8_gemv(x.scalar_type() == at::kBFloat16, p, at::cuda::getCurrentCUDAStream());
  return out;
}

namespace {

Tensor a16w8_linear(const Tensor& x, const Tensor& w, const Tensor& w_scale, const OptTensor& bias) {
  const auto d = contract::a16w8("a16w8_linear", x, w, w_scale, bias);
  c10::cuda::CUDAGuard guard(x.device());
  if (d.M == 0) return at::empty({0, d.N}, x.options());
  static const bool force_dequant = env::is("LOWBIT_A16W8_PATH", "dequant");
  // (the wgmma first: it takes full tiles from 1 token, w4_ops.cpp wgmma_takes_gemv_tokens)
  if (!force_dequant && w4::rows8_wgmma_applies(d.M, d.N, d.K, /*mx=*/false))
    return w4::rows8_wgmma_matmul(x, w, w_scale, bias, /*mx=*/false);
  if (d.M <= kA16w8MaxTokens && !force_dequant) return rows8_gemv(x, w, w_scale, bias, /*mx=*/false);
  Tensor wd = at::empty({d.N, d.K}, x.options());
  launch_a16w8_dequant(x.scalar_type() == at::kBFloat16, w.data_ptr<int8_t>(), w_scale.data_ptr<float>(),
                       wd.data_ptr(), d.N, d.K, at::cuda::getCurrentCUDAStream());
  return at::linear(x, wd, bias);
}

}  // namespace
}  // namespace lowbit::int8

TORCH_LIBRARY_IMPL(lowbit, CUDA, m) { m.impl("a16w8_linear", &lowbit::int8::a16w8_linear); }
