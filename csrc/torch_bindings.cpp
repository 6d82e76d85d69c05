// Every schema of lowbit_ext, in one place: this file is the API.
//
// Conventions (all ops):
//   y = x @ W^T with x (M, K) and W (N, K) as stored; callers flatten leading dims.
//   16-bit activations are bf16 or fp16; quantized-activation ops take `out_dtype`
//   (bf16 or fp16); bias is (N,) in the output dtype. Scales are fp32 unless said.
//   Per-token scales are (M,), per-channel (N,), per-tensor a single element.
//   MX scales are E8M0 bytes (uint8), one per 32 elements along K.
//   4-bit weights are stored as "w4 kernel layout" (int32 (N, K/8)), produced by
//   prepack_w4 from the plain layout (uint8 (N, K/2), element 2i in the low nibble).
// The semantics (rounding, saturation, NaN/Inf, scale rules) are written down and
// implemented by the CPU reference in csrc/cpu/, which is the specification; CUDA
// kernels in csrc/gemm/ and csrc/quant/ compute the same functions.
#include <torch/library.h>

#include "lowbit/version.h"

TORCH_LIBRARY(lowbit, m) {
  // ---- library info: lets `import lowbit_ext` detect a stale build.
  m.def("_abi_version() -> int", []() -> int64_t { return LOWBIT_ABI_VERSION; });

  // ---- activation (and weight) quantizers: along K, one pass over x.
  m.def("quantize_int8_per_token(Tensor x) -> (Tensor q, Tensor scale)");
  m.def("quantize_fp8_per_token(Tensor x) -> (Tensor q, Tensor scale)");
  m.def("quantize_fp8_per_tensor(Tensor x, Tensor? scale=None) -> (Tensor q, Tensor scale)");
  m.def("quantize_fp8_1x128(Tensor x) -> (Tensor q, Tensor scale)");
  m.def("quantize_mxfp8(Tensor x) -> (Tensor q, Tensor scale)");
  m.def("quantize_mxfp4(Tensor x) -> (Tensor q, Tensor scale)");
  // fused with x's producer: x = silu(gate) * up (the MLP's down-projection input), rounded once
  // to gate's dtype, then quantized per token as above. gate, up (M, K) may be row-strided views
  // (the halves of a fused gate-up projection).
  m.def("silu_mul_quantize_int8_per_token(Tensor gate, Tensor up) -> (Tensor q, Tensor scale)");
  m.def("silu_mul_quantize_fp8_per_token(Tensor gate, Tensor up) -> (Tensor q, Tensor scale)");
  // fused with an RMSNorm: x' = x * rsqrt(mean(x^2) + eps) * weight (sum of squares in fp64, the
  // products in fp32), rounded once to x's dtype, then quantized per token. x (M, K), weight (K,).
  m.def("rms_norm_quantize_int8_per_token(Tensor x, Tensor weight, float eps) -> (Tensor q, Tensor scale)");
  m.def("rms_norm_quantize_fp8_per_token(Tensor x, Tensor weight, float eps) -> (Tensor q, Tensor scale)");
  // fused with the residual add before the norm: sum = x + residual (in fp32, rounded once to x's
  // dtype: what `x + residual` gives), returned, and rms_norm_quantize_*(sum, weight, eps)'s codes
  // and scales. x, residual (M, K) of one dtype, weight (K,). A decoder block's second norm (and
  // the next block's first) then reads its input once and no separate add kernel runs.
  m.def("add_rms_norm_quantize_int8_per_token(Tensor x, Tensor residual, Tensor weight, float eps) -> (Tensor q, Tensor scale, Tensor sum)");
  m.def("add_rms_norm_quantize_fp8_per_token(Tensor x, Tensor residual, Tensor weight, float eps) -> (Tensor q, Tensor scale, Tensor sum)");

  // ---- 4-bit weight layout (int4 and e2m1 codes alike).
  m.def("prepack_w4(Tensor w) -> Tensor");
  m.def("unpack_w4(Tensor w) -> Tensor");

  // ---- matmuls on pre-quantized operands (a: activations, b: weights).
  m.def("w8a8_int8_mm(Tensor a, Tensor a_scale, Tensor b, Tensor b_scale, Tensor? bias, ScalarType out_dtype) -> Tensor");
  m.def("w8a8_fp8_mm(Tensor a, Tensor a_scale, Tensor b, Tensor b_scale, Tensor? bias, ScalarType out_dtype) -> Tensor");
  m.def("fp8_block_mm(Tensor a, Tensor a_scale, Tensor b, Tensor b_scale, Tensor? bias, ScalarType out_dtype) -> Tensor");
  m.def("mxfp8_mm(Tensor a, Tensor a_scale, Tensor b, Tensor b_scale, Tensor? bias, ScalarType out_dtype) -> Tensor");
  m.def("a8w4_mx_mm(Tensor a, Tensor a_scale, Tensor b, Tensor b_scale, Tensor? bias, ScalarType out_dtype) -> Tensor");

  // ---- linear layers: the op a user calls; 16-bit x in, y (x.dtype) out. Formats that
  // quantize activations do it inside (fused on CUDA).
  m.def("a16w4_linear(Tensor x, Tensor w, Tensor scales, Tensor? zeros, int group_size, Tensor? bias=None) -> Tensor");
  m.def("a16w8_linear(Tensor x, Tensor w, Tensor w_scale, Tensor? bias=None) -> Tensor");
  m.def("mxfp4_linear(Tensor x, Tensor w, Tensor w_scale, Tensor? bias=None) -> Tensor");
  m.def("w8a8_int8_linear(Tensor x, Tensor w, Tensor w_scale, Tensor? bias=None) -> Tensor");
  m.def("w8a8_fp8_linear(Tensor x, Tensor w, Tensor w_scale, Tensor? bias=None, bool act_per_token=True) -> Tensor");
  m.def("fp8_block_linear(Tensor x, Tensor w, Tensor w_scale, Tensor? bias=None) -> Tensor");
  m.def("mxfp8_linear(Tensor x, Tensor w, Tensor w_scale, Tensor? bias=None) -> Tensor");
  m.def("a8w4_mx_linear(Tensor x, Tensor w, Tensor w_scale, Tensor? bias=None) -> Tensor");
}
