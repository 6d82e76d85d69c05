#pragma once
// The w4 kernel layout of 4-bit weights (int4 codes 0..15 or e2m1 codes), version 2.
//
// Plain layout (what quantizers produce, what checkpoints may store): uint8 (N, K/2),
// byte i of a row holds element 2i in its low nibble and element 2i+1 in its high one.
//
// Kernel layout: int32 (N, K/8).
//  1. Words. A logical word L of a row holds elements 8L .. 8L+7; nibble p (bits 4p .. 4p+3)
//     holds element 8L + kInterleave[p]. With this order one mask (0x000F000F) picks
//     elements (0, 1) into the two 16-bit halves of a register and each further shift by
//     4 bits gives the next pair, so the register-level dequantization (LOP3 into a magic
//     exponent) yields fragment-ordered pairs directly (the interleave Marlin and
//     FasterTransformer use for int4).
//  2. Blocks. Each full block of 128 elements of a row (16 words) is stored with its words
//     transposed as a 4 x 4 matrix: stored word 4c + j = logical word 4j + c. Why: in the
//     GEMV kernel (csrc/gemm/w4/) the 4 threads of an mma quad each load one 16-byte vector
//     per block; thread c gets logical words c, 4 + c, 8 + c, 12 + c, so the 4 threads
//     together hold logical words 4j .. 4j+3 = 32 consecutive elements for each j: one k32
//     step of the tensor core stays inside one quantization group (groups are >= 32).
//     A row's last block may be partial (K % 128 = 32, 64 or 96): its words keep the
//     logical order.
#include <cstdint>

#if defined(__CUDACC__)
#define LOWBIT_W4_FN __host__ __device__ __forceinline__ constexpr
#else
#define LOWBIT_W4_FN inline constexpr
#endif

namespace lowbit::w4 {
constexpr int kInterleave[8] = {0, 2, 4, 6, 1, 3, 5, 7};
constexpr int kBlockElems = 128;  // elements per transposed block
constexpr int kBlockWords = 16;
constexpr int kLayoutVersion = 2;

// kInterleave[p] as a function usable in device code: element of a word in nibble p.
LOWBIT_W4_FN int interleave(int p) { return p < 4 ? 2 * p : 2 * (p - 4) + 1; }
static_assert(interleave(0) == kInterleave[0] && interleave(3) == kInterleave[3] && interleave(4) == kInterleave[4] &&
              interleave(7) == kInterleave[7]);

// Stored word index of logical word `l` of a row with `words` words in all (K / 8).
LOWBIT_W4_FN int64_t stored_word(int64_t l, int64_t words) {
  const int64_t block = l / kBlockWords, in = l % kBlockWords;
  if ((block + 1) * kBlockWords > words) return l;  // partial last block: logical order
  return block * kBlockWords + (in % 4) * 4 + in / 4;
}
}  // namespace lowbit::w4
