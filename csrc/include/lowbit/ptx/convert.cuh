#pragma once
// Conversion instructions, one helper each.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>
#include <type_traits>

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

// 16-bit <-> fp32 for the activation type T (bf16 or fp16), round to nearest even.
template <typename T>
__device__ __forceinline__ float to_f32(T v) {
  if constexpr (std::is_same_v<T, __nv_bfloat16>) return __bfloat162float(v);
  else return __half2float(v);
}
template <typename T>
__device__ __forceinline__ T from_f32(float v) {
  if constexpr (std::is_same_v<T, __nv_bfloat16>) return __float2bfloat16_rn(v);
  else return __float2half_rn(v);
}

// Two signed bytes of `word` (bytes b and b + 1) -> the exact 16-bit pair (lo, hi) of T:
// each byte goes into the low mantissa byte of the fp32 2^23 + 128 + v (one PRMT, after the
// sign bit is flipped to make v + 128 unsigned), one subtraction restores v exactly, and
// |v| <= 128 is exact in bf16 (8 significant bits) and fp16.
template <typename T>
__device__ __forceinline__ uint32_t s8x2_to_pair(uint32_t word, int b) {
  const uint32_t u = word ^ 0x80808080u;
  const float lo = __uint_as_float(__byte_perm(u, 0x4B000000u, 0x7640 | b)) - 8388736.0f;
  const float hi = __uint_as_float(__byte_perm(u, 0x4B000000u, 0x7640 | (b + 1))) - 8388736.0f;
  if constexpr (std::is_same_v<T, __nv_bfloat16>) {
    const __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
    return *reinterpret_cast<const uint32_t*>(&v);
  } else {
    const __half2 v = __floats2half2_rn(lo, hi);
    return *reinterpret_cast<const uint32_t*>(&v);
  }
}

}  // namespace lowbit::ptx
