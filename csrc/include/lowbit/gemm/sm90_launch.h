#pragma once
// The boundary between the op glue of the families on the Hopper mainloop (sm90_host.h,
// included by <family>_ops.cpp: C++ compiler: checks, planning, tensor maps, allocation) and
// their kernel launches (<family>_launch.cu, nvcc, through sm90_launch.cuh). Host code that
// formats error messages stays on the C++ side: on the device machine, iostream code
// instantiated by nvcc's host pass crashed when it formatted an integer (bench/NOTES.md).
#include <cuda.h>
#include <cuda_runtime.h>

#include "lowbit/gemm/params.h"

namespace lowbit::gemm {

// The shape-dependent choices, made on the host (output shapes never depend on them).
struct Plan {
  bool swap_ab;   // small M: weights on wgmma's M side, tokens on its N side
  int bn;         // Q rows per tile
  int cluster;    // CTAs multicasting one Q tile (1 or 2)
  int splits;     // K splits through a global workspace (and a reduce launch)
  int ksplit;     // swap-AB: CTAs of a cluster splitting K and reducing in shared memory (1, 2, 4)
  int kb_per_split;
  int acc_sets;   // accumulator sets per consumer (2: the next K block issued before promoting)
  int fold;       // promoting, per-row scales: K blocks chained per promotion (1, or 2 / 4: experiment)
};

struct Launch {
  Plan plan;
  CUtensorMap tmap_p, tmap_q;
  CUtensorMap tmap_out;  // C for TMA stores (params.epi.tma_store; else unused)
  GemmParams params;
  ScaleMode mode;
  bool promote;     // false only for the w8a8 accuracy diagnostic (bf16 output)
  bool out_bf16;    // else fp16
  bool pdl;         // launch as a programmatic dependent of the activation quantizer just before it
  int units;        // cluster work units
  int sms;
  cudaStream_t stream;
};

// A family's launcher: the GEMM kernel (and the split-K reduce when plan.splits > 1) on
// a.stream, for that family's operand policy (sm90_launch.cuh).
using LaunchFn = void (*)(const Launch& a);

}  // namespace lowbit::gemm
