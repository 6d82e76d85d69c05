// CPU reference: activation (and weight) quantizers. These define the semantics that
// the CUDA quantizers in csrc/quant/ reproduce bit for bit.
//
// Symmetric absmax quantizers (int8 per token, fp8 per token / per tensor / 1x128):
//   for each block (a row, the whole tensor, or 128 consecutive elements of a row):
//     amax  = max |x| over the block, in fp32 (x upcast exactly)
//     if the block holds NaN or +-Inf: scale = NaN and every code = 0, so whatever
//       is computed from the block is NaN (as an unquantized matmul would give)
//     amax' = max(amax, 1e-12)              (an all-zero block gets a tiny scale)
//     scale = amax' / QMAX,  inv = QMAX / amax'      (fp32, each correctly rounded)
//     code  = int8: clamp(round_half_even(x * inv), -127, 127)   QMAX = 127
//             e4m3: e4m3_rne_saturating(x * inv)                 QMAX = 448
//   so that x ~= code * scale. (Multiplying by inv instead of dividing by scale is
//   what a fast kernel does; the spec says so to make the two agree exactly.)
//   Static per-tensor fp8 (scale given): inv = 1 / scale (fp32), code as above, with no
//   non-finite rule (the scale is the caller's, and only a NaN scale zeroes the codes):
//   a NaN element gives the NaN code 0x7F and +-Inf saturates to +-448 like any value
//   beyond range (what cvt.rn.satfinite does).
//
// MX (OCP Microscaling v1.0), blocks of 32 along K:
//   shared exponent e = floor(log2(amax)) - emax_elem (e4m3: 8, e2m1: 2), clamped to
//   [-127, 127]; all-zero block: e = -127; a block holding NaN/Inf: scale byte 0xFF
//   (NaN) and codes 0. Scale byte = e + 127 (E8M0). Element code = the element
//   format's RNE of x * 2^-e, saturated to its max (448 / 6): this is the spec's
//   FLOOR rule, under which the largest elements of a block can clip (amax * 2^-e
//   lies in [2^emax, 2^(emax+1)) unless e was clamped to -127). x * 2^-e is exact in
//   fp32 wherever it matters (it can only underflow far below the element format's
//   smallest subnormal, where the code is 0 either way).
//
// Signed zeros (all e4m3 / e2m1 conversions above): the sign is kept, so -0 and a
// negative value that rounds to 0 give the negative-zero code (0x80 e4m3, 0x8 e2m1),
// as an IEEE-style RNE conversion (torch's, cvt.rn) does; int8 has a single 0.
#include <ATen/Parallel.h>
#include <ATen/ops/add.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/full.h>

#include "lowbit/contracts.h"
#include "lowbit/ops.h"
#include "lowbit/quant_rules.h"  // the rules, shared with the CUDA quantizers

namespace lowbit::cpu {
namespace {

// Calls body(row, block_index, const float* src, int64_t len) for every block of
// `block` elements (block == K: one per row) of x, in parallel over rows.
template <typename Body>
void for_each_block(const Tensor& xf, int64_t block, Body body) {
  const int64_t M = xf.size(0), K = xf.size(1);
  const float* base = xf.data_ptr<float>();
  at::parallel_for(0, M, 1, [&](int64_t m0, int64_t m1) {
    for (int64_t m = m0; m < m1; ++m)
      for (int64_t b = 0; b < K / block; ++b) body(m, b, base + m * K + b * block, block);
  });
}

uint32_t amax_bits(const float* src, int64_t n) {
  uint32_t a = 0;
  for (int64_t i = 0; i < n; ++i) a = std::max(a, abs_bits(src[i]));
  return a;
}

Tensor as_float(const Tensor& x) { return x.to(at::kFloat).contiguous(); }

// Absmax quantization of x in blocks of `block` along K to int8 or e4m3 codes.
QuantPair absmax_quantize(const Tensor& x, int64_t block, bool fp8) {
  const int64_t M = x.size(0), K = x.size(1);
  Tensor xf = as_float(x);
  Tensor q = at::empty({M, K}, x.options().dtype(fp8 ? at::kByte : at::kChar));
  Tensor s = at::empty({M, K / block}, x.options().dtype(at::kFloat));
  uint8_t* qp = static_cast<uint8_t*>(q.data_ptr());
  float* sp = s.data_ptr<float>();
  const float qmax = fp8 ? kE4M3Max : 127.0f;
  for_each_block(xf, block, [&](int64_t m, int64_t b, const float* src, int64_t n) {
    const AbsmaxScale sc = absmax_scale(amax_bits(src, n), qmax);
    sp[m * (K / block) + b] = sc.scale;
    uint8_t* dst = qp + m * K + b * block;
    for (int64_t i = 0; i < n; ++i) {
      if (!sc.finite) dst[i] = 0;
      else dst[i] = fp8 ? e4m3_from_float(src[i] * sc.inv) : uint8_t(int8_code(src[i], sc.inv));
    }
  });
  if (fp8) q = q.view(at::kFloat8_e4m3fn);
  return {q, s};
}

// MX quantization in blocks of 32; four_bit packs two e2m1 codes per byte (low nibble first).
QuantPair mx_quantize(const Tensor& x, bool four_bit) {
  const int64_t M = x.size(0), K = x.size(1);
  constexpr int64_t kBlock = contract::kKMx;
  Tensor xf = as_float(x);
  Tensor q = at::empty({M, four_bit ? K / 2 : K}, x.options().dtype(at::kByte));
  Tensor s = at::empty({M, K / kBlock}, x.options().dtype(at::kByte));
  uint8_t* qp = q.data_ptr<uint8_t>();
  uint8_t* sp = s.data_ptr<uint8_t>();
  const int emax = four_bit ? kE2M1Emax : kE4M3Emax;
  for_each_block(xf, kBlock, [&](int64_t m, int64_t b, const float* src, int64_t n) {
    const MxScale sc = mx_scale(amax_bits(src, n), emax);  // byte, and the exact 2^-e
    sp[m * (K / kBlock) + b] = sc.byte;
    if (four_bit) {
      uint8_t* dst = qp + m * (K / 2) + b * (kBlock / 2);
      for (int64_t i = 0; i < n; i += 2) {
        uint8_t lo = sc.finite ? e2m1_from_float(src[i] * sc.down) : 0;
        uint8_t hi = sc.finite ? e2m1_from_float(src[i + 1] * sc.down) : 0;
        dst[i / 2] = uint8_t(lo | (hi << 4));
      }
    } else {
      uint8_t* dst = qp + m * K + b * kBlock;
      for (int64_t i = 0; i < n; ++i) dst[i] = sc.finite ? e4m3_from_float(src[i] * sc.down) : 0;
    }
  });
  if (!four_bit) q = q.view(at::kFloat8_e4m3fn);
  return {q, s};
}

}  // namespace

QuantPair quantize_int8_per_token(const Tensor& x) {
  contract::quantizer_input("quantize_int8_per_token", x, contract::kK8bit, "int8 rows of 16-byte chunks");
  auto [q, s] = absmax_quantize(x, x.size(1), false);
  return {q, s.view({x.size(0)})};
}

QuantPair quantize_fp8_per_token(const Tensor& x) {
  contract::quantizer_input("quantize_fp8_per_token", x, contract::kK8bit, "fp8 rows of 16-byte chunks");
  auto [q, s] = absmax_quantize(x, x.size(1), true);
  return {q, s.view({x.size(0)})};
}

// silu(gate) * up in fp32 (silu_mul_f32: the same arithmetic as the CUDA kernels), rounded once
// to gate's dtype, then the per-token quantizer of that: the fused quantizers' spec.
QuantPair silu_mul_quantize_per_token(const char* op, const Tensor& gate, const Tensor& up, bool fp8) {
  contract::silu_mul_input(op, gate, up);
  const int64_t M = gate.size(0), K = gate.size(1);
  Tensor gf = as_float(gate), uf = as_float(up);  // exact upcasts
  Tensor hf = at::empty({M, K}, gf.options());
  const float *g = gf.data_ptr<float>(), *u = uf.data_ptr<float>();
  float* h = hf.data_ptr<float>();
  at::parallel_for(0, M * K, 4096, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) h[i] = silu_mul_f32(g[i], u[i]);
  });
  auto [q, s] = absmax_quantize(hf.to(gate.scalar_type()), K, fp8);  // (the one rounding to the dtype)
  return {q, s.view({M})};
}

QuantPair silu_mul_quantize_int8_per_token(const Tensor& gate, const Tensor& up) {
  return silu_mul_quantize_per_token("silu_mul_quantize_int8_per_token", gate, up, false);
}

QuantPair silu_mul_quantize_fp8_per_token(const Tensor& gate, const Tensor& up) {
  return silu_mul_quantize_per_token("silu_mul_quantize_fp8_per_token", gate, up, true);
}

// RMSNorm then the per-token quantizer: rstd from the row's fp64 sum of squares (rms_rstd),
// x' = (x * rstd) * w in fp32 (rms_norm_f32), rounded once to x's dtype: the fused quantizers' spec.
QuantPair rms_norm_quantize_per_token(const char* op, const Tensor& x, const Tensor& weight, double eps, bool fp8) {
  contract::rms_norm_input(op, x, weight, eps);
  const int64_t M = x.size(0), K = x.size(1);
  Tensor xf = as_float(x), wf = as_float(weight.view({1, K}));
  Tensor yf = at::empty({M, K}, xf.options());
  const float *xp = xf.data_ptr<float>(), *w = wf.data_ptr<float>();
  float* y = yf.data_ptr<float>();
  at::parallel_for(0, M, 1, [&](int64_t m0, int64_t m1) {
    for (int64_t m = m0; m < m1; ++m) {
      const float* r = xp + m * K;
      double ss = 0.0;
      for (int64_t k = 0; k < K; ++k) ss += double(r[k] * r[k]);
      const float rstd = rms_rstd(ss, K, float(eps));
      for (int64_t k = 0; k < K; ++k) y[m * K + k] = rms_norm_f32(r[k], rstd, w[k]);
    }
  });
  auto [q, s] = absmax_quantize(yf.to(x.scalar_type()), K, fp8);  // (the one rounding to the dtype)
  return {q, s.view({M})};
}

QuantPair rms_norm_quantize_int8_per_token(const Tensor& x, const Tensor& weight, double eps) {
  return rms_norm_quantize_per_token("rms_norm_quantize_int8_per_token", x, weight, eps, false);
}

QuantPair rms_norm_quantize_fp8_per_token(const Tensor& x, const Tensor& weight, double eps) {
  return rms_norm_quantize_per_token("rms_norm_quantize_fp8_per_token", x, weight, eps, true);
}

// The residual add, then the above: sum = x + residual in fp32 rounded once to x's dtype (each
// upcast exact, so this is what torch's `x + residual` gives), and rms_norm_quantize of sum.
QuantSum add_rms_norm_quantize_per_token(const char* op, const Tensor& x, const Tensor& residual, const Tensor& weight,
                                         double eps, bool fp8) {
  contract::add_rms_norm_input(op, x, residual, weight, eps);
  Tensor sum = at::add(as_float(x), as_float(residual)).to(x.scalar_type());
  auto [q, s] = rms_norm_quantize_per_token(op, sum, weight, eps, fp8);
  return {q, s, sum};
}

QuantSum add_rms_norm_quantize_int8_per_token(const Tensor& x, const Tensor& residual, const Tensor& weight,
                                              double eps) {
  return add_rms_norm_quantize_per_token("add_rms_norm_quantize_int8_per_token", x, residual, weight, eps, false);
}

QuantSum add_rms_norm_quantize_fp8_per_token(const Tensor& x, const Tensor& residual, const Tensor& weight,
                                             double eps) {
  return add_rms_norm_quantize_per_token("add_rms_norm_quantize_fp8_per_token", x, residual, weight, eps, true);
}

QuantPair quantize_fp8_1x128(const Tensor& x) {
  contract::quantizer_input("quantize_fp8_1x128", x, contract::kKBlock, "one scale per 128 elements");
  return absmax_quantize(x, contract::kKBlock, true);
}

QuantPair quantize_fp8_per_tensor(const Tensor& x, const OptTensor& scale) {
  const char* op = "quantize_fp8_per_tensor";
  contract::quantizer_input(op, x, contract::kK8bit, "fp8 rows of 16-byte chunks");
  Tensor xf = as_float(x);
  const int64_t n = xf.numel();
  const float* src = xf.data_ptr<float>();
  float s, inv;
  if (scale) {
    check::same_device(op, x, *scale, "scale");
    check::dtype_is(op, *scale, "scale", at::kFloat);
    LOWBIT_CHECK(scale->numel() == 1, op, ": scale must hold one element (per tensor), got shape ", scale->sizes());
    s = scale->item<float>();
    inv = 1.0f / s;
  } else {
    const AbsmaxScale sc = absmax_scale(amax_bits(src, n), kE4M3Max);
    s = sc.scale, inv = sc.inv;
  }
  Tensor q = at::empty(x.sizes(), x.options().dtype(at::kByte));
  uint8_t* qp = q.data_ptr<uint8_t>();
  at::parallel_for(0, n, 4096, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) qp[i] = std::isnan(s) ? 0 : e4m3_from_float(src[i] * inv);
  });
  return {q.view(at::kFloat8_e4m3fn), at::full({1}, s, x.options().dtype(at::kFloat))};
}

QuantPair quantize_mxfp8(const Tensor& x) {
  contract::quantizer_input("quantize_mxfp8", x, contract::kKMx, "one E8M0 scale per 32 elements");
  return mx_quantize(x, false);
}

QuantPair quantize_mxfp4(const Tensor& x) {
  contract::quantizer_input("quantize_mxfp4", x, contract::kKMx, "one E8M0 scale per 32 elements");
  return mx_quantize(x, true);
}

}  // namespace lowbit::cpu
