#pragma once
// Scalar number formats shared by the CPU reference and the CUDA kernels: one
// definition of every rounding and saturation rule. Host and device.
//
//   e4m3 (OCP FP8 E4M3, "fn"): bias 7, max 448, no infinity, NaN = S.1111.111,
//     subnormals m/8 * 2^-6.
//   e2m1 (OCP MX FP4): bias 1, values 0, .5, 1, 1.5, 2, 3, 4, 6; sign in bit 3;
//     no NaN or infinity.
//   E8M0 (OCP MX scale): 2^(e - 127), e in 0..254; 0xFF = NaN.
// Rounding is round-to-nearest-even everywhere; conversions to e4m3/e2m1 saturate
// to the format's maximum (finite inputs) as OCP MX v1.0 prescribes.
#include <cmath>
#include <cstdint>
#include <cstring>

#if defined(__CUDACC__)
#define LOWBIT_HD __host__ __device__ __forceinline__
#else
#define LOWBIT_HD inline
#endif

namespace lowbit {

LOWBIT_HD uint32_t float_bits(float v) {
#if defined(__CUDA_ARCH__)
  return __float_as_uint(v);
#else
  uint32_t u;
  std::memcpy(&u, &v, 4);
  return u;
#endif
}

LOWBIT_HD float bits_float(uint32_t u) {
#if defined(__CUDA_ARCH__)
  return __uint_as_float(u);
#else
  float v;
  std::memcpy(&v, &u, 4);
  return v;
#endif
}

// |v| as ordered bits: for non-negative floats the bit pattern orders like the value,
// and NaN (> 0x7F800000) orders above +inf. So max over abs_bits gives amax and tells
// in one comparison whether a block holds a non-finite value.
LOWBIT_HD uint32_t abs_bits(float v) { return float_bits(v) & 0x7FFFFFFFu; }
constexpr uint32_t kInfBits = 0x7F800000u;

// Round to nearest integer, ties to even (the default FP rounding mode).
LOWBIT_HD float round_even(float v) {
#if defined(__CUDA_ARCH__)
  return rintf(v);
#else
  return std::nearbyint(v);
#endif
}

// 2^e as a float, for e in [-149, 127]: built from bits, exact (no libm).
LOWBIT_HD float exp2i(int e) {
  if (e >= -126) return bits_float(uint32_t(e + 127) << 23);
  return bits_float(1u << (e + 149));  // subnormal powers of two
}

// floor(log2(a)) for finite a > 0, subnormals included.
LOWBIT_HD int floor_log2(float a) {
  uint32_t b = float_bits(a) & 0x7FFFFFFFu;
  int e = int(b >> 23);
  if (e != 0) return e - 127;
  // subnormal: value = m * 2^-149, floor(log2) = msb(m) - 149
  int msb = 31;
  while (!(b & (1u << msb))) --msb;
  return msb - 149;
}

// ---------------------------------------------------------------- e4m3
constexpr float kE4M3Max = 448.0f;
constexpr int kE4M3Emax = 8;  // floor(log2(448))

// float -> e4m3 byte, RNE, saturating finite values (and +-inf) to +-448; NaN -> 0x7F.
LOWBIT_HD uint8_t e4m3_from_float(float v) {
  uint32_t b = float_bits(v);
  uint8_t sign = uint8_t((b >> 24) & 0x80u);
  uint32_t ab = b & 0x7FFFFFFFu;
  if (ab > kInfBits) return 0x7F;
  float a = ab >= float_bits(kE4M3Max) ? kE4M3Max : bits_float(ab);
  if (a < 0.015625f) {  // below 2^-6: subnormal grid of 2^-9; code = multiple of 2^-9
    return sign | uint8_t(round_even(a * 512.0f));  // 8 -> 0x08 = 2^-6, still right
  }
  int e = floor_log2(a);                                   // -6 .. 8
  int m = int(round_even((a * exp2i(-e) - 1.0f) * 8.0f));  // 0 .. 8, exact scaling
  if (m == 8) { m = 0; ++e; }
  return sign | uint8_t(((e + 7) << 3) | m);
}

LOWBIT_HD float e4m3_to_float(uint8_t c) {
  float s = (c & 0x80) ? -1.0f : 1.0f;
  int e = (c >> 3) & 0xF, m = c & 7;
  if (e == 15 && m == 7) return NAN;
  if (e == 0) return s * float(m) * 0.001953125f;  // m * 2^-9
  return s * (1.0f + float(m) * 0.125f) * exp2i(e - 7);
}

// ---------------------------------------------------------------- e2m1
constexpr float kE2M1Max = 6.0f;
constexpr int kE2M1Emax = 2;  // floor(log2(6))

// float -> e2m1 code (4 bits, sign in bit 3), RNE, saturating to +-6.
// NaN has no e2m1 encoding; callers map a non-finite block to a NaN scale instead.
LOWBIT_HD uint8_t e2m1_from_float(float v) {
  uint32_t b = float_bits(v);
  uint8_t sign = uint8_t((b >> 28) & 0x8u);
  uint32_t ab = b & 0x7FFFFFFFu;
  if (ab > kInfBits) return 0;
  float a = ab >= float_bits(kE2M1Max) ? kE2M1Max : bits_float(ab);
  if (a < 1.0f) return sign | uint8_t(round_even(a * 2.0f));  // 0, .5 (1), 1.0 (2)
  int e = floor_log2(a);                                       // 0 .. 2
  int m = int(round_even((a * exp2i(-e) - 1.0f) * 2.0f));     // 0 .. 2
  if (m == 2) { m = 0; ++e; }
  return sign | uint8_t(((e + 1) << 1) | m);
}

// From the bits, not a table: a local array indexed by a runtime value lives on the stack
// (local memory), which made the MX dequantizer ~15x slower than the int4 one.
// e2m1 = s EE M: E = 0 is the subnormal M * 0.5; else (1 + M/2) * 2^(E-1), i.e. the fp32
// with exponent E - 1 + 127 and top mantissa bit M.
LOWBIT_HD float e2m1_to_float(uint8_t c) {
  const uint32_t e = (c >> 1) & 3u, m = c & 1u;
  const uint32_t mag = e == 0 ? (m ? float_bits(0.5f) : 0u) : ((e + 126u) << 23) | (m << 22);
  return bits_float(mag | (uint32_t(c & 8u) << 28));
}

// ---------------------------------------------------------------- E8M0
constexpr uint8_t kE8M0NaN = 0xFF;

LOWBIT_HD float e8m0_to_float(uint8_t s) {
  return s == kE8M0NaN ? NAN : exp2i(int(s) - 127);
}

// Four E8M0 scales, byte j of v the scale j, as fp32 2^(e - 127): where no byte is 0x00 (2^-127,
// an fp32 subnormal) or 0xFF (NaN), each is its byte moved into the exponent field, one shift and
// one mask; else e8m0_to_float each. Why: a GEMV converts a scale per 32 weights of a row, and the
// two checks of e8m0_to_float cost ~5 instructions a scale (mxfp4 GEMV SASS, session 24). The
// tests: (v - 0x01010101) & ~v & 0x80808080 is non-zero exactly when some byte of v is zero; the
// same of ~v (~v - 0x01010101 = 0xFEFEFEFE - v) when some byte is 0xFF.
LOWBIT_HD void e8m0x4_to_float(uint32_t v, float (&f)[4]) {
  const uint32_t specials = (((v - 0x01010101u) & ~v) | ((0xFEFEFEFEu - v) & v)) & 0x80808080u;
  if (specials == 0) {
    f[0] = bits_float((v << 23) & 0x7F800000u);
    f[1] = bits_float((v << 15) & 0x7F800000u);
    f[2] = bits_float((v << 7) & 0x7F800000u);
    f[3] = bits_float((v >> 1) & 0x7F800000u);
  } else {
    for (int j = 0; j < 4; ++j) f[j] = e8m0_to_float(uint8_t(v >> (8 * j)));
  }
}

// OCP MX v1.0 shared exponent for a block with amax (as abs_bits, see above):
// floor(log2(amax)) - emax_elem, clamped to [-127, 127]; an all-zero block gets -127
// (the smallest scale); a block with NaN or Inf gets the NaN scale 0xFF.
LOWBIT_HD uint8_t mx_shared_scale(uint32_t amax_bits, int emax_elem) {
  if (amax_bits >= kInfBits) return kE8M0NaN;
  if (amax_bits == 0) return 0;
  int e = floor_log2(bits_float(amax_bits)) - emax_elem;
  e = e < -127 ? -127 : (e > 127 ? 127 : e);
  return uint8_t(e + 127);
}

}  // namespace lowbit
