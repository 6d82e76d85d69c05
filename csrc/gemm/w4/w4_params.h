#pragma once
// Plain-data parameters of the 4-bit weight kernels, shared by the host planning code
// (w4_ops.cpp, C++ compiler) and the kernels (w4_gemv.cuh, w4_launch.cu, nvcc).
#include <cstdint>

namespace lowbit::w4 {

constexpr int kGemvWarps = 8;                  // warps per CTA, 16 rows each (mma M)
constexpr int kGemvThreads = 32 * kGemvWarps;
constexpr int kGemvRows = 16 * kGemvWarps;     // rows of W per CTA
constexpr int kXPad = 32;                      // elements of padding per token row of x in shared memory
constexpr int kGemvMaxTokens = 32;             // the GEMV path takes M <= 32

struct GemvParams {
  const void* x;          // T (M, K)
  const uint32_t* w;      // int32 (N, K/8), w4 layout v2
  const void* scales;     // T (N, K / group); mxfp4: E8M0 bytes (N, K / 32)
  const void* zeros;      // T (N, K / group), or null: symmetric, z = 8
  const void* bias;       // T (N,), or null
  void* out;              // T (M, N)
  float* partial;         // fp32 [splits][M][N], splits > 1
  int* arrivals;          // [row CTAs], zero on entry, splits > 1
  int M, N, K, group;     // group: elements per group (K for one group per row)
  int k_slice;            // elements of K per split: a multiple of 128
  int splits;
  int bulk;               // 1: full blocks by 1 KB bulk copies (default; LOWBIT_A16W4_BULK=0: cp.async)
  int regs;               // 0: GEMV v6; 1: v7, register streaming (the 32-token tile); 2: v7b; 3: v8 (w4_ops.cpp)
  int prefetch;           // v8: x and scales one block ahead (w4_ops.cpp gemv_stream_prefetch)
  int first;              // v8: its first block's loads before the ring's (w4_ops.cpp gemv_stream_first)
  int xring;              // v8: x through a ring of the CTA by TMA boxes (w4_ops.cpp gemv_stream_xring)
  int copy;               // v8: K blocks per bulk copy, 1, 2 or 4 (w4_ops.cpp gemv_stream_copy)
  int minor;              // v8: 0, or 2 / 4 / 8: the K splits inside the CTA (w4_ops.cpp gemv_stream_minor)
  int xstage;             // v8: 1 / 2: x / x and its chunk sums staged per CTA (w4_ops.cpp gemv_stream_xstage)
  int pdl;                // v8: launched with programmatic dependent launch (w4_ops.cpp, LOWBIT_A16W4_PDL)
};

// GEMV v8 (w4_gemv_stream.cuh): warps that work alone, each one 16-row tile over one K split,
// its blocks through a ring of 1 KB bulk copies. Full tiles and blocks only (N % 16 == 0,
// K % 128 == 0), 1..32 tokens where stream_built says. Split partials and arrival counters are
// per tile.
constexpr int kStreamWarps = 4;   // warps per CTA (independent: no CTA barrier)
constexpr int kStreamStages = 8;  // 1 KB blocks in flight per warp (a power of two: b % 8 is a mask)
// With x through the CTA's ring (kXRing): 4 slots of M x 256 bytes (2 / 4 / 8 KB per slot at 8 /
// 16 / 32 tokens), beside the warps' 32 KB of code slots: at most 64 KB per CTA (3 CTAs at 32
// tokens fit).
constexpr int kXRingStages = 4;
// CTAs per SM the launch bounds leave room for: 4 (<= 128 registers per thread), 3 (<= 168) for
// 16 tokens with x loaded a block ahead (at 128 those spilled 12-268 bytes; 8 tokens at 96: 16-40).
// 32 tokens (no prefetch; default for int4 g128 / per channel at 17..32): 3.
// 32-element chunks per group of the GEMV kernels' kChunks: 1, 2, 4 for groups of 32, 64, 128; 0 for
// one group per row (group == K).
constexpr int gemv_group_chunks(int64_t group) { return group == 32 ? 1 : group == 64 ? 2 : group == 128 ? 4 : 0; }
// v8's default K blocks per bulk copy at 1..8 tokens (w4_ops.cpp gemv_stream_copy says why): 4, or 1
// for int4 g32 (its 4-block kernel spills). The host plan and the launch of kMinor both ask this.
constexpr int stream_default_copy(int chunks, bool mx) { return mx || chunks != 1 ? 4 : 1; }
// Which v8 kernels exist (the others spilled: int4 g32 at 16 or 32 tokens; at 32 tokens all but
// int4 g128 / per channel). The host plan (w4_ops.cpp) and the launch (w4_gemv_launch.cuh) both ask this.
constexpr bool stream_built(int tiles, int chunks, bool mx) {
  return !(tiles >= 2 && chunks == 1 && !mx) && (tiles < 4 || (!mx && chunks % 4 == 0));
}

// (Session 7: 1..8 tokens without the prefetch at 5 CTAs, 20 warps per SM, measured 7-16% slower
// than the default with the prefetch at 16 warps.)
constexpr int stream_ctas_per_sm(int tiles, bool prefetch) { return tiles == 4 || (tiles == 2 && prefetch) ? 3 : 4; }
// v8's warps per CTA: kStreamWarps, or 8 for 8 K splits inside the CTA (kMinor = 8: one tile's
// splits; its launch bounds then allow half the CTAs per SM, the same warps and registers).
constexpr int stream_cta_warps(int minor) { return minor > kStreamWarps ? minor : kStreamWarps; }
// kMinor = 8's dynamic shared memory: the 8 warps' 8 KB rings and 128 bytes of alignment slack.
constexpr int kStreamMinor8Smem = 8 * kStreamStages * 1024 + 128;
// kXStage's rows of x: K + kXStagePad elements apart (64 bytes of padding: w4_gemv_stream.cuh), and
// the dynamic shared memory they may take per CTA so that the CTAs per SM still fit (228 KB an SM,
// 1 KB reserved a CTA; static shared memory from cuobjdump -res-usage): 4-warp CTAs (4 an SM, at
// most 36480 bytes static) 20 KB, 8-warp CTAs (2 an SM, 6272 static, 64 KB + 128 of rings) 42 KB.
constexpr int kXStagePad = 32;
constexpr int stream_xstage_budget(int minor) { return minor > kStreamWarps ? 42 * 1024 : 20 * 1024; }
// kXStage's bytes of dynamic shared memory: M rows of K + kXStagePad elements, and with the sums
// (xstage 2) M x K / 32 floats after them (at most: one per 32-element chunk). The host's budget
// check (w4_ops.cpp) and the launch (w4_gemv_launch.cuh) both ask this.
constexpr int64_t stream_xstage_bytes(int64_t M, int64_t K, int elem_bytes, int xstage) {
  return M * (K + kXStagePad) * elem_bytes + (xstage == 2 ? M * (K / 32) * 4 : 0);
}

constexpr int kGemvStages = 4;                 // 128-element weight blocks in flight per warp (1 KB each)

// The CTAs per SM the v7 GEMV's launch bounds leave room for with 1-2 / 4 tiles of 8 tokens
// (85 / 128 registers; it keeps nothing in shared memory): its plan fills them once.
constexpr int gemv_regs_ctas_per_sm(int tiles) { return tiles == 4 ? 2 : 3; }

// Shared memory of one GEMV CTA: the slice of x (tokens x (k_slice + pad)), its sums per
// 32 elements (fp32), and the scales (and zero points) of the CTA's rows over the slice.
struct GemvSmem {
  int x_ld, chunks_ld, gps;               // x row stride (elements), chunks per token, groups per slice
  int64_t chunk_off, scale_off, zero_off, ring_off, bytes;
};
#if defined(__CUDACC__)
__host__ __device__
#endif
inline GemvSmem gemv_smem_layout(int tokens, int k_slice, int elem_bytes, int group, bool zeros, int scale_bytes) {
  GemvSmem L{};
  L.x_ld = k_slice + kXPad;
  L.chunks_ld = k_slice / 32;
  L.gps = group >= k_slice ? 1 : k_slice / group;  // one group per row: 1
  L.chunk_off = int64_t(tokens) * L.x_ld * elem_bytes;
  L.scale_off = L.chunk_off + int64_t(tokens) * L.chunks_ld * 4;
  L.zero_off = (L.scale_off + int64_t(kGemvRows) * L.gps * scale_bytes + 15) / 16 * 16;
  L.ring_off = (L.zero_off + (zeros ? int64_t(kGemvRows) * L.gps * elem_bytes : 0) + 15) / 16 * 16;
  L.bytes = L.ring_off + int64_t(kGemvWarps) * kGemvStages * 1024;
  return L;
}

// The mixed-input wgmma kernel for M > 32 (w4_wgmma.cuh): 4-bit weights and 8-bit rows.
constexpr int kWgRows = 128;     // weight rows per CTA (2 consumer warpgroups x 64)
constexpr int kWgThreads = 384;  // producer + 2 consumer warpgroups
constexpr int kWgStages = 5;
constexpr int kWgTokens = 128;   // tokens per CTA (wgmma N) above 64 tokens
// Tokens per CTA (wgmma N, a template argument of the kernel; the host's TMA box of x has as many
// rows): 64 up to 64 tokens (half of a 128-token CTA's tensor work would multiply the OOB-filled
// zero rows), else 128; 16 / 32 where the GEMVs' token counts come here (w4_ops.cpp
// wgmma_takes_gemv_tokens: 9..32 for 4-bit weights, 1..32 for 8-bit rows). The host plan (w4_ops.cpp) and the launch
// (w4_wgmma_launch.cu) both ask.
constexpr int wgmma_tokens(int64_t M) { return M <= 16 ? 16 : M <= 32 ? 32 : M <= 64 ? 64 : kWgTokens; }

// The weight operand of the mixed-input wgmma kernel (w4_wgmma.cuh): one kernel, five policies.
enum class WgmmaWeights {
  kInt4Promote,  // int4 codes exact, an fp32 promotion per group (needs sum_x; LOWBIT_A16W4_WGMMA=promote)
  kInt4Fold,     // int4, scale and zero point folded into the 16-bit operand (default)
  kMxfp4,        // e2m1 codes, E8M0 per 32 folded exactly (bf16 x)
  kInt8Rows,     // int8 rows by a TMA box, the per-channel scale in the epilogue
  kMxfp8Rows,    // e4m3 rows by a TMA box, E8M0 per 32 folded exactly (bf16 x)
};
// E8M0 scales per 32 (kMx), 8-bit rows by TMA (kRows8), int4 folded (kFold): what the kernel's
// branches test.
constexpr bool wgmma_mx(WgmmaWeights w) { return w == WgmmaWeights::kMxfp4 || w == WgmmaWeights::kMxfp8Rows; }
constexpr bool wgmma_rows8(WgmmaWeights w) { return w == WgmmaWeights::kInt8Rows || w == WgmmaWeights::kMxfp8Rows; }
// Which kernels have the K split's epilogue: not the int4 promotion variant (its per-channel sums
// of x cover all of K), not 256-row CTAs of 128 tokens (their epilogue spilled 32 bytes with it).
constexpr bool wgmma_splits(WgmmaWeights w, int row_tiles, int tokens) {
  return w != WgmmaWeights::kInt4Promote && (row_tiles == 1 || tokens <= 64);
}
// Wide CTAs (session 15; w4_ops.cpp wide_ctas): 128 weight rows x 256 tokens
// (m64n256k16), in place of 256-row CTAs of 128 tokens -- the same tensor work per CTA and the same
// grid, with half the operand build per flop: each A fragment feeds 256 tokens instead of 128.
// Why: the build, not the tensor core, set the pace at large M (s14-call3's profile: each
// warpgroup's build outlasted its wgmma; the tensor pipe 61%, 75% with x permuted). Built for the
// chained 4-bit weights: mxfp4, int4 folded (every group size; 32 / 64 only with
// LOWBIT_W4_WGMMA_WIDE=all, w4_ops.cpp wide_ctas); one CTA per SM (72 KB stages: 3); with the K
// split's epilogue (128 accumulators, no spill), which the default plan never needs for them.
constexpr int kWgWideTokens = 256;
constexpr bool wgmma_wide_built(WgmmaWeights w) {
  return w == WgmmaWeights::kMxfp4 || w == WgmmaWeights::kInt4Fold;
}
// Which kernels can take x permuted in shared memory (w4_wgmma.cuh permute_x_blocks: the A
// fragments then come from each thread's own words of the weight chunk, no quad shuffles):
// 4-bit weights at <= 64 tokens per CTA, not the promotion variant. (The permutation reads and
// writes the X tile once more in shared memory, next to the two warpgroups' wgmma reads of it:
// 4 / 8 / 16 KB a block at 16 / 32 / 64 tokens; not at 128, where the tile is 32 KB a block.)
// Session 9, same calls, over the quad shuffles (sessions 4-8): a16w4 g128 +8-40% at 1..32
// tokens and +6-21% at 40 / 64, mxfp4 +6-17% / +3-8% (s9-call3, s9-call4). Not for int4 per
// channel (chunks == 0) at 64 tokens: with it, s9-call7 measured 31.1 / 29.1 / 26.1 us at M = 64
// (8192^2 / 4096x14336 / 14336x4096) against session 8's 28.0 / 26.4 / 23.4 without -- that
// kernel has no per-block scale loads, so its operand build is cheap and the 32 KB a block of
// extra shared-memory traffic at 64 tokens costs more than the shuffles did.
constexpr bool wgmma_x_permutable(WgmmaWeights w, int tokens, int chunks) {
  const bool int4_per_channel = w == WgmmaWeights::kInt4Fold && chunks == 0;
  return !wgmma_rows8(w) && w != WgmmaWeights::kInt4Promote && (tokens <= 32 || (tokens == 64 && !int4_per_channel));
}
constexpr int kXPermuteThreads = 96;  // warps 1-3 of the producer warpgroup
// x permuted once in global memory instead (session 14; the host's pass launch_permute_x_chunks,
// the kernel's kXPre; w4_ops.cpp wgmma_matmul says where): the same A fragments from the thread's
// own words with no shuffles and no shared-memory pass, for 4-bit weights at 128 tokens per CTA
// (the ncu profile of s14-call3: at M = 1024 / 256 the quad shuffles and shifts of the operand
// build are the consumers' critical path, 19% / 13% of the stall samples short scoreboard, and
// each warpgroup's build takes longer than its wgmma).
constexpr bool wgmma_x_pre_built(WgmmaWeights w, int tokens, int ctas) {
  return !wgmma_rows8(w) && w != WgmmaWeights::kInt4Promote && tokens == kWgTokens && ctas == 1;
}
// Which kernels also exist for two CTAs per SM (96 registers per consumer thread, half the shared
// memory; chosen where one CTA per SM would overfill a wave, w4_ops.cpp wgmma_plan): 128-row CTAs of
// <= 64 tokens, not the promotion variant, not int4 groups of 32 (chunks == 1: its 64-token build
// spilled 20 bytes).
constexpr bool wgmma_two_ctas(WgmmaWeights w, int row_tiles, int tokens, int chunks) {
  return w != WgmmaWeights::kInt4Promote && row_tiles == 1 && tokens <= 64 &&
         !(w == WgmmaWeights::kInt4Fold && chunks == 1);
}

struct W4WgmmaParams {
  const uint32_t* w;     // int32 (N, K/8), layout v3; N % 128 == 0, K % 128 == 0 (8-bit rows: by TMA)
  const void* scales;    // T (N, K / group); mxfp4: E8M0 bytes (N, K / 32)
  const void* zeros;     // T (N, K / group) or null (symmetric: z = 8)
  const float* sum_x;    // fp32 (M rounded up to kWgTokens, K / group): int4 with promotion only; else null
  const float* row_scale;  // int8 rows: fp32 (N,) per-channel scale; else null
  const void* bias;      // T (N,) or null
  void* out;             // T (M, N)
  float* partial;        // splits > 1: fp32 [splits][M][N] (the sums before row scale and bias)
  int* arrivals;         // splits > 1: [row CTAs x token CTAs], zero on entry
  int M, N, K, group;
  int tokens;            // tokens per CTA: wgmma_tokens(M), or forced (LOWBIT_W4_WGMMA_TOKENS)
  int ctas_per_sm;       // 1, or 2 (wgmma_two_ctas; w4_ops.cpp wgmma_plan, LOWBIT_W4_WGMMA_CTAS)
  int splits;            // K splits (grid z), each kb_per_split 128-element blocks (the last fewer)
  int kb_per_split;
  int x_pre;             // 1: x (the tensor map's) permuted by launch_permute_x_chunks (wgmma_x_pre_built kernels)
  int skew;              // 0, or 1..4: consumer warpgroup 2 starts once warpgroup 1 has issued that many
                         // 32-element chunks of its first K block (w4_wgmma.cuh; LOWBIT_W4_WGMMA_SKEW)
};

}  // namespace lowbit::w4
