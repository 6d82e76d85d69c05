#pragma once
// Declarations of every op's implementations, by backend. The schemas (and the
// conventions they share) are in csrc/torch_bindings.cpp.
#include <ATen/core/Tensor.h>

#include <optional>
#include <tuple>

namespace lowbit {
using at::Tensor;
using OptTensor = std::optional<at::Tensor>;
using QuantPair = std::tuple<at::Tensor, at::Tensor>;
using QuantSum = std::tuple<at::Tensor, at::Tensor, at::Tensor>;  // codes, scales, the summed input

namespace cpu {
QuantPair quantize_int8_per_token(const Tensor& x);
QuantPair quantize_fp8_per_token(const Tensor& x);
QuantPair quantize_fp8_per_tensor(const Tensor& x, const OptTensor& scale);
QuantPair quantize_fp8_1x128(const Tensor& x);
QuantPair quantize_mxfp8(const Tensor& x);
QuantPair quantize_mxfp4(const Tensor& x);
QuantPair silu_mul_quantize_int8_per_token(const Tensor& gate, const Tensor& up);
QuantPair silu_mul_quantize_fp8_per_token(const Tensor& gate, const Tensor& up);
QuantPair rms_norm_quantize_int8_per_token(const Tensor& x, const Tensor& weight, double eps);
QuantPair rms_norm_quantize_fp8_per_token(const Tensor& x, const Tensor& weight, double eps);
QuantSum add_rms_norm_quantize_int8_per_token(const Tensor& x, const Tensor& residual, const Tensor& weight, double eps);
QuantSum add_rms_norm_quantize_fp8_per_token(const Tensor& x, const Tensor& residual, const Tensor& weight, double eps);

Tensor prepack_w4(const Tensor& w);
Tensor unpack_w4(const Tensor& w);

Tensor w8a8_int8_mm(const Tensor& a, const Tensor& a_scale, const Tensor& b, const Tensor& b_scale,
                    const OptTensor& bias, at::ScalarType out_dtype);
Tensor w8a8_fp8_mm(const Tensor& a, const Tensor& a_scale, const Tensor& b, const Tensor& b_scale,
                   const OptTensor& bias, at::ScalarType out_dtype);
Tensor fp8_block_mm(const Tensor& a, const Tensor& a_scale, const Tensor& b, const Tensor& b_scale,
                    const OptTensor& bias, at::ScalarType out_dtype);
Tensor mxfp8_mm(const Tensor& a, const Tensor& a_scale, const Tensor& b, const Tensor& b_scale,
                const OptTensor& bias, at::ScalarType out_dtype);
Tensor a8w4_mx_mm(const Tensor& a, const Tensor& a_scale, const Tensor& b, const Tensor& b_scale,
                  const OptTensor& bias, at::ScalarType out_dtype);

Tensor a16w4_linear(const Tensor& x, const Tensor& w, const Tensor& scales, const OptTensor& zeros,
                    int64_t group_size, const OptTensor& bias);
Tensor a16w8_linear(const Tensor& x, const Tensor& w, const Tensor& w_scale, const OptTensor& bias);
Tensor mxfp4_linear(const Tensor& x, const Tensor& w, const Tensor& w_scale, const OptTensor& bias);
Tensor w8a8_int8_linear(const Tensor& x, const Tensor& w, const Tensor& w_scale, const OptTensor& bias);
Tensor w8a8_fp8_linear(const Tensor& x, const Tensor& w, const Tensor& w_scale, const OptTensor& bias,
                       bool act_per_token);
Tensor fp8_block_linear(const Tensor& x, const Tensor& w, const Tensor& w_scale, const OptTensor& bias);
Tensor mxfp8_linear(const Tensor& x, const Tensor& w, const Tensor& w_scale, const OptTensor& bias);
Tensor a8w4_mx_linear(const Tensor& x, const Tensor& w, const Tensor& w_scale, const OptTensor& bias);
}  // namespace cpu

}  // namespace lowbit
