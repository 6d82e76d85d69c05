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

// 16-bit <-> fp32 for the activation type T (bf16 or fp16), round to nearest even (fp32: itself).
template <typename T>
__device__ __forceinline__ float to_f32(T v) {
  if constexpr (std::is_same_v<T, float>) return v;
  else if constexpr (std::is_same_v<T, __nv_bfloat16>) return __bfloat162float(v);
  else return __half2float(v);
}
template <typename T>
__device__ __forceinline__ T from_f32(float v) {
  if constexpr (std::is_same_v<T, float>) return v;
  else if constexpr (std::is_same_v<T, __nv_bfloat16>) return __float2bfloat16_rn(v);
  else return __float2half_rn(v);
}

// Two floats rounded to T (bf16 or fp16) and packed as one 4-byte pair, lo in the low half.
template <typename T>
__device__ __forceinline__ uint32_t pack_f32x2(float lo, float hi) {
  if constexpr (std::is_same_v<T, __nv_bfloat16>) {
    const __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
    return *reinterpret_cast<const uint32_t*>(&v);
  } else {
    const __half2 v = __floats2half2_rn(lo, hi);
    return *reinterpret_cast<const uint32_t*>(&v);
  }
}

// The inverse: a 4-byte pair of T -> two floats (exact).
template <typename T>
__device__ __forceinline__ float2 unpack_f32x2(uint32_t pair) {
  if constexpr (std::is_same_v<T, __nv_bfloat16>) {
    return make_float2(__uint_as_float(pair << 16), __uint_as_float(pair & 0xFFFF0000u));
  } else {
    return __half22float2(*reinterpret_cast<const __half2*>(&pair));
  }
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
  return pack_f32x2<T>(lo, hi);
}

// Two e4m3 bytes of `word` (bytes b and b + 1) times `scale` -> the bf16 pair (lo, hi). For
// MXFP8 weights, scale = 2^(e - 127) of the block. cvt.rn.f16x2.e4m3x2 is exact (every e4m3
// value is an fp16; NaN stays NaN; low byte -> low half, as cuda_fp8.h's scalar path reads
// it), the fp32 products by a power of two are exact, and the one rounding to bf16 is exact
// too down to bf16's smallest subnormal (2^-133): the same bound as the MX dequantizers. sm_89+.
__device__ __forceinline__ uint32_t e4m3x2_scaled_to_bf16x2(uint32_t word, int b, float scale) {
  uint32_t h;
  asm("cvt.rn.f16x2.e4m3x2 %0, %1;" : "=r"(h) : "h"(uint16_t(word >> (8 * b))));
  const float2 f = __half22float2(*reinterpret_cast<const __half2*>(&h));
  const __nv_bfloat162 v = __floats2bfloat162_rn(__fmul_rn(f.x, scale), __fmul_rn(f.y, scale));
  return *reinterpret_cast<const uint32_t*>(&v);
}

}  // namespace lowbit::ptx
