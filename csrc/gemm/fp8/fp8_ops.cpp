// fp8 GEMM ops on the Hopper mainloop: w8a8_fp8 (per-token / per-tensor activation scales,
// per-channel / per-tensor weight scales) and fp8_block (DeepSeek-V3 1x128 x 128x128), and
// their fused linears (activation quantization + GEMM). Semantics: csrc/cpu/linear.cpp.
// This file: argument contracts, the shape -> tile plan, tensor maps, allocation.
#include <ATen/core/dispatch/Dispatcher.h>
#include <ATen/cuda/CUDAContext.h>
#include <ATen/ops/empty.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>

#include "gemm/fp8/fp8_launch.h"
#include "lowbit/env.h"
#include "lowbit/gemm/sm90_host.h"
#include "lowbit/contracts.h"
#include "lowbit/ops.h"
#include "lowbit/tma_desc.h"

namespace lowbit::fp8 {
namespace {

using gemm::ScaleMode;

Tensor fp8_gemm(ScaleMode mode, const Tensor& a, const Tensor& a_scale, const Tensor& b, const Tensor& b_scale,
                const OptTensor& bias, at::ScalarType out_dtype, bool after_quantizer = false) {
  // LOWBIT_FP8_NO_PROMOTE=1: one chained accumulator, an accuracy and speed diagnostic
  // (bench/fp8_accuracy.py), never a default: the tensor core's fp8 sums keep ~14 bits.
  static const bool promote = !env::flag("LOWBIT_FP8_NO_PROMOTE");
  return gemm::sm90_gemm(mode, a, a_scale, b, b_scale, bias, out_dtype, &launch, /*allow_split=*/true, promote,
                         after_quantizer);
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
// the GEMM: two launches (three with the global split-K) on the current stream, the GEMM as a
// programmatic dependent of the quantizer (sm90_launch.cuh).
Tensor w8a8_fp8_linear(const Tensor& x, const Tensor& w, const Tensor& w_scale, const OptTensor& bias,
                       bool act_per_token) {
  contract::linear_8bit("w8a8_fp8_linear", x, w, w_scale, bias, at::kFloat8_e4m3fn);
  static auto per_token = c10::Dispatcher::singleton()
                              .findSchemaOrThrow("lowbit::quantize_fp8_per_token", "")
                              .typed<QuantPair(const Tensor&)>();
  static auto per_tensor = c10::Dispatcher::singleton()
                               .findSchemaOrThrow("lowbit::quantize_fp8_per_tensor", "")
                               .typed<QuantPair(const Tensor&, const OptTensor&)>();
  auto [xq, xs] = act_per_token ? per_token.call(x) : per_tensor.call(x, std::nullopt);
  return fp8_gemm(ScaleMode::kRowCol, xq, xs, w, w_scale, bias, x.scalar_type(), /*after_quantizer=*/true);
}

Tensor fp8_block_linear(const Tensor& x, const Tensor& w, const Tensor& w_scale, const OptTensor& bias) {
  contract::linear_fp8_block("fp8_block_linear", x, w, w_scale, bias);
  static auto quant = c10::Dispatcher::singleton()
                          .findSchemaOrThrow("lowbit::quantize_fp8_1x128", "")
                          .typed<QuantPair(const Tensor&)>();
  auto [xq, xs] = quant.call(x);
  return fp8_gemm(ScaleMode::kBlock, xq, xs, w, w_scale, bias, x.scalar_type(), /*after_quantizer=*/true);
}

}  // namespace
}  // namespace lowbit::fp8

TORCH_LIBRARY_IMPL(lowbit, CUDA, m) {
  using namespace lowbit::fp8;
  m.impl("w8a8_fp8_mm", &w8a8_fp8_mm);
  m.impl("fp8_block_mm", &fp8_block_mm);
  m.impl("w8a8_fp8_linear", &w8a8_fp8_linear);
  m.impl("fp8_block_linear", &fp8_block_linear);
}
