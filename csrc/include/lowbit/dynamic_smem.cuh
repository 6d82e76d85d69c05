#pragma once
// Opening a kernel to more than 48 KB of dynamic shared memory (less its static shared memory): a
// launch past that fails unless cudaFuncAttributeMaxDynamicSharedMemorySize allows it. One helper
// for the launchers whose sizes depend on the plan (the 4-bit GEMVs' x ring, 8-warp rings and staged
// x, v6's staged slice) and those with one size per kernel (the mixed-input wgmma GEMM).
#include <c10/cuda/CUDAException.h>
#include <cuda_runtime.h>

namespace lowbit {

// kKernel opened to `bytes`, once per increase (per kernel: each instantiation has its own count).
template <auto kKernel>
void allow_dynamic_smem(int bytes) {
  static int allowed = 0;  // the most this kernel was opened to
  if (bytes > allowed) {
    C10_CUDA_CHECK(cudaFuncSetAttribute(kKernel, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes));
    allowed = bytes;
  }
}

}  // namespace lowbit
