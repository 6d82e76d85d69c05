// Microbenchmark: how fast can warps stream a weight matrix from HBM with no GEMV arithmetic?
// Separates the streaming structure of the a16w4 GEMV v8 (per-warp rings of bulk copies) from
// its compute: if the bare ring already stops near v8's 1.4-2.0 TB/s, the structure is the
// limit (copy size, bytes in flight, number of streams); if it reaches cuBLAS's ~2.8 TB/s, the
// per-block work is. A plain 16-byte-load stream (what cuBLAS and the 8-bit-row GEMV do) runs
// beside it.
//   bulk: each warp streams its own contiguous slice in `chunk`-byte bulk copies through a ring
//         of `stages` slots (lane 0 copies; all lanes wait on the slot's mbarrier, read it with
//         16-byte shared loads, release it through an empty mbarrier), as v8 does.
//   ldg:  each warp reads its slice with ld.global.nc.v4, `unroll` loads per lane in flight.
// Each read value is folded into a register sum written once per thread (so nothing is elided).
// Build and run (device):
//   nvcc -gencode arch=compute_90a,code=sm_90a -O3 -std=c++17 -Icsrc/include tools/stream_probe.cu -o /tmp/sp && /tmp/sp
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>

#include "lowbit/ptx/mbarrier.cuh"
#include "lowbit/ptx/memory.cuh"
#include "lowbit/ptx/tma.cuh"

using namespace lowbit::ptx;

__global__ void bulk_stream_kernel(const uint8_t* src, size_t per_warp, int chunk, int stages, uint32_t* sink) {
  extern __shared__ __align__(128) uint8_t smem[];
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, warps = blockDim.x / 32;
  uint8_t* ring = smem + size_t(warp) * stages * chunk;
  uint64_t* bars = reinterpret_cast<uint64_t*>(smem + size_t(warps) * stages * chunk) + warp * 2 * stages;
  uint64_t *full = bars, *empty = bars + stages;
  const size_t wid = size_t(blockIdx.x) * warps + warp;
  const uint8_t* from = src + wid * per_warp;
  const int nb = int(per_warp / chunk);
  if (lane == 0) {
    for (int s = 0; s < stages; ++s) mbarrier_init(&full[s], 1), mbarrier_init(&empty[s], 32);
    fence_barrier_init();
    for (int s = 0; s < stages && s < nb; ++s) {
      mbarrier_arrive_expect_tx(&full[s], chunk);
      bulk_copy_g2s(ring + s * chunk, from + size_t(s) * chunk, chunk, &full[s]);
    }
  }
  __syncwarp();
  uint32_t acc = 0;
  for (int b = 0; b < nb; ++b) {
    const int s = b % stages;
    if (b > 0 && b - 1 + stages < nb) {  // refill the slot block b - 1 used (as v8)
      const int sp = (b - 1) % stages;
      mbarrier_arrive(&empty[sp]);
      if (lane == 0) {
        mbarrier_wait(&empty[sp], ((b - 1) / stages) & 1);
        mbarrier_arrive_expect_tx(&full[sp], chunk);
        bulk_copy_g2s(ring + sp * chunk, from + size_t(b - 1 + stages) * chunk, chunk, &full[sp]);
      }
    }
    mbarrier_wait(&full[s], (b / stages) & 1);
    for (int o = lane * 16; o < chunk; o += 512) {
      const uint4 v = *reinterpret_cast<const uint4*>(ring + s * chunk + o);
      acc += v.x ^ v.y ^ v.z ^ v.w;
    }
  }
  sink[blockIdx.x * blockDim.x + threadIdx.x] = acc;
}

template <int kUnroll>
__global__ void ldg_stream_kernel(const uint8_t* src, size_t per_warp, uint32_t* sink) {
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, warps = blockDim.x / 32;
  const size_t wid = size_t(blockIdx.x) * warps + warp;
  const uint8_t* from = src + wid * per_warp + lane * 16;
  uint32_t acc = 0;
  for (size_t o = 0; o < per_warp; o += 512 * kUnroll) {
    uint4 v[kUnroll];
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) v[u] = ld_global_nc_v4(from + o + u * 512);
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) acc += v[u].x ^ v[u].y ^ v[u].z ^ v[u].w;
  }
  sink[blockIdx.x * blockDim.x + threadIdx.x] = acc;
}

int main() {
  int sms = 0;
  cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0);
  const size_t kBytes = size_t(256) << 20;  // 5x L2: every pass streams from HBM
  uint8_t* buf;
  uint32_t* sink;
  cudaMalloc(&buf, kBytes);
  cudaMemset(buf, 0x5A, kBytes);
  cudaMalloc(&sink, size_t(sms) * 64 * 32 * 4);
  cudaEvent_t e0, e1;
  cudaEventCreate(&e0);
  cudaEventCreate(&e1);
  auto time = [&](auto launch) {
    launch();  // warm-up
    cudaEventRecord(e0);
    const int reps = 10;
    for (int r = 0; r < reps; ++r) launch();
    cudaEventRecord(e1);
    cudaEventSynchronize(e1);
    float ms = 0;
    cudaEventElapsedTime(&ms, e0, e1);
    const cudaError_t err = cudaGetLastError();
    return err == cudaSuccess ? double(kBytes) * reps / (ms * 1e-3) / 1e9 : -1.0;
  };
  // bulk rings: warps per CTA 4; CTAs per SM 2..8; chunk 1..4 KB; stages 2..8 (<= 200 KB per SM)
  for (int chunk : {1024, 2048, 4096})
    for (int stages : {2, 4, 8})
      for (int ctas : {2, 4, 6, 8}) {
        const int warps = 4;
        const size_t smem = size_t(warps) * stages * chunk + warps * 2 * stages * 8;
        if (smem * ctas > 200 * 1024 || smem > 200 * 1024) continue;
        const size_t total_warps = size_t(sms) * ctas * warps;
        const size_t per_warp = kBytes / total_warps / chunk * chunk;
        cudaFuncSetAttribute(bulk_stream_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem));
        const double gbs = time([&] {
          bulk_stream_kernel<<<sms * ctas, warps * 32, smem>>>(buf, per_warp, chunk, stages, sink);
        });
        const double used = double(per_warp) * total_warps / double(kBytes);  // share of the buffer read
        printf("{\"kind\": \"bulk\", \"chunk\": %d, \"stages\": %d, \"warps_per_sm\": %d, \"kb_in_flight_per_sm\": %d, "
               "\"gb_s\": %.0f}\n", chunk, stages, ctas * warps, int(ctas * warps * stages * chunk / 1024), gbs * used);
      }
  auto ldg = [&](auto kernel, int unroll) {
    for (int ctas : {4, 8, 16}) {
      const int warps = 4;
      const size_t total_warps = size_t(sms) * ctas * warps;
      const size_t per_warp = kBytes / total_warps / (512 * unroll) * (512 * unroll);
      const double gbs = time([&] { kernel<<<sms * ctas, warps * 32>>>(buf, per_warp, sink); });
      const double used = double(per_warp) * total_warps / double(kBytes);
      printf("{\"kind\": \"ldg\", \"unroll\": %d, \"warps_per_sm\": %d, \"kb_in_flight_per_sm\": %d, \"gb_s\": %.0f}\n",
             unroll, ctas * warps, ctas * warps * unroll / 2, gbs * used);
    }
  };
  ldg(ldg_stream_kernel<2>, 2);
  ldg(ldg_stream_kernel<4>, 4);
  ldg(ldg_stream_kernel<8>, 8);

  // Per-launch streams the size of one GEMV's weights (session 20, H200: the a16w4 GEMV v8 reads
  // 8192^2's 34 MB at ~1.8 TB/s, 28672 x 8192's 117 MB at ~2.2, cuBLAS bf16 ~4.2): back-to-back
  // launches, each reading the next of several regions (>= 4x L2 in all, so every launch reads
  // HBM), with v8's geometry: `per_warp` contiguous bytes a warp, 4 warps a CTA, at most 4 CTAs an
  // SM (48 KB of dynamic shared memory each). Time per launch includes the ramp and the tail.
  const size_t kL2 = size_t(60) << 20;
  for (size_t launch_bytes : {size_t(32) << 20, size_t(112) << 20}) {
    const int regions = int(std::max<size_t>(4, (4 * kL2 + launch_bytes - 1) / launch_bytes));
    if (size_t(regions) * launch_bytes > kBytes * 4) continue;
    uint8_t* win;
    if (cudaMalloc(&win, size_t(regions) * launch_bytes) != cudaSuccess) continue;
    cudaMemset(win, 0x3C, size_t(regions) * launch_bytes);
    uint32_t* sink2;
    cudaMalloc(&sink2, (launch_bytes / 1024) * 32 * 4 + 4096);
    auto per_launch_us = [&](auto launch) {
      const int reps = 8 * regions;
      for (int r = 0; r < regions; ++r) launch(win + size_t(r) * launch_bytes);
      cudaEventRecord(e0);
      for (int r = 0; r < reps; ++r) launch(win + size_t(r % regions) * launch_bytes);
      cudaEventRecord(e1);
      cudaEventSynchronize(e1);
      float ms = 0;
      cudaEventElapsedTime(&ms, e0, e1);
      return cudaGetLastError() == cudaSuccess ? double(ms) * 1e3 / reps : -1.0;
    };
    for (int per_warp_kb : {16, 64})
      for (int chunk : {1024, 2048, 4096}) {
        const int stages = 8192 / chunk;  // 8 KB in flight a warp, as v8
        const int warps = 4;
        const size_t smem = 48 * 1024;    // caps the SM at 4 CTAs (v8's launch bound)
        const size_t total_warps = launch_bytes / (size_t(per_warp_kb) * 1024);
        cudaFuncSetAttribute(bulk_stream_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem));
        const double us = per_launch_us([&](const uint8_t* from) {
          bulk_stream_kernel<<<int(total_warps / warps), warps * 32, smem>>>(from, size_t(per_warp_kb) * 1024, chunk,
                                                                             stages, sink2);
        });
        printf("{\"kind\": \"launch_bulk\", \"mb\": %d, \"per_warp_kb\": %d, \"chunk\": %d, \"stages\": %d, "
               "\"us\": %.2f, \"gb_s\": %.0f}\n", int(launch_bytes >> 20), per_warp_kb, chunk, stages, us,
               double(launch_bytes) / (us * 1e-6) / 1e9);
      }
    for (int per_warp_kb : {16, 64}) {
      const size_t total_warps = launch_bytes / (size_t(per_warp_kb) * 1024);
      const double us = per_launch_us([&](const uint8_t* from) {
        ldg_stream_kernel<8><<<int(total_warps / 4), 128>>>(from, size_t(per_warp_kb) * 1024, sink2);
      });
      printf("{\"kind\": \"launch_ldg8\", \"mb\": %d, \"per_warp_kb\": %d, \"us\": %.2f, \"gb_s\": %.0f}\n",
             int(launch_bytes >> 20), per_warp_kb, us, double(launch_bytes) / (us * 1e-6) / 1e9);
    }
    cudaFree(sink2);
    cudaFree(win);
  }
  return 0;
}
