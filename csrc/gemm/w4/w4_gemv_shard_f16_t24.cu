// A shard of the 4-bit GEMV's instantiations (w4_gemv_launch.cuh says why): fp16 x, 9..32 tokens.
#include "gemm/w4/w4_gemv_launch.cuh"

namespace lowbit::w4 {
template void gemv_tiles_typed<__half, 2>(const GemvParams&, const CUtensorMap&, bool, cudaStream_t);
template void gemv_tiles_typed<__half, 4>(const GemvParams&, const CUtensorMap&, bool, cudaStream_t);
}  // namespace lowbit::w4
