// 4-bit weight kernels: the a16w4 GEMV's dispatch by dtype and token tiles (its instantiations:
// w4_gemv_launch.cuh, compiled in the w4_gemv_shard_*.cu units), the dequantizer of the large-M
// path, the sums of x, and the layout conversions. (The mixed-input wgmma GEMM's instantiations:
// w4_wgmma_launch.cu and its shards.)
#include <c10/cuda/CUDAException.h>
#include <c10/util/Exception.h>

#include <algorithm>
#include <type_traits>

#include "gemm/w4/w4_gemv_launch.cuh"
#include "gemm/w4/w4_launch.h"
#include "lowbit/w4_layout.h"

namespace lowbit::w4 {
namespace {

template <typename T>
void gemv_typed(const GemvParams& p, const CUtensorMap& x_map, bool mx, cudaStream_t stream) {
  switch (gemv_token_tiles(p.M)) {
    case 1: return gemv_tiles_typed<T, 1>(p, x_map, mx, stream);
    case 2: return gemv_tiles_typed<T, 2>(p, x_map, mx, stream);
    default: return gemv_tiles_typed<T, 4>(p, x_map, mx, stream);
  }
}

// The weight values of the large-M path, one policy per 4-bit format: at() reads a word's
// scale (and zero point), value() decodes one code with them in fp32.
template <typename T>
struct Int4Values {  // (q - z) * s, z = 8 when symmetric
  const T* scales;
  const T* zeros;
  int64_t group;
  struct Word {
    float s, z;
  };
  __device__ Word at(int64_t n, int64_t l, int64_t K) const {
    const int64_t i = n * (K / group) + (8 * l) / group;
    return {to_f32(scales[i]), zeros ? to_f32(zeros[i]) : 8.f};
  }
  __device__ float value(const Word& w, uint32_t code) const { return (float(code) - w.z) * w.s; }
};
struct MxValues {  // e2m1(code) * 2^(e - 127), NaN for e = 0xFF
  const uint8_t* scales;
  struct Word {
    float s;
  };
  __device__ Word at(int64_t n, int64_t l, int64_t K) const { return {e8m0_to_float(scales[n * (K / 32) + (8 * l) / 32])}; }
  __device__ float value(const Word& w, uint32_t code) const { return e2m1_to_float(uint8_t(code)) * w.s; }
};

template <typename OutT>
__device__ __forceinline__ OutT round_to(float v) {
  if constexpr (std::is_same_v<OutT, float>) return v;
  else return from_f32<OutT>(v);
}

// One thread per logical word (8 elements): decode in fp32, round once to OutT, one
// contiguous store of the 8 values.
template <typename OutT, class Values>
__global__ void dequant_kernel(const uint32_t* __restrict__ w, const Values vals, OutT* __restrict__ out, int64_t N,
                               int64_t K) {
  const int64_t words = K / 8;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < N * words; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t n = i / words, l = i % words;
    const uint32_t word = w[stored_index(n, l, N, words)];
    const auto ws = vals.at(n, l, K);
    alignas(16) OutT v[8];
#pragma unroll
    for (int p = 0; p < 8; ++p) v[interleave(p)] = round_to<OutT>(vals.value(ws, (word >> (4 * p)) & 0xF));
#pragma unroll
    for (int q = 0; q < int(sizeof(v) / 16); ++q)
      reinterpret_cast<uint4*>(out + n * K + 8 * l)[q] = reinterpret_cast<const uint4*>(v)[q];
  }
}

__global__ void prepack_kernel(const uint8_t* __restrict__ plain, uint32_t* __restrict__ packed, int64_t N,
                               int64_t K) {
  const int64_t words = K / 8;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < N * words; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t n = i / words, l = i % words;
    const uint32_t bytes = *reinterpret_cast<const uint32_t*>(plain + n * (K / 2) + 4 * l);  // elements 8l..8l+7
    uint32_t word = 0;
#pragma unroll
    for (int p = 0; p < 8; ++p) word |= ((bytes >> (4 * interleave(p))) & 0xF) << (4 * p);
    packed[stored_index(n, l, N, words)] = word;
  }
}

__global__ void unpack_kernel(const uint32_t* __restrict__ packed, uint8_t* __restrict__ plain, int64_t N, int64_t K) {
  const int64_t words = K / 8;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < N * words; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t n = i / words, l = i % words;
    const uint32_t word = packed[stored_index(n, l, N, words)];
    uint32_t bytes = 0;
#pragma unroll
    for (int p = 0; p < 8; ++p) bytes |= ((word >> (4 * p)) & 0xF) << (4 * interleave(p));
    *reinterpret_cast<uint32_t*>(plain + n * (K / 2) + 4 * l) = bytes;
  }
}

// sum_x[m, g] = sum of x[m, k] over group g, in fp32: one warp per (token, group).
template <typename T>
__global__ void sum_x_kernel(const T* __restrict__ x, float* __restrict__ sum_x, int64_t M, int64_t K, int64_t group) {
  const int64_t groups = K / group;
  const int64_t item = (int64_t(blockIdx.x) * blockDim.x + threadIdx.x) / 32;
  const int lane = threadIdx.x % 32;
  if (item >= M * groups) return;
  const T* row = x + (item / groups) * K + (item % groups) * group;
  float s = 0.f;
  for (int64_t k = lane; k < group; k += 32) s += ptx::to_f32(row[k]);
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) s += __shfl_xor_sync(0xffffffffu, s, o);
  if (lane == 0) sum_x[item] = s;
}


// MXFP8 (e4m3 codes + E8M0 per 32) -> OutT: e4m3 * 2^(e - 127) in fp32, rounded once (exact
// in fp32; in bf16 too, except values under bf16's smallest subnormal 2^-133).
template <typename OutT>
__global__ void dequant_mx8_kernel(const uint8_t* __restrict__ q, const uint8_t* __restrict__ s, OutT* __restrict__ out,
                                   int64_t M, int64_t K) {
  const int64_t vecs = K / 8;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < M * vecs; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t m = i / vecs, v = i % vecs;
    const uint2 codes = *reinterpret_cast<const uint2*>(q + i * 8);
    const float scale = e8m0_to_float(s[m * (K / 32) + (v * 8) / 32]);
    alignas(16) OutT o[8];
#pragma unroll
    for (int e = 0; e < 8; ++e)
      o[e] = round_to<OutT>(e4m3_to_float(uint8_t((e < 4 ? codes.x : codes.y) >> (8 * (e % 4)))) * scale);
#pragma unroll
    for (int c = 0; c < int(sizeof(o) / 16); ++c)
      reinterpret_cast<uint4*>(out + i * 8)[c] = reinterpret_cast<const uint4*>(o)[c];
  }
}

}  // namespace

void launch_gemv(Elem t, const GemvParams& p, bool mx, cudaStream_t stream, const CUtensorMap* x_map) {
  TORCH_CHECK(!p.xring || x_map, "lowbit a16w4: v8 with x through the ring needs x's TMA map");
  static const CUtensorMap kNoMap{};  // (the kernels that do not read x through TMA ignore it)
  const CUtensorMap& map = x_map ? *x_map : kNoMap;
  if (t == Elem::kBF16) gemv_typed<__nv_bfloat16>(p, map, mx, stream);
  else gemv_typed<__half>(p, map, mx, stream);
}

void launch_dequant(Elem t, const uint32_t* w, const void* scales, const void* zeros, void* out, int64_t N, int64_t K,
                    int64_t group, cudaStream_t stream) {
  const int grid = grid_for(N * K / 8);
  if (t == Elem::kBF16) {
    using B = __nv_bfloat16;
    const Int4Values<B> vals{static_cast<const B*>(scales), static_cast<const B*>(zeros), group};
    dequant_kernel<<<grid, 256, 0, stream>>>(w, vals, static_cast<B*>(out), N, K);
  } else {
    const Int4Values<__half> vals{static_cast<const __half*>(scales), static_cast<const __half*>(zeros), group};
    dequant_kernel<<<grid, 256, 0, stream>>>(w, vals, static_cast<__half*>(out), N, K);
  }
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

void launch_dequant_mx(Elem t, bool fp32_out, const uint32_t* w, const uint8_t* scales, void* out, int64_t N,
                       int64_t K, cudaStream_t stream) {
  const int grid = grid_for(N * K / 8);
  const MxValues vals{scales};
  if (fp32_out) dequant_kernel<<<grid, 256, 0, stream>>>(w, vals, static_cast<float*>(out), N, K);
  else if (t == Elem::kBF16) dequant_kernel<<<grid, 256, 0, stream>>>(w, vals, static_cast<__nv_bfloat16*>(out), N, K);
  else dequant_kernel<<<grid, 256, 0, stream>>>(w, vals, static_cast<__half*>(out), N, K);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

void launch_dequant_mx8(bool fp32_out, const uint8_t* q, const uint8_t* s, void* out, int64_t M, int64_t K,
                        cudaStream_t stream) {
  const int grid = grid_for(M * K / 8);
  if (fp32_out) dequant_mx8_kernel<<<grid, 256, 0, stream>>>(q, s, static_cast<float*>(out), M, K);
  else dequant_mx8_kernel<<<grid, 256, 0, stream>>>(q, s, static_cast<__nv_bfloat16*>(out), M, K);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

void launch_sum_x(Elem t, const void* x, float* sum_x, int64_t M, int64_t K, int64_t group, cudaStream_t stream) {
  const int64_t warps = M * (K / group);
  const int grid = int((warps * 32 + 255) / 256);
  if (t == Elem::kBF16)
    sum_x_kernel<<<grid, 256, 0, stream>>>(static_cast<const __nv_bfloat16*>(x), sum_x, M, K, group);
  else
    sum_x_kernel<<<grid, 256, 0, stream>>>(static_cast<const __half*>(x), sum_x, M, K, group);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

void launch_prepack(const uint8_t* plain, uint32_t* packed, int64_t N, int64_t K, cudaStream_t stream) {
  prepack_kernel<<<grid_for(N * K / 8), 256, 0, stream>>>(plain, packed, N, K);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

void launch_unpack(const uint32_t* packed, uint8_t* plain, int64_t N, int64_t K, cudaStream_t stream) {
  unpack_kernel<<<grid_for(N * K / 8), 256, 0, stream>>>(packed, plain, N, K);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

}  // namespace lowbit::w4
