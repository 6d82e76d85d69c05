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

}  // namespace lowbit
