#pragma once
// The mixed-input wgmma GEMM (w4_wgmma.cuh) on 8-bit weight rows, as a host entry for the ops
// outside this folder that use it: a16w8_linear (int8 rows, fp32 per-channel scale;
// csrc/gemm/int8/a16w8_ops.cpp) and mxfp8 (e4m3 rows, E8M0 per 32, bf16 x; w4_ops.cpp).
#include "lowbit/ops.h"  // Tensor, OptTensor

namespace lowbit::w4 {

// Whether an M x K by N x K product of 8-bit rows (mx: e4m3 + E8M0, else int8) goes through it:
// 32 < M <= the measured limit (the GEMVs take fewer tokens, dequantize + cuBLAS more),
// N % 128 == 0 and K % 128 == 0 (full CTAs and blocks); knob LOWBIT_ROWS8_LARGE.
bool rows8_wgmma_applies(int64_t M, int64_t N, int64_t K, bool mx);

// y (M, N) in x's dtype = x w^T: mx: w e4m3 (N, K), w_scale E8M0 uint8 (N, K / 32), x bf16;
// else w int8 (N, K), w_scale fp32 (N,), x bf16 or fp16. Contiguous, one device (the callers'
// contracts).
Tensor rows8_wgmma_matmul(const Tensor& x, const Tensor& w, const Tensor& w_scale, const OptTensor& bias, bool mx);

}  // namespace lowbit::w4
