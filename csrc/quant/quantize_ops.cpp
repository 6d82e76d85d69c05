// CUDA implementations of the activation quantizer ops (schemas in
// csrc/torch_bindings.cpp, semantics in csrc/cpu/quantize.cpp): contracts, allocation,
// and the launches in quantize_launch.cu.
#include <ATen/cuda/CUDAContext.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/zeros.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include "lowbit/contracts.h"
#include "lowbit/ops.h"
#include "quant/quantize_launch.h"

namespace lowbit::quant {
namespace {

constexpr int64_t kVec = 8;  // elements per thread in the kernels

InType in_type(const Tensor& x) {
  return x.scalar_type() == at::kBFloat16 ? InType::kBF16 : x.scalar_type() == at::kHalf ? InType::kF16 : InType::kF32;
}

// Per-token codes (M, K) and fp32 scales (M,) for an activation like `x` (M, K), filled by
// launch(q, scale, M, K, sms, stream) unless M == 0; the codes viewed as code_dtype.
template <class Launch>
QuantPair per_token(const Tensor& x, c10::ScalarType code_dtype, Launch launch) {
  c10::cuda::CUDAGuard guard(x.device());
  const int64_t M = x.size(0), K = x.size(1);
  Tensor q = at::empty({M, K}, x.options().dtype(at::kByte));
  Tensor s = at::empty({M}, x.options().dtype(at::kFloat));
  const int sms = at::cuda::getCurrentDeviceProperties()->multiProcessorCount;
  if (M > 0) launch(q.data_ptr<uint8_t>(), s.data_ptr<float>(), M, K, sms, at::cuda::getCurrentCUDAStream());
  return {q.view(code_dtype), s};
}

QuantPair rows(const char* op, RowKind kind, const Tensor& x, c10::ScalarType code_dtype) {
  contract::quantizer_input(op, x, contract::kK8bit, "8-bit rows of 16-byte chunks");
  return per_token(x, code_dtype, [&](uint8_t* q, float* s, int64_t M, int64_t K, int sms, cudaStream_t stream) {
    launch_rows(kind, in_type(x), x.data_ptr(), q, s, M, K, sms, stream);
  });
}

QuantPair blocks(const char* op, BlockKind kind, const Tensor& x, int64_t block, const char* why) {
  contract::quantizer_input(op, x, block, why);
  c10::cuda::CUDAGuard guard(x.device());
  const int64_t M = x.size(0), K = x.size(1);
  const bool four_bit = kind == BlockKind::kMxfp4;
  Tensor q = at::empty({M, four_bit ? K / 2 : K}, x.options().dtype(at::kByte));
  Tensor s = at::empty({M, K / block}, x.options().dtype(kind == BlockKind::kFp8x128 ? at::kFloat : at::kByte));
  const int64_t n_vec = M * K / kVec;
  if (n_vec > 0)
    launch_blocks(kind, in_type(x), x.data_ptr(), q.data_ptr<uint8_t>(), s.data_ptr(), n_vec,
                  at::cuda::getCurrentCUDAStream());
  return {four_bit ? q : q.view(at::kFloat8_e4m3fn), s};
}

QuantPair quantize_int8_per_token(const Tensor& x) {
  return rows("quantize_int8_per_token", RowKind::kInt8, x, at::kChar);
}

QuantPair quantize_fp8_per_token(const Tensor& x) {
  return rows("quantize_fp8_per_token", RowKind::kFp8, x, at::kFloat8_e4m3fn);
}

QuantPair silu_mul_rows(const char* op, RowKind kind, const Tensor& gate, const Tensor& up, c10::ScalarType code_dtype) {
  contract::silu_mul_input(op, gate, up);
  return per_token(gate, code_dtype, [&](uint8_t* q, float* s, int64_t M, int64_t K, int sms, cudaStream_t stream) {
    launch_silu_mul_rows(kind, in_type(gate), gate.data_ptr(), up.data_ptr(), gate.stride(0), up.stride(0), q, s, M, K,
                         sms, stream);
  });
}

QuantPair silu_mul_quantize_int8_per_token(const Tensor& gate, const Tensor& up) {
  return silu_mul_rows("silu_mul_quantize_int8_per_token", RowKind::kInt8, gate, up, at::kChar);
}

QuantPair silu_mul_quantize_fp8_per_token(const Tensor& gate, const Tensor& up) {
  return silu_mul_rows("silu_mul_quantize_fp8_per_token", RowKind::kFp8, gate, up, at::kFloat8_e4m3fn);
}

QuantPair rms_norm_rows(const char* op, RowKind kind, const Tensor& x, const Tensor& weight, double eps,
                        c10::ScalarType code_dtype) {
  contract::rms_norm_input(op, x, weight, eps);
  return per_token(x, code_dtype, [&](uint8_t* q, float* s, int64_t M, int64_t K, int sms, cudaStream_t stream) {
    launch_rms_norm_rows(kind, in_type(x), x.data_ptr(), weight.data_ptr(), float(eps), q, s, M, K, sms, stream);
  });
}

QuantPair rms_norm_quantize_int8_per_token(const Tensor& x, const Tensor& weight, double eps) {
  return rms_norm_rows("rms_norm_quantize_int8_per_token", RowKind::kInt8, x, weight, eps, at::kChar);
}

QuantPair rms_norm_quantize_fp8_per_token(const Tensor& x, const Tensor& weight, double eps) {
  return rms_norm_rows("rms_norm_quantize_fp8_per_token", RowKind::kFp8, x, weight, eps, at::kFloat8_e4m3fn);
}

QuantSum add_rms_norm_rows(const char* op, RowKind kind, const Tensor& x, const Tensor& residual, const Tensor& weight,
                           double eps, c10::ScalarType code_dtype) {
  contract::add_rms_norm_input(op, x, residual, weight, eps);
  Tensor sum = at::empty(x.sizes(), x.options());
  auto [q, s] = per_token(x, code_dtype, [&](uint8_t* q, float* s, int64_t M, int64_t K, int sms, cudaStream_t stream) {
    launch_add_rms_norm_rows(kind, in_type(x), x.data_ptr(), residual.data_ptr(), sum.data_ptr(), weight.data_ptr(),
                             float(eps), q, s, M, K, sms, stream);
  });
  return {q, s, sum};
}

QuantSum add_rms_norm_quantize_int8_per_token(const Tensor& x, const Tensor& residual, const Tensor& weight,
                                              double eps) {
  return add_rms_norm_rows("add_rms_norm_quantize_int8_per_token", RowKind::kInt8, x, residual, weight, eps, at::kChar);
}

QuantSum add_rms_norm_quantize_fp8_per_token(const Tensor& x, const Tensor& residual, const Tensor& weight,
                                             double eps) {
  return add_rms_norm_rows("add_rms_norm_quantize_fp8_per_token", RowKind::kFp8, x, residual, weight, eps,
                           at::kFloat8_e4m3fn);
}

QuantPair quantize_fp8_1x128(const Tensor& x) {
  return blocks("quantize_fp8_1x128", BlockKind::kFp8x128, x, contract::kKBlock, "one scale per 128 elements");
}

QuantPair quantize_mxfp8(const Tensor& x) {
  return blocks("quantize_mxfp8", BlockKind::kMxfp8, x, contract::kKMx, "one E8M0 scale per 32 elements");
}

QuantPair quantize_mxfp4(const Tensor& x) {
  return blocks("quantize_mxfp4", BlockKind::kMxfp4, x, contract::kKMx, "one E8M0 scale per 32 elements");
}

QuantPair quantize_fp8_per_tensor(const Tensor& x, const OptTensor& scale) {
  const char* op = "quantize_fp8_per_tensor";
  contract::quantizer_input(op, x, contract::kK8bit, "fp8 rows of 16-byte chunks");
  if (scale) {
    check::same_device(op, x, *scale, "scale");
    check::dtype_is(op, *scale, "scale", at::kFloat);
    LOWBIT_CHECK(scale->numel() == 1, op, ": scale must hold one element (per tensor), got shape ", scale->sizes());
  }
  c10::cuda::CUDAGuard guard(x.device());
  Tensor q = at::empty(x.sizes(), x.options().dtype(at::kByte));
  Tensor s = at::empty({1}, x.options().dtype(at::kFloat));
  // Dynamic: a scratch amax, zeroed on the stream (graph-capturable, no host sync).
  Tensor amax = at::zeros({1}, x.options().dtype(at::kInt));
  const int sms = at::cuda::getCurrentDeviceProperties()->multiProcessorCount;
  launch_per_tensor(in_type(x), x.data_ptr(), q.data_ptr<uint8_t>(), reinterpret_cast<uint32_t*>(amax.data_ptr<int32_t>()),
                    scale ? scale->data_ptr<float>() : nullptr, s.data_ptr<float>(), x.numel() / kVec, sms,
                    at::cuda::getCurrentCUDAStream());
  return {q.view(at::kFloat8_e4m3fn), s};
}

}  // namespace
}  // namespace lowbit::quant

TORCH_LIBRARY_IMPL(lowbit, CUDA, m) {
  using namespace lowbit::quant;
  m.impl("quantize_int8_per_token", &quantize_int8_per_token);
  m.impl("quantize_fp8_per_token", &quantize_fp8_per_token);
  m.impl("quantize_fp8_per_tensor", &quantize_fp8_per_tensor);
  m.impl("quantize_fp8_1x128", &quantize_fp8_1x128);
  m.impl("quantize_mxfp8", &quantize_mxfp8);
  m.impl("quantize_mxfp4", &quantize_mxfp4);
  m.impl("silu_mul_quantize_int8_per_token", &silu_mul_quantize_int8_per_token);
  m.impl("silu_mul_quantize_fp8_per_token", &silu_mul_quantize_fp8_per_token);
  m.impl("rms_norm_quantize_int8_per_token", &rms_norm_quantize_int8_per_token);
  m.impl("rms_norm_quantize_fp8_per_token", &rms_norm_quantize_fp8_per_token);
  m.impl("add_rms_norm_quantize_int8_per_token", &add_rms_norm_quantize_int8_per_token);
  m.impl("add_rms_norm_quantize_fp8_per_token", &add_rms_norm_quantize_fp8_per_token);
}
