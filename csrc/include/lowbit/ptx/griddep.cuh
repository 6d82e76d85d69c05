#pragma once
// Programmatic dependent launch (sm_90), one helper each. A kernel launched with the
// programmatic-stream-serialization attribute may start before the kernel ahead of it in the
// stream has finished: it must wait (griddep_wait) before it reads what that kernel writes, and
// the kernel ahead may let it start early (griddep_launch_dependents). Without the attribute
// the wait returns at once and the trigger does nothing.
namespace lowbit::ptx {

// Block until the grids this one depends on have completed and their memory is visible.
__device__ __forceinline__ void griddep_wait() { asm volatile("griddepcontrol.wait;" ::: "memory"); }

// Let the grid that depends on this one launch once every CTA of this one has called this (or exited).
__device__ __forceinline__ void griddep_launch_dependents() { asm volatile("griddepcontrol.launch_dependents;" :::); }

}  // namespace lowbit::ptx
