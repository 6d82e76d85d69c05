// CUDA implementations of the activation quantizer ops (schemas in
// csrc/torch_bindings.cpp, semantics in csrc/cpu/quantize.cpp).
#include <ATen/cuda/CUDAContext.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/zeros.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include "lowbit/contracts.h"
#include "lowbit/ops.h"
#include "quant/quantize_kernels.cuh"

namespace lowbit::cuda {
namespace {

using namespace lowbit::quant;

constexpr int kThreads = 256;

// Calls f(In*) with the CUDA element type of x (bf16, fp16 or fp32).
template <typename F>
void with_input_type(const Tensor& x, F&& f) {
  switch (x.scalar_type()) {
    case at::kBFloat16: f(reinterpret_cast<const __nv_bfloat16*>(x.data_ptr())); break;
    case at::kHalf: f(reinterpret_cast<const __half*>(x.data_ptr())); break;
    case at::kFloat: f(x.data_ptr<float>()); break;
    default: TORCH_CHECK(false, "unreachable: input dtype checked by the contract");
  }
}

int blocks_for(int64_t threads_total) { return int((threads_total + kThreads - 1) / kThreads); }

// Per-row scale (per token): int8 or e4m3 codes.
template <class Rule, class Codec>
QuantPair quantize_rows(const char* op, const Tensor& x, c10::ScalarType code_dtype) {
  contract::quantizer_input(op, x, contract::kK8bit, "8-bit rows of 16-byte chunks");
  c10::cuda::CUDAGuard guard(x.device());
  const int64_t M = x.size(0), K = x.size(1);
  Tensor q = at::empty({M, K}, x.options().dtype(at::kByte));
  Tensor s = at::empty({M}, x.options().dtype(at::kFloat));
  if (M > 0) {
    auto stream = at::cuda::getCurrentCUDAStream();
    with_input_type(x, [&](auto* xp) {
      using In = std::remove_const_t<std::remove_pointer_t<decltype(xp)>>;
      quantize_rows_kernel<In, Rule, Codec, kThreads>
          <<<M, kThreads, 0, stream>>>(xp, q.data_ptr<uint8_t>(), s.data_ptr<float>(), K);
    });
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  }
  return {q.view(code_dtype), s};
}

// Scale blocks of kBlock elements along K (1x128 fp8, MX).
template <int kBlock, class Rule, class Codec>
QuantPair quantize_blocks(const char* op, const Tensor& x, c10::ScalarType code_dtype, c10::ScalarType scale_dtype,
                          const char* why) {
  contract::quantizer_input(op, x, kBlock, why);
  c10::cuda::CUDAGuard guard(x.device());
  const int64_t M = x.size(0), K = x.size(1);
  Tensor q = at::empty({M, K * Codec::kBytes / kVec}, x.options().dtype(at::kByte));
  Tensor s = at::empty({M, K / kBlock}, x.options().dtype(scale_dtype));
  const int64_t n_vec = M * K / kVec;
  if (n_vec > 0) {
    auto stream = at::cuda::getCurrentCUDAStream();
    with_input_type(x, [&](auto* xp) {
      using In = std::remove_const_t<std::remove_pointer_t<decltype(xp)>>;
      quantize_small_blocks_kernel<In, kBlock, Rule, Codec><<<blocks_for(n_vec), kThreads, 0, stream>>>(
          xp, q.data_ptr<uint8_t>(), reinterpret_cast<typename Rule::Stored*>(s.data_ptr()), n_vec);
    });
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  }
  return {q.view(code_dtype), s};
}

QuantPair quantize_int8_per_token(const Tensor& x) {
  return quantize_rows<AbsmaxRule<127>, Int8Codec>("quantize_int8_per_token", x, at::kChar);
}

QuantPair quantize_fp8_per_token(const Tensor& x) {
  return quantize_rows<AbsmaxRule<448>, E4m3Codec>("quantize_fp8_per_token", x, at::kFloat8_e4m3fn);
}

QuantPair quantize_fp8_1x128(const Tensor& x) {
  return quantize_blocks<contract::kKBlock, AbsmaxRule<448>, E4m3Codec>(
      "quantize_fp8_1x128", x, at::kFloat8_e4m3fn, at::kFloat, "one scale per 128 elements");
}

QuantPair quantize_mxfp8(const Tensor& x) {
  return quantize_blocks<contract::kKMx, MxRule<kE4M3Emax>, E4m3Codec>(
      "quantize_mxfp8", x, at::kFloat8_e4m3fn, at::kByte, "one E8M0 scale per 32 elements");
}

QuantPair quantize_mxfp4(const Tensor& x) {
  return quantize_blocks<contract::kKMx, MxRule<kE2M1Emax>, E2m1Codec>(
      "quantize_mxfp4", x, at::kByte, at::kByte, "one E8M0 scale per 32 elements");
}

QuantPair quantize_fp8_per_tensor(const Tensor& x, const OptTensor& scale) {
  const char* op = "quantize_fp8_per_tensor";
  contract::quantizer_input(op, x, contract::kK8bit, "fp8 rows of 16-byte chunks");
  if (scale) {
    check::same_device(op, x, *scale, "scale");
    check::dtype_is(op, *scale, "scale", at::kFloat);
    TORCH_CHECK(scale->numel() == 1, op, ": scale must hold one element (per tensor), got shape ", scale->sizes());
  }
  c10::cuda::CUDAGuard guard(x.device());
  auto stream = at::cuda::getCurrentCUDAStream();
  Tensor q = at::empty(x.sizes(), x.options().dtype(at::kByte));
  Tensor s = at::empty({1}, x.options().dtype(at::kFloat));
  const int64_t n_vec = x.numel() / kVec;
  // Dynamic: a scratch amax, zeroed on the stream (graph-capturable, no host sync).
  Tensor amax = at::zeros({1}, x.options().dtype(at::kInt));
  const int sms = at::cuda::getCurrentDeviceProperties()->multiProcessorCount;
  const int grid = std::max(1, std::min(blocks_for(n_vec), sms * 4));
  with_input_type(x, [&](auto* xp) {
    using In = std::remove_const_t<std::remove_pointer_t<decltype(xp)>>;
    auto* amax_p = reinterpret_cast<uint32_t*>(amax.data_ptr<int32_t>());
    if (!scale && n_vec > 0) amax_kernel<In><<<grid, kThreads, 0, stream>>>(xp, amax_p, n_vec);
    quantize_tensor_kernel<In><<<grid, kThreads, 0, stream>>>(
        xp, q.data_ptr<uint8_t>(), amax_p, scale ? scale->data_ptr<float>() : nullptr, s.data_ptr<float>(), n_vec);
  });
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return {q.view(at::kFloat8_e4m3fn), s};
}

}  // namespace
}  // namespace lowbit::cuda

TORCH_LIBRARY_IMPL(lowbit, CUDA, m) {
  using namespace lowbit::cuda;
  m.impl("quantize_int8_per_token", &quantize_int8_per_token);
  m.impl("quantize_fp8_per_token", &quantize_fp8_per_token);
  m.impl("quantize_fp8_per_tensor", &quantize_fp8_per_tensor);
  m.impl("quantize_fp8_1x128", &quantize_fp8_1x128);
  m.impl("quantize_mxfp8", &quantize_mxfp8);
  m.impl("quantize_mxfp4", &quantize_mxfp4);
}
