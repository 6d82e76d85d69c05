// fp8 (e4m3) GEMM kernel instantiations: the Hopper mainloop (lowbit/gemm/sm90_gemm.cuh)
// with the e4m3 operand policy, per-row/per-tensor and 128x128-block scales. The normal
// (large-M) kernels here, the swap-AB (small-M) ones in fp8_launch_swap.cu.
#include "gemm/fp8/fp8_launch.h"

#include "lowbit/gemm/sm90_launch.cuh"

namespace lowbit::fp8 {

void launch(const gemm::Launch& a) {
  if (a.plan.swap_ab) return launch_swap_ab(a);
  gemm::launch_sm90<gemm::E4M3Operands, false>(a);
}

}  // namespace lowbit::fp8
