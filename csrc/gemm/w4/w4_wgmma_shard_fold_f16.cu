// A shard of the mixed-input wgmma's instantiations (w4_wgmma_launch.cuh says why): int4 with the
// scales folded into the operand, fp16 x, 128- and 256-row CTAs.
#include "gemm/w4/w4_wgmma_launch.cuh"

namespace lowbit::w4 {
template void wgmma_int4<__half, WgmmaWeights::kInt4Fold, 1>(const CUtensorMap&, const W4WgmmaParams&, cudaStream_t);
template void wgmma_int4<__half, WgmmaWeights::kInt4Fold, 2>(const CUtensorMap&, const W4WgmmaParams&, cudaStream_t);
}  // namespace lowbit::w4
