// CPU reference: every matmul and linear op. The spec each CUDA kernel computes.
//
// All of them: y = epilogue(sum_k A[m,k] * B[n,k]) with A, B the dequantized operands,
// products and sums in fp32 (order unspecified: kernels may split and reorder K), then
// rounded once to the output dtype (round to nearest even). Per format:
//
//   w8a8_int8_mm:  acc = sum_k a[m,k] * b[n,k] exactly in int32 (|acc| <= 128^2 K, so
//                  exact for K <= 2^17 = 131072; int8 operands may hold -128);
//                  y = ((float(acc) * a_scale[m]) * b_scale[n]) + bias[n], each step an
//                  fp32 operation (no FMA contraction), so a kernel can match it to the
//                  last bit of fp32.
//   w8a8_fp8_mm:   acc = sum_k e4m3(a) * e4m3(b) in fp32; y = (acc * a_scale) * b_scale + bias,
//                  scales per row (M,)/(N,) or per tensor (one element).
//   fp8_block_mm:  DeepSeek-V3 recipe: y = sum over 128-blocks kb of
//                  a_scale[m,kb] * b_scale[n/128,kb] * (sum_{k in kb} a * b) + bias.
//                  Implemented as one fp32 product of the dequantized operands (a*sa,
//                  b*sb), equal up to fp32 rounding; kernels promote per block.
//   mxfp8_mm, a8w4_mx_mm: elements times their E8M0 block scales (exact in fp32 for
//                  every byte the quantizers produce: <= 246 with e4m3, <= 252 with e2m1;
//                  larger bytes can overflow to Inf; a NaN scale makes its block NaN),
//                  then as above.
//   a16w4_linear:  w[n,k] = (q[n,k] - z[n,g]) * s[n,g] with g = k / group_size, in fp32;
//                  symmetric (zeros = None): z = 8. x upcast exactly.
//   a16w8_linear:  y[m,n] = (sum_k x[m,k] * q[n,k]) * w_scale[n] (fp32 scale) + bias.
//   mxfp4_linear:  w[n,k] = e2m1(q[n,k]) * 2^(w_scale[n,k/32] - 127).
//   *_linear of quantized-activation formats: quantize x as csrc/cpu/quantize.cpp
//                  defines (int8/fp8 per token, fp8 per tensor, fp8 1x128, mxfp8),
//                  then the matching _mm with out_dtype = x.dtype.
// M = 0 gives an empty (0, N) result.
#include <ATen/ATen.h>

#include "lowbit/contracts.h"
#include "lowbit/numerics.h"
#include "lowbit/ops.h"

namespace lowbit::cpu {
namespace {

// ---------------------------------------------------------------- dequantizers
Tensor lut_decode(const Tensor& codes, float (*decode)(uint8_t), int entries) {
  std::vector<float> table(entries);
  for (int i = 0; i < entries; ++i) table[i] = decode(uint8_t(i));
  Tensor lut = at::from_blob(table.data(), {entries}, at::kFloat).clone();
  return lut.index({codes.to(at::kLong)});
}

// w4 kernel layout int32 (N, K/8) -> codes uint8 (N, K), 0..15.
Tensor w4_codes(const Tensor& w) {
  Tensor plain = unpack_w4(w);  // (N, K/2), element 2i in the low nibble
  Tensor lo = at::bitwise_and(plain, 0xF), hi = at::bitwise_right_shift(plain, 4);
  return at::stack({lo, hi}, -1).reshape({w.size(0), w.size(1) * 8});
}

// E8M0 scales (R, K/32) -> fp32 (R, K), one per element.
Tensor mx_scales(const Tensor& s) {
  return lut_decode(s, e8m0_to_float, 256).repeat_interleave(contract::kKMx, 1);
}

Tensor e2m1_values(const Tensor& codes) { return lut_decode(codes, e2m1_to_float, 16); }

// fp8 e4m3 -> fp32 is exact (torch's conversion); NaN codes stay NaN.
Tensor e4m3_values(const Tensor& q) { return q.to(at::kFloat); }

// per-row (R,) or per-tensor scale, shaped to broadcast along rows of an (R, C) result.
Tensor as_column(const Tensor& s) { return s.numel() == 1 ? s.reshape({1, 1}) : s.reshape({-1, 1}); }
Tensor as_row(const Tensor& s) { return s.numel() == 1 ? s.reshape({1, 1}) : s.reshape({1, -1}); }

// fp32 A (M, K) x B (N, K)^T, + bias, rounded to out_dtype.
Tensor finish(const Tensor& acc, const OptTensor& bias, at::ScalarType out_dtype) {
  Tensor y = bias ? acc + bias->to(at::kFloat).reshape({1, -1}) : acc;
  return y.to(out_dtype);
}

Tensor matmul_f32(const Tensor& a, const Tensor& b) { return at::matmul(a, b.t()); }

// ---------------------------------------------------------------- the products
Tensor int8_mm(const Tensor& a, const Tensor& a_scale, const Tensor& b, const Tensor& b_scale,
               const OptTensor& bias, at::ScalarType out_dtype) {
  // int32 accumulation exactly: products and sums of int8 are exact in float64.
  Tensor acc = at::matmul(a.to(at::kDouble), b.to(at::kDouble).t()).to(at::kInt);
  Tensor y = acc.to(at::kFloat) * as_column(a_scale);
  y = y * as_row(b_scale);
  return finish(y, bias, out_dtype);
}

Tensor fp8_mm(const Tensor& a, const Tensor& a_scale, const Tensor& b, const Tensor& b_scale,
              const OptTensor& bias, at::ScalarType out_dtype) {
  Tensor y = matmul_f32(e4m3_values(a), e4m3_values(b)) * as_column(a_scale);
  y = y * as_row(b_scale);
  return finish(y, bias, out_dtype);
}

Tensor block_mm(const Tensor& a, const Tensor& a_scale, const Tensor& b, const Tensor& b_scale,
                const OptTensor& bias, at::ScalarType out_dtype) {
  const int64_t N = b.size(0), B = contract::kFp8Block;
  Tensor sa = a_scale.repeat_interleave(B, 1);                                     // (M, K)
  Tensor sb = b_scale.repeat_interleave(B, 0).slice(0, 0, N).repeat_interleave(B, 1);  // (N, K)
  return finish(matmul_f32(e4m3_values(a) * sa, e4m3_values(b) * sb), bias, out_dtype);
}

Tensor mx_mm(const Tensor& a, const Tensor& a_scale, const Tensor& b, const Tensor& b_scale, bool b_four_bit,
             const OptTensor& bias, at::ScalarType out_dtype) {
  Tensor af = e4m3_values(a) * mx_scales(a_scale);
  Tensor bv = b_four_bit ? e2m1_values(w4_codes(b)) : e4m3_values(b);
  return finish(matmul_f32(af, bv * mx_scales(b_scale)), bias, out_dtype);
}

}  // namespace

// ---------------------------------------------------------------- ops on quantized operands
Tensor w8a8_int8_mm(const Tensor& a, const Tensor& a_scale, const Tensor& b, const Tensor& b_scale,
                    const OptTensor& bias, at::ScalarType out_dtype) {
  contract::scaled_mm_8bit("w8a8_int8_mm", a, a_scale, b, b_scale, bias, out_dtype, at::kChar);
  return int8_mm(a, a_scale, b, b_scale, bias, out_dtype);
}

Tensor w8a8_fp8_mm(const Tensor& a, const Tensor& a_scale, const Tensor& b, const Tensor& b_scale,
                   const OptTensor& bias, at::ScalarType out_dtype) {
  contract::scaled_mm_8bit("w8a8_fp8_mm", a, a_scale, b, b_scale, bias, out_dtype, at::kFloat8_e4m3fn);
  return fp8_mm(a, a_scale, b, b_scale, bias, out_dtype);
}

Tensor fp8_block_mm(const Tensor& a, const Tensor& a_scale, const Tensor& b, const Tensor& b_scale,
                    const OptTensor& bias, at::ScalarType out_dtype) {
  contract::fp8_block_mm("fp8_block_mm", a, a_scale, b, b_scale, bias, out_dtype);
  return block_mm(a, a_scale, b, b_scale, bias, out_dtype);
}

Tensor mxfp8_mm(const Tensor& a, const Tensor& a_scale, const Tensor& b, const Tensor& b_scale,
                const OptTensor& bias, at::ScalarType out_dtype) {
  contract::mx_mm("mxfp8_mm", a, a_scale, b, b_scale, bias, out_dtype, false);
  return mx_mm(a, a_scale, b, b_scale, false, bias, out_dtype);
}

Tensor a8w4_mx_mm(const Tensor& a, const Tensor& a_scale, const Tensor& b, const Tensor& b_scale,
                  const OptTensor& bias, at::ScalarType out_dtype) {
  contract::mx_mm("a8w4_mx_mm", a, a_scale, b, b_scale, bias, out_dtype, true);
  return mx_mm(a, a_scale, b, b_scale, true, bias, out_dtype);
}

// ---------------------------------------------------------------- weight-only linears
Tensor a16w4_linear(const Tensor& x, const Tensor& w, const Tensor& scales, const OptTensor& zeros,
                    int64_t group_size, const OptTensor& bias) {
  int64_t g = 0;
  contract::a16w4("a16w4_linear", x, w, scales, zeros, group_size, bias, &g);
  Tensor q = w4_codes(w).to(at::kFloat);                                   // (N, K)
  Tensor s = scales.to(at::kFloat).repeat_interleave(g, 1);
  Tensor z = zeros ? zeros->to(at::kFloat).repeat_interleave(g, 1) : at::full_like(s, 8.0f);
  Tensor wf = (q - z) * s;
  return finish(matmul_f32(x.to(at::kFloat), wf), bias, x.scalar_type());
}

Tensor a16w8_linear(const Tensor& x, const Tensor& w, const Tensor& w_scale, const OptTensor& bias) {
  contract::a16w8("a16w8_linear", x, w, w_scale, bias);
  Tensor acc = matmul_f32(x.to(at::kFloat), w.to(at::kFloat));
  return finish(acc * w_scale.reshape({1, -1}), bias, x.scalar_type());
}

Tensor mxfp4_linear(const Tensor& x, const Tensor& w, const Tensor& w_scale, const OptTensor& bias) {
  contract::linear_mx("mxfp4_linear", x, w, w_scale, bias, true);
  Tensor wf = e2m1_values(w4_codes(w)) * mx_scales(w_scale);
  return finish(matmul_f32(x.to(at::kFloat), wf), bias, x.scalar_type());
}

// ---------------------------------------------------------------- fused linears
Tensor w8a8_int8_linear(const Tensor& x, const Tensor& w, const Tensor& w_scale, const OptTensor& bias) {
  contract::linear_8bit("w8a8_int8_linear", x, w, w_scale, bias, at::kChar);
  auto [xq, xs] = quantize_int8_per_token(x);
  return int8_mm(xq, xs, w, w_scale, bias, x.scalar_type());
}

Tensor w8a8_fp8_linear(const Tensor& x, const Tensor& w, const Tensor& w_scale, const OptTensor& bias,
                       bool act_per_token) {
  contract::linear_8bit("w8a8_fp8_linear", x, w, w_scale, bias, at::kFloat8_e4m3fn);
  auto [xq, xs] = act_per_token ? quantize_fp8_per_token(x) : quantize_fp8_per_tensor(x, std::nullopt);
  return fp8_mm(xq, xs, w, w_scale, bias, x.scalar_type());
}

Tensor fp8_block_linear(const Tensor& x, const Tensor& w, const Tensor& w_scale, const OptTensor& bias) {
  contract::linear_fp8_block("fp8_block_linear", x, w, w_scale, bias);
  auto [xq, xs] = quantize_fp8_1x128(x);
  return block_mm(xq, xs, w, w_scale, bias, x.scalar_type());
}

Tensor mxfp8_linear(const Tensor& x, const Tensor& w, const Tensor& w_scale, const OptTensor& bias) {
  contract::linear_mx("mxfp8_linear", x, w, w_scale, bias, false);
  auto [xq, xs] = quantize_mxfp8(x);
  return mx_mm(xq, xs, w, w_scale, false, bias, x.scalar_type());
}

Tensor a8w4_mx_linear(const Tensor& x, const Tensor& w, const Tensor& w_scale, const OptTensor& bias) {
  contract::linear_mx("a8w4_mx_linear", x, w, w_scale, bias, true);
  auto [xq, xs] = quantize_mxfp8(x);
  return mx_mm(xq, xs, w, w_scale, true, bias, x.scalar_type());
}

}  // namespace lowbit::cpu
