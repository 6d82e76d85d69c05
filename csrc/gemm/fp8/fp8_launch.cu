// fp8 (e4m3) GEMM kernel instantiations: the Hopper mainloop (lowbit/gemm/sm90_gemm.cuh)
// with the e4m3 operand policy, per-row/per-tensor and 128x128-block scales.
#include "gemm/fp8/fp8_launch.h"

#include "lowbit/gemm/sm90_launch.cuh"

namespace lowbit::fp8 {

void launch(const gemm::Launch& a) { gemm::launch_sm90<gemm::E4M3Operands>(a); }

}  // namespace lowbit::fp8
