#pragma once
// The boundary between the quantizer op glue (quantize_ops.cpp, C++ compiler) and the
// kernel launches (quantize_launch.cu, nvcc); see gemm/fp8/fp8_launch.h for why error
// formatting stays on the C++ side.
#include <cuda_runtime.h>

#include <cstdint>

namespace lowbit::quant {

enum class InType { kBF16, kF16, kF32 };
enum class RowKind { kInt8, kFp8 };                 // one absmax scale per row
enum class BlockKind { kFp8x128, kMxfp8, kMxfp4 };  // scale blocks of 128 / 32 along K

// Per token (sms: the device's SMs, for the CTAs per row where the rows are few).
void launch_rows(RowKind kind, InType in, const void* x, uint8_t* q, float* scale, int64_t M, int64_t K, int sms,
                 cudaStream_t stream);
// silu(gate) * up rounded to the 16-bit input type, then one absmax scale per row (the fused
// quantizers; gate / up rows ld_gate / ld_up elements apart).
void launch_silu_mul_rows(RowKind kind, InType in, const void* gate, const void* up, int64_t ld_gate, int64_t ld_up,
                          uint8_t* q, float* scale, int64_t M, int64_t K, int sms, cudaStream_t stream);
// RMSNorm (x (M, K) dense, w (K,)) rounded to the 16-bit input type, then one absmax scale per
// row (the fused quantizers).
void launch_rms_norm_rows(RowKind kind, InType in, const void* x, const void* w, float eps, uint8_t* q, float* scale,
                          int64_t M, int64_t K, int sms, cudaStream_t stream);
// x + residual rounded to the 16-bit input type, written to sum (all (M, K) dense), then as
// launch_rms_norm_rows of it.
void launch_add_rms_norm_rows(RowKind kind, InType in, const void* x, const void* residual, void* sum, const void* w,
                              float eps, uint8_t* q, float* scale, int64_t M, int64_t K, int sms, cudaStream_t stream);
void launch_blocks(BlockKind kind, InType in, const void* x, uint8_t* q, void* scale, int64_t n_vec,
                   cudaStream_t stream);
// x rounded to MXFP8 and back (per 32 along K: E8M0 scale, e4m3 codes, decoded and scaled),
// bf16 or fp32, without the codes: what quantize_mxfp8 + the MXFP8 dequantizer give, in one pass.
void launch_mxfp8_round(InType in, const void* x, void* out, bool fp32_out, int64_t n_vec, cudaStream_t stream);
// Per tensor: amax (zeroed by the caller) then codes; static_scale non-null skips the amax.
void launch_per_tensor(InType in, const void* x, uint8_t* q, uint32_t* amax, const float* static_scale,
                       float* scale_out, int64_t n_vec, int sms, cudaStream_t stream);

}  // namespace lowbit::quant
