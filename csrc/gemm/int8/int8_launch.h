#pragma once
// int8 kernel launcher (int8_launch.cu, nvcc) for the op glue (int8_ops.cpp).
#include "lowbit/gemm/sm90_launch.h"

namespace lowbit::int8 {
void launch(const gemm::Launch& a);
// (its swap-AB half, in int8_launch_swap.cu)
void launch_swap_ab(const gemm::Launch& a);
}  // namespace lowbit::int8
