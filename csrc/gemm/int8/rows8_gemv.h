#pragma once
// The GEMV over 8-bit weight rows (a16w8_gemv.cuh) as a host entry, for the two ops that use
// it: a16w8_linear (int8 rows, per-channel fp32 scale; a16w8_ops.cpp) and mxfp8 at small M
// (e4m3 rows, E8M0 scales per 32, bf16 x; csrc/gemm/w4/w4_ops.cpp). M <= kA16w8MaxTokens,
// K % 16 == 0 (% 32 for MX), contiguous operands on one device: the callers' contracts.
#include "lowbit/ops.h"  // Tensor, OptTensor

namespace lowbit::int8 {

// mx: w e4m3 (N, K) with w_scale E8M0 uint8 (N, K / 32), x bf16; else w int8 (N, K) with
// w_scale fp32 (N,), x bf16 or fp16. y (M, N) in x's dtype.
Tensor rows8_gemv(const Tensor& x, const Tensor& w, const Tensor& w_scale, const OptTensor& bias, bool mx);

}  // namespace lowbit::int8
