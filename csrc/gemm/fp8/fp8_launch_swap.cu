// fp8 (e4m3) swap-AB GEMM kernels (small M: weights on wgmma's M side), a translation unit of
// their own so that the build compiles them beside fp8_launch.cu's.
#include "gemm/fp8/fp8_launch.h"

#include "lowbit/gemm/sm90_launch.cuh"

namespace lowbit::fp8 {

void launch_swap_ab(const gemm::Launch& a) { gemm::launch_sm90<gemm::E4M3Operands, true>(a); }

}  // namespace lowbit::fp8
