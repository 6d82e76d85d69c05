#pragma once
// Host side of the Hopper mainloop shared by the families on it (fp8, int8): the shape ->
// tile plan, tensor maps, parameters, allocation. Included by <family>_ops.cpp (C++ compiler).
// Environment knobs (read once per process; they apply to every family on the mainloop):
// LOWBIT_SM90_CLUSTER=1|2 (CTAs per cluster multicasting the weight tile at large M; default by
// tile: cheapest_tile),
// LOWBIT_FP8_SPLITS=n (force the K split), LOWBIT_FP8_ONE_ACC=1 (one accumulator set),
// LOWBIT_FP8_FOLD_EVERY=1|2|4|8 (K blocks per promotion; unset: by tile), LOWBIT_SM90_BN and
// LOWBIT_FP8_BN=128|192|256|0 (large-M tile width of chained / promoting loops; 0: by waves),
// LOWBIT_DEBUG=1 (print the plan).
#include <ATen/cuda/CUDAContext.h>
#include <ATen/ops/empty.h>
#include <c10/cuda/CUDAGuard.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>

#include "lowbit/env.h"
#include "lowbit/gemm/sm90_launch.h"
#include "lowbit/ops.h"
#include "lowbit/tma_desc.h"

#if defined(__CUDACC__)
#error "lowbit/gemm/sm90_host.h is host op glue for .cpp files"
#endif

namespace lowbit::gemm {

// Split-K factor: the fewest K-block steps per CTA over the whole grid (waves x K blocks per
// unit), with a small charge per extra split for the partial tiles it writes and reads.
inline int choose_splits(int units, int num_kb, int slots) {
  int best = 1;
  double best_cost = 1e30;
  for (int s = 1; s <= 8 && s <= num_kb; ++s) {
    const int kb = (num_kb + s - 1) / s;
    const double waves = double((int64_t(units) * s + slots - 1) / slots);
    const double cost = waves * kb * (1.0 + 0.02 * (s - 1));
    if (cost < best_cost - 1e-9) best_cost = cost, best = s;
  }
  return best;
}

// 2-CTA clusters multicasting the weight tile at large M: +13-20% for the chained int8 loop
// (bench/NOTES.md, int8 v2), +7-10% for the promoted 128 x 128 fp8 loop once the epilogue went
// out by TMA stores (no gain before), -20% for the promoted two-halves loop (s10 probes).
// Large M: chained loops (the accumulator alone fits the registers) take 128 x 256 tiles,
// promoted ones 128 x 128; LOWBIT_SM90_BN=128 gives chained loops 128 x 128 (A/B runs). (128 x 256
// had measured 20% slower for int8 in session 3, when the epilogue's generic stores took half
// of its time: bench/NOTES.md, session 10.) Small M
// (<= 64): swap-AB, 128 weight rows x the tokens padded to 8/16/32/64. LOWBIT_FP8_BN=256: promoting
// loops take 128 x 256 tiles in two halves (sm90_gemm.cuh kNParts; an A/B, session 10). LOWBIT_FP8_SPLITS=n
// forces the K split (a diagnostic).
// Promoting loops with per-row scales, bf16 output, large M: 128 x 192 tiles promote every 4 K
// blocks (fp8 sums run 512 products in the tensor core's accumulator between promotions:
// bench/fp8_accuracy.py, s19-call2: 1.69e-3 against 1.66e-3 promoted every block at K = 16384,
// M = 1024, bf16 out, where the output's rounding dominates); LOWBIT_FP8_FOLD_EVERY below.
// Large M: the tile (width bn, CTAs per cluster) whose waves of resident work units take the
// least time, a unit of width bn costing bn / 128 / rate of a 128 x 128 unit in clusters of 2
// (rate: that tile's throughput over it, measured at many waves), each width with its own
// cluster size. Chained (int8): 128 x 256 in clusters of 2, rate 1.15 (1.15-1.16x the
// throughput at M = 1024 / 4096, s10-call3; at M = 256 on 8192^2 the 32 wide cluster units left
// half the SMs idle: 1.11x cuBLAS vs 1.45x narrow). Promoting (fp8): the two-halves 128 x 256
// loop without clusters, rate 1.19 (probe, s10-call4: 1221-1236 vs 974-1104 TFLOP/s; the halves
// lose 20% with clusters, the 128 x 128 loop gains 7-10%); where the fp8 sums may fold 4 K
// blocks per promotion (per-row scales, bf16 out), also 128 x 192 in clusters of 2, rate 1.33
// (probe s19-call1: 1324-1362 TFLOP/s against the halves' 1220-1229 at M = 4096 / 8192; the
// library's same-run A/B over 49 cells, s19-call2..7, fits 1.10-1.15x the halves' rate with whole
// waves, and this rule picks the faster of the two in all but cells within 3%).
struct TileChoice {
  int bn, cluster;
  double rate;
};
inline double tile_cost(TileChoice t, int64_t tiles_p, int64_t rows_q, int sms) {
  const int64_t slots = std::max(1, sms / t.cluster), pu = (tiles_p + t.cluster - 1) / t.cluster;
  const int64_t waves = (pu * ((rows_q + t.bn - 1) / t.bn) + slots - 1) / slots;
  return double(waves) * t.bn / 128.0 / t.rate;
}
// The cheapest of the candidates; ties go to the earlier candidate.
inline TileChoice cheapest_tile(std::initializer_list<TileChoice> candidates, int64_t tiles_p, int64_t rows_q,
                                int sms) {
  TileChoice best = *candidates.begin();
  for (const TileChoice& t : candidates)
    if (tile_cost(t, tiles_p, rows_q, sms) < tile_cost(best, tiles_p, rows_q, sms)) best = t;
  return best;
}

// The card's peak HBM bandwidth (bytes / s) from its memory clock and bus width (two transfers a
// clock), once per device: H100 SXM 3.35e12, H200 4.9e12. 0 where the attributes are missing.
inline double hbm_bytes_per_s(int device) {
  static std::atomic<double> cached[64];  // (zero-initialized; threads may race to fill a slot with one value)
  if (device < 0 || device >= 64) return 0.0;
  double v = cached[device].load(std::memory_order_relaxed);
  if (v == 0.0) {
    int khz = 0, bits = 0;
    if (cudaDeviceGetAttribute(&khz, cudaDevAttrMemoryClockRate, device) != cudaSuccess ||
        cudaDeviceGetAttribute(&bits, cudaDevAttrGlobalMemoryBusWidth, device) != cudaSuccess) {
      (void)cudaGetLastError();  // leave no sticky error for the next launch check
      return 0.0;
    }
    v = 2.0 * khz * 1e3 * bits / 8.0;
    cached[device].store(v, std::memory_order_relaxed);
  }
  return v;
}

// hbm: the card's HBM bytes / s (hbm_bytes_per_s; 0 if unknown), for the swap-AB K split at 1..16
// tokens.
inline Plan make_plan(int64_t M, int64_t N, int64_t K, int sms, bool allow_split, bool promote, ScaleMode mode,
                      bool out_bf16, double hbm = 0.0) {
  Plan p;
  // Swap-AB (weights on wgmma's M side) up to 64 tokens, 32 in block mode; LOWBIT_SM90_SWAP_MAX=n
  // moves the line (A/B). Same-run A/B at 33..64 tokens, normal layout over swap-AB time
  // (s10-call7): fp8_block 0.71-0.88 on three shapes (the swapped tile loads 16 per-token block
  // scales a K block per thread at 64 tokens), fp8 rowwise 0.91-1.11, int8 1.00-1.36 (it never
  // splits K, so the normal layout's 64 tiles ran on half the SMs). Past 64 tokens (the knob up to
  // 256: an experiment) the tokens take several 64-row Q tiles.
  static const int64_t swap_max = env::integer("LOWBIT_SM90_SWAP_MAX", 0);
  p.swap_ab = M <= std::min<int64_t>(swap_max > 0 ? swap_max : mode == ScaleMode::kBlock ? 32 : 64, 256);
  const int64_t rows_p = p.swap_ab ? N : M, rows_q = p.swap_ab ? M : N;
  const int64_t tiles_p = (rows_p + kBlockP - 1) / kBlockP;
  // LOWBIT_SM90_BN (chained loops) / LOWBIT_FP8_BN (promoting ones): 128 or 256 (or 192 where
  // the sums fold) forces the tile width at large M, else cheapest_tile chooses;
  // LOWBIT_SM90_CLUSTER=1|2 forces the cluster size.
  static const int chained_bn = env::integer("LOWBIT_SM90_BN", 0);
  static const int promoted_bn = env::integer("LOWBIT_FP8_BN", 0);
  static const int forced_cluster = env::integer("LOWBIT_SM90_CLUSTER", 0);
  const int forced_bn = promote ? promoted_bn : chained_bn;
  // LOWBIT_FP8_FOLD_EVERY=1|2|4|8: K blocks chained per promotion (sm90_gemm.cuh kFold) where the
  // sums may fold (per-row scales, bf16 out, normal layout); unset: 4 at 128 x 192, 1 at 128 x 128
  // (2 and 4 there: A/B runs). 128 x 192 needs a fold of 4 or 8 (its two accumulators, 96 + 96
  // registers, leave no room for a second set): forced to 1 or 2, it falls back to 128.
  // LOWBIT_FP8_ONE_ACC=1: the one-set ping-pong loop of v6 at 128 x 128 instead of two sets
  // (bench/NOTES.md, fp8 v8; A/B runs).
  static const bool one_acc = env::flag("LOWBIT_FP8_ONE_ACC");
  static const int fold_every = env::integer("LOWBIT_FP8_FOLD_EVERY", 0);
  const bool foldable = promote && mode == ScaleMode::kRowCol && !p.swap_ab && out_bf16;
  const bool wide_folds = foldable && (fold_every == 0 || fold_every == 4 || fold_every == 8);
  // The folded tile's rate: where it needs 1.5x the halves' waves the two tie (1.5 / 1.33 against
  // 2 / 1.19). Measured at such ties: 0.91-0.94x the halves' speed at M = 256 / 512 (three cells),
  // 0.95-1.10x (mean 1.00) at M = 1024..4096 in isolation (seven), and in the Llama-3-8B prefill
  // (M = 2048) the 4096-row GEMMs ran 8.24 ms folded against 8.82 in halves (s19-call9): so from
  // 1024 rows the tie goes to the folded tile.
  const TileChoice narrow{128, 2, 1.0}, wide{256, promote ? 1 : 2, promote ? 1.19 : 1.15},
      folded{192, 2, rows_p >= 1024 ? 1.35 : 1.33};
  TileChoice t = forced_bn == 256                ? wide
                 : forced_bn == 128              ? narrow
                 : forced_bn == 192 && wide_folds ? folded
                 : wide_folds                     ? cheapest_tile({narrow, wide, folded}, tiles_p, rows_q, sms)
                                                  : cheapest_tile({narrow, wide}, tiles_p, rows_q, sms);
  if (forced_cluster == 1 || forced_cluster == 2) t.cluster = forced_cluster;
  p.bn = p.swap_ab ? (M <= 8 ? 8 : M <= 16 ? 16 : M <= 32 ? 32 : 64) : t.bn;
  p.cluster = (!p.swap_ab && tiles_p >= 2) ? t.cluster : 1;
  const int fold = fold_every > 0 ? fold_every : p.bn == 192 ? 4 : 1;
  p.fold = foldable && (p.bn == 128 || p.bn == 192) && (fold == 2 || fold == 4 || fold == 8) ? fold : 1;
  if (p.bn == 192 && p.fold < 4) p.bn = 128;
  const int num_kb = int((K + kBlockK - 1) / kBlockK);
  static const int forced_ksplit = env::integer("LOWBIT_SM90_KSPLIT", 0);
  p.ksplit = 1;
  // Large M on few 128 x 128 tiles (4096 x 14336 at M = 256: 64 tiles for 132 SMs; 8192^2 at
  // M = 128): the K split in clusters of 2 (sm90_gemm.cuh kKSplit) on 128 x 128 tiles without
  // multicast, the tile stored by the generic epilogue, instead of half the SMs idle (int8) or
  // fp32 partials and a reduce launch (fp8's global split). LOWBIT_SM90_KSPLIT=1 turns it off.
  // Same-call A/B (s12-call1, M = 128 / 256 / 512): fp8 row / tensor / block +8-36% at 128 and
  // 256 on 4096 x 14336 and at 128 on 8192^2, +-2% elsewhere; int8 +9-14% on 4096 x 14336 (112
  // K blocks) but -12% on 8192^2 at M = 128 (64 K blocks: the half-empty grid's 34 us beat the
  // split's 39), so int8 splits only from 96 K blocks (a line between the two measured shapes).
  // At M <= 64 (fp8_block's normal layout from 33 tokens) only on more than a quarter of the SMs'
  // tiles: on 32 tiles the global split puts 4 CTAs on each where the clusters put 2 (4096 x
  // 14336, M = 64: 38.8 us split in clusters, 35.0-35.3 globally, s12-call2 / s12-call3); on 64
  // tiles the clusters win (8192^2: 36.7 against 38.9 us).
  const int64_t normal_tiles = tiles_p * ((rows_q + 127) / 128);
  const bool ksplit_pays = (allow_split || num_kb >= 96) && normal_tiles * 2 <= sms && (M > 64 || normal_tiles * 4 > sms);
  if (!p.swap_ab && p.fold == 1 && forced_ksplit != 1 && num_kb >= 4 && (ksplit_pays || forced_ksplit == 2)) {
    p.ksplit = 2, p.bn = 128, p.cluster = 1;
  }
  p.acc_sets = (promote && !p.swap_ab && p.bn == 128 && !one_acc && p.fold == 1) ? 2 : 1;
  const int units = int((tiles_p + p.cluster - 1) / p.cluster * ((rows_q + p.bn - 1) / p.bn));
  // Swap-AB at 17..64 tokens on fewer weight tiles than SMs (8192 rows: 64 tiles; 4096: 32): the
  // K blocks split across the 2 or 4 CTAs of a cluster, which reduce in shared memory
  // (sm90_gemm.cuh kKSplit), as many CTAs as fit the SMs once, each with at least 2 K blocks.
  // Exact for s8 (s32 partials), so the integer family splits too. Same-run A/B (s11-call2):
  // +15-20% at 64 tokens on 4096 x 14336, +2-5% on 8192^2; at 1..16 tokens on the H100 (3.35 TB/s),
  // where 64 CTAs kept its stream fed, -2-4% on 8192^2: not split there. On the H200 (4.8 TB/s) the
  // split pays at 1..16 tokens too (s20-call1, fp8 row / block, M = 1 / 4 / 16, split by 2 against
  // none): +8-16% on 4096^2, +3-5% on 4096 x 14336, +0-7% on 6144 x 4096 and 8192^2 (-2% at M = 1
  // there); 28672 x 4096 has more tiles than SMs and does not split. So from 4 TB/s. Confirmed
  // against LOWBIT_SM90_KSPLIT=1 (s20-call4): int8 +19% on 4096 x 14336, fp8 row +0..+18%,
  // fp8_block +3..+14% but -3..-6% on 4096 x 14336 (its one loss, left).
  // LOWBIT_SM90_KSPLIT=1|2|4 forces it at every swap-AB M (A/B runs, tests; 1: off).
  const bool small_m_splits = hbm > 4e12;
  if (p.swap_ab && (M > 16 || small_m_splits || forced_ksplit > 0)) {
    for (int s : {4, 2})
      if (p.ksplit == 1 && int64_t(units) * s <= sms && num_kb >= 2 * s) p.ksplit = s;
    if (forced_ksplit == 1 || forced_ksplit == 2 || forced_ksplit == 4) p.ksplit = forced_ksplit;
  }
  // Split K only when the tiles cannot occupy a quarter of the SMs at small M (swap-AB: writing
  // and reducing fp32 partial tiles measured slower than 64 tiles on 132 SMs without it,
  // bench/NOTES.md), half of them at large M (4096 x 14336 at M = 256: 32 cluster units on 66
  // slots, 1.04x cuBLAS for fp8 in s10-call5).
  const int slots = sms / p.cluster;
  const bool few_units = p.swap_ab ? units * 4 < slots : units * 2 <= slots;
  p.splits = (!allow_split || !few_units || p.ksplit > 1) ? 1 : choose_splits(units, num_kb, slots);
  static const int forced = env::integer("LOWBIT_FP8_SPLITS", 0);
  if (forced > 0 && allow_split && p.ksplit == 1) p.splits = std::min(forced, num_kb);
  if (p.ksplit > 1) {
    p.kb_per_split = std::max(1, (num_kb + p.ksplit - 1) / p.ksplit);  // a rank past the last block sums nothing
    return p;
  }
  p.kb_per_split = (num_kb + p.splits - 1) / p.splits;
  p.splits = (num_kb + p.kb_per_split - 1) / p.kb_per_split;  // no empty split
  return p;
}

// y (M, N) = a (M, K) x b (N, K)^T with the given scales, both operands 8-bit (e4m3 or s8),
// through `launch` (the family's instantiation of the mainloop). allow_split: whether K may
// be split through fp32 partials in global memory; the integer family keeps its sums exact
// and splits only inside a cluster (s32 partials through shared memory).
// promote: fold each K block's sums into fp32 registers (fp8: the tensor core keeps ~14 bits)
// rather than chain one accumulator over K (s8: exact s32 sums need no folding).
// after_quantizer: the kernel just launched on this stream is the activation quantizer that
// wrote `a` and `a_scale` (the fused linears): the GEMM may launch as its programmatic dependent.
inline Tensor sm90_gemm(ScaleMode mode, const Tensor& a, const Tensor& a_scale, const Tensor& b,
                        const Tensor& b_scale, const OptTensor& bias, at::ScalarType out_dtype, LaunchFn launch,
                        bool allow_split, bool promote, bool after_quantizer = false) {
  c10::cuda::CUDAGuard guard(a.device());
  const int64_t M = a.size(0), K = a.size(1), N = b.size(0);
  Tensor out = at::empty({M, N}, a.options().dtype(out_dtype));
  if (M == 0) return out;
  Launch L{};
  L.sms = at::cuda::getCurrentDeviceProperties()->multiProcessorCount;
  L.stream = at::cuda::getCurrentCUDAStream();
  L.mode = mode;
  L.promote = promote;
  L.out_bf16 = out_dtype == at::kBFloat16;
  L.pdl = after_quantizer;
  const Plan plan = make_plan(M, N, K, L.sms, allow_split, promote, mode, out_dtype == at::kBFloat16,
                              hbm_bytes_per_s(a.device().index()));
  L.plan = plan;

  const Tensor& P = plan.swap_ab ? b : a;
  const Tensor& Q = plan.swap_ab ? a : b;
  const Tensor& p_scale = plan.swap_ab ? b_scale : a_scale;
  const Tensor& q_scale = plan.swap_ab ? a_scale : b_scale;
  L.tmap_p = tma::make_2d_sw128(P.data_ptr(), 1, P.size(0), K, K, kBlockP);
  L.tmap_q = tma::make_2d_sw128(Q.data_ptr(), 1, Q.size(0), K, K, plan.bn / plan.cluster);

  auto& params = L.params;
  params.rows_p = int(P.size(0));
  params.rows_q = int(Q.size(0));
  params.num_kb = int((K + kBlockK - 1) / kBlockK);
  params.kb_per_split = plan.kb_per_split;
  const int tiles_p = (params.rows_p + kBlockP - 1) / kBlockP;
  params.sched = {(tiles_p + plan.cluster - 1) / plan.cluster, int((params.rows_q + plan.bn - 1) / plan.bn), plan.splits};
  auto& e = params.epi;
  e.out = out.data_ptr();
  e.out_si = plan.swap_ab ? 1 : N;
  e.out_sj = plan.swap_ab ? N : 1;
  e.bias = bias ? bias->data_ptr() : nullptr;
  e.bias_on_p = plan.swap_ab;
  params.p_is_weight = plan.swap_ab;
  if (mode == ScaleMode::kRowCol) {
    e.p_scale = p_scale.data_ptr<float>();
    e.p_scale_stride = p_scale.numel() == 1 ? 0 : 1;
    e.q_scale = q_scale.data_ptr<float>();
    e.q_scale_stride = q_scale.numel() == 1 ? 0 : 1;
  } else {
    params.block = {p_scale.data_ptr<float>(), p_scale.size(1), q_scale.data_ptr<float>(), q_scale.size(1)};
  }
  // The normal layout's tiles go out by TMA stores where C's rows are 16-byte multiples and no
  // K split writes fp32 partials instead (sm90_gemm.cuh kStoreTma). out is ours: 16-byte aligned.
  // (The TMA path also reads the column scales and bias in aligned pairs: sm90_gemm.cuh.)
  const auto aligned = [](const void* ptr, uintptr_t n) { return reinterpret_cast<uintptr_t>(ptr) % n == 0; };
  e.tma_store = !plan.swap_ab && plan.splits == 1 && N % 8 == 0 && (!bias || aligned(bias->data_ptr(), 4)) &&
                (mode != ScaleMode::kRowCol || q_scale.numel() == 1 || aligned(q_scale.data_ptr(), 8));
  if (e.tma_store) L.tmap_out = tma::make_2d(out.data_ptr(), 2, M, N, N, 64, 64, CU_TENSOR_MAP_SWIZZLE_128B);
  Tensor workspace;
  if (plan.splits > 1) {
    workspace = at::empty({plan.splits, params.rows_p, params.rows_q}, a.options().dtype(at::kFloat));
    params.workspace = workspace.data_ptr<float>();
  }
  L.units = params.sched.num_units();
  static const bool debug = env::flag("LOWBIT_DEBUG");
  if (debug)
    std::fprintf(stderr,
                 "[lowbit sm90] M=%lld N=%lld K=%lld swap=%d bn=%d cluster=%d splits=%d ksplit=%d units=%d acc_sets=%d "
                 "fold=%d\n",
                 (long long)M, (long long)N, (long long)K, int(plan.swap_ab), plan.bn, plan.cluster, plan.splits,
                 plan.ksplit, L.units, plan.acc_sets, plan.fold);
  launch(L);
  return out;
}

}  // namespace lowbit::gemm
