// 4-bit weight and MX ops on CUDA: a16w4_linear, mxfp4_linear and a8w4_mx_mm / a8w4_mx_linear
// (on full 128-row tiles the GEMV to 8 tokens and the mixed-input wgmma GEMM from 9 to a measured
// M; other shapes the GEMV to 32; dequantize + cuBLAS beyond), mxfp8_mm / mxfp8_linear (with bf16
// output: the mixed-input wgmma on e4m3 rows to 512 on full tiles, the 8-bit-row GEMV of
// gemm/int8 for other shapes at M <= 32; else dequantize + cuBLAS),
// prepack_w4 / unpack_w4. Semantics: csrc/cpu/linear.cpp, csrc/cpu/w4_layout.cpp.
// This file: argument contracts, the path and split plan, allocation.
#include <ATen/core/dispatch/Dispatcher.h>
#include <ATen/cuda/CUDAContext.h>
#include <ATen/ops/constant_pad_nd.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/linear.h>
#include <ATen/ops/zeros.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include <algorithm>
#include <cstdio>

#include "gemm/int8/a16w8_params.h"
#include "gemm/int8/rows8_gemv.h"
#include "gemm/w4/mixed_wgmma.h"
#include "gemm/w4/w4_launch.h"
#include "lowbit/contracts.h"
#include "lowbit/env.h"
#include "lowbit/gemv_split.h"
#include "lowbit/tma_desc.h"
#include "lowbit/w4_layout.h"
#include "lowbit/ops.h"
#include "quant/quantize_launch.h"

namespace lowbit::w4 {
namespace {

Elem elem_of(const Tensor& x) { return x.scalar_type() == at::kBFloat16 ? Elem::kBF16 : Elem::kF16; }

// LOWBIT_A16W4_PATH=gemv|dequant forces a path (diagnostics and A/B benches).
enum class Path { kAuto, kGemv, kDequant };
Path forced_path() {
  static const Path p = env::is("LOWBIT_A16W4_PATH", "gemv")      ? Path::kGemv
                       : env::is("LOWBIT_A16W4_PATH", "dequant") ? Path::kDequant
                                                                 : Path::kAuto;
  return p;
}

// K slices for the GEMV: enough CTAs for ~4 per SM (HBM needs many loads in flight), each
// slice a multiple of 128 elements and small enough for x's slice to fit shared memory.
struct GemvPlan {
  int k_slice, splits;
};
GemvPlan plan_gemv(int64_t M, int64_t N, int64_t K, int64_t g, bool zeros, int sms, int elem_bytes, int scale_bytes) {
  const int tokens = int(M);  // x rows in shared memory: the real tokens only
  const int64_t blocks = (K + 127) / 128;
  const int64_t row_ctas = (N + kGemvRows - 1) / kGemvRows;
  // (2 or 3 CTAs per SM, or rounding the splits down to one wave as the a16w8 GEMV's plan
  // does, measured no faster in session 5: bench/NOTES.md)
  int64_t splits = std::max<int64_t>(1, (4 * sms + row_ctas - 1) / row_ctas);
  splits = std::min(splits, blocks);
  int64_t slice_blocks = (blocks + splits - 1) / splits;
  // Per CTA (x slice + weight ring): at 56 KB four CTAs fit an SM, so the ~4 CTAs per SM the
  // split aims at are all resident at once (one wave: measured faster than deeper per-warp
  // prefetch with two CTAs per SM, bench/NOTES.md a16w4 v1-v4).
  constexpr int64_t kSmemBudget = 56 * 1024;
  while (slice_blocks > 1 &&
         gemv_smem_layout(tokens, int(slice_blocks * 128), elem_bytes, int(g), zeros, scale_bytes).bytes > kSmemBudget)
    --slice_blocks;
  return {int(slice_blocks * 128), int((blocks + slice_blocks - 1) / slice_blocks)};
}

// Which GEMV, as measured on the H100 (bench/NOTES.md sessions 4-6): v8 (w4_gemv_stream.cuh) for
// 1..16 tokens on full tiles and blocks (gemv_stream_applies: 2.0-2.7x cuBLAS at M = 1, 1.4-2.0x
// at 16, where v6 gets 1.6-2.2x and 1.0-1.4x); else v6 (w4_gemv.cuh, weights staged through
// shared memory by bulk copies) for 1..16 tokens, 1.0-2.2x cuBLAS where v7 gets 0.76-1.44x and
// v7b 0.80-1.54x; for the 32-token tile v7 (w4_gemv_regs.cuh, weights
// straight into registers) for int4, 0.75-0.77x where v6 gets 0.49-0.58x and v7b 0.65-0.67x,
// and v7b (v7 with a register ring of blocks) for mxfp4, 0.79 / 0.86 / 0.80x on 8192^2 /
// 28672 x 8192 / 4096 x 14336 where v7 gets 0.76 / 0.80 / 0.75x.
// LOWBIT_A16W4_GEMV=smem|regs|pipe forces v6 / v7 / v7b for every M <= 32 (A/B runs).
// Returns GemvParams::regs (0 = v6, 1 = v7, 2 = v7b) where v8 does not apply.
int gemv_regs_mode(int64_t M, bool mx) {
  static const bool force_regs = env::is("LOWBIT_A16W4_GEMV", "regs");
  static const bool force_smem = env::is("LOWBIT_A16W4_GEMV", "smem");
  static const bool force_pipe = env::is("LOWBIT_A16W4_GEMV", "pipe");
  if (force_pipe) return 2;
  if (force_regs || force_smem) return force_regs ? 1 : 0;
  if (gemv_token_tiles(M) != 4) return 0;
  return mx ? 2 : 1;
}

// v8 (w4_gemv_stream.cuh) takes 1..16 tokens on full tiles and blocks, with the scales (and
// zero points) and x aligned for its vector loads (torch's allocations are; a view may not be).
// LOWBIT_A16W4_GEMV=smem|regs|pipe forces the older kernels instead.
bool gemv_stream_applies(int64_t M, int64_t N, int64_t K, int64_t g, bool mx, const Tensor& x, const Tensor& scales,
                         const OptTensor& zeros) {
  static const bool forced_other = env::is("LOWBIT_A16W4_GEMV", "smem") || env::is("LOWBIT_A16W4_GEMV", "regs") ||
                                   env::is("LOWBIT_A16W4_GEMV", "pipe");
  auto aligned = [](const Tensor& t, int bytes) { return reinterpret_cast<uintptr_t>(t.data_ptr()) % bytes == 0; };
  // v8 up to 32 tokens where it is built (17..32: int4 g128 / per channel; session 7: 1.03-1.28x
  // against v7's 0.74-0.88x on 8192^2 / 28672x8192); LOWBIT_A16W4_STREAM_MAX_TOKENS=16 gives 17..32
  // back to v7 / v7b (A/B runs).
  static const int64_t max_tokens = env::integer("LOWBIT_A16W4_STREAM_MAX_TOKENS", 32);
  return !forced_other && M <= max_tokens && N % kTileRows == 0 && K % kBlockElems == 0 &&
         (g == 32 || g == 64 || g == 128 || g == K) && stream_built(gemv_token_tiles(M), gemv_group_chunks(g), mx) &&
         aligned(x, 16) && aligned(scales, 8) &&
         (!zeros || aligned(*zeros, 8));
}

// v8's x and scales one block ahead: for 8 tokens (+1-3% at M = 1 over loading them at the top of
// the block); 16 tokens without (the prefetch costs them a CTA per SM: 3 instead of 4, and 2-16%).
// LOWBIT_A16W4_STREAM_PREFETCH=0|1 forces either (A/B runs).
bool gemv_stream_prefetch(int64_t M) {
  static const int64_t knob = env::integer("LOWBIT_A16W4_STREAM_PREFETCH", -1);
  return gemv_token_tiles(M) <= 2 && (knob < 0 ? gemv_token_tiles(M) == 1 : knob != 0);  // 32 tokens: never
}
// v8's first block's x and scales requested before its ring's first blocks (1) or after them (0,
// before session 13). Default 1 at every token count (session 13: +5-9% at M = 1 on short splits;
// session 14 at 9..32 tokens: -5..-6% on 28672x8192, +-1% elsewhere). LOWBIT_A16W4_STREAM_FIRST=late
// forces 0 (A/B runs).
int gemv_stream_first() {
  static const bool late = env::is("LOWBIT_A16W4_STREAM_FIRST", "late");
  return late ? 0 : 1;
}
// v8 with x through a ring of the CTA: x by TMA boxes into shared memory instead of global loads.
// The CTA's four warps must share their K split: N % 64 == 0. Default at 17..32 tokens (int4 g128
// / per channel, v8's range there; session 8, same-call A/B at 32 tokens: 1.05 / 1.07 / 1.01 /
// 0.86x cuBLAS vs 1.01 / 0.99 / 0.96 / 0.79x on 8192^2 / 28672x8192 / 4096x14336 / 14336x4096);
// not at 1..16 (M = 1: 1.83-2.42x vs 1.94-2.64x, slower; 16: within +-6%). It runs v8's default
// prefetch (scales one block ahead at 1..8 tokens); LOWBIT_A16W4_STREAM_PREFETCH does not apply
// to it. LOWBIT_A16W4_STREAM_X=ring|off forces it at every v8 token count, or never (A/B runs).
bool gemv_stream_xring(int64_t M, int64_t N) {
  static const bool on = env::is("LOWBIT_A16W4_STREAM_X", "ring"), off = env::is("LOWBIT_A16W4_STREAM_X", "off");
  return !off && (on || gemv_token_tiles(M) == 4) && N % (kTileRows * kStreamWarps) == 0;
}
// v8's K blocks per bulk copy (w4_gemv_stream.cuh kCopy) at 1..8 tokens with the prefetch and
// without the x ring: 4 for int4 g64 / g128 / per channel and mxfp4, 1 for int4 g32. Same-call A/Bs
// on the H200, M = 1 / 4 / 8, 4 blocks against 1:
//  - s20-call4 / call5: g128 +9 / +5 / +3% on 8192^2, +9 / +7 / +12% on 28672 x 8192, +7 / +6 / +4%
//    on 4096 x 14336, +12 / +6 / +4% on 14336 x 4096; mxfp4 +1..+11%; per channel +8..+12% at
//    M = 1, -2..+8% at 8; g32 / g64 0..-12% (unrolled by four, spilling); 2 blocks a copy fell
//    between the two.
//  - s21-call1, g32 / g64 unrolled by two with the place in the copy at run time (g64 no longer
//    spills, g32 8-28 bytes): g64 -0..+6% (28672 x 8192 +6 / +3 / +4%), g32 -3..+2%.
// LOWBIT_A16W4_STREAM_COPY=1|2|4 forces one wherever it applies (A/B runs).
int gemv_stream_copy(int64_t M, int64_t g, bool mx, bool prefetch, bool xring) {
  static const int64_t knob = env::integer("LOWBIT_A16W4_STREAM_COPY", 0);
  if (gemv_token_tiles(M) != 1 || !prefetch || xring) return 1;
  if (knob == 1 || knob == 2 || knob == 4) return int(knob);
  return stream_default_copy(gemv_group_chunks(g), mx);
}
// Where v8's 1..8-token variants (the splits inside the CTA, x staged) are built: the prefetching
// loop without the x ring, at the default blocks per copy.
bool gemv_stream_variants_built(int64_t M, int64_t g, bool mx, const GemvParams& p) {
  return gemv_token_tiles(M) == 1 && !p.xring && p.prefetch && p.copy == stream_default_copy(gemv_group_chunks(g), mx);
}
// v8's K splits inside the CTA (w4_gemv_stream.cuh kMinor): 2, 4 or 8 splits at 1..8 tokens with
// the default blocks per copy and no x ring, where the CTAs hold whole tiles' splits (N / 16 a
// multiple of 4 / splits; 8 splits: a CTA of 8 warps, one tile); their sums then meet in shared
// memory instead of global partials and counters. Measured on the H200, same call, against the
// global path at M = 1..8 (g128, per channel, mxfp4): 2 and 4 splits +8..+17% on 8192^2 and
// 14336 x 4096 (s22-call2); 8 splits +34..+41% on 4096^2, +14..+22% on 4096 x 14336 (s22-call3).
// Returns the splits (0: the global path).
int gemv_stream_minor(int64_t M, int64_t N, int64_t g, bool mx, int64_t splits, const GemvParams& p) {
  static const bool off = env::is("LOWBIT_A16W4_STREAM_MINOR", "0");
  if (off || !gemv_stream_variants_built(M, g, mx, p)) return 0;
  if (splits != 2 && splits != 4 && splits != 8) return 0;
  return (N / kTileRows) % (stream_cta_warps(int(splits)) / splits) == 0 ? int(splits) : 0;
}
// The splits v8 asks of the plan where the splits inside the CTA may apply, for K's `blocks`:
// the plan's 3 / 5..7 rounded down to 2 / 4 (fewer warps than the SMs hold, but no global end:
// 6144 x 4096's 6 splits at 4 inside the CTA +26..+29% over 6 global, and +12..+19% over 8 inside
// the CTA, 1.45 waves; s22-call3); 2, 4, 8 and more than 8 as planned.
// LOWBIT_A16W4_STREAM_MINOR=plan keeps the plan's splits (A/B runs); =force re-plans to 4 (2 where K
// has 2 or 3 blocks) and =force8 to 8 (where K has 8+ blocks; else as force) wherever the splits
// inside the CTA apply (tests: small N; A/B runs); =0 turns them off.
int64_t gemv_stream_minor_splits(int64_t planned, int64_t blocks) {
  static const int mode = env::is("LOWBIT_A16W4_STREAM_MINOR", "force8") ? 8
                          : env::is("LOWBIT_A16W4_STREAM_MINOR", "force") ? 4
                          : env::is("LOWBIT_A16W4_STREAM_MINOR", "plan")  ? -1
                                                                           : 0;
  if (mode == 8 && blocks >= 8) return 8;
  if (mode > 0) return blocks >= 4 ? 4 : 2;
  if (mode < 0 || planned >= 8 || planned <= 2) return planned;
  return planned >= 4 ? 4 : 2;
}
// v8's x staged in shared memory once per CTA (w4_gemv_stream.cuh kXStage): at 1..8 tokens with
// the default blocks per copy and no x ring, where the CTA's warps cover all of K (one split over
// whole CTAs, N % 64 == 0; or the splits inside the CTA) and M rows of K + 32 elements fit beside the
// rings at the CTAs per SM (w4_params.h stream_xstage_budget: at M = 1, K <= 10.1K on 4-warp CTAs,
// 21.4K on 8-warp ones); 2: for int4 also the chunk sums of x (their pass costs each CTA M x K / 32
// sums of 32, all of x landed before its first block, against 8 MMAs a block).
// By default only int4 at 1..2 tokens in one split, with the sums, where K <= 4096 or per channel.
// s23-call4 (H200, on / off twice, 100 replays a point; the repeats within 1-3%): 28672 x 4096
// +7..+10% at M = 1 / 2 (g128 25.0 -> 23.0 us at M = 1), 28672 x 8192 at M = 1 per channel +12%
// but g128 -9% (not understood); the splits inside the CTA lost at M = 1..4 (4096^2 -9..-14%,
// 6144 x 4096 -3..-10%, 8192^2 -3..-6% at M = 1; x copied in pieces along K on a barrier each,
// one per split, lost as much: not kept), and mxfp4 lost or tied everywhere (-1..-12%).
// s23-call5, this default against off: 28672 x 4096 +8.5..+12% at M = 1 / 2, 28672 x 8192 per
// channel +15.6% at M = 1; Llama-3-8B's decode step 2.352 -> 2.333 ms.
// LOWBIT_A16W4_STREAM_XSTAGE=0|1|2: off, x only, or with the sums wherever x fits (int4) (A/B
// runs). Returns 0, 1 or 2.
int gemv_stream_xstage(int64_t M, int64_t N, int64_t K, int64_t g, bool mx, int64_t splits, const GemvParams& p,
                       int elem_bytes) {
  static const int64_t knob = env::integer("LOWBIT_A16W4_STREAM_XSTAGE", -1);
  if (knob == 0 || !gemv_stream_variants_built(M, g, mx, p)) return 0;
  if (!(p.minor || (splits == 1 && (N / kTileRows) % kStreamWarps == 0))) return 0;
  const bool forced = knob == 1 || knob == 2;
  if (!forced && (mx || p.minor || M > 2 || (K > 4096 && gemv_group_chunks(g) != 0))) return 0;
  const int mode = mx ? 1 : forced ? int(knob) : 2;
  return stream_xstage_bytes(M, K, elem_bytes, mode) + 128 <= stream_xstage_budget(p.minor) ? mode : 0;
}
// v8's split: about LOWBIT_A16W4_STREAM_WARPS (default 16) warps per SM in all, at most one wave
// (the launch bounds leave room for 12-16), each warp one 16-row tile over K / splits.
GemvPlan plan_gemv_stream(int64_t M, int64_t N, int64_t K, int sms) {
  static const int64_t knob = env::integer("LOWBIT_A16W4_STREAM_WARPS", 16);
  const int ctas_per_sm = stream_ctas_per_sm(gemv_token_tiles(M), gemv_stream_prefetch(M));
  const int64_t per_sm = std::clamp<int64_t>(knob, 1, int64_t(kStreamWarps) * ctas_per_sm);
  const KSplit s = warp_stream_split(K / kBlockElems, N / kTileRows, per_sm * sms);
  return {int(s.slice_steps * kBlockElems), int(s.splits)};
}

// The v7 GEMV (w4_gemv_regs.cuh) keeps nothing in shared memory: its CTAs per SM come from
// its launch bounds, and the split fills those slots at most once (as the a16w8 GEMV).
GemvPlan plan_gemv_regs(int64_t M, int64_t N, int64_t K, int sms) {
  const KSplit s = one_wave_split((K + 127) / 128, (N + kGemvRows - 1) / kGemvRows,
                                  int64_t(gemv_regs_ctas_per_sm(gemv_token_tiles(M))) * sms);
  return {int(s.slice_steps * 128), int(s.splits)};
}

// mx: mxfp4 (e2m1 codes, E8M0 scales per 32, no zero points) instead of int4.
Tensor gemv(const Tensor& x, const Tensor& w, const Tensor& scales, const OptTensor& zeros, int64_t g,
            const OptTensor& bias, bool mx = false) {
  const int64_t M = x.size(0), K = x.size(1), N = w.size(0);
  Tensor out = at::empty({M, N}, x.options());
  const int sms = at::cuda::getCurrentDeviceProperties()->multiProcessorCount;
  const bool stream = gemv_stream_applies(M, N, K, g, mx, x, scales, zeros);
  const int regs = stream ? 3 : gemv_regs_mode(M, mx);
  GemvPlan plan = stream ? plan_gemv_stream(M, N, K, sms)
                  : regs ? plan_gemv_regs(M, N, K, sms)
                         : plan_gemv(M, N, K, g, zeros.has_value(), sms, int(x.element_size()),
                                     mx ? 1 : int(x.element_size()));
  GemvParams p{};
  p.x = x.data_ptr();
  p.w = reinterpret_cast<const uint32_t*>(w.data_ptr<int32_t>());
  p.scales = scales.data_ptr();
  p.zeros = zeros ? zeros->data_ptr() : nullptr;
  p.bias = bias ? bias->data_ptr() : nullptr;
  p.out = out.data_ptr();
  p.M = int(M), p.N = int(N), p.K = int(K), p.group = int(g);
  p.k_slice = plan.k_slice;
  p.splits = plan.splits;
  static const bool bulk = env::integer("LOWBIT_A16W4_BULK", 1) != 0;  // 0: cp.async only (A/B runs)
  p.bulk = bulk ? 1 : 0;
  p.regs = regs;
  p.xring = stream && gemv_stream_xring(M, N) ? 1 : 0;
  p.prefetch = (p.xring ? gemv_token_tiles(M) == 1 : gemv_stream_prefetch(M)) ? 1 : 0;
  p.first = gemv_stream_first();
  p.copy = stream ? gemv_stream_copy(M, g, mx, p.prefetch != 0, p.xring != 0) : 1;
  if (stream && K / kBlockElems >= 2) {  // the split v8's splits inside the CTA ask for, if it comes out exact
    const int64_t want = gemv_stream_minor_splits(plan.splits, K / kBlockElems);
    if (want != plan.splits && gemv_stream_minor(M, N, g, mx, want, p)) {
      const KSplit s = warp_stream_split(K / kBlockElems, 1, want);
      if (s.splits == want) plan = {int(s.slice_steps * kBlockElems), int(s.splits)};
    }
  }
  p.k_slice = plan.k_slice;
  p.splits = plan.splits;
  p.minor = stream ? gemv_stream_minor(M, N, g, mx, plan.splits, p) : 0;
  p.xstage = stream ? gemv_stream_xstage(M, N, K, g, mx, plan.splits, p, int(x.element_size())) : 0;
  // Programmatic dependent launch of v8 (opt-in, LOWBIT_A16W4_PDL=1): it may start while the
  // kernel before it runs and request its first weights meanwhile, x after griddep_wait. Only on
  // the user's word: the kernel before must not write this layer's weights or scales (that kernel
  // is not ours to know; the fp8 / int8 linears take PDL after their own quantizer only). Why:
  // the decode step's GEMVs follow glue kernels and one another (torch's inductor emits PDL
  // with TORCHINDUCTOR_ENABLE_PDL=1): the launch gap and the first bytes' latency, ~1-3 us of a
  // 7-25 us GEMV (session 21's fit: ~3.5-5 us of fixed cost at M = 1). Session 23's candidate.
  static const bool pdl = env::integer("LOWBIT_A16W4_PDL", 0) != 0;
  p.pdl = stream && pdl ? 1 : 0;
  CUtensorMap x_map{};  // boxes of M x 128 elements (one block of every token)
  if (p.xring) x_map = tma::make_2d_rows16(x.data_ptr(), M, K, K, uint32_t(M), kBlockElems);
  // arrival counters: per 128-row CTA, or per 16-row tile (v8)
  SplitBuffers split = split_buffers(p.minor ? 1 : plan.splits, M, N,
                                     stream ? N / kTileRows : (N + kGemvRows - 1) / kGemvRows, x.options());
  p.partial = split.partial_ptr();
  p.arrivals = split.arrivals_ptr();
  static const bool debug = env::flag("LOWBIT_DEBUG");
  if (debug)
    std::fprintf(stderr,
                 "[lowbit a16w4] gemv v%d M=%lld N=%lld K=%lld g=%lld k_slice=%d splits=%d minor=%d xstage=%d\n",
                 stream ? 8 : regs == 0 ? 6 : 7, (long long)M, (long long)N, (long long)K, (long long)g, plan.k_slice,
                 plan.splits, p.minor, p.xstage);
  launch_gemv(elem_of(x), p, mx, at::cuda::getCurrentCUDAStream(), p.xring ? &x_map : nullptr);
  return out;
}

// Large M above the wgmma path's range: the weight dequantized to x's dtype once per call,
// then cuBLAS. Costs one extra pass over N x K 16-bit values.
Tensor dequant_matmul(const Tensor& x, const Tensor& w, const Tensor& scales, const OptTensor& zeros, int64_t g,
                      const OptTensor& bias) {
  const int64_t K = x.size(1), N = w.size(0);
  Tensor wd = at::empty({N, K}, x.options());
  launch_dequant(elem_of(x), reinterpret_cast<const uint32_t*>(w.data_ptr<int32_t>()), scales.data_ptr(),
                 zeros ? zeros->data_ptr() : nullptr, wd.data_ptr(), N, K, g, at::cuda::getCurrentCUDAStream());
  return at::linear(x, wd, bias);
}

// M > 32: the mixed-input wgmma GEMM (w4_wgmma.cuh) or dequantize + cuBLAS, as measured on the
// H100 (bench/NOTES.md sessions 4 and 5):
//  - mxfp4 (its sums chain over K, no promotion): wgmma to M = 512 (8192^2 / 28672 x 8192:
//    M = 64 0.72 / 1.16x cuBLAS vs 0.37 / 0.39x dequantized; M = 512 0.66 / 0.66x vs 0.52 /
//    0.55x), dequantize from M = 1024 (0.67x vs 0.71x);
//  - int4 with scales folded into the operand (the default, session 5): groups of 128 and per
//    channel to M = 1024 (8192^2, g128 M = 64 / 256 / 512 / 1024: 0.88 / 0.90 / 0.77 / 0.74x vs
//    promotion 0.44 / 0.48 / 0.54 / 0.71x and dequantize 0.37 / 0.40 / 0.54 / 0.69x; 28672 x
//    8192 at 1024 0.75 vs 0.76x; at 2048 0.72 vs 0.81x: dequantize; per channel 1.01 / 1.04 /
//    0.88 / 0.81x vs 0.38 / 0.40 / 0.55 / 0.73x), groups of 32 / 64 to M = 256 (g32 0.51 / 0.57x
//    vs 0.36 / 0.39x; at 512 0.48x vs 0.53x);
//  - int4 with a promotion per group (LOWBIT_A16W4_WGMMA=promote, session 4): groups of 128 or
//    per channel to M = 256 (g128 M = 256: 0.48 / 0.44x vs 0.40 / 0.41x); groups of 32 / 64
//    dequantize (wgmma 0.17 / 0.29x at M = 64: a promotion every 32 or 64 of K).
// Full 128-row CTAs and 128-element blocks only: N % 128 == 0, K % 128 == 0. At M <= 32 only
// the token counts wgmma_takes_gemv_tokens gives it.
// LOWBIT_A16W4_LARGE=wgmma|dequant forces one for every M > 32 and every group (A/B runs).
bool int4_wgmma_folds() {
  static const bool promote = env::is("LOWBIT_A16W4_WGMMA", "promote");
  return !promote;
}

// The GEMVs' token counts (M <= 32) the mixed-input wgmma takes instead (16 or 32 tokens per CTA,
// K split), measured in session 8 (same call, 8192^2 / 28672x8192 / 4096x14336 / 14336x4096):
//  - 17..32, every format: M = 17 / 24 / 32, a16w4 g128 1.38-1.54 / 1.89-1.93 / 1.60-1.78 /
//    2.00-2.01x cuBLAS vs the GEMV's 1.05-1.21 / 1.11-1.29 / 0.99-1.15 / 0.84-0.99x; a16w8
//    1.22-1.75 vs 0.83-1.11; mxfp4 1.26-1.66 vs 0.72-0.88; mxfp8 1.04-1.46 vs 0.82-1.18;
//  - 8-bit rows (a16w8, mxfp8) from 1 token: a16w8 M = 1 1.54 / 1.80 / 1.58 / 1.64x vs 1.41 / 1.62 /
//    1.44 / 1.40x (0.77-0.90 of cuBLAS's bandwidth), M = 8 1.54-1.76 vs 1.28-1.52; mxfp8 M = 1
//    1.32-1.53 vs 1.15-1.47, M = 8 1.31-1.49 vs 1.10-1.39;
//  - 4-bit weights from 9 tokens: M = 16 a16w4 1.84 / 1.99 / 2.04 / 2.03x vs 1.54 / 1.86 / 1.56 /
//    1.46x, mxfp4 1.31 / 1.69 / 1.74 / 1.58x vs 1.46 / 1.64 / 1.44 / 1.30x; at 8 and below the
//    GEMV keeps them (a16w4 M = 1: 1.92-2.67x vs 1.85-2.03x, M = 8 28672x8192: 2.55 vs 2.00x).
// LOWBIT_W4_WGMMA_MIN_TOKENS=n sets one boundary for all (33: the GEMVs to 32 tokens, as before).
bool wgmma_takes_gemv_tokens(int64_t M, bool rows8) {
  static const int64_t knob = env::integer("LOWBIT_W4_WGMMA_MIN_TOKENS", 0);
  const int64_t min_tokens = knob > 0 ? knob : rows8 ? 1 : 9;
  return M <= kGemvMaxTokens && M >= min_tokens;
}

int chained_row_tiles(int64_t M, int64_t N, bool rows8 = false);

// The 4-bit weights that take 256-row CTAs by the wave rule (chained_row_tiles): MX, and int4 folded
// with groups of 128 or per channel (chunks 4 / 0; session 8, 28672 x 8192 g128 M = 40 / 64 / 128:
// 1.76 / 1.78 / 1.45x cuBLAS vs 1.60 / 1.63 / 1.43x in 128-row CTAs; forced where the rule says no,
// 0.30-0.92x vs 0.63-1.72x).
bool takes_256_rows(WgmmaWeights kind, int chunks) {
  return kind == WgmmaWeights::kMxfp4 || (kind == WgmmaWeights::kInt4Fold && (chunks == 4 || chunks == 0));
}

// Wide CTAs (w4_params.h wgmma_wide_built: 128 rows x 256 tokens), chosen three ways:
// - In place of 256-row CTAs of 128 tokens wherever the rule picks those (s15-call5, same call,
//   wgmma forced, us at M = 512 / 1024 / 2048: a16w4 g128 8192^2 108.4 / 214.6 / 453.8 -> 89.3 /
//   176.1 / 379.4, mxfp4 122.9 / 241.9 / 503.9 -> 91.8 / 180.9 / 393.0; 28672x8192 M = 1024 / 2048
//   -23 / -11% (mxfp4 -14 / -17%), 4096x14336 -20 / -22% (-24 / -27%)).
// - Where the rule keeps 128-row CTAs at 128 tokens but halving them cuts the waves by more than
//   1.6x (a wide CTA's time over a 128-row one's: ~88 vs 56.5 us a wave on 8192^2), and for int4
//   groups of 32 / 64 (128-row CTAs only; wide, the wgmma runs to 2048 tokens instead of 256).
// - Where the 128-row CTAs of more than 128 tokens fill at most one wave: wide ones split along K
//   (8192^2 M = 256: 64 wide tiles x 2 splits for 128 CTAs).
// The last two measured in s16-call2 (same call, against the first alone), us: a16w4 g128
// 28672x8192 M = 512 401.4 -> 353.7, 14336x4096 M = 1024 200.9 -> 187.8, 4096x14336 M = 512 94.1
// -> 87.1; mxfp4 8192^2 M = 256 67.9 -> 59.7, 4096x14336 M = 256 / 512 -8 / -15%, 28672x8192
// M = 512 -10%; g32 -12..-42% at M = 256-1024 (8192^2 M = 512 171.4 -> 98.7), +-3% at 2048; the
// K split at 8192^2 M = 256 (a16w4 g128) -1.8%, not the -10-15% predicted. Worst cell: mxfp4
// 28672x8192 M = 256 +4% (186.6 -> 194.4). Default since.
// LOWBIT_W4_WGMMA_WIDE=0 keeps the 256-row / 128-row CTAs; =rows256 the first way only (the
// default of session 15; A/B runs); =force wherever built at 128 tokens per CTA (tests).
// mode: 0 off, 1 in place of 256-row CTAs, 2 all three (default), 3 force.
int wgmma_wide_mode() {
  static const int mode = env::is("LOWBIT_W4_WGMMA_WIDE", "0")         ? 0
                          : env::is("LOWBIT_W4_WGMMA_WIDE", "rows256") ? 1
                          : env::is("LOWBIT_W4_WGMMA_WIDE", "force")   ? 3
                                                                       : 2;
  return mode;
}

// Whether the mixed-input wgmma at M tokens (128 per CTA planned: M > 64) runs wide CTAs, for the
// chained 4-bit weights `kind` with `chunks` per group (w4_params.h wgmma_wide_built).
bool wide_ctas(int64_t M, int64_t N, WgmmaWeights kind, int chunks) {
  const int mode = wgmma_wide_mode();
  if (mode == 0 || M <= 64 || N % kWgRows != 0 || !wgmma_wide_built(kind)) return false;
  if (mode == 3) return true;
  // At <= 128 tokens a wide CTA's 256 tokens are half padding: twice the tensor work of a 256-row
  // CTA of 128 tokens (s16-call4: 28672x8192 M = 128 a16w4 266.0 us, 0.64x cuBLAS, mxfp4 241.2 us,
  // 0.70x, where 256-row CTAs ran 1.60 / 1.38x in s15-call1; session 15 measured wide CTAs at
  // M >= 512 only).
  if (M <= kWgTokens) return false;
  if (takes_256_rows(kind, chunks) && chained_row_tiles(M, N) == 2) return true;
  if (mode != 2) return false;
  const int64_t sms = at::cuda::getCurrentDeviceProperties()->multiProcessorCount;
  const int64_t narrow = N / kWgRows * ((M + kWgTokens - 1) / kWgTokens), wide = N / kWgRows * ((M + 255) / 256);
  if (narrow <= sms) return true;  // (one wave either way: the wide CTAs split K)
  auto waves = [&](int64_t c) { return (c + sms - 1) / sms; };
  return 10 * waves(narrow) > 16 * waves(wide);
}

// Past the limits below, wide CTAs keep the wgmma to 2048 tokens where they run (s15-call5, ratio
// over cuBLAS bf16 at M = 2048 with the wgmma: a16w4 g128 0.92 / 0.93 / 0.99 / 0.98x, mxfp4 0.89 /
// 0.93 / 0.99 / 0.95x on the four shapes; dequantized, 28672 x 8192 a16w4 0.81x in session 5).
constexpr int64_t kWgmmaMaxTokensMx = 512, kWgmmaMaxTokensFold = 1024, kWgmmaMaxTokensSmallGroups = 256,
                  kWgmmaMaxTokensPromote = 256, kWgmmaMaxTokensWide = 2048;
bool wgmma_applies(int64_t M, int64_t N, int64_t K, int64_t g, bool mx) {
  static const bool force_wgmma = env::is("LOWBIT_A16W4_LARGE", "wgmma");
  static const bool force_dequant = env::is("LOWBIT_A16W4_LARGE", "dequant");
  if (force_dequant || N % kWgRows != 0 || K % 128 != 0) return false;
  if (M <= kGemvMaxTokens && !wgmma_takes_gemv_tokens(M, /*rows8=*/false)) return false;  // the GEMVs'
  if (force_wgmma) return true;
  if (!mx && !int4_wgmma_folds()) return g >= 128 && M <= kWgmmaMaxTokensPromote;
  // (g32 M = 512: 0.48x vs 0.53x)
  if (M <= (mx ? kWgmmaMaxTokensMx : g >= 128 ? kWgmmaMaxTokensFold : kWgmmaMaxTokensSmallGroups)) return true;
  return M <= kWgmmaMaxTokensWide &&
         wide_ctas(M, N, mx ? WgmmaWeights::kMxfp4 : WgmmaWeights::kInt4Fold, mx ? 0 : gemv_group_chunks(g));
}

// Weight rows per CTA of the wgmma GEMM for the chained formats (MX, 8-bit rows, int4 folded
// with groups of 128 or per channel): 128, or 256
// where N % 256 == 0 and the grid's waves say so. A 256-row CTA reads X from L2 once per 256
// rows instead of 128 and takes ~1.5-1.8x a 128-row CTA's time (H100, session 5: one CTA per
// SM, so the grid runs in waves of SM-count CTAs); it pays where halving the CTAs cuts the
// waves by more than that: 28672 x 8192 M = 64 (224 -> 112 CTAs, 2 -> 1 wave) 1.59 / 1.28x
// cuBLAS (a16w8 / mxfp4) vs 1.22 / 1.13x, M = 256 0.88 / 0.72x vs 0.82 / 0.69x; and it loses
// where the waves stay (8192^2 M = 64: 0.48 vs 0.92x) or barely drop (28672 x 8192 M = 512:
// 4 vs 7 waves, 0.70 vs 0.74x). LOWBIT_W4_WGMMA_ROWS=128|256 forces one (A/B runs). Since the
// K split (session 8) a grid short of a wave is split instead, so the rule only decides where
// 128-row CTAs overfill a wave.
// 16 tokens per CTA (M <= 16), 4-bit weights: 256 rows where the 128-row grid is split along K
// (at most half a wave of tiles), session 9: 256-row time over 128-row time at M = 9 / 12 / 16
// (s9-call8), a16w4 g128 8192^2 0.92, 4096x14336 0.92-0.93; mxfp4 0.96-0.97 / 1.00-1.01; where
// the 128-row grid runs unsplit (14336x4096: 112 tiles) a16w4 1.00, mxfp4 1.10, and 28672x8192
// (224 tiles) 1.04 in s9-call5. 32 tokens per CTA (0.98-1.00, s9-call5) and 8-bit rows: 128 rows.
int chained_row_tiles(int64_t M, int64_t N, bool rows8) {
  static const int64_t forced = env::integer("LOWBIT_W4_WGMMA_ROWS", 0);
  if (N % (2 * kWgRows) != 0 || forced == 128 || (M <= 32 && (rows8 || M > 16))) return 1;
  if (forced == 256) return 2;
  const int64_t sms = at::cuda::getCurrentDeviceProperties()->multiProcessorCount;
  if (M <= 16) return 2 * (N / kWgRows) <= sms ? 2 : 1;
  const int64_t ctas = N / kWgRows * ((M + kWgTokens - 1) / kWgTokens);
  auto waves = [&](int64_t c) { return (c + sms - 1) / sms; };
  return 10 * waves(ctas) > 18 * waves(ctas / 2) ? 2 : 1;  // 256 rows: waves halved, x 1.8 time
}

// The mixed-input wgmma's launch plan: tokens per CTA (wgmma N) and the K split. One CTA per
// SM (its stages fill shared memory), so a grid of fewer (rows x tokens) tiles than SMs left SMs
// idle: 8192 x 8192 at M = 64 ran 64 CTAs on 132 SMs, 4096 x 14336 32 (sessions 4-7: 0.88x /
// 0.96x cuBLAS). The K blocks are split so the tiles x splits fill one wave
// (one_wave_split), each split's fp32 partials summed by the tile's last CTA
// (w4_wgmma.cuh). 64 tokens per CTA up to 64 tokens (wgmma_tokens): at M = 33..64 a 128-token
// CTA multiplied zero rows for half of its tensor work. promote: the int4 promotion variant
// (LOWBIT_A16W4_WGMMA=promote) keeps 128 tokens and one split (w4_params.h wgmma_splits), as do
// 256-row CTAs (chosen only where 128-row CTAs overfill a wave: never split).
// LOWBIT_W4_WGMMA_SPLIT=off and LOWBIT_W4_WGMMA_TOKENS=128 restore the session-7 kernel (A/B).
struct WgmmaPlan {
  int tokens, ctas_per_sm;
  KSplit split;
  int64_t tiles;  // (rows, tokens) tiles: the arrival counters of a split
};

// w: the kernel's weight policy; chunks: the int4 group's 32-element chunks (w4_params.h
// gemv_group_chunks, as the launch switches on the group; 0 otherwise).
// wide: the wide CTAs' plan (256 tokens per CTA; wide_ctas says where).
WgmmaPlan wgmma_plan(int64_t M, int64_t N, int64_t K, int row_tiles, WgmmaWeights w, int chunks = 0,
                     bool wide = false) {
  const bool promote = w == WgmmaWeights::kInt4Promote;
  static const bool no_split = env::is("LOWBIT_W4_WGMMA_SPLIT", "off");
  static const int forced_tokens = env::integer("LOWBIT_W4_WGMMA_TOKENS", 0);
  const int tokens = wide      ? kWgWideTokens
                     : promote ? kWgTokens
                     : forced_tokens == 64 || forced_tokens == kWgTokens ? forced_tokens
                                                                         : wgmma_tokens(M);
  const bool splittable = wgmma_splits(w, row_tiles, tokens);
  const int64_t tiles = N / (kWgRows * row_tiles) * ((M + tokens - 1) / tokens);
  const int64_t sms = at::cuda::getCurrentDeviceProperties()->multiProcessorCount;
  // Two CTAs per SM where built (<= 64 tokens, 128-row CTAs) and one CTA per SM would overfill a
  // wave (no split there). Session 8, same call, 28672 x 8192 (224 tiles): a16w4 g128 M = 16 / 32
  // 2.42 / 2.24x vs 2.14 / 2.04x, mxfp4 2.01 / 2.00 vs 1.73 / 1.75, mxfp8 1.71 / 1.68 vs 1.58 / 1.47,
  // a16w8 1.86 / 1.89 vs 1.90 / 1.83; where the split fills the SMs instead (tiles < SMs) two CTAs
  // lost up to 14% (fewer stages, 96 registers). int8 rows keep one (28672x8192 M = 1 / 16 / 32:
  // 1.81 / 1.86 / 1.89x with two vs 1.88 / 1.90 / 1.83x with one; s8-call8 with two: 1.71 / 1.72 /
  // 1.73x). On the H200 (s21-call4, same call, two forced against the default) int4 g128 at 32
  // tokens per CTA gains where the split fills the SMs too: M = 32 +9 / +5 / +3% on 8192^2 / 4096 x
  // 14336 / 14336 x 4096 (16 tokens: -1.5..+10%, 48-64: -6..-12%; mxfp4 at 32: -3..+3%), so int4
  // g128 and per channel (the same folded operand) take two at 17..32 tokens.
  // LOWBIT_W4_WGMMA_CTAS=1|2 forces one or two where built (A/B runs).
  static const int ctas_knob = env::integer("LOWBIT_W4_WGMMA_CTAS", 0);
  const bool two_built = wgmma_two_ctas(w, row_tiles, tokens, chunks);
  const bool two_auto = (w != WgmmaWeights::kInt8Rows && tiles > sms) ||
                        (w == WgmmaWeights::kInt4Fold && tokens == 32 && (chunks == 4 || chunks == 0));
  const int ctas = two_built && (ctas_knob == 2 || (ctas_knob == 0 && two_auto)) ? 2 : 1;
  const int64_t blocks = K / 128;
  const KSplit split = splittable && !no_split ? one_wave_split(blocks, tiles, ctas * sms) : KSplit{blocks, 1};
  return {tokens, ctas, split, tiles};
}

// Fill p's plan fields; the split's buffers (kept alive by the caller until the launch is queued).
SplitBuffers apply_wgmma_plan(const WgmmaPlan& plan, W4WgmmaParams& p, const Tensor& x) {
  p.tokens = plan.tokens;
  p.ctas_per_sm = plan.ctas_per_sm;
  p.splits = int(plan.split.splits);
  p.kb_per_split = int(plan.split.slice_steps);
  // LOWBIT_W4_WGMMA_SKEW=1..4: the two consumer warpgroups half a K block (2 chunks) or more apart,
  // so that one's drain at the end of a block finds the other's wgmma still queued (s16-call3:
  // 24-30% of the warp samples on that wait, both warpgroups in step). Off: s16-call4, skew 2 against
  // none, a16w4 g128 / mxfp4 at M = 128-2048 on four shapes, -8..+4%, median ~-1%.
  static const int skew = int(env::integer("LOWBIT_W4_WGMMA_SKEW", 0));
  p.skew = skew < 0 ? 0 : skew > 4 ? 4 : skew;
  SplitBuffers buf = split_buffers(plan.split.splits, p.M, p.N, plan.tiles, x.options());
  p.partial = buf.partial_ptr();
  p.arrivals = buf.arrivals_ptr();
  return buf;
}

// mx: mxfp4 weights (E8M0 scales folded into the bf16 A operand exactly: no sums of x, no
// zero points). int4: scales and zero points folded into the A operand too (w = q s - z s
// rounded once to x's dtype, like the dequantize path's weight; session 5), or with
// LOWBIT_A16W4_WGMMA=promote exact codes and a promotion per group after a pre-pass for the
// sums of x (session 4: half mxfp4's rate, the per-group wgmma wait).
Tensor wgmma_matmul(const Tensor& x, const Tensor& w, const Tensor& scales, const OptTensor& zeros, int64_t g,
                    const OptTensor& bias, bool mx) {
  const int64_t M = x.size(0), K = x.size(1), N = w.size(0);
  const cudaStream_t stream = at::cuda::getCurrentCUDAStream();
  Tensor out = at::empty({M, N}, x.options());
  const bool fold = !mx && int4_wgmma_folds();
  Tensor sum_x;
  if (!mx && !fold) {
    // rows padded to whole token tiles: the kernel reads them unclamped, and stores no
    // result for tokens past M
    const int64_t m_pad = (M + kWgTokens - 1) / kWgTokens * kWgTokens;
    sum_x = at::empty({m_pad, K / g}, x.options().dtype(at::kFloat));
    launch_sum_x(elem_of(x), x.data_ptr(), sum_x.data_ptr<float>(), M, K, g, stream);
  }
  using enum WgmmaWeights;
  const WgmmaWeights kind = mx ? kMxfp4 : fold ? kInt4Fold : kInt4Promote;
  const int chunks = mx ? 0 : gemv_group_chunks(g);
  int row_tiles = takes_256_rows(kind, chunks) ? chained_row_tiles(M, N) : 1;
  WgmmaPlan plan = wgmma_plan(M, N, K, row_tiles, kind, chunks);
  // Wide CTAs (wide_ctas: in place of 256-row CTAs of 128 tokens, the same grid) of 128 rows x 256
  // tokens, one CTA per SM.
  if (plan.tokens == kWgTokens && wide_ctas(M, N, kind, chunks)) {
    row_tiles = 1;
    plan = wgmma_plan(M, N, K, 1, kind, chunks, /*wide=*/true);
  }
  // x permuted once before the kernel (128 tokens per CTA): the consumers build their A fragments
  // without quad shuffles (w4_params.h wgmma_x_pre_built says why). Default: in 256-row CTAs (which
  // keep the shuffles; 128-row CTAs read the quad's words from shared memory instead) where N >= K,
  // since the pass moves M x K x 4 bytes against a gain that grows with N. Session 14, same call
  // (s14-call5), M = 128 / 256 / 512 / 1024, us, a16w4 g128 (mxfp4): x-pre against none in 256-row
  // CTAs 8192^2 M = 512 / 1024 -12 / -7% (-3 / -6%), 28672x8192 -18 / -15 / -6 / -3% (-10 / -10 /
  // -1 / -6%), 14336x4096 M = 256-1024 -7 / -8 / -1% (-5 / -8 / +2%), 4096x14336 M = 1024 0% (+5%);
  // in 128-row CTAs +1..+10% (the words from shared memory without the pass win).
  // LOWBIT_W4_WGMMA_XPRE=1|0 forces it on wherever built, or off (A/B runs).
  static const bool x_pre_on = env::is("LOWBIT_W4_WGMMA_XPRE", "1"), x_pre_off = env::is("LOWBIT_W4_WGMMA_XPRE", "0");
  const bool x_pre = wgmma_x_pre_built(kind, plan.tokens, plan.ctas_per_sm) && !x_pre_off &&
                     (x_pre_on || (row_tiles == 2 && N >= K));
  // x copied into whole token tiles (rows past M zero) so that no x box reaches past the tensor,
  // where the grid is one row of wide CTAs (M = 129..255), unsplit, and at least a wave. A partly
  // out-of-bounds box is slow to land there: s17-call3, same call, 28672x8192 M = 136 / 160 / 192
  // a16w4 g128 258 / 241 / 217 -> 172 / 174 / 179 us (M = 256: 186), mxfp4 241 / 224 / 201 -> 186 /
  // 189 / 191 us. Elsewhere the copy (M x K) cost more than it saved: split grids (8192^2, 4096x14336)
  // -11..+16%, 14336x4096 (112 CTAs, unsplit) -15..+10%, M = 1000 on the four shapes 0..+15%.
  // LOWBIT_W4_WGMMA_PAD_X=1|0 forces it on for every ragged M, or off (A/B runs).
  static const bool pad_on = env::is("LOWBIT_W4_WGMMA_PAD_X", "1"), pad_off = env::is("LOWBIT_W4_WGMMA_PAD_X", "0");
  const int64_t sms = at::cuda::getCurrentDeviceProperties()->multiProcessorCount;
  const bool pad_auto = plan.tokens == kWgWideTokens && M < plan.tokens && plan.split.splits == 1 && plan.tiles >= sms;
  const int64_t x_rows = !pad_off && (pad_on || pad_auto) ? (M + plan.tokens - 1) / plan.tokens * plan.tokens : M;
  // The tensor the kernel's x boxes read: x, or x_rows rows with those past M zero, filled by the
  // permutation (into them) or by one padding copy.
  Tensor x_src = x;
  if (x_pre) {
    x_src = at::empty({x_rows, K}, x.options());
    launch_permute_x_chunks(x.data_ptr(), x_src.data_ptr(), M, K, stream);
    if (x_rows != M) x_src.narrow(0, M, x_rows - M).zero_();
  } else if (x_rows != M) {
    x_src = at::constant_pad_nd(x, {0, 0, 0, x_rows - M});
  }
  const CUtensorMap tmap_x = tma::make_2d_sw128(x_src.data_ptr(), 2, x_rows, K, K, plan.tokens);
  W4WgmmaParams p{};
  p.x_pre = x_pre ? 1 : 0;
  p.w = reinterpret_cast<const uint32_t*>(w.data_ptr<int32_t>());
  p.scales = scales.data_ptr();
  p.zeros = zeros ? zeros->data_ptr() : nullptr;
  p.sum_x = sum_x.defined() ? sum_x.data_ptr<float>() : nullptr;
  p.bias = bias ? bias->data_ptr() : nullptr;
  p.out = out.data_ptr();
  p.M = int(M), p.N = int(N), p.K = int(K), p.group = int(g);
  const SplitBuffers split = apply_wgmma_plan(plan, p, x);
  launch_wgmma(elem_of(x), tmap_x, p, mx, row_tiles, fold, stream);
  return out;
}

}  // namespace

// 8-bit rows above the GEMVs' 32 tokens: the mixed-input wgmma GEMM up to these M, measured on
// the H100 (session 5, 8192^2 / 28672 x 8192, vs the weight dequantized + cuBLAS): a16w8 M = 64
// 0.92 / 1.22x cuBLAS (dequantized: 0.34 / 0.34x), 256 0.98 / 0.82x (0.37 / 0.37x), 512 0.79 /
// 0.74x (0.50 / 0.49x), 1024 0.74-0.78 / 0.66-0.70x (0.67 / 0.69x); mxfp8 M = 64 0.70 / 1.09x
// (0.34 / 0.36x), 512 0.62 / 0.64x (0.48 / 0.52x), 1024 0.62-0.64 / 0.60-0.63x (0.64 / 0.72x:
// dequantize). LOWBIT_ROWS8_LARGE=wgmma|dequant forces one for every M > 32 (A/B runs).
constexpr int64_t kRows8WgmmaMaxTokensInt8 = 1024, kRows8WgmmaMaxTokensMx = 512;
bool rows8_wgmma_applies(int64_t M, int64_t N, int64_t K, bool mx) {
  static const bool force_wgmma = env::is("LOWBIT_ROWS8_LARGE", "wgmma");
  static const bool force_dequant = env::is("LOWBIT_ROWS8_LARGE", "dequant");
  if (force_dequant || (M <= kGemvMaxTokens && !wgmma_takes_gemv_tokens(M, /*rows8=*/true)) || N % kWgRows != 0 ||
      K % 128 != 0)
    return false;
  return force_wgmma || M <= (mx ? kRows8WgmmaMaxTokensMx : kRows8WgmmaMaxTokensInt8);
}

Tensor rows8_wgmma_matmul(const Tensor& x, const Tensor& w, const Tensor& w_scale, const OptTensor& bias, bool mx) {
  const int64_t M = x.size(0), K = x.size(1), N = w.size(0);
  Tensor out = at::empty({M, N}, x.options());
  const int row_tiles = chained_row_tiles(M, N, /*rows8=*/true);
  const WgmmaPlan plan =
      wgmma_plan(M, N, K, row_tiles, mx ? WgmmaWeights::kMxfp8Rows : WgmmaWeights::kInt8Rows);
  const CUtensorMap tmap_x = tma::make_2d_sw128(x.data_ptr(), 2, M, K, K, plan.tokens);
  const CUtensorMap tmap_w = tma::make_2d_sw128(w.data_ptr(), 1, N, K, K, kWgRows * row_tiles);
  W4WgmmaParams p{};
  p.scales = mx ? w_scale.data_ptr() : nullptr;
  p.row_scale = mx ? nullptr : w_scale.data_ptr<float>();
  p.bias = bias ? bias->data_ptr() : nullptr;
  p.out = out.data_ptr();
  p.M = int(M), p.N = int(N), p.K = int(K), p.group = int(K);
  const SplitBuffers split = apply_wgmma_plan(plan, p, x);
  launch_rows8_wgmma(elem_of(x), mx, tmap_x, tmap_w, p, row_tiles, at::cuda::getCurrentCUDAStream());
  return out;
}

namespace {

Tensor a16w4_linear(const Tensor& x, const Tensor& w, const Tensor& scales, const OptTensor& zeros,
                    int64_t group_size, const OptTensor& bias) {
  int64_t g = 0;
  const auto d = contract::a16w4("a16w4_linear", x, w, scales, zeros, group_size, bias, &g);
  c10::cuda::CUDAGuard guard(x.device());
  if (d.M == 0) return at::empty({0, d.N}, x.options());
  const Path path = forced_path();
  const bool small = path == Path::kGemv || (path == Path::kAuto && d.M <= kGemvMaxTokens);
  if (path == Path::kAuto && wgmma_applies(d.M, d.N, d.K, g, /*mx=*/false))
    return wgmma_matmul(x, w, scales, zeros, g, bias, /*mx=*/false);
  if (small && d.M <= kGemvMaxTokens) return gemv(x, w, scales, zeros, g, bias);
  return dequant_matmul(x, w, scales, zeros, g, bias);
}

// y = x w^T for mxfp4 weights, x in bf16, fp16 or fp32, y in out_dtype (bias in out_dtype):
// the mixed-input wgmma GEMM for bf16 on full tiles from 9 to 512 tokens (wgmma_takes_gemv_tokens,
// wgmma_applies); the GEMV for the other M <= 32 when x is 16-bit and y has its dtype; else the
// weight dequantized (bf16 holds every
// e2m1 x 2^k exactly, so bf16 runs in bf16 and cuBLAS; anything else in fp32, one rounding).
Tensor mx4_matmul(const Tensor& x, const Tensor& w, const Tensor& w_scale, const OptTensor& bias,
                  at::ScalarType out_dtype) {
  const int64_t M = x.size(0), K = x.size(1), N = w.size(0);
  const Path path = forced_path();
  const bool x16 = x.scalar_type() == out_dtype && x.scalar_type() != at::kFloat;
  const bool bf16 = x16 && out_dtype == at::kBFloat16;
  if (bf16 && path == Path::kAuto && wgmma_applies(M, N, K, 32, /*mx=*/true))
    return wgmma_matmul(x, w, w_scale, std::nullopt, 32, bias, /*mx=*/true);
  if (x16 && M <= kGemvMaxTokens && path != Path::kDequant)
    return gemv(x, w, w_scale, std::nullopt, 32, bias, /*mx=*/true);
  Tensor wd = at::empty({N, K}, x.options().dtype(bf16 ? at::kBFloat16 : at::kFloat));
  launch_dequant_mx(Elem::kBF16, /*fp32_out=*/!bf16, reinterpret_cast<const uint32_t*>(w.data_ptr<int32_t>()),
                    w_scale.data_ptr<uint8_t>(), wd.data_ptr(), N, K, at::cuda::getCurrentCUDAStream());
  if (bf16) return at::linear(x, wd, bias);
  const OptTensor bias32 = bias ? OptTensor(bias->to(at::kFloat)) : std::nullopt;
  return at::linear(x.to(at::kFloat), wd, bias32).to(out_dtype);
}

Tensor mxfp4_linear(const Tensor& x, const Tensor& w, const Tensor& w_scale, const OptTensor& bias) {
  const auto d = contract::linear_mx("mxfp4_linear", x, w, w_scale, bias, /*w_four_bit=*/true);
  c10::cuda::CUDAGuard guard(x.device());
  if (d.M == 0) return at::empty({0, d.N}, x.options());
  return mx4_matmul(x, w, w_scale, bias, x.scalar_type());
}

// An MXFP8 operand (e4m3 codes (rows, K), E8M0 scales per 32) dequantized: e4m3 x 2^(e - 127),
// exact in fp32, and in bf16 down to 2^-133.
Tensor dequant_mx8(const Tensor& q, const Tensor& scale, bool fp32) {
  Tensor out = at::empty(q.sizes(), q.options().dtype(fp32 ? at::kFloat : at::kBFloat16));
  launch_dequant_mx8(fp32, static_cast<const uint8_t*>(q.data_ptr()), scale.data_ptr<uint8_t>(), out.data_ptr(),
                     q.size(0), q.size(1), at::cuda::getCurrentCUDAStream());
  return out;
}

// mxfp8 (MXFP8 activations and weights), on the dequantized activations a_dq (bf16 for bf16
// output, else fp32: mx_act_quantized / mx_act_linear). With bf16 output, M <= 512 on full tiles
// (rows8_wgmma_applies): the mixed-input wgmma on the e4m3 rows; other shapes at M <= 32: the
// 8-bit-row GEMV (gemm/int8/rows8_gemv.h); both read the weights once and apply their E8M0 scales exactly in registers. Else the
// weights are dequantized the same way and cuBLAS bf16 (fp32 sums) or an fp32 GEMM runs.
// LOWBIT_MXFP8_PATH=dequant forces the last path (A/B runs).
// Kept here with the other MX ops, whose activation quantizer and dequantizer it shares.
Tensor mx8_matmul_dq(const Tensor& a_dq, const Tensor& b, const Tensor& b_scale, const OptTensor& bias,
                     at::ScalarType out_dtype) {
  const bool bf16 = out_dtype == at::kBFloat16;
  static const bool force_dequant = env::is("LOWBIT_MXFP8_PATH", "dequant");
  // (the wgmma first: it takes full tiles from 1 token, wgmma_takes_gemv_tokens)
  if (bf16 && !force_dequant && rows8_wgmma_applies(a_dq.size(0), b.size(0), b.size(1), /*mx=*/true))
    return rows8_wgmma_matmul(a_dq, b, b_scale, bias, /*mx=*/true);
  if (bf16 && a_dq.size(0) <= int8::kA16w8MaxTokens && !force_dequant)
    return int8::rows8_gemv(a_dq, b, b_scale, bias, /*mx=*/true);
  const Tensor b_dq = dequant_mx8(b, b_scale, /*fp32=*/!bf16);
  if (bf16) return at::linear(a_dq, b_dq, bias);
  const OptTensor bias32 = bias ? OptTensor(bias->to(at::kFloat)) : std::nullopt;
  return at::linear(a_dq, b_dq, bias32).to(out_dtype);
}

// The two ops on MXFP8 activations, by their weights' width (a8w4_mx: MXFP4; mxfp8: MXFP8):
// the _mm ops take quantized activations, the _linear ops round x to MXFP8 in the op. Either way
// the activations go on dequantized (bf16 for bf16 output, else fp32: exact) -- a8w4_mx through
// mx4_matmul, whose products and fp32 sums are the reference's (csrc/cpu/linear.cpp mx_mm) up to
// summation order; mxfp8 through mx8_matmul_dq.
template <bool kFourBit>
Tensor mx_act_quantized(const Tensor& a, const Tensor& a_scale, const Tensor& b, const Tensor& b_scale,
                        const OptTensor& bias, at::ScalarType out_dtype) {
  const Tensor a_dq = dequant_mx8(a, a_scale, /*fp32=*/out_dtype != at::kBFloat16);
  if constexpr (kFourBit) return mx4_matmul(a_dq, b, b_scale, bias, out_dtype);
  else return mx8_matmul_dq(a_dq, b, b_scale, bias, out_dtype);
}

template <bool kFourBit>
Tensor mx_act_mm(const Tensor& a, const Tensor& a_scale, const Tensor& b, const Tensor& b_scale, const OptTensor& bias,
                 at::ScalarType out_dtype) {
  const char* op = kFourBit ? "a8w4_mx_mm" : "mxfp8_mm";
  const auto d = contract::mx_mm(op, a, a_scale, b, b_scale, bias, out_dtype, kFourBit);
  c10::cuda::CUDAGuard guard(a.device());
  if (d.M == 0) return at::empty({0, d.N}, a.options().dtype(out_dtype));
  return mx_act_quantized<kFourBit>(a, a_scale, b, b_scale, bias, out_dtype);
}

template <bool kFourBit>
Tensor mx_act_linear(const Tensor& x, const Tensor& w, const Tensor& w_scale, const OptTensor& bias) {
  const auto d = contract::linear_mx(kFourBit ? "a8w4_mx_linear" : "mxfp8_linear", x, w, w_scale, bias, kFourBit);
  c10::cuda::CUDAGuard guard(x.device());
  if (d.M == 0) return at::empty({0, d.N}, x.options());
  // LOWBIT_MX_ACT=two_pass: quantize_mxfp8, then the _mm path's dequantizer (the previous
  // version, kept for A/B runs).
  static const bool two_pass = env::is("LOWBIT_MX_ACT", "two_pass");
  if (two_pass) {
    static auto quantize = c10::Dispatcher::singleton()
                               .findSchemaOrThrow("lowbit::quantize_mxfp8", "")
                               .typed<QuantPair(const Tensor&)>();
    auto [q, s] = quantize.call(x);
    return mx_act_quantized<kFourBit>(q, s, w, w_scale, bias, x.scalar_type());
  }
  // x rounded to MXFP8 and back in one pass (the values quantize_mxfp8 and dequant_mx8 gave,
  // without the codes: one launch fewer), bf16 for bf16 output, else fp32.
  const bool bf16 = x.scalar_type() == at::kBFloat16;
  Tensor x_dq = at::empty(x.sizes(), x.options().dtype(bf16 ? at::kBFloat16 : at::kFloat));
  quant::launch_mxfp8_round(bf16 ? quant::InType::kBF16 : quant::InType::kF16, x.data_ptr(), x_dq.data_ptr(),
                            /*fp32_out=*/!bf16, d.M * d.K / 8, at::cuda::getCurrentCUDAStream());
  if constexpr (kFourBit) return mx4_matmul(x_dq, w, w_scale, bias, x.scalar_type());
  else return mx8_matmul_dq(x_dq, w, w_scale, bias, x.scalar_type());
}

Tensor prepack_w4(const Tensor& w) {
  const auto [N, K] = contract::w4_plain("prepack_w4", w);
  c10::cuda::CUDAGuard guard(w.device());
  Tensor out = at::empty({N, K / 8}, w.options().dtype(at::kInt));
  if (N > 0)
    launch_prepack(w.data_ptr<uint8_t>(), reinterpret_cast<uint32_t*>(out.data_ptr<int32_t>()), N, K,
                   at::cuda::getCurrentCUDAStream());
  return out;
}

Tensor unpack_w4(const Tensor& w) {
  const auto [N, K] = contract::w4_packed("unpack_w4", w);
  c10::cuda::CUDAGuard guard(w.device());
  Tensor out = at::empty({N, K / 2}, w.options().dtype(at::kByte));
  if (N > 0)
    launch_unpack(reinterpret_cast<const uint32_t*>(w.data_ptr<int32_t>()), out.data_ptr<uint8_t>(), N, K,
                  at::cuda::getCurrentCUDAStream());
  return out;
}

}  // namespace
}  // namespace lowbit::w4

TORCH_LIBRARY_IMPL(lowbit, CUDA, m) {
  using namespace lowbit::w4;
  m.impl("a16w4_linear", &a16w4_linear);
  m.impl("mxfp4_linear", &mxfp4_linear);
  m.impl("a8w4_mx_mm", &mx_act_mm<true>);
  m.impl("a8w4_mx_linear", &mx_act_linear<true>);
  m.impl("mxfp8_mm", &mx_act_mm<false>);
  m.impl("mxfp8_linear", &mx_act_linear<false>);
  m.impl("prepack_w4", &prepack_w4);
  m.impl("unpack_w4", &unpack_w4);
}
