// The mixed-input wgmma GEMM's dispatch (launch_wgmma, launch_rows8_wgmma) and the instantiations
// not sharded out (w4_wgmma_launch.cuh): int4 with promotion, mxfp4, and the 8-bit rows (int8,
// e4m3); and x's chunk permutation.
#include <c10/cuda/CUDAException.h>
#include <c10/util/Exception.h>

#include "gemm/w4/w4_launch.h"
#include "gemm/w4/w4_wgmma_launch.cuh"

namespace lowbit::w4 {
namespace {

// One 32-element chunk (64 bytes) per thread, permuted as permute_x_blocks does in shared memory.
__global__ void permute_x_chunks_kernel(const uint4* __restrict__ x, uint4* __restrict__ out, int64_t chunks) {
  for (int64_t c = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; c < chunks; c += int64_t(gridDim.x) * blockDim.x) {
    uint4 u[4], v[4];
#pragma unroll
    for (int i = 0; i < 4; ++i) u[i] = ptx::ld_global_nc_v4(x + 4 * c + i);
    permute_x_chunk(u, v);
#pragma unroll
    for (int i = 0; i < 4; ++i) out[4 * c + i] = v[i];
  }
}

}  // namespace

void launch_permute_x_chunks(const void* x, void* out, int64_t M, int64_t K, cudaStream_t stream) {
  TORCH_CHECK(K % 32 == 0, "lowbit: x permuted in chunks of 32 elements needs K % 32 == 0");
  const int64_t chunks = M * K / 32;
  if (chunks == 0) return;
  permute_x_chunks_kernel<<<grid_for(chunks), 256, 0, stream>>>(static_cast<const uint4*>(x), static_cast<uint4*>(out),
                                                               chunks);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

void launch_wgmma(Elem t, const CUtensorMap& tmap_x, const W4WgmmaParams& p, bool mx, int row_tiles, bool fold,
                  cudaStream_t stream) {
  using enum WgmmaWeights;
  if (mx && row_tiles == 2) return wgmma_typed<__nv_bfloat16, kMxfp4, 0, false, 2>(tmap_x, tmap_x, p, stream);
  if (mx) return wgmma_typed<__nv_bfloat16, kMxfp4>(tmap_x, tmap_x, p, stream);  // bf16 only (w4_wgmma.cuh)
  TORCH_CHECK(fold || row_tiles == 1, "lowbit: 256-row CTAs for the int4 promotion variant are not built");
  if (row_tiles == 2) {  // int4 folded
    if (t == Elem::kBF16) return wgmma_int4<__nv_bfloat16, kInt4Fold, 2>(tmap_x, p, stream);
    return wgmma_int4<__half, kInt4Fold, 2>(tmap_x, p, stream);
  }
  if (t == Elem::kBF16) {
    if (fold) wgmma_int4<__nv_bfloat16, kInt4Fold>(tmap_x, p, stream);
    else wgmma_int4<__nv_bfloat16, kInt4Promote>(tmap_x, p, stream);
  } else {
    if (fold) wgmma_int4<__half, kInt4Fold>(tmap_x, p, stream);
    else wgmma_int4<__half, kInt4Promote>(tmap_x, p, stream);
  }
}

template <int kRowTiles>
void rows8_wgmma(Elem t, bool mx, const CUtensorMap& tmap_x, const CUtensorMap& tmap_w, const W4WgmmaParams& p,
                 cudaStream_t stream) {
  using enum WgmmaWeights;
  if (mx) return wgmma_typed<__nv_bfloat16, kMxfp8Rows, 0, false, kRowTiles>(tmap_x, tmap_w, p, stream);  // bf16 x
  if (t == Elem::kBF16) wgmma_typed<__nv_bfloat16, kInt8Rows, 0, false, kRowTiles>(tmap_x, tmap_w, p, stream);
  else wgmma_typed<__half, kInt8Rows, 0, false, kRowTiles>(tmap_x, tmap_w, p, stream);
}

void launch_rows8_wgmma(Elem t, bool mx, const CUtensorMap& tmap_x, const CUtensorMap& tmap_w, const W4WgmmaParams& p,
                        int row_tiles, cudaStream_t stream) {
  if (row_tiles == 2) rows8_wgmma<2>(t, mx, tmap_x, tmap_w, p, stream);
  else rows8_wgmma<1>(t, mx, tmap_x, tmap_w, p, stream);
}

}  // namespace lowbit::w4
