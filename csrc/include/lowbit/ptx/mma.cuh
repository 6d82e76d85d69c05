#pragma once
// Warp-level tensor-core MMA (mma.sync, sm_80+) and the register tricks that feed it,
// one helper per instruction.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>

namespace lowbit::ptx {

// D = A * B + C, m16n8k16, A row-major (16 x 16) and B column-major (16 x 8) 16-bit
// operands, fp32 accumulators. Fragments (lane = 4 * group + tig):
//   a0 (row group, k 2tig..+1), a1 (row group+8, same k), a2 (row group, k 2tig+8..+9),
//   a3 (row group+8, k 2tig+8..+9); b0 (k 2tig..+1, col group), b1 (k 2tig+8..+9, col group);
//   c0, c1 (row group, cols 2tig, 2tig+1), c2, c3 (row group+8, same cols).
template <typename T>
__device__ __forceinline__ void mma_m16n8k16(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1);

template <>
__device__ __forceinline__ void mma_m16n8k16<__nv_bfloat16>(float (&d)[4], const uint32_t (&a)[4], uint32_t b0,
                                                             uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
      "{%0, %1, %2, %3};"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

template <>
__device__ __forceinline__ void mma_m16n8k16<__half>(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
      "{%0, %1, %2, %3};"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// (a & b) | c in one LOP3 (immediate 0xEA = (A & B) | C).
__device__ __forceinline__ uint32_t lop3_and_or(uint32_t a, uint32_t b, uint32_t c) {
  uint32_t d;
  asm("lop3.b32 %0, %1, %2, %3, 0xEA;" : "=r"(d) : "r"(a), "r"(b), "r"(c));
  return d;
}

// Packed 16-bit subtraction a - b of two pairs, round to nearest (exact for the small
// integers of the 4-bit dequantization).
template <typename T>
__device__ __forceinline__ uint32_t sub_x2(uint32_t a, uint32_t b);
template <>
__device__ __forceinline__ uint32_t sub_x2<__nv_bfloat16>(uint32_t a, uint32_t b) {
  uint32_t d;
  asm("sub.rn.bf16x2 %0, %1, %2;" : "=r"(d) : "r"(a), "r"(b));
  return d;
}
template <>
__device__ __forceinline__ uint32_t sub_x2<__half>(uint32_t a, uint32_t b) {
  uint32_t d;
  asm("sub.rn.f16x2 %0, %1, %2;" : "=r"(d) : "r"(a), "r"(b));
  return d;
}

// Packed 16-bit multiplication a * b of two pairs, round to nearest; subnormal inputs are
// kept (no flush), which the e2m1 decode relies on.
template <typename T>
__device__ __forceinline__ uint32_t mul_x2(uint32_t a, uint32_t b);
template <>
__device__ __forceinline__ uint32_t mul_x2<__nv_bfloat16>(uint32_t a, uint32_t b) {
  uint32_t d;
  asm("mul.rn.bf16x2 %0, %1, %2;" : "=r"(d) : "r"(a), "r"(b));
  return d;
}
template <>
__device__ __forceinline__ uint32_t mul_x2<__half>(uint32_t a, uint32_t b) {
  uint32_t d;
  asm("mul.rn.f16x2 %0, %1, %2;" : "=r"(d) : "r"(a), "r"(b));
  return d;
}

// Packed 16-bit fused multiply-add a * b + c of pairs, one rounding to nearest.
template <typename T>
__device__ __forceinline__ uint32_t fma_x2(uint32_t a, uint32_t b, uint32_t c);
template <>
__device__ __forceinline__ uint32_t fma_x2<__nv_bfloat16>(uint32_t a, uint32_t b, uint32_t c) {
  uint32_t d;
  asm("fma.rn.bf16x2 %0, %1, %2, %3;" : "=r"(d) : "r"(a), "r"(b), "r"(c));
  return d;
}
template <>
__device__ __forceinline__ uint32_t fma_x2<__half>(uint32_t a, uint32_t b, uint32_t c) {
  uint32_t d;
  asm("fma.rn.f16x2 %0, %1, %2, %3;" : "=r"(d) : "r"(a), "r"(b), "r"(c));
  return d;
}

// The pair (v, v) of v rounded to nearest in T (cvt.rn.{bf16,f16}x2.f32).
template <typename T>
__device__ __forceinline__ uint32_t splat_x2(float v);
template <>
__device__ __forceinline__ uint32_t splat_x2<__nv_bfloat16>(float v) {
  uint32_t d;
  asm("cvt.rn.bf16x2.f32 %0, %1, %1;" : "=r"(d) : "f"(v));
  return d;
}
template <>
__device__ __forceinline__ uint32_t splat_x2<__half>(float v) {
  uint32_t d;
  asm("cvt.rn.f16x2.f32 %0, %1, %1;" : "=r"(d) : "f"(v));
  return d;
}

}  // namespace lowbit::ptx
