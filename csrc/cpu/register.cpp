// The CPU dispatch key: every op's reference implementation.
#include <torch/library.h>

#include "lowbit/ops.h"

TORCH_LIBRARY_IMPL(lowbit, CPU, m) {
  using namespace lowbit::cpu;
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
  m.impl("prepack_w4", &prepack_w4);
  m.impl("unpack_w4", &unpack_w4);
  m.impl("w8a8_int8_mm", &w8a8_int8_mm);
  m.impl("w8a8_fp8_mm", &w8a8_fp8_mm);
  m.impl("fp8_block_mm", &fp8_block_mm);
  m.impl("mxfp8_mm", &mxfp8_mm);
  m.impl("a8w4_mx_mm", &a8w4_mx_mm);
  m.impl("a16w4_linear", &a16w4_linear);
  m.impl("a16w8_linear", &a16w8_linear);
  m.impl("mxfp4_linear", &mxfp4_linear);
  m.impl("w8a8_int8_linear", &w8a8_int8_linear);
  m.impl("w8a8_fp8_linear", &w8a8_fp8_linear);
  m.impl("fp8_block_linear", &fp8_block_linear);
  m.impl("mxfp8_linear", &mxfp8_linear);
  m.impl("a8w4_mx_linear", &a8w4_mx_linear);
}
