#pragma once
// CUDA activation quantizers: the arithmetic of csrc/cpu/quantize.cpp (through
// lowbit/quant_rules.h), laid out for bandwidth. Each thread owns 8 consecutive
// elements (one 16-byte load of bf16/fp16); a scale block is a group of lanes
// (1x128: 16 lanes, MX: 4 lanes) reduced with shuffles, or a whole row (per token:
// one CTA per row). Memory-bound: bytes = M*K*(in + out) + scales.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <type_traits>

#include "lowbit/ptx/cluster.cuh"
#include "lowbit/ptx/convert.cuh"
#include "lowbit/ptx/griddep.cuh"
#include "lowbit/ptx/memory.cuh"
#include "lowbit/quant_rules.h"

namespace lowbit::quant {

constexpr int kVec = 8;  // elements per thread: 16 bytes of bf16/fp16

// ---------------------------------------------------------------- loads
// 8 elements of In as loaded: one 16-byte word for bf16 / fp16, two for fp32. A load is split into
// fetch8 (the words) and unpack8 (the floats) so a kernel can issue the next vector's loads before
// this vector's arithmetic (for_each_vector).
template <typename In>
struct Raw8 {
  static constexpr int kWords = kVec * int(sizeof(In)) / 16;
  uint4 w[kWords];
};

template <typename In>
__device__ __forceinline__ Raw8<In> fetch8(const In* p) {
  Raw8<In> r;
#pragma unroll
  for (int c = 0; c < Raw8<In>::kWords; ++c) r.w[c] = ptx::ld_global_nc_v4(reinterpret_cast<const uint4*>(p) + c);
  return r;
}

template <typename In>
__device__ __forceinline__ void unpack8(const Raw8<In>& r, float (&f)[kVec]) {
  if constexpr (std::is_same_v<In, float>) {
#pragma unroll
    for (int c = 0; c < 2; ++c) {
      f[4 * c] = __uint_as_float(r.w[c].x), f[4 * c + 1] = __uint_as_float(r.w[c].y);
      f[4 * c + 2] = __uint_as_float(r.w[c].z), f[4 * c + 3] = __uint_as_float(r.w[c].w);
    }
  } else {
    using Pair = std::conditional_t<std::is_same_v<In, __half>, __half2, __nv_bfloat162>;
    const Pair* h = reinterpret_cast<const Pair*>(&r.w[0]);
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      float2 t;
      if constexpr (std::is_same_v<In, __half>) t = __half22float2(h[i]);
      else t = __bfloat1622float2(h[i]);
      f[2 * i] = t.x;
      f[2 * i + 1] = t.y;
    }
  }
}

template <typename In>
__device__ __forceinline__ void load8(const In* p, float (&f)[kVec]) {
  unpack8(fetch8(p), f);
}

__device__ __forceinline__ uint32_t amax_bits8(const float (&f)[kVec]) {
  uint32_t a = 0;
#pragma unroll
  for (int i = 0; i < kVec; ++i) a = max(a, abs_bits(f[i]));
  return a;
}

// ---------------------------------------------------------------- scale rules
// rule(amax_bits) -> {stored scale, element multiplier, finite}
template <int kQmaxTimes1>  // 127 (int8) or 448 (e4m3)
struct AbsmaxRule {
  using Stored = float;
  struct Out { float stored, mult; bool finite; };
  __device__ static Out scale(uint32_t amax) {
    AbsmaxScale s = absmax_scale(amax, float(kQmaxTimes1));
    return {s.scale, s.inv, s.finite};
  }
};

template <int kEmaxElem>  // 8 (e4m3) or 2 (e2m1)
struct MxRule {
  using Stored = uint8_t;
  struct Out { uint8_t stored; float mult; bool finite; };
  __device__ static Out scale(uint32_t amax) {
    MxScale s = mx_scale(amax, kEmaxElem);
    return {s.byte, s.down, s.finite};
  }
};

// ---------------------------------------------------------------- element codecs
// store8(dst, f, mult, finite): codes of f[i] * mult for 8 elements; 0 if !finite.
struct Int8Codec {
  static constexpr int kBytes = 8;  // per 8 elements
  __device__ static void store8(uint8_t* dst, const float (&f)[kVec], float mult, bool finite) {
    uint32_t w[2] = {0, 0};
#pragma unroll
    for (int i = 0; i < kVec; ++i) {
      uint32_t c = finite ? uint32_t(uint8_t(int8_code(f[i], mult))) : 0u;
      w[i / 4] |= c << (8 * (i % 4));
    }
    *reinterpret_cast<uint2*>(dst) = make_uint2(w[0], w[1]);
  }
};

struct E4m3Codec {
  static constexpr int kBytes = 8;
  __device__ static void store8(uint8_t* dst, const float (&f)[kVec], float mult, bool finite) {
    uint32_t w[2] = {0, 0};
    if (finite) {
#pragma unroll
      for (int i = 0; i < kVec; i += 2) {
        uint32_t pair = ptx::cvt_e4m3x2_satfinite(f[i] * mult, f[i + 1] * mult);
        w[i / 4] |= pair << (8 * (i % 4));
      }
    }
    *reinterpret_cast<uint2*>(dst) = make_uint2(w[0], w[1]);
  }
};

struct E2m1Codec {
  static constexpr int kBytes = 4;  // two codes per byte, element 2i in the low nibble
  __device__ static void store8(uint8_t* dst, const float (&f)[kVec], float mult, bool finite) {
    uint32_t w = 0;
    if (finite) {
#pragma unroll
      for (int i = 0; i < kVec; ++i) w |= uint32_t(e2m1_from_float(f[i] * mult)) << (4 * i);
    }
    *reinterpret_cast<uint32_t*>(dst) = w;
  }
};

// MXFP8 rounding without the codes: the e4m3 code of f[i] * mult (E4m3Codec's) decoded and
// scaled back by the block's scale `up` (2^(e - 127); NaN for the NaN scale), rounded once to
// OutT (bf16, or fp32: exact) -- what quantize_mxfp8 followed by the MXFP8 dequantizer gives,
// in one pass for the linears that only need the rounded activations (a8w4_mx, mxfp8).
template <typename OutT>
struct E4m3RoundCodec {
  static constexpr bool kRounds = true;
  static constexpr int kBytes = 8 * int(sizeof(OutT));
  __device__ static void store8(uint8_t* dst, const float (&f)[kVec], float mult, bool finite, float up) {
    alignas(16) OutT o[kVec];
#pragma unroll
    for (int i = 0; i < kVec; i += 2) {
      const uint32_t pair = finite ? ptx::cvt_e4m3x2_satfinite(f[i] * mult, f[i + 1] * mult) : 0u;
#pragma unroll
      for (int t = 0; t < 2; ++t) {
        const float v = e4m3_to_float(uint8_t(pair >> (8 * t))) * up;
        if constexpr (std::is_same_v<OutT, float>) o[i + t] = v;
        else o[i + t] = ptx::from_f32<OutT>(v);
      }
    }
#pragma unroll
    for (int c = 0; c < int(sizeof(o) / 16); ++c) reinterpret_cast<uint4*>(dst)[c] = reinterpret_cast<const uint4*>(o)[c];
  }
};

// ---------------------------------------------------------------- kernels
// Blocks of kBlock consecutive elements along K (K % kBlock == 0, so blocks never
// straddle rows and the flat block index is row * (K / kBlock) + col / kBlock).
template <typename In, int kBlock, class Rule, class Codec>
__global__ void quantize_small_blocks_kernel(const In* __restrict__ x, uint8_t* __restrict__ q,
                                             typename Rule::Stored* __restrict__ scales, int64_t n_vec) {
  constexpr int kLanes = kBlock / kVec;
  static_assert(kBlock % kVec == 0 && 32 % kLanes == 0, "a scale block must be a power-of-two lane group");
  ptx::griddep_launch_dependents();  // the GEMM after may start loading its weights (PDL)
  const int64_t v = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  const bool active = v < n_vec;
  float f[kVec] = {};
  if (active) load8(x + v * kVec, f);
  uint32_t amax = amax_bits8(f);
  // every lane takes part in the shuffles (inactive ones hold zeros), so no lane of a
  // partial last warp leaves early
#pragma unroll
  for (int o = kLanes / 2; o > 0; o >>= 1) amax = max(amax, __shfl_xor_sync(0xffffffffu, amax, o));
  if (!active) return;
  auto s = Rule::scale(amax);
  if constexpr (requires { Codec::kRounds; }) {  // the rounded values only (E4m3RoundCodec: MX rules)
    Codec::store8(q + v * Codec::kBytes, f, s.mult, s.finite, e8m0_to_float(s.stored));
  } else {
    if (threadIdx.x % kLanes == 0) scales[v / kLanes] = s.stored;
    Codec::store8(q + v * Codec::kBytes, f, s.mult, s.finite);
  }
}

// ---------------------------------------------------------------- row sources
// What a per-token quantizer quantizes. fetch(row, i) issues the loads of elements 8 i .. 8 i + 7 of
// a row (Raw: their 16-byte words), convert(raw, f) gives their values, each exact in In
// (load_vector: the two at once). RMSNorm (kSumOfSquares) finishes the values once the row's rstd
// is known (lowbit/quant_rules.h rms_rstd of the fp64 sum of squares, summed by the kernel first),
// with the norm weight's words from fetch_weight.
template <typename T>
struct PlainRows {  // x itself (M, K), dense
  using In = T;
  using Raw = Raw8<In>;
  const In* x;
  int64_t K;
  __device__ Raw fetch(int64_t row, int64_t i) const { return fetch8(x + row * K + i * kVec); }
  __device__ void convert(const Raw& r, float (&f)[kVec]) const { unpack8(r, f); }
};

// 8 elements of a row as In, in which the sources' values are exact: the row cache in shared
// memory, and AddRmsNormRows' stores of the sum. put / get move whole 16-byte words (element-wise
// they compiled to eight 2-byte shared loads a vector, 4-way bank conflicted: s18-call2).
template <typename In>
struct alignas(16) RowVec {
  static constexpr int kWords = kVec * int(sizeof(In)) / 16;
  In v[kVec];
  __device__ void put(const float (&f)[kVec]) {
    RowVec t;
#pragma unroll
    for (int e = 0; e < kVec; ++e) t.v[e] = ptx::from_f32<In>(f[e]);
#pragma unroll
    for (int c = 0; c < kWords; ++c) reinterpret_cast<uint4*>(v)[c] = reinterpret_cast<const uint4*>(t.v)[c];
  }
  __device__ void get(float (&f)[kVec]) const {
    RowVec t;
#pragma unroll
    for (int c = 0; c < kWords; ++c) reinterpret_cast<uint4*>(t.v)[c] = reinterpret_cast<const uint4*>(v)[c];
#pragma unroll
    for (int e = 0; e < kVec; ++e) f[e] = ptx::to_f32(t.v[e]);
  }
};

// RMSNorm: (x * rstd) * w in fp32, rounded once to In: the projection input after a norm, never
// written to memory. x (M, K) dense, w (K,).
template <typename T>
struct RmsNormRows : PlainRows<T> {
  using In = T;
  static constexpr bool kSumOfSquares = true;
  const In* w;
  float eps;
  __device__ static double sum_of_squares(const float (&f)[kVec]) {
    double s = 0.0;
#pragma unroll
    for (int e = 0; e < kVec; ++e) s += double(f[e] * f[e]);  // (each square exact in fp32)
    return s;
  }
  __device__ Raw8<In> fetch_weight(int64_t i) const { return fetch8(w + i * kVec); }
  __device__ void finish(const Raw8<In>& w_raw, float (&f)[kVec], float rstd) const {
    float wf[kVec];
    unpack8(w_raw, wf);
#pragma unroll
    for (int e = 0; e < kVec; ++e) f[e] = ptx::to_f32(ptx::from_f32<In>(rms_norm_f32(f[e], rstd, wf[e])));
  }
};

// The residual add before the RMSNorm: x + r in fp32 rounded once to In (what torch's bf16 / fp16
// add gives), kept as the norm's input and written to `sum` in the first pass (store_sum); a pass
// that reloads (rows too long for the row cache) recomputes the same sum. x, r, sum (M, K) dense
// and distinct (sum is the op's new tensor).
template <typename T>
struct AddRmsNormRows : RmsNormRows<T> {
  using In = T;
  struct Raw {
    Raw8<In> x, r;
  };
  const In* r;
  In* sum;
  __device__ Raw fetch(int64_t row, int64_t i) const {
    const int64_t at = row * this->K + i * kVec;
    return {fetch8(this->x + at), fetch8(r + at)};
  }
  __device__ void convert(const Raw& raw, float (&f)[kVec]) const {
    float a[kVec], b[kVec];
    unpack8(raw.x, a);
    unpack8(raw.r, b);
#pragma unroll
    for (int e = 0; e < kVec; ++e) f[e] = ptx::to_f32(ptx::from_f32<In>(a[e] + b[e]));
  }
  __device__ void store_sum(int64_t row, int64_t i, const float (&f)[kVec]) const {
    RowVec<In> v;
    v.put(f);  // (exact: f holds values of In)
    *reinterpret_cast<uint4*>(sum + row * this->K + i * kVec) = *reinterpret_cast<const uint4*>(v.v);
  }
};

// silu(gate) * up in fp32 (lowbit/quant_rules.h silu_mul_f32, as the CPU reference), rounded once
// to In: the MLP's down-projection input, never written to memory. Rows ld_gate / ld_up apart.
template <typename T>
struct SiluMulRows {
  using In = T;
  struct Raw {
    Raw8<In> g, u;
  };
  const In* gate;
  const In* up;
  int64_t ld_gate, ld_up;
  __device__ Raw fetch(int64_t row, int64_t i) const {
    return {fetch8(gate + row * ld_gate + i * kVec), fetch8(up + row * ld_up + i * kVec)};
  }
  __device__ void convert(const Raw& raw, float (&f)[kVec]) const {
    float g[kVec], u[kVec];
    unpack8(raw.g, g);
    unpack8(raw.u, u);
#pragma unroll
    for (int e = 0; e < kVec; ++e) f[e] = ptx::to_f32(ptx::from_f32<In>(silu_mul_f32(g[e], u[e])));
  }
};

// Elements 8 i .. 8 i + 7 of a row of `src`, fetched and converted at once (the passes that reload).
template <class Rows>
__device__ __forceinline__ void load_vector(const Rows& src, int64_t row, int64_t i, float (&f)[kVec]) {
  src.convert(src.fetch(row, i), f);
}

// body(i, n, raw) for a thread's vectors i = first, first + stride, ... < n_vec (n: the thread's
// n-th), raw = fetch(i) issued one vector ahead: before the previous vector's body. The caller
// passes fetch(first) (anything when first >= n_vec), so it can issue it earlier still.
// (s18-call2: the fused quantizers' warps waited on every vector's loads, 17-18% of their stall
// samples on the loads' first use; issue 49-73% busy.)
template <class Raw, class Fetch, class Body>
__device__ __forceinline__ void for_each_ahead(int64_t first, int64_t stride, int64_t n_vec, Raw raw, Fetch&& fetch,
                                               Body&& body) {
  for (int64_t i = first, n = 0; i < n_vec; i += stride, ++n) {
    Raw next = raw;
    if (i + stride < n_vec) next = fetch(i + stride);
    body(i, n, raw);
    raw = next;
  }
}

// body(i, n, f) for a thread's vectors of a row, f their source values, loaded one vector ahead.
template <class Rows, class Body>
__device__ __forceinline__ void for_each_vector(const Rows& src, int64_t row, int64_t first, int64_t stride,
                                                int64_t n_vec, Body&& body) {
  using Raw = typename Rows::Raw;
  for_each_ahead(first, stride, n_vec, first < n_vec ? src.fetch(row, first) : Raw{},
                 [&](int64_t i) { return src.fetch(row, i); },
                 [&](int64_t i, int64_t n, const Raw& raw) {
                   float f[kVec];
                   src.convert(raw, f);
                   body(i, n, f);
                 });
}

// ---------------------------------------------------------------- per token
constexpr int kMaxRowCtas = 8;  // CTAs per row: a portable cluster

// A row's total over the CTA's threads and then over the row's CTAs (ctas > 1: a cluster, the
// CTAs' totals exchanged through distributed shared memory: each sends its total to slot `rank`
// of every peer, then all meet at the cluster barrier), summed or maxed in a fixed order so every
// CTA of the row gets the same value. warp_slots: kThreads / 32, cta_slots: kMaxRowCtas, both in
// shared memory and used by one reduction only.
template <int kThreads, typename V, typename Op>
__device__ __forceinline__ V row_total(V v, Op op, V* warp_slots, V* cta_slots, int ctas, int rank) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = op(v, __shfl_xor_sync(0xffffffffu, v, o));
  if (threadIdx.x % 32 == 0) warp_slots[threadIdx.x / 32] = v;
  __syncthreads();
  v = warp_slots[0];
#pragma unroll
  for (int w = 1; w < kThreads / 32; ++w) v = op(v, warp_slots[w]);
  if (ctas == 1) return v;
  if (threadIdx.x < ctas)
    ptx::st_shared_cluster(ptx::cluster_map_shared(static_cast<uint32_t>(__cvta_generic_to_shared(cta_slots + rank)),
                                                   threadIdx.x),
                           v);
  ptx::cluster_sync();  // (release / acquire: the peers' stores are visible after it)
  v = cta_slots[0];
  for (int c = 1; c < ctas; ++c) v = op(v, cta_slots[c]);
  return v;
}

// One scale per row (per token): `ctas` CTAs per row (1, or a cluster of 2-8 where the rows are
// fewer than the SMs: quantize_launch.cu plan_rows), each over vectors rank * kThreads + t +
// n * ctas * kThreads of the row. Every element of the source is loaded (and, for a fused
// source, computed) once: with `cached`, its value waits in the row cache (dynamic shared memory,
// the thread's n-th vector at n * kThreads + t) between the passes (amax, codes; RMSNorm: sum of
// squares, finish + amax, codes). Without it (rows too long for shared memory) each pass loads
// and computes again. (Session 14's kernel computed a fused source twice and read x twice: the
// SiLU one ran at a third of the bandwidth in s15-call2.)
template <class Rows, class Rule, class Codec, int kThreads>
__global__ void __launch_bounds__(kThreads) quantize_rows_kernel(const Rows src, uint8_t* __restrict__ q,
                                                                 float* __restrict__ scales, int64_t K, int ctas,
                                                                 bool cached) {
  static_assert(kThreads % 32 == 0 && kThreads <= 1024, "whole warps");
  using In = typename Rows::In;
  constexpr bool kNorm = requires { Rows::kSumOfSquares; };
  extern __shared__ uint4 row_cache_raw[];  // (one name and type for every instantiation)
  RowVec<In>* row_cache = reinterpret_cast<RowVec<In>*>(row_cache_raw);
  __shared__ uint32_t warp_amax[kThreads / 32], cta_amax[kMaxRowCtas];
  __shared__ double warp_ss[kNorm ? kThreads / 32 : 1], cta_ss[kNorm ? kMaxRowCtas : 1];
  ptx::griddep_launch_dependents();  // the GEMM after may start loading its weights (PDL)
  const int rank = ctas > 1 ? int(ptx::cluster_ctarank()) : 0;
  if (ctas > 1) ptx::cluster_arrive_relaxed();  // the peers must be running before their shared memory is written
  const int64_t row = blockIdx.x / ctas, n_vec = K / kVec, stride = int64_t(ctas) * kThreads;
  const int64_t first = int64_t(rank) * kThreads + threadIdx.x;
  RowVec<In>* cache = row_cache + threadIdx.x;  // (n-th vector at cache[n * kThreads])
  float rstd = 1.0f;
  uint32_t amax = 0;
  if constexpr (kNorm) {
    double ss = 0.0;
    for_each_vector(src, row, first, stride, n_vec, [&](int64_t i, int64_t n, float (&f)[kVec]) {
      if constexpr (requires { src.store_sum(row, i, f); }) src.store_sum(row, i, f);  // (AddRmsNormRows)
      ss += Rows::sum_of_squares(f);
      if (cached) cache[n * kThreads].put(f);
    });
    // the norm weight's first words on their way during the row's reduction, each next one ahead
    const Raw8<In> w_first = first < n_vec ? src.fetch_weight(first) : Raw8<In>{};
    if (ctas > 1) ptx::cluster_wait();
    ss = row_total<kThreads>(ss, [](double a, double b) { return a + b; }, warp_ss, cta_ss, ctas, rank);
    rstd = rms_rstd(ss, K, src.eps);
    for_each_ahead(first, stride, n_vec, w_first, [&](int64_t i) { return src.fetch_weight(i); },
                   [&](int64_t i, int64_t n, const Raw8<In>& w_raw) {
                     float f[kVec];
                     if (cached) cache[n * kThreads].get(f);
                     else load_vector(src, row, i, f);
                     src.finish(w_raw, f, rstd);
                     amax = max(amax, amax_bits8(f));
                     if (cached) cache[n * kThreads].put(f);
                   });
  } else {
    for_each_vector(src, row, first, stride, n_vec, [&](int64_t, int64_t n, float (&f)[kVec]) {
      amax = max(amax, amax_bits8(f));
      if (cached) cache[n * kThreads].put(f);
    });
    if (ctas > 1) ptx::cluster_wait();
  }
  amax = row_total<kThreads>(amax, [](uint32_t a, uint32_t b) { return max(a, b); }, warp_amax, cta_amax, ctas, rank);
  auto s = Rule::scale(amax);
  if (rank == 0 && threadIdx.x == 0) scales[row] = s.stored;
  uint8_t* qr = q + row * K * Codec::kBytes / kVec;
  for (int64_t i = first, n = 0; i < n_vec; i += stride, ++n) {
    float f[kVec];
    if (cached) {
      cache[n * kThreads].get(f);
    } else {
      load_vector(src, row, i, f);
      if constexpr (kNorm) src.finish(src.fetch_weight(i), f, rstd);
    }
    Codec::store8(qr + i * Codec::kBytes, f, s.mult, s.finite);
  }
}

// Per-tensor amax: a grid-stride max over abs bits, one atomicMax per warp. *amax must
// be zeroed first. Unsigned max on abs bits is the float max (NaN above all).
template <typename In>
__global__ void amax_kernel(const In* __restrict__ x, uint32_t* __restrict__ amax_out, int64_t n_vec) {
  uint32_t amax = 0;
  for (int64_t v = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; v < n_vec; v += int64_t(gridDim.x) * blockDim.x) {
    float f[kVec];
    load8(x + v * kVec, f);
    amax = max(amax, amax_bits8(f));
  }
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) amax = max(amax, __shfl_xor_sync(0xffffffffu, amax, o));
  if (threadIdx.x % 32 == 0) atomicMax(amax_out, amax);
}

// Per-tensor codes: the scale from the amax (dynamic) or from a given scale (static:
// inv = 1 / scale; a NaN scale gives codes 0, as in the reference).
template <typename In>
__global__ void quantize_tensor_kernel(const In* __restrict__ x, uint8_t* __restrict__ q,
                                       const uint32_t* __restrict__ amax, const float* __restrict__ static_scale,
                                       float* __restrict__ scale_out, int64_t n_vec) {
  ptx::griddep_launch_dependents();  // the GEMM after may start loading its weights (PDL)
  float scale, inv;
  bool finite;
  if (static_scale) {
    scale = *static_scale;
    inv = 1.0f / scale;
    finite = !isnan(scale);
  } else {
    AbsmaxScale s = absmax_scale(*amax, kE4M3Max);
    scale = s.scale, inv = s.inv, finite = s.finite;
  }
  const int64_t v0 = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (v0 == 0) *scale_out = scale;
  for (int64_t v = v0; v < n_vec; v += int64_t(gridDim.x) * blockDim.x) {
    float f[kVec];
    load8(x + v * kVec, f);
    E4m3Codec::store8(q + v * E4m3Codec::kBytes, f, inv, finite);
  }
}

}  // namespace lowbit::quant
