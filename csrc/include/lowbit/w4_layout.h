#pragma once
// The w4 kernel layout of 4-bit weights (int4 codes 0..15 or e2m1 codes), version 1.
//
// Plain layout (what quantizers produce, what checkpoints may store): uint8 (N, K/2),
// byte i of a row holds element 2i in its low nibble and element 2i+1 in its high one.
//
// Kernel layout: int32 (N, K/8). Word j of row n holds elements 8j .. 8j+7 of that
// row; nibble p (bits 4p .. 4p+3) holds element 8j + kW4Interleave[p]. With this
// order one mask (0x000F000F) picks elements (0, 1) into the two 16-bit halves of a
// register, and each further shift by 4 bits gives the next pair: the register-level
// dequantization (LOP3 into a magic exponent) yields fragment-ordered pairs directly.
// (The interleave Marlin and FasterTransformer use for int4.)
#include <cstdint>

namespace lowbit::w4 {
constexpr int kInterleave[8] = {0, 2, 4, 6, 1, 3, 5, 7};
constexpr int kLayoutVersion = 1;
}  // namespace lowbit::w4
