#pragma once
// a16w8 kernel launchers (a16w8_launch.cu, nvcc) for the op glue (a16w8_ops.cpp).
#include <cuda_runtime.h>

#include <cstdint>

#include "gemm/int8/a16w8_params.h"

namespace lowbit::int8 {

// y = x W^T * s (+ bias) for M <= kA16w8MaxTokens; x and y bf16 when bf16, else fp16.
// With p.w_mx_scale: MXFP8 weights (e4m3, E8M0 per 32), bf16 only.
void launch_a16w8_gemv(bool bf16, const A16w8Params& p, cudaStream_t stream);
// out (N, K) = q * s[n], rounded once to bf16 (bf16) or fp16.
void launch_a16w8_dequant(bool bf16, const int8_t* w, const float* w_scale, void* out, int64_t N, int64_t K,
                          cudaStream_t stream);

}  // namespace lowbit::int8
