#pragma once
// fp8 kernel launcher (fp8_launch.cu, nvcc) for the op glue (fp8_ops.cpp).
#include "lowbit/gemm/sm90_launch.h"

namespace lowbit::fp8 {
void launch(const gemm::Launch& a);
// (its swap-AB half, in fp8_launch_swap.cu)
void launch_swap_ab(const gemm::Launch& a);
}  // namespace lowbit::fp8
