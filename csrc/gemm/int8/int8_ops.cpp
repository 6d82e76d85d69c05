// w8a8_int8 on the Hopper mainloop: int8 activations (per token / per tensor scales) times
// int8 weights (per channel / per tensor), s32 accumulation, exact: y equals the CPU
// reference (csrc/cpu/linear.cpp int8_mm) up to the final float rounding. The fused linear
// quantizes x per token (quantize_int8_per_token's CUDA kernel) and runs the GEMM.
// a16w8 (weights-only int8) is in a16w8_ops.cpp.
#include <ATen/core/dispatch/Dispatcher.h>
#include <torch/library.h>

#include "gemm/int8/int8_launch.h"
#include "lowbit/contracts.h"
#include "lowbit/gemm/sm90_host.h"
#include "lowbit/ops.h"

namespace lowbit::int8 {
namespace {

using gemm::ScaleMode;

Tensor int8_gemm(const Tensor& a, const Tensor& a_scale, const Tensor& b, const Tensor& b_scale, const OptTensor& bias,
                 at::ScalarType out_dtype, bool after_quantizer = false) {
  // No K split through fp32 partials in global memory: they would round integer sums above 2^24
  // (the swap-AB split inside a cluster exchanges exact s32 partials). One s32 accumulator
  // chained over K: exact, nothing to promote.
  return gemm::sm90_gemm(ScaleMode::kRowCol, a, a_scale, b, b_scale, bias, out_dtype, &launch, /*allow_split=*/false,
                         /*promote=*/false, after_quantizer);
}

Tensor w8a8_int8_mm(const Tensor& a, const Tensor& a_scale, const Tensor& b, const Tensor& b_scale,
                    const OptTensor& bias, at::ScalarType out_dtype) {
  contract::scaled_mm_8bit("w8a8_int8_mm", a, a_scale, b, b_scale, bias, out_dtype, at::kChar);
  return int8_gemm(a, a_scale, b, b_scale, bias, out_dtype);
}

Tensor w8a8_int8_linear(const Tensor& x, const Tensor& w, const Tensor& w_scale, const OptTensor& bias) {
  contract::linear_8bit("w8a8_int8_linear", x, w, w_scale, bias, at::kChar);
  static auto per_token = c10::Dispatcher::singleton()
                              .findSchemaOrThrow("lowbit::quantize_int8_per_token", "")
                              .typed<QuantPair(const Tensor&)>();
  auto [xq, xs] = per_token.call(x);
  return int8_gemm(xq, xs, w, w_scale, bias, x.scalar_type(), /*after_quantizer=*/true);
}

}  // namespace
}  // namespace lowbit::int8

TORCH_LIBRARY_IMPL(lowbit, CUDA, m) {
  using namespace lowbit::int8;
  m.impl("w8a8_int8_mm", &w8a8_int8_mm);
  m.impl("w8a8_int8_linear", &w8a8_int8_linear);
}
