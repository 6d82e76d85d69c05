#pragma once
// Persistent tile scheduling: every CTA walks work units blockIdx.x, +gridDim.x, ...
// A unit is (tile along P, tile along Q, K split). Units are ordered in groups of
// kGroupP tiles along P that sweep Q together, so the CTAs running at one time share
// few distinct P and Q tiles and re-read them from L2 rather than HBM.
#include <cstdint>

namespace lowbit::gemm {

struct WorkUnit {
  int tile_p, tile_q, split;
};

template <int kGroupP>
struct TileScheduler {
  int tiles_p, tiles_q, splits;

  __device__ __forceinline__ int num_units() const { return tiles_p * tiles_q * splits; }

  __device__ __forceinline__ WorkUnit unit(int u) const {
    const int split = u % splits;
    const int t = u / splits;
    const int per_group = kGroupP * tiles_q;
    const int group = t / per_group;
    const int first_p = group * kGroupP;
    const int group_p = min(tiles_p - first_p, kGroupP);
    const int in_group = t - group * per_group;
    return {first_p + in_group % group_p, in_group / group_p, split};
  }
};

}  // namespace lowbit::gemm
