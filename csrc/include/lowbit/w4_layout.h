#pragma once
// The w4 kernel layout of 4-bit weights (int4 codes 0..15 or e2m1 codes), version 3.
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
//  3. Row tiles (version 3). Rows come in tiles of 16 (mma's M side; a GEMV warp owns one
//     tile). A full tile t (rows 16t .. 16t+15 all < N) occupies the W * 16 words starting
//     at 16 t W (W = K / 8 words per row), in its own order: each full block b is one
//     contiguous 1 KB chunk of 256 words at 16 t W + 256 b, where the 4 words that quad
//     thread c of row i loads (step 2) sit at 128 (i / 8) + 16 (i % 8) + 4 c: one warp load
//     instruction (rows 0-7, then rows 8-15) reads 512 contiguous bytes, and a warp's
//     consecutive blocks are consecutive in memory. Why: read as rows (v2), a warp request
//     was 16 pieces of 64 bytes K/2 bytes apart, and the GEMV streamed HBM at under half of
//     cuBLAS's rate (bench/NOTES.md, a16w4 v1-v4). The partial last block of a full tile
//     follows its full blocks: row i's P words (P = W - 16 * (K / 128)) at 256 (K / 128) + P i,
//     logical order. Rows of the last, partial tile (N % 16 of them) keep the per-row layout
//     of steps 1-2: row n at n W.
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
constexpr int kLayoutVersion = 3;
constexpr int kTileRows = 16;

// kInterleave[p] as a function usable in device code: element of a word in nibble p.
LOWBIT_W4_FN int interleave(int p) { return p < 4 ? 2 * p : 2 * (p - 4) + 1; }
static_assert(interleave(0) == kInterleave[0] && interleave(3) == kInterleave[3] && interleave(4) == kInterleave[4] &&
              interleave(7) == kInterleave[7]);

// Position inside its row (steps 1-2) of logical word `l` of a row of `words` words (K / 8).
LOWBIT_W4_FN int64_t stored_word(int64_t l, int64_t words) {
  const int64_t block = l / kBlockWords, in = l % kBlockWords;
  if ((block + 1) * kBlockWords > words) return l;  // partial last block: logical order
  return block * kBlockWords + (in % 4) * 4 + in / 4;
}

// Flat index in the int32 (N, K/8) tensor of logical word `l` of row `n` (all steps).
LOWBIT_W4_FN int64_t stored_index(int64_t n, int64_t l, int64_t rows, int64_t words) {
  const int64_t full_tiles = rows / kTileRows;
  if (n >= full_tiles * kTileRows) return n * words + stored_word(l, words);  // partial tile: per row
  const int64_t tile = n / kTileRows, i = n % kTileRows;
  const int64_t base = tile * kTileRows * words;
  const int64_t full_blocks = words / kBlockWords, block = l / kBlockWords;
  if (block >= full_blocks) {  // the partial last block, row after row
    const int64_t p = words - full_blocks * kBlockWords;
    return base + full_blocks * 256 + p * i + (l - full_blocks * kBlockWords);
  }
  const int64_t in = l % kBlockWords, c = in % 4, j = in / 4;
  return base + block * 256 + 128 * (i / 8) + 16 * (i % 8) + 4 * c + j;
}
}  // namespace lowbit::w4
