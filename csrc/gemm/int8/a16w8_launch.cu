// a16w8 kernels: the GEMV instantiations (a16w8_gemv.cuh) and the weight dequantizer of the
// large-M path.
#include <c10/cuda/CUDAException.h>

#include <algorithm>

#include "gemm/int8/a16w8_gemv.cuh"
#include "gemm/int8/a16w8_launch.h"
#include "lowbit/gemv_split.h"  // gemv_token_tiles

namespace lowbit::int8 {
namespace {

template <typename T, int kTiles, bool kMx>
void gemv(const A16w8Params& p, cudaStream_t stream) {
  dim3 grid((p.N + kA16w8Rows - 1) / kA16w8Rows, p.splits);
  a16w8_gemv_kernel<T, kTiles, kMx><<<grid, kA16w8Threads, 0, stream>>>(p);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

template <typename T, bool kMx>
void gemv_typed(const A16w8Params& p, cudaStream_t stream) {
  switch (gemv_token_tiles(p.M)) {
    case 1: return gemv<T, 1, kMx>(p, stream);
    case 2: return gemv<T, 2, kMx>(p, stream);
    default: return gemv<T, 4, kMx>(p, stream);
  }
}

// One thread per 16 weights: q * s[n] in fp32, rounded once to T, one 32-byte store.
template <typename T>
__global__ void dequant_kernel(const int8_t* __restrict__ w, const float* __restrict__ w_scale, T* __restrict__ out,
                               int64_t N, int64_t K) {
  const int64_t vecs = K / 16;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < N * vecs; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t n = i / vecs;
    const uint4 q = ptx::ld_global_nc_v4(w + i * 16);
    const float s = w_scale[n];
    const uint32_t words[4] = {q.x, q.y, q.z, q.w};
    alignas(16) T v[16];
#pragma unroll
    for (int e = 0; e < 16; ++e) v[e] = ptx::from_f32<T>(float(int8_t(words[e / 4] >> (8 * (e % 4)))) * s);
    reinterpret_cast<uint4*>(out + i * 16)[0] = reinterpret_cast<const uint4*>(v)[0];
    reinterpret_cast<uint4*>(out + i * 16)[1] = reinterpret_cast<const uint4*>(v)[1];
  }
}

}  // namespace

void launch_a16w8_gemv(bool bf16, const A16w8Params& p, cudaStream_t stream) {
  TORCH_CHECK(!p.w_mx_scale || bf16, "lowbit: the MXFP8-weight GEMV takes bf16 x");
  if (p.w_mx_scale) gemv_typed<__nv_bfloat16, true>(p, stream);
  else if (bf16) gemv_typed<__nv_bfloat16, false>(p, stream);
  else gemv_typed<__half, false>(p, stream);
}

void launch_a16w8_dequant(bool bf16, const int8_t* w, const float* w_scale, void* out, int64_t N, int64_t K,
                          cudaStream_t stream) {
  const int grid = int(std::min<int64_t>((N * K / 16 + 255) / 256, 132 * 16));
  if (bf16) dequant_kernel<<<grid, 256, 0, stream>>>(w, w_scale, static_cast<__nv_bfloat16*>(out), N, K);
  else dequant_kernel<<<grid, 256, 0, stream>>>(w, w_scale, static_cast<__half*>(out), N, K);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

}  // namespace lowbit::int8
