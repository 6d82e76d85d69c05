// Microbenchmark: the rate of e4m3 wgmma with both operands in shared memory, with no TMA
// and no mbarriers, to separate the instruction's ceiling from the GEMM pipeline's losses.
// One CTA per SM; each consumer warpgroup issues groups of 4 wgmma k32 (one 128-byte K
// block, as the GEMM does) on fixed shared-memory tiles.
//   mode 0: wait for each group before the next (wait_group 0), as the promoting GEMM does
//   mode 1: two accumulator sets, the next group issued before the previous is waited for
//   mode 2: mode 0 + the promotion FADDs into an fp32 copy
//   mode 3: pairs: two groups on two accumulator sets issued back to back, wait_group 1,
//           promote the first, wait_group 0, promote the second (the GEMM's kAccSets = 2)
// (mode 0 overstates: ptxas drops groups whose results the next group overwrites.)
// Build and run (device): nvcc -gencode arch=compute_90a,code=sm_90a -O3 -std=c++17 -Icsrc/include tools/wgmma_rate.cu -o /tmp/wr && /tmp/wr
#include <cuda_runtime.h>

#include <cstdint>
#include <cstdio>

#include "lowbit/ptx/wgmma.cuh"

using namespace lowbit::ptx;

template <int N, int kWGs, int kMode>
__global__ void __launch_bounds__(128 * kWGs, 1) rate_kernel(int iters, float* sink) {
  extern __shared__ __align__(1024) uint8_t smem_raw[];
  uint8_t* smem = reinterpret_cast<uint8_t*>((reinterpret_cast<uintptr_t>(smem_raw) + 1023) & ~uintptr_t(1023));
  constexpr int kABytes = 64 * 128, kBBytes = N * 128;
  for (int i = threadIdx.x; i < kWGs * kABytes + kBBytes; i += blockDim.x) smem[i] = uint8_t((i * 37) & 0x6F);
  __syncthreads();
  const int wg = threadIdx.x / 128;
  const uint64_t da = smem_desc_k_major_sw128(smem + wg * kABytes);
  const uint64_t db = smem_desc_k_major_sw128(smem + kWGs * kABytes);
  constexpr int R = N / 2;
  float acc0[R], acc1[R], fin[(kMode >= 2) ? R : 1];  // acc1: used in mode 1 only
#pragma unroll
  for (int r = 0; r < R; ++r) acc0[r] = 0.f;
#pragma unroll
  for (int r = 0; r < R; ++r) acc1[r] = 0.f;
#pragma unroll
  for (int r = 0; r < ((kMode >= 2) ? R : 1); ++r) fin[r] = 0.f;
  if constexpr (kMode == 3) {
    for (int it = 0; it < iters; it += 2) {
      wgmma_fence();
#pragma unroll
      for (int k = 0; k < 4; ++k) WgmmaE4M3<N>::mma(da + 2 * k, db + 2 * k, acc0, k > 0);
      wgmma_commit();
      wgmma_fence();
#pragma unroll
      for (int k = 0; k < 4; ++k) WgmmaE4M3<N>::mma(da + 2 * k, db + 2 * k, acc1, k > 0);
      wgmma_commit();
      wgmma_wait<1>();
#pragma unroll
      for (int r = 0; r < R; ++r) fin[r] += acc0[r];
      wgmma_wait<0>();
#pragma unroll
      for (int r = 0; r < R; ++r) fin[r] += acc1[r];
    }
  } else
  for (int it = 0; it < iters; ++it) {
    // (no lambda here: a lambda taking the accumulator by reference made ptxas serialize
    // every wgmma, C7514)
    const bool second = kMode == 1 && (it % 2);
    wgmma_fence();
    if (!second) {
#pragma unroll
      for (int k = 0; k < 4; ++k) WgmmaE4M3<N>::mma(da + 2 * k, db + 2 * k, acc0, kMode == 1 || k > 0);
    } else {
#pragma unroll
      for (int k = 0; k < 4; ++k) WgmmaE4M3<N>::mma(da + 2 * k, db + 2 * k, acc1, true);
    }
    wgmma_commit();
    if constexpr (kMode == 1) {
      wgmma_wait<1>();
    } else {
      wgmma_wait<0>();
      if constexpr (kMode == 2) {
#pragma unroll
        for (int r = 0; r < R; ++r) fin[r] += acc0[r];
      }
    }
  }
  wgmma_wait<0>();
  float s = 0.f;
#pragma unroll
  for (int r = 0; r < R; ++r) s += acc0[r];
  if constexpr (kMode == 1) {
#pragma unroll
    for (int r = 0; r < R; ++r) s += acc1[r];
  }
  if constexpr (kMode >= 2) {
#pragma unroll
    for (int r = 0; r < R; ++r) s += fin[r];
  }
  if (s == 12345.f) sink[threadIdx.x] = s;  // keeps the work alive
}

template <int N, int kWGs, int kMode>
void run(int sms, float* sink) {
  auto k = rate_kernel<N, kWGs, kMode>;
  const int smem = 200 * 1024;  // one CTA per SM
  cudaFuncSetAttribute(k, cudaFuncAttributeMaxDynamicSharedMemorySize, smem);
  const int iters = 20000;
  k<<<sms, 128 * kWGs, smem>>>(100, sink);
  cudaEvent_t a, b;
  cudaEventCreate(&a);
  cudaEventCreate(&b);
  cudaEventRecord(a);
  k<<<sms, 128 * kWGs, smem>>>(iters, sink);
  cudaEventRecord(b);
  cudaEventSynchronize(b);
  float ms = 0;
  cudaEventElapsedTime(&ms, a, b);
  const double flops = double(sms) * kWGs * iters * 4 * 2.0 * 64 * N * 32;
  std::printf("{\"n\": %d, \"warpgroups\": %d, \"mode\": %d, \"ms\": %.3f, \"tflops\": %.1f, \"err\": \"%s\"}\n", N, kWGs,
              kMode, ms, flops / ms / 1e9, cudaGetErrorString(cudaGetLastError()));
}

int main() {
  int sms = 0;
  cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0);
  float* sink;
  cudaMalloc(&sink, 1024 * sizeof(float));
  run<128, 1, 0>(sms, sink);
  run<128, 2, 0>(sms, sink);
  run<128, 2, 1>(sms, sink);
  run<128, 2, 2>(sms, sink);
  run<128, 2, 3>(sms, sink);
  run<128, 1, 2>(sms, sink);
  run<128, 1, 3>(sms, sink);
  run<128, 3, 0>(sms, sink);
  run<256, 1, 0>(sms, sink);
  run<256, 2, 0>(sms, sink);
  run<64, 2, 0>(sms, sink);
  run<64, 2, 1>(sms, sink);
  return 0;
}
