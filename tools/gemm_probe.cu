// Hopper mainloop probe: the library's sm90_gemm_kernel instantiated directly (no torch), timed
// at large M with diagnostics that need no change to the kernel, to find what holds the 8-bit
// GEMMs at ~900 TFLOP/s (bench/NOTES.md, fp8 v1-v8, int8 v1-v2):
//   full   as the library runs it (row / column scales, bf16 out; TMA-stored unless "_generic")
//   noepi  params.rows_p = 0 and the generic epilogue: every store fails its row test; the sums
//          stay live
//   nomem  (PROBE_NOMEM=1) tensor maps cover K = 128 only: every later K block is out of bounds, so TMA fills
//          the stage with zeros and reads nothing from L2 / HBM (the ring, barriers and
//          tensor cores still run; zero operands draw less power: an upper bound)
//   (nomma configs: an operand policy whose mma is empty: the TMA feed and the ring alone)
// Prints one JSON line per (config, mode, shape).
// Build (device or here): nvcc -gencode arch=compute_90a,code=sm_90a -O3 -std=c++20 -Icsrc/include \
//   -DPROBE_SET=<n> tools/gemm_probe.cu -o build/gemm_probe_<n>   (tools/gemm_probe.sh builds the sets)
#include <cuda.h>
#include <cuda_runtime.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <vector>

#include "lowbit/gemm/sm90_gemm.cuh"

using namespace lowbit::gemm;

#define CHECK_CUDA(x)                                                                          \
  do {                                                                                         \
    cudaError_t e_ = (x);                                                                      \
    if (e_ != cudaSuccess) {                                                                   \
      std::fprintf(stderr, "%s:%d %s: %s\n", __FILE__, __LINE__, #x, cudaGetErrorString(e_)); \
      std::exit(1);                                                                            \
    }                                                                                          \
  } while (0)

// The TMA feed alone: an operand policy with an empty mma (s32 accumulators, chained).
struct NoMmaOperands {
  using Acc = int32_t;
  using Fold = int32_t;
  template <int N>
  struct Mma {
    __device__ __forceinline__ static void mma(uint64_t, uint64_t, int32_t (&)[N / 2], bool) {}
  };
};

// The library's lowbit/tma_desc.h make_2d, less its argument checks (they report through torch,
// which this probe does not link): 128-byte swizzle, boxes of box_rows x box_cols elements.
using EncodeFn = CUresult (*)(CUtensorMap*, CUtensorMapDataType, cuuint32_t, void*, const cuuint64_t*,
                              const cuuint64_t*, const cuuint32_t*, const cuuint32_t*, CUtensorMapInterleave,
                              CUtensorMapSwizzle, CUtensorMapL2promotion, CUtensorMapFloatOOBfill);

static CUtensorMap make_map(const void* base, int64_t rows, int64_t cols, int64_t ld, uint32_t box_rows,
                            int elem_bytes = 1, uint32_t box_cols = 128) {
  static EncodeFn fn = [] {
    void* p = nullptr;
    cudaDriverEntryPointQueryResult q;
    CHECK_CUDA(cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &p, 12000, cudaEnableDefault, &q));
    return reinterpret_cast<EncodeFn>(p);
  }();
  CUtensorMap m;
  const cuuint64_t dims[2] = {cuuint64_t(cols), cuuint64_t(rows)};
  const cuuint64_t strides[1] = {cuuint64_t(ld * elem_bytes)};
  const cuuint32_t box[2] = {box_cols, box_rows};
  const cuuint32_t es[2] = {1, 1};
  if (fn(&m, elem_bytes == 1 ? CU_TENSOR_MAP_DATA_TYPE_UINT8 : CU_TENSOR_MAP_DATA_TYPE_UINT16, 2, const_cast<void*>(base), dims, strides, box, es,
         CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_128B, CU_TENSOR_MAP_L2_PROMOTION_L2_256B,
         CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE) != CUDA_SUCCESS) {
    std::fprintf(stderr, "cuTensorMapEncodeTiled failed\n");
    std::exit(1);
  }
  return m;
}

struct Buffers {
  uint8_t *p, *q;
  float *sp, *sq;
  __nv_bfloat16* out;
};

// PROBE_CONFIG / PROBE_MODE (substrings) and PROBE_M pick cases (for ncu: one kernel at a time).
static bool picked(const char* env, const char* value) {
  const char* f = std::getenv(env);
  return !f || !*f || std::strstr(value, f);
}

// kStoreTma: the library's normal-layout kernels (TMA-stored epilogue); false: the generic one.
template <class Ops, int kBN, int kCluster, bool kPromote, int kAccSets, bool kStoreTma = true, int kNParts = 1,
          int kFold = 1>
void run_config(const char* name, const Buffers& b, int sms) {
  if (!picked("PROBE_CONFIG", name)) return;
  constexpr int kStages = sm90_stages<kBN, kStoreTma>();
  auto kernel = sm90_gemm_kernel<Ops, ScaleMode::kRowCol, kBN, kCluster, kStages, kPromote, 1, 1, __nv_bfloat16,
                                 kAccSets, kFold, kStoreTma, kNParts>;
  constexpr int smem = SmemLayout<kBN, kStages, kStoreTma>::kBytes;
  CHECK_CUDA(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
  cudaLaunchConfig_t cfg{};
  cudaLaunchAttribute attr[1];
  attr[0].id = cudaLaunchAttributeClusterDimension;
  attr[0].val.clusterDim = {unsigned(kCluster), 1, 1};
  cfg.blockDim = dim3(kThreads);
  cfg.dynamicSmemBytes = smem;
  cfg.attrs = attr;
  cfg.numAttrs = 1;
  int resident = sms;
  if (kCluster > 1) {
    cudaLaunchConfig_t q = cfg;
    q.gridDim = dim3(kCluster * (sms / kCluster));
    CHECK_CUDA(cudaOccupancyMaxActiveClusters(&resident, kernel, &q));
  }
  const int shapes[][3] = {{4096, 8192, 8192}, {8192, 8192, 8192}};
  const char* modes[] = {"full", "noepi", "nomem"};
  const int num_modes = std::getenv("PROBE_NOMEM") ? 3 : 2;  // nomem: see the header (misleading with clusters)
  for (auto& s : shapes) {
    const int M = s[0], N = s[1], K = s[2];
    if (std::getenv("PROBE_M") && std::atoi(std::getenv("PROBE_M")) != M) continue;
    for (int mode = 0; mode < num_modes; ++mode) {
      if (!picked("PROBE_MODE", modes[mode])) continue;
      const int kcols = mode == 2 ? 128 : K;
      CUtensorMap tp = make_map(b.p, M, kcols, K, kBlockP);
      CUtensorMap tq = make_map(b.q, N, kcols, K, kBN / kCluster);
      CUtensorMap tout = make_map(b.out, M, N, N, 64, 2, 64);
      GemmParams prm{};
      prm.rows_p = mode == 1 ? 0 : M;
      prm.rows_q = N;
      prm.num_kb = K / kBlockK;
      prm.kb_per_split = prm.num_kb;
      const int tiles_p = M / kBlockP;
      prm.sched = {tiles_p / kCluster, (N + kBN - 1) / kBN, 1};  // (192: a partial last tile, TMA-clipped)
      prm.epi.out = b.out;
      prm.epi.out_si = N;
      prm.epi.out_sj = 1;
      prm.epi.p_scale = b.sp;
      prm.epi.p_scale_stride = 1;
      prm.epi.q_scale = b.sq;
      prm.epi.q_scale_stride = 1;
      prm.epi.tma_store = kStoreTma && mode != 1;  // noepi: the generic path's row test skips every store
      const int units = prm.sched.num_units();
      cfg.gridDim = dim3(kCluster * (units < resident ? units : resident));
      auto launch = [&] { CHECK_CUDA(cudaLaunchKernelEx(&cfg, kernel, tp, tq, tout, prm)); };
      for (int i = 0; i < 3; ++i) launch();
      CHECK_CUDA(cudaDeviceSynchronize());
      cudaEvent_t e0, e1;
      CHECK_CUDA(cudaEventCreate(&e0));
      CHECK_CUDA(cudaEventCreate(&e1));
      const int iters = 20;
      float best = 1e30f, total = 0.f;
      for (int i = 0; i < iters; ++i) {  // one event pair per launch: best and mean
        CHECK_CUDA(cudaEventRecord(e0));
        launch();
        CHECK_CUDA(cudaEventRecord(e1));
        CHECK_CUDA(cudaEventSynchronize(e1));
        float ms = 0.f;
        CHECK_CUDA(cudaEventElapsedTime(&ms, e0, e1));
        best = ms < best ? ms : best;
        total += ms;
      }
      CHECK_CUDA(cudaGetLastError());
      const double flop = 2.0 * M * N * double(K);
      std::printf(
          "{\"config\": \"%s\", \"mode\": \"%s\", \"M\": %d, \"N\": %d, \"K\": %d, \"bn\": %d, \"cluster\": %d, "
          "\"stages\": %d, \"grid\": %d, \"best_us\": %.1f, \"mean_us\": %.1f, \"tflops_best\": %.0f, "
          "\"tflops_mean\": %.0f}\n",
          name, modes[mode], M, N, K, kBN, kCluster, kStages, cfg.gridDim.x, best * 1e3, total / iters * 1e3,
          flop / (best * 1e-3) / 1e12, flop / (total / iters * 1e-3) / 1e12);
      std::fflush(stdout);
      CHECK_CUDA(cudaEventDestroy(e0));
      CHECK_CUDA(cudaEventDestroy(e1));
    }
  }
}

int main() {
  int sms = 0;
  CHECK_CUDA(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0));
  const size_t rows = 8192, K = 8192;
  std::vector<uint8_t> h(rows * K);
  std::mt19937 rng(1234);
  // finite e4m3 (exponent field <= 14: no NaN) and any s8 alike: (byte & 0xF7) clears one exponent bit
  for (auto& v : h) v = uint8_t(rng()) & 0xF7;
  Buffers b{};
  CHECK_CUDA(cudaMalloc(&b.p, rows * K));
  CHECK_CUDA(cudaMalloc(&b.q, rows * K));
  CHECK_CUDA(cudaMemcpy(b.p, h.data(), rows * K, cudaMemcpyHostToDevice));
  for (auto& v : h) v = uint8_t(rng()) & 0xF7;
  CHECK_CUDA(cudaMemcpy(b.q, h.data(), rows * K, cudaMemcpyHostToDevice));
  std::vector<float> ones(rows, 1.0f);
  CHECK_CUDA(cudaMalloc(&b.sp, rows * 4));
  CHECK_CUDA(cudaMalloc(&b.sq, rows * 4));
  CHECK_CUDA(cudaMemcpy(b.sp, ones.data(), rows * 4, cudaMemcpyHostToDevice));
  CHECK_CUDA(cudaMemcpy(b.sq, ones.data(), rows * 4, cudaMemcpyHostToDevice));
  CHECK_CUDA(cudaMalloc(&b.out, rows * rows * 2));
#if PROBE_SET == 1
  run_config<E4M3Operands, 128, 1, true, 2>("fp8_promote_128_c1_acc2", b, sms);  // the library's fp8 rowwise
  run_config<E4M3Operands, 128, 1, true, 2, false>("fp8_promote_128_c1_acc2_generic", b, sms);
  run_config<E4M3Operands, 128, 2, true, 2>("fp8_promote_128_c2_acc2", b, sms);
#elif PROBE_SET == 2
  run_config<S8Operands, 128, 2, false, 1>("s8_chain_128_c2", b, sms);  // the library's int8
  run_config<S8Operands, 256, 1, false, 1>("s8_chain_256_c1", b, sms);
  run_config<S8Operands, 256, 2, false, 1>("s8_chain_256_c2", b, sms);
  run_config<S8Operands, 256, 2, false, 1, false>("s8_chain_256_c2_generic", b, sms);
#elif PROBE_SET == 3
  run_config<E4M3Operands, 256, 2, false, 1>("fp8_chain_256_c2", b, sms);
  run_config<E4M3Operands, 192, 1, true, 1>("fp8_promote_192_c1_pingpong", b, sms);
  run_config<E4M3Operands, 192, 2, true, 1>("fp8_promote_192_c2_pingpong", b, sms);
#elif PROBE_SET == 5
  run_config<E4M3Operands, 256, 1, true, 1, true, 2>("fp8_promote_256_halves_c1", b, sms);
  run_config<E4M3Operands, 256, 2, true, 1, true, 2>("fp8_promote_256_halves_c2", b, sms);
#elif PROBE_SET == 6
  // chained within a fold of 4 / 8 K blocks, one promotion a fold (sm90_gemm.cuh kFold)
  run_config<E4M3Operands, 192, 2, true, 1, true, 1, 4>("fp8_fold4_192_c2", b, sms);
  run_config<E4M3Operands, 192, 2, true, 1, true, 1, 8>("fp8_fold8_192_c2", b, sms);
  run_config<E4M3Operands, 192, 1, true, 1, true, 1, 8>("fp8_fold8_192_c1", b, sms);
  run_config<E4M3Operands, 128, 2, true, 1, true, 1, 4>("fp8_fold4_128_c2", b, sms);
  run_config<E4M3Operands, 128, 2, true, 1, true, 1, 8>("fp8_fold8_128_c2", b, sms);
#elif PROBE_SET == 4
  run_config<NoMmaOperands, 128, 1, false, 1>("nomma_128_c1", b, sms);
  run_config<NoMmaOperands, 256, 2, false, 1>("nomma_256_c2", b, sms);
#endif
  return 0;
}
