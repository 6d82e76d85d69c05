#pragma once
// The boundary between the 4-bit weight op glue (w4_ops.cpp: contracts, planning,
// allocation) and the kernel launches (nvcc: w4_launch.cu and w4_wgmma_launch.cu, their
// templates in w4_gemv_launch.cuh / w4_wgmma_launch.cuh, instantiated in the *_shard_*.cu units).
#include <cuda.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>

#include "gemm/w4/w4_params.h"

namespace lowbit::w4 {

enum class Elem { kBF16, kF16 };

// CTAs of 256 threads for a grid-stride pass over `items` (dequantize, prepack, x's permutation):
// one per 256 items, at most 16 per SM of a 132-SM H100.
inline int grid_for(int64_t items) { return int(std::min<int64_t>((items + 255) / 256, 132 * 16)); }

// 4-bit weight GEMV (M <= 32): grid (ceil(N / 128), splits); mx: mxfp4 codes and E8M0
// scales instead of int4 codes with 16-bit scales and zero points. x_map: x's TMA map (boxes of
// M x 128 elements, no swizzle) when p.xring.
void launch_gemv(Elem t, const GemvParams& p, bool mx, cudaStream_t stream, const CUtensorMap* x_map = nullptr);

// a16w4 weight -> 16-bit (N, K): w = (q - z) * s in fp32, rounded once (the large-M path).
void launch_dequant(Elem t, const uint32_t* w, const void* scales, const void* zeros, void* out, int64_t N,
                    int64_t K, int64_t group, cudaStream_t stream);

// mxfp4 weight -> (N, K) in x's dtype, or fp32 (fp32_out): e2m1 * 2^(e - 127).
void launch_dequant_mx(Elem t, bool fp32_out, const uint32_t* w, const uint8_t* scales, void* out, int64_t N,
                       int64_t K, cudaStream_t stream);

// M > 32 (w4_ops.cpp wgmma_applies): the mixed-input wgmma GEMM (w4_wgmma.cuh) with x's TMA map
// (boxes p.tokens x 64, 128B swizzle; p.splits K splits with fp32 partials, w4_ops.cpp wgmma_plan). int4: fold = scales and zero points folded into the A
// operand (w = q s - z s in x's dtype, sums chained over K); else exact codes with a promotion
// per group, which needs sum_x (M, K / group) fp32 sums of x per group first (launch_sum_x).
// mx: mxfp4 weights (E8M0 scales in p.scales, no sum_x; bf16 x only).
void launch_sum_x(Elem t, const void* x, float* sum_x, int64_t M, int64_t K, int64_t group, cudaStream_t stream);
// x (M, K) 16-bit, contiguous, K % 32 == 0 -> out (M, K): each 32-element chunk's 4-byte pairs
// transposed 4 x 4 (out pair 4 i + a = x pair 4 a + i), the order p.x_pre kernels read.
void launch_permute_x_chunks(const void* x, void* out, int64_t M, int64_t K, cudaStream_t stream);
// row_tiles: 128-row m64 tiles per consumer warpgroup pair, 1 or 2 (256 rows per CTA, mx only;
// N % 256 == 0).
void launch_wgmma(Elem t, const CUtensorMap& tmap_x, const W4WgmmaParams& p, bool mx, int row_tiles, bool fold,
                  cudaStream_t stream);
// The same GEMM on 8-bit weight rows (N, K) loaded by tmap_w (boxes 128 x row_tiles rows x 128
// bytes, 128B swizzle): int8 with p.row_scale per channel (x bf16 or fp16), or mx: e4m3 with
// E8M0 scales in p.scales (bf16 x).
void launch_rows8_wgmma(Elem t, bool mx, const CUtensorMap& tmap_x, const CUtensorMap& tmap_w, const W4WgmmaParams& p,
                        int row_tiles, cudaStream_t stream);

// MXFP8 activations (e4m3 (M, K) + E8M0 (M, K/32)) -> bf16 or fp32 (M, K), for a8w4_mx.
void launch_dequant_mx8(bool fp32_out, const uint8_t* q, const uint8_t* s, void* out, int64_t M, int64_t K,
                        cudaStream_t stream);

// Plain uint8 (N, K/2) <-> w4 layout int32 (N, K/8) (lowbit/w4_layout.h).
void launch_prepack(const uint8_t* plain, uint32_t* packed, int64_t N, int64_t K, cudaStream_t stream);
void launch_unpack(const uint32_t* packed, uint8_t* plain, int64_t N, int64_t K, cudaStream_t stream);

}  // namespace lowbit::w4
