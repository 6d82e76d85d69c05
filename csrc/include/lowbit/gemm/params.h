#pragma once
// Plain-data parameters of the Hopper GEMM (sm90_gemm.cuh), shared by the host code that
// plans a launch (compiled by the C++ compiler) and the kernels (compiled by nvcc).
#include <cstdint>

#if defined(__CUDACC__)
#define LOWBIT_SCHED_FN __host__ __device__ __forceinline__
#else
#define LOWBIT_SCHED_FN inline
#endif

namespace lowbit::gemm {

constexpr int kBlockP = 128;  // rows of P per tile: 2 consumer warpgroups x 64 (wgmma M)
constexpr int kBlockK = 128;  // bytes of K per stage: one 128-byte swizzle row of 8-bit data
constexpr int kWgmmaK = 32;   // K per 8-bit wgmma
constexpr int kThreads = 384; // producer warpgroup + 2 consumer warpgroups
constexpr int kGroupP = 8;    // scheduler swizzle group

enum class ScaleMode {
  kRowCol,  // per-row of P and per-row of Q fp32 scales (per token / per channel / per tensor), applied in the epilogue
  kBlock,   // DeepSeek-V3: one scale per (row block, 128-K block) on each operand, applied at promotion
};

struct WorkUnit {
  int tile_p, tile_q, split;
};

// Persistent tile scheduling: every CTA (cluster) walks work units blockIdx.x, +gridDim.x,
// ... A unit is (tile along P, tile along Q, K split). Units are ordered in groups of
// kGroupP tiles along P that sweep Q together, so the CTAs running at one time share few
// distinct P and Q tiles and re-read them from L2 rather than HBM.
struct TileScheduler {
  int tiles_p, tiles_q, splits;

  LOWBIT_SCHED_FN int num_units() const { return tiles_p * tiles_q * splits; }

  LOWBIT_SCHED_FN WorkUnit unit(int u) const {
    const int split = u % splits;
    const int t = u / splits;
    const int per_group = kGroupP * tiles_q;
    const int group = t / per_group;
    const int first_p = group * kGroupP;
    const int group_p = tiles_p - first_p < kGroupP ? tiles_p - first_p : kGroupP;
    const int in_group = t - group * per_group;
    return {first_p + in_group % group_p, in_group / group_p, split};
  }
};

// Epilogue (and split-K reduce) arguments, in P/Q index space.
struct EpilogueArgs {
  void* out;                 // OutT
  int64_t out_si, out_sj;    // element strides of C[i, j] in out
  const float* p_scale;      // kRowCol: scale of row i (stride p_scale_stride; 0 = per tensor)
  int64_t p_scale_stride;
  const float* q_scale;
  int64_t q_scale_stride;
  const void* bias;          // OutT, indexed by i (bias_on_p) or j; may be null
  bool bias_on_p;
  bool tma_store;            // the tile goes out through shared memory and TMA stores (the kernel's
                             // kStoreTma, no K split, C row-major with 16-byte rows: sm90_host.h)
};

// kBlock scale tables: scale of P row i for K block kb = p[(i / kPDiv) * p_ld + kb].
struct BlockScaleArgs {
  const float* p;
  int64_t p_ld;
  const float* q;
  int64_t q_ld;
};

struct GemmParams {
  int rows_p, rows_q, num_kb;    // extents: P rows, Q rows, K blocks (ceil(K / 128))
  int kb_per_split;
  TileScheduler sched;           // tiles_p counts clusters of P tiles
  EpilogueArgs epi;
  BlockScaleArgs block;
  float* workspace;              // splits > 1: fp32 [splits][rows_p][rows_q]
  bool p_is_weight;              // swap-AB: P holds the weights (else Q); what a PDL launch may load early
};

}  // namespace lowbit::gemm
