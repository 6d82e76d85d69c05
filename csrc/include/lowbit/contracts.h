#pragma once
// The argument contract of each op family: shapes, dtypes, devices, alignment, K
// granularity. Called first by every backend's implementation (CPU and CUDA), so
// both reject the same inputs with the same message. Returns the problem sizes.
#include <utility>

#include "lowbit/checks.h"

// Host code only, compiled by the C++ compiler: error messages built by iostreams that
// nvcc's host pass instantiated crashed on the device machine (bench/NOTES.md).
#if defined(__CUDACC__)
#error "lowbit/contracts.h is for .cpp files; keep op glue out of .cu files"
#endif

namespace lowbit::contract {

struct GemmDims {
  int64_t M, N, K;
};

// K granularity of each family, with the reason quoted in errors.
constexpr int64_t kK8bit = 16;    // 16-byte rows of 8-bit operands (TMA, 16-byte loads)
constexpr int64_t kKBlock = 128;  // fp8_block: 1x128 / 128x128 scale blocks
constexpr int64_t kKMx = 32;      // MX: one E8M0 scale per 32 elements along K
constexpr int64_t kKW4 = 32;      // 4-bit weights: 32 elements = one 16-byte row chunk
constexpr int64_t kFp8Block = 128;

// Quantizer input: 2-D (M, K) bf16/fp16/fp32, dense and aligned, K a multiple of k_mult.
inline void quantizer_input(const char* op, const at::Tensor& x, int64_t k_mult, const char* why) {
  LOWBIT_CHECK(x.dim() == 2, op, ": x must be 2-D (M, K); flatten leading dimensions first, got shape ",
              x.sizes());
  auto t = x.scalar_type();
  LOWBIT_CHECK(t == at::kBFloat16 || t == at::kHalf || t == at::kFloat, op,
              ": x must be bfloat16, float16 or float32, got ", check::dtype_name(t));
  check::dense_aligned(op, x, "x");
  check::k_multiple(op, x.size(1), k_mult, why);
}

// The fused silu(gate) * up quantizers' inputs: gate and up 2-D (M, K) of one 16-bit dtype and
// device, K a multiple of 16; each a dense row-major tensor or a view of one with longer rows
// (the halves of a fused gate-up projection's output): elements contiguous along K, 16-byte
// aligned start and row stride.
inline void silu_mul_input(const char* op, const at::Tensor& gate, const at::Tensor& up) {
  auto operand = [&](const at::Tensor& t, const char* name) {
    LOWBIT_CHECK(t.dim() == 2, op, ": ", name, " must be 2-D (M, K); flatten leading dimensions first, got shape ",
                t.sizes());
    check::is_16bit_float(op, t, name);
    if (t.numel() == 0) return;
    LOWBIT_CHECK(t.stride(1) == 1 && t.stride(0) >= t.size(1), op, ": ", name,
                " must have contiguous rows (stride 1 along K, rows not overlapping), got strides ", t.strides());
    LOWBIT_CHECK(reinterpret_cast<uintptr_t>(t.data_ptr()) % check::kAlignBytes == 0 &&
                    (t.stride(0) * t.element_size()) % check::kAlignBytes == 0,
                op, ": ", name, " must start at a 16-byte aligned address and have a row stride of a multiple of ",
                "16 bytes (got row stride ", t.stride(0), " elements)");
  };
  operand(gate, "gate");
  operand(up, "up");
  check::same_device(op, gate, up, "up");
  LOWBIT_CHECK(up.scalar_type() == gate.scalar_type(), op, ": up must have gate's dtype (",
              check::dtype_name(gate.scalar_type()), "), got ", check::dtype_name(up.scalar_type()));
  LOWBIT_CHECK(up.sizes() == gate.sizes(), op, ": up must have gate's shape ", gate.sizes(), ", got ", up.sizes());
  check::k_multiple(op, gate.size(1), kK8bit, "8-bit rows of 16-byte chunks");
}

// The fused RMSNorm quantizers' inputs: x 2-D (M, K) bf16 / fp16, dense and aligned, K a multiple
// of 16; weight (K,) of x's dtype and device, contiguous; eps finite and >= 0.
inline void rms_norm_input(const char* op, const at::Tensor& x, const at::Tensor& weight, double eps) {
  LOWBIT_CHECK(x.dim() == 2, op, ": x must be 2-D (M, K); flatten leading dimensions first, got shape ", x.sizes());
  check::is_16bit_float(op, x, "x");
  check::dense_aligned(op, x, "x");
  check::k_multiple(op, x.size(1), kK8bit, "8-bit rows of 16-byte chunks");
  check::same_device(op, x, weight, "weight");
  check::dtype_is(op, weight, "weight", x.scalar_type());
  check::shape_is(op, weight, "weight", {x.size(1)});
  check::contiguous(op, weight, "weight");
  LOWBIT_CHECK(std::isfinite(eps) && eps >= 0, op, ": eps must be finite and >= 0, got ", eps);
}

// The residual add before an RMSNorm: residual like x (same shape, dtype, device; dense).
inline void add_rms_norm_input(const char* op, const at::Tensor& x, const at::Tensor& residual,
                               const at::Tensor& weight, double eps) {
  rms_norm_input(op, x, weight, eps);
  check::same_device(op, x, residual, "residual");
  check::dtype_is(op, residual, "residual", x.scalar_type());
  LOWBIT_CHECK(residual.sizes() == x.sizes(), op, ": residual must have x's shape ", x.sizes(), ", got ",
               residual.sizes());
  check::dense_aligned(op, residual, "residual");
}

// An 8-bit weight (N, K) of dtype elem with a per-row or per-tensor fp32 scale. Returns N.
inline int64_t weight_8bit(const char* op, const at::Tensor& b, const at::Tensor& b_scale, int64_t K,
                           c10::ScalarType elem, const at::Tensor& ref, const char* bname, const char* sname) {
  check::same_device(op, ref, b, bname);
  check::dim_is(op, b, bname, 2);
  check::dtype_is(op, b, bname, elem);
  LOWBIT_CHECK(b.size(1) == K, op, ": the activations have K = ", K, " so ", bname,
              " must be (N, K) with the same K, got ", b.sizes());
  LOWBIT_CHECK(b.size(0) > 0, op, ": ", bname, " must have at least one row (N > 0)");
  check::dense_aligned(op, b, bname);
  check::row_or_tensor_scale(op, b_scale, sname, b.size(0), ref);
  return b.size(0);
}

// 8-bit (M, K) x (N, K) with per-row/per-tensor fp32 scales: w8a8_int8_mm, w8a8_fp8_mm.
inline GemmDims scaled_mm_8bit(const char* op, const at::Tensor& a, const at::Tensor& a_scale,
                               const at::Tensor& b, const at::Tensor& b_scale,
                               const std::optional<at::Tensor>& bias, c10::ScalarType out_dtype,
                               c10::ScalarType elem) {
  check::dim_is(op, a, "a", 2);
  check::dtype_is(op, a, "a", elem);
  check::out_dtype_ok(op, out_dtype);
  int64_t M = a.size(0), K = a.size(1);
  check::k_multiple(op, K, kK8bit, "rows of 8-bit operands are loaded 16 bytes at a time");
  check::dense_aligned(op, a, "a");
  check::row_or_tensor_scale(op, a_scale, "a_scale", M, a);
  int64_t N = weight_8bit(op, b, b_scale, K, elem, a, "b", "b_scale");
  check::bias(op, bias, a, N, out_dtype);
  return {M, N, K};
}

// The fused linear of an 8-bit format: x (M, K) 16-bit, w (N, K) elem, w_scale per row/tensor.
inline GemmDims linear_8bit(const char* op, const at::Tensor& x, const at::Tensor& w, const at::Tensor& w_scale,
                            const std::optional<at::Tensor>& bias, c10::ScalarType elem) {
  check::activation16(op, x);
  int64_t K = x.size(1);
  check::k_multiple(op, K, kK8bit, "rows of 8-bit operands are loaded 16 bytes at a time");
  int64_t N = weight_8bit(op, w, w_scale, K, elem, x, "w", "w_scale");
  check::bias(op, bias, x, N, x.scalar_type());
  return {x.size(0), N, K};
}

// A 128x128-block fp8 weight: b (N, K) e4m3, b_scale (ceil(N/128), K/128) fp32. Returns N.
inline int64_t weight_fp8_block(const char* op, const at::Tensor& b, const at::Tensor& b_scale, int64_t K,
                                const at::Tensor& ref, const char* bname, const char* sname) {
  check::same_device(op, ref, b, bname);
  check::dim_is(op, b, bname, 2);
  check::dtype_is(op, b, bname, at::kFloat8_e4m3fn);
  LOWBIT_CHECK(b.size(1) == K, op, ": the activations have K = ", K, " so ", bname,
              " must be (N, K) with the same K, got ", b.sizes());
  int64_t N = b.size(0);
  LOWBIT_CHECK(N > 0, op, ": ", bname, " must have at least one row (N > 0)");
  check::dense_aligned(op, b, bname);
  check::same_device(op, ref, b_scale, sname);
  check::dtype_is(op, b_scale, sname, at::kFloat);
  check::contiguous(op, b_scale, sname);
  check::shape_is(op, b_scale, sname, {(N + kFp8Block - 1) / kFp8Block, K / kFp8Block});
  return N;
}

// fp8_block_mm: a (M, K) e4m3 with a_scale (M, K/128) fp32 (1x128 blocks); b as above.
inline GemmDims fp8_block_mm(const char* op, const at::Tensor& a, const at::Tensor& a_scale,
                             const at::Tensor& b, const at::Tensor& b_scale,
                             const std::optional<at::Tensor>& bias, c10::ScalarType out_dtype) {
  check::dim_is(op, a, "a", 2);
  check::dtype_is(op, a, "a", at::kFloat8_e4m3fn);
  check::out_dtype_ok(op, out_dtype);
  int64_t M = a.size(0), K = a.size(1);
  check::k_multiple(op, K, kKBlock, "scales come in blocks of 128 along K");
  check::dense_aligned(op, a, "a");
  check::same_device(op, a, a_scale, "a_scale");
  check::dtype_is(op, a_scale, "a_scale", at::kFloat);
  check::contiguous(op, a_scale, "a_scale");
  check::shape_is(op, a_scale, "a_scale (one per 1x128 block of a)", {M, K / kFp8Block});
  int64_t N = weight_fp8_block(op, b, b_scale, K, a, "b", "b_scale (one per 128x128 block of b)");
  check::bias(op, bias, a, N, out_dtype);
  return {M, N, K};
}

inline GemmDims linear_fp8_block(const char* op, const at::Tensor& x, const at::Tensor& w,
                                 const at::Tensor& w_scale, const std::optional<at::Tensor>& bias) {
  check::activation16(op, x);
  int64_t K = x.size(1);
  check::k_multiple(op, K, kKBlock, "scales come in blocks of 128 along K");
  int64_t N = weight_fp8_block(op, w, w_scale, K, x, "w", "w_scale (one per 128x128 block of w)");
  check::bias(op, bias, x, N, x.scalar_type());
  return {x.size(0), N, K};
}

// An MX operand: codes (rows, K) e4m3, or 4-bit (rows, K/8) int32 in the w4 kernel
// layout, with E8M0 scales (rows, K/32) uint8. Returns K.
inline int64_t mx_operand(const char* op, const at::Tensor& q, const at::Tensor& s, const char* qname,
                          const char* sname, bool four_bit, const at::Tensor& ref) {
  check::dim_is(op, q, qname, 2);
  check::same_device(op, ref, q, qname);
  int64_t K;
  if (four_bit) {
    LOWBIT_CHECK(q.scalar_type() == at::kInt, op, ": ", qname,
                " must be int32 (N, K/8) in the w4 kernel layout (use lowbit_ext.ops.prepack_w4), got ",
                check::dtype_name(q.scalar_type()));
    K = q.size(1) * 8;
  } else {
    check::dtype_is(op, q, qname, at::kFloat8_e4m3fn);
    K = q.size(1);
  }
  check::k_multiple(op, K, kKMx, "MX scales cover blocks of 32 along K");
  check::dense_aligned(op, q, qname);
  check::same_device(op, ref, s, sname);
  LOWBIT_CHECK(s.scalar_type() == at::kByte, op, ": ", sname, " must be uint8 (E8M0 exponents), got ",
              check::dtype_name(s.scalar_type()));
  check::contiguous(op, s, sname);
  check::shape_is(op, s, sname, {q.size(0), K / kKMx});
  return K;
}

// mxfp8_mm / a8w4_mx_mm: a e4m3 (M, K) + (M, K/32); b e4m3 (N, K) or w4 (N, K/8), + (N, K/32).
inline GemmDims mx_mm(const char* op, const at::Tensor& a, const at::Tensor& a_scale, const at::Tensor& b,
                      const at::Tensor& b_scale, const std::optional<at::Tensor>& bias,
                      c10::ScalarType out_dtype, bool b_four_bit) {
  check::out_dtype_ok(op, out_dtype);
  int64_t K = mx_operand(op, a, a_scale, "a", "a_scale", false, a);
  int64_t Kb = mx_operand(op, b, b_scale, "b", "b_scale", b_four_bit, a);
  LOWBIT_CHECK(K == Kb, op, ": a has K = ", K, " but b has K = ", Kb);
  int64_t N = b.size(0);
  LOWBIT_CHECK(N > 0, op, ": b must have at least one row (N > 0)");
  check::bias(op, bias, a, N, out_dtype);
  return {a.size(0), N, K};
}

// The fused linear of an MX format: x (M, K) 16-bit; w e4m3 (N, K) or w4 (N, K/8); w_scale (N, K/32).
inline GemmDims linear_mx(const char* op, const at::Tensor& x, const at::Tensor& w, const at::Tensor& w_scale,
                          const std::optional<at::Tensor>& bias, bool w_four_bit) {
  check::activation16(op, x);
  int64_t K = mx_operand(op, w, w_scale, "w", "w_scale", w_four_bit, x);
  LOWBIT_CHECK(K == x.size(1), op, ": x has K = ", x.size(1), " but w holds K = ", K);
  int64_t N = w.size(0);
  LOWBIT_CHECK(N > 0, op, ": w must have at least one row (N > 0)");
  check::bias(op, bias, x, N, x.scalar_type());
  return {x.size(0), N, K};
}

// 4-bit weights in the w4 kernel layout: int32 (N, K/8).
inline void w4_weight(const char* op, const at::Tensor& w, const at::Tensor& ref) {
  check::same_device(op, ref, w, "w");
  check::dim_is(op, w, "w", 2);
  LOWBIT_CHECK(w.scalar_type() == at::kInt, op,
              ": w must be int32 (N, K/8) in the w4 kernel layout (use lowbit_ext.ops.prepack_w4), got ",
              check::dtype_name(w.scalar_type()));
  check::dense_aligned(op, w, "w");
}

// prepack_w4 input: plain 4-bit codes uint8 (N, K/2), two per byte. Returns {N, K}.
inline std::pair<int64_t, int64_t> w4_plain(const char* op, const at::Tensor& w) {
  check::dim_is(op, w, "w", 2);
  LOWBIT_CHECK(w.scalar_type() == at::kByte, op,
              ": w must be uint8 (N, K/2) holding two 4-bit codes per byte (low nibble first), got ",
              check::dtype_name(w.scalar_type()));
  check::contiguous(op, w, "w");
  const int64_t N = w.size(0), K = w.size(1) * 2;
  check::k_multiple(op, K, kKW4, "4-bit weights are stored 32 elements per 16 bytes");
  return {N, K};
}

// unpack_w4 input: int32 (N, K/8) in the w4 kernel layout. Returns {N, K}.
inline std::pair<int64_t, int64_t> w4_packed(const char* op, const at::Tensor& w) {
  check::dim_is(op, w, "w", 2);
  LOWBIT_CHECK(w.scalar_type() == at::kInt, op, ": w must be int32 (N, K/8) in the w4 kernel layout, got ",
              check::dtype_name(w.scalar_type()));
  check::contiguous(op, w, "w");
  return {w.size(0), w.size(1) * 8};
}

// a16w4_linear: x (M, K) 16-bit; w int32 (N, K/8); scales (and zeros) (N, K/g) in x's dtype.
// group_size: 32, 64, 128, or -1 / K for one group per output channel.
inline GemmDims a16w4(const char* op, const at::Tensor& x, const at::Tensor& w, const at::Tensor& scales,
                      const std::optional<at::Tensor>& zeros, int64_t group_size,
                      const std::optional<at::Tensor>& bias, int64_t* group_out) {
  check::activation16(op, x);
  w4_weight(op, w, x);
  int64_t M = x.size(0), K = x.size(1), N = w.size(0);
  LOWBIT_CHECK(w.size(1) * 8 == K, op, ": x has K = ", K, " so w must be (N, K/8) = (N, ", K / 8,
              ") int32, got ", w.sizes());
  LOWBIT_CHECK(N > 0, op, ": w must have at least one row (N > 0)");
  check::k_multiple(op, K, kKW4, "4-bit weights are stored 32 elements per 16 bytes");
  int64_t g = group_size == -1 ? K : group_size;
  LOWBIT_CHECK(g == 32 || g == 64 || g == 128 || g == K, op,
              ": group_size must be 32, 64, 128 or -1 (per channel), got ", group_size);
  LOWBIT_CHECK(K % g == 0, op, ": K must be a multiple of group_size; K = ", K, ", group_size = ", g);
  check::same_device(op, x, scales, "scales");
  check::dtype_is(op, scales, "scales", x.scalar_type());
  check::contiguous(op, scales, "scales");
  check::shape_is(op, scales, "scales (one per group)", {N, K / g});
  if (zeros) {
    check::same_device(op, x, *zeros, "zeros");
    check::dtype_is(op, *zeros, "zeros", x.scalar_type());
    check::contiguous(op, *zeros, "zeros");
    check::shape_is(op, *zeros, "zeros (one per group)", {N, K / g});
  }
  check::bias(op, bias, x, N, x.scalar_type());
  *group_out = g;
  return {M, N, K};
}

// a16w8_linear: x (M, K) 16-bit; w int8 (N, K); w_scale (N,) fp32 (applied in the fp32
// epilogue, so it need not be rounded to 16 bits nor tied to the activation dtype).
inline GemmDims a16w8(const char* op, const at::Tensor& x, const at::Tensor& w, const at::Tensor& w_scale,
                      const std::optional<at::Tensor>& bias) {
  check::activation16(op, x);
  check::same_device(op, x, w, "w");
  check::dim_is(op, w, "w", 2);
  check::dtype_is(op, w, "w", at::kChar);
  int64_t M = x.size(0), K = x.size(1), N = w.size(0);
  LOWBIT_CHECK(w.size(1) == K, op, ": x is ", x.sizes(), " and w must be (N, K) with the same K, got ", w.sizes());
  LOWBIT_CHECK(N > 0, op, ": w must have at least one row (N > 0)");
  check::k_multiple(op, K, kK8bit, "rows of 8-bit operands are loaded 16 bytes at a time");
  check::dense_aligned(op, w, "w");
  check::same_device(op, x, w_scale, "w_scale");
  check::dtype_is(op, w_scale, "w_scale", at::kFloat);
  check::contiguous(op, w_scale, "w_scale");
  check::shape_is(op, w_scale, "w_scale (one per output channel)", {N});
  check::bias(op, bias, x, N, x.scalar_type());
  return {M, N, K};
}

}  // namespace lowbit::contract
