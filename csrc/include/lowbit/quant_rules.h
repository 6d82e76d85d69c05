#pragma once
// The block-quantization rules of csrc/cpu/quantize.cpp as host/device functions, so
// the CPU reference and the CUDA quantizers apply literally the same arithmetic.
#include "lowbit/numerics.h"

namespace lowbit {

// Smallest amax an absmax block is scaled from: an all-zero block gets a tiny scale
// instead of a division by zero.
constexpr float kAmaxFloor = 1e-12f;

// Absmax block scale. scale = amax'/qmax and inv = qmax/amax' (each correctly rounded,
// amax' = max(amax, 1e-12)); a block holding NaN/Inf gets scale NaN, inv 0, and its codes
// are written as 0 by the caller (see `finite`).
struct AbsmaxScale {
  float scale, inv;
  bool finite;
};

LOWBIT_HD AbsmaxScale absmax_scale(uint32_t amax_bits, float qmax) {
  if (amax_bits >= kInfBits) return {NAN, 0.0f, false};
  float a = bits_float(amax_bits);
  a = a > kAmaxFloor ? a : kAmaxFloor;
  return {a / qmax, qmax / a, true};
}

// int8 code of v * inv: round half to even, clamp to [-127, 127] (symmetric: -128 unused).
LOWBIT_HD int8_t int8_code(float v, float inv) {
  float q = round_even(v * inv);
  return int8_t(q > 127.0f ? 127.0f : (q < -127.0f ? -127.0f : q));
}

// MX block: the E8M0 byte (mx_shared_scale) and the exact multiplier 2^-e for elements.
struct MxScale {
  uint8_t byte;
  float down;
  bool finite;
};

LOWBIT_HD MxScale mx_scale(uint32_t amax_bits, int emax_elem) {
  uint8_t b = mx_shared_scale(amax_bits, emax_elem);
  if (b == kE8M0NaN) return {b, 0.0f, false};
  return {b, exp2i(127 - int(b)), true};
}

// ---------------------------------------------------------------- fused producers
// e^x in fp32 by one recipe on host and device, so that the fused quantizers' SiLU is the same
// function in the CPU reference and the CUDA kernels (libm's expf and CUDA's differ in the last
// bits): x = k ln2 + r (k = rint(x / ln2), r by two fmaf, |r| <= ln2 / 2), e^r by its degree-7
// Taylor polynomial (relative error < 1e-8 on that range, below fp32's rounding), times 2^k
// (exact, or one IEEE rounding into subnormals: what ldexpf gives). Only fmaf and products that
// are not added to anything: no contraction can make the two compilers differ.
// exp_poly: c e^r for r = x - k ln2 (the reduction and the polynomial; c = 1, or 1/2 for silu_f32:
// a power-of-two factor on every coefficient scales each rounding exactly, so the result is c times
// the c = 1 one). exp_f32 is the definition silu_f32 is checked against.
LOWBIT_HD float exp_poly(float x, float k, float c) {
  float r = fmaf(k, -0.693147182f, x);  // ln2 = 0.693147182 (fp32) + 1.9046542e-9
  r = fmaf(k, -1.9046542e-9f, r);
  float p = (1.0f / 5040.0f) * c;
  p = fmaf(p, r, (1.0f / 720.0f) * c);
  p = fmaf(p, r, (1.0f / 120.0f) * c);
  p = fmaf(p, r, (1.0f / 24.0f) * c);
  p = fmaf(p, r, (1.0f / 6.0f) * c);
  p = fmaf(p, r, 0.5f * c);
  p = fmaf(p, r, c);
  return fmaf(p, r, c);
}

LOWBIT_HD float exp_f32(float x) {
  if (x != x) return x;
  if (x > 88.8f) return INFINITY;  // e^88.8 > FLT_MAX
  if (x < -104.0f) return 0.0f;    // below half the smallest subnormal
  const float k = rintf(x * 1.44269504f), p = exp_poly(x, k, 1.0f);
  // p * 2^k rounded once, as ldexpf rounds it, in two exact power-of-two factors (k in [-150, 128],
  // each half in [-75, 64]: normal, so p * 2^k1 is exact): libm's ldexpf was ~1/3 of the fused
  // SiLU quantizer's instructions (s15-call2: 145 us a 2048 x 14336 row block, 1/3 of bandwidth).
  const int ki = int(k), k1 = ki / 2;
  return (p * exp2i(k1)) * exp2i(ki - k1);
}

// a * b rounded on its own: never fused into an fma with a following add by either compiler (nvcc
// contracts a * b + c by default, gcc with -mfma -ffp-contract=fast).
LOWBIT_HD float mul_rounded(float a, float b) {
#ifdef __CUDA_ARCH__
  return __fmul_rn(a, b);
#else
  volatile float p = a * b;
  return p;
#endif
}

// silu(g) = g / (1 + e^-g) in fp32, bit for bit g / (1 + exp_f32(-g)) for every fp32 g (checked
// exhaustively: tools/check_silu_f32.cpp) in fewer instructions (the fused SiLU quantizer is
// issue-bound: s18-call2, 73% of issue slots busy, ~50 instructions an element):
// - e^x's argument clamped to [-20, 88.8] instead of three branches (below -20, e^x < 2.1e-9
//   leaves 1 + e^x = 1 as exp_f32's smaller values and its 0 do; from 88.8 the clamped value
//   overflows to inf as exp_f32's does; a NaN g gives NaN through the numerator);
// - k = rint(x log2 e) by adding 1.5 * 2^23 (t: round to nearest even at unit spacing, as rintf for
//   |x log2 e| < 2^22) instead of two conversions, and t's low bits hold k: bits(t) << 23 is k << 23
//   (bits(1.5 * 2^23) << 23 wraps to 0);
// - exp_poly with c = 1/2 gives p / 2 exactly, so p * 2^(k - 1) is one exponent add (k - 1 in
//   [-30, 127]: normal and exact), then one exact or overflowing doubling: the rounding exp_f32's
//   two factors give (k >= -29: no subnormals).
LOWBIT_HD float silu_f32(float g) {
  constexpr float kRound = 12582912.0f;  // 1.5 * 2^23
  const float x = fminf(fmaxf(-g, -20.0f), 88.8f);
  const float t = mul_rounded(x, 1.44269504f) + kRound;
  const float p = exp_poly(x, t - kRound, 0.5f);  // p / 2
  const float half_e = bits_float(float_bits(p) + float_bits(t) * (1u << 23));  // p * 2^(k - 1)
  return g / (1.0f + half_e * 2.0f);
}

// The MLP's down-projection input before rounding: silu(g) * u = g / (1 + e^-g) * u in fp32
// (g = -inf gives NaN, as torch's silu does).
LOWBIT_HD float silu_mul_f32(float g, float u) { return silu_f32(g) * u; }

// RMSNorm: rstd = 1 / sqrt(sum_sq / K + eps) from the row's sum of squares of x (each square
// exact in fp32, summed in fp64: order-independent unless the row's squares span more than ~2^20,
// which is why the sum is fp64), in fp64, rounded once to fp32; then (x * rstd) * w in fp32.
LOWBIT_HD float rms_rstd(double sum_sq, int64_t K, float eps) {
  return float(1.0 / sqrt(sum_sq / double(K) + double(eps)));
}
LOWBIT_HD float rms_norm_f32(float x, float rstd, float w) { return x * rstd * w; }

}  // namespace lowbit
