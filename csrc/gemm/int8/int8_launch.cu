// int8 GEMM kernel instantiations: the Hopper mainloop (lowbit/gemm/sm90_gemm.cuh) with the
// s8 operand policy (wgmma .s32.s8.s8, exact s32 sums), per-row/per-tensor scales. The normal
// (large-M) kernels here, the swap-AB (small-M) ones in int8_launch_swap.cu.
#include "gemm/int8/int8_launch.h"

#include "lowbit/gemm/sm90_launch.cuh"

namespace lowbit::int8 {

void launch(const gemm::Launch& a) {
  if (a.plan.swap_ab) return launch_swap_ab(a);
  gemm::launch_sm90<gemm::S8Operands, false>(a);
}

}  // namespace lowbit::int8
