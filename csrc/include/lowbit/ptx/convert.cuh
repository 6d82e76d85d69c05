#pragma once
// Conversion instructions, one helper each.
#include <cstdint>

namespace lowbit::ptx {

// Two fp32 -> two e4m3 in one instruction, round to nearest even, saturating finite
// values to +-448 (what the OCP spec and our reference prescribe). sm_89+.
// Result: low byte from `lo`, high byte from `hi`.
__device__ __forceinline__ uint16_t cvt_e4m3x2_satfinite(float lo, float hi) {
  uint16_t out;
  // PTX packs the first source into the upper half: pass (hi, lo).
  asm("cvt.rn.satfinite.e4m3x2.f32 %0, %1, %2;" : "=h"(out) : "f"(hi), "f"(lo));
  return out;
}

}  // namespace lowbit::ptx
