// int8 swap-AB GEMM kernels (small M: weights on wgmma's M side), a translation unit of their
// own so that the build compiles them beside int8_launch.cu's.
#include "gemm/int8/int8_launch.h"

#include "lowbit/gemm/sm90_launch.cuh"

namespace lowbit::int8 {

void launch_swap_ab(const gemm::Launch& a) { gemm::launch_sm90<gemm::S8Operands, true>(a); }

}  // namespace lowbit::int8
