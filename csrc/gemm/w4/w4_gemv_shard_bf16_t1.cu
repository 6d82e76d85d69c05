// A shard of the 4-bit GEMV's instantiations (w4_gemv_launch.cuh says why): bf16 x, 1..8 tokens.
#include "gemm/w4/w4_gemv_launch.cuh"

namespace lowbit::w4 {
template void gemv_tiles_typed<__nv_bfloat16, 1>(const GemvParams&, const CUtensorMap&, bool, cudaStream_t);
}  // namespace lowbit::w4
