#pragma once
// Argument validation shared by every backend of every op, so that the CPU reference
// and the CUDA kernels accept and reject exactly the same inputs. Each failure names
// the op, the argument and what was expected.
#include <ATen/core/Tensor.h>
#include <c10/util/Exception.h>

#include <optional>
#include <string>
#include <type_traits>

namespace lowbit::check {

// Error messages are assembled here with std::to_string rather than by TORCH_CHECK's
// iostream formatting: on the device machine, formatting an integer through iostreams from
// this library crashed the process (SIGSEGV inside ostream::_M_insert<long>, reproduced
// under cuda-gdb; bench/NOTES.md), while strings passed fine. LOWBIT_CHECK takes the same
// arguments as TORCH_CHECK and hands it one finished string.
namespace detail {
inline std::string piece(const char* s) { return s; }
inline std::string piece(const std::string& s) { return s; }
inline std::string piece(c10::ScalarType t) { return c10::toString(t); }
inline std::string piece(const c10::Device& d) { return d.str(); }
inline std::string piece(c10::IntArrayRef a) {
  std::string s = "[";
  for (size_t i = 0; i < a.size(); ++i) s += (i ? ", " : "") + std::to_string(a[i]);
  return s + "]";
}
template <typename T, std::enable_if_t<std::is_integral_v<T>, int> = 0>
std::string piece(T v) {
  return std::to_string(v);
}
template <typename... A>
std::string cat(const A&... a) {
  std::string s;
  (s.append(piece(a)), ...);
  return s;
}
}  // namespace detail

#define LOWBIT_CHECK(cond, ...) TORCH_CHECK(cond, ::lowbit::check::detail::cat(__VA_ARGS__))

// 16-byte alignment: the CUDA kernels load operands with TMA / 16-byte vectors, which
// need 16-byte aligned base addresses and row strides. The CPU reference enforces the
// same so that code that runs on the CPU runs on the GPU.
constexpr int64_t kAlignBytes = 16;

inline std::string dtype_name(c10::ScalarType t) { return c10::toString(t); }

inline void same_device(const char* op, const at::Tensor& ref, const at::Tensor& t, const char* name) {
  LOWBIT_CHECK(t.device() == ref.device(), op, ": ", name, " is on ", t.device(),
              " but the first operand is on ", ref.device(), "; all tensors must be on one device");
}

inline void dtype_is(const char* op, const at::Tensor& t, const char* name, c10::ScalarType want) {
  LOWBIT_CHECK(t.scalar_type() == want, op, ": ", name, " must be ", dtype_name(want), ", got ",
              dtype_name(t.scalar_type()));
}

inline void is_16bit_float(const char* op, const at::Tensor& t, const char* name) {
  LOWBIT_CHECK(t.scalar_type() == at::kBFloat16 || t.scalar_type() == at::kHalf, op, ": ", name,
              " must be bfloat16 or float16, got ", dtype_name(t.scalar_type()));
}

inline void out_dtype_ok(const char* op, c10::ScalarType t) {
  LOWBIT_CHECK(t == at::kBFloat16 || t == at::kHalf, op, ": out_dtype must be bfloat16 or float16, got ",
              dtype_name(t));
}

inline void dim_is(const char* op, const at::Tensor& t, const char* name, int64_t d) {
  LOWBIT_CHECK(t.dim() == d, op, ": ", name, " must be ", d, "-D, got shape ", t.sizes());
}

// Contiguous (row-major) with a 16-byte aligned start and row stride.
inline void dense_aligned(const char* op, const at::Tensor& t, const char* name) {
  LOWBIT_CHECK(t.is_contiguous(), op, ": ", name, " must be contiguous (row-major), got strides ",
              t.strides(), " for shape ", t.sizes());
  if (t.numel() == 0) return;
  auto addr = reinterpret_cast<uintptr_t>(t.data_ptr());
  LOWBIT_CHECK(addr % kAlignBytes == 0, op, ": ", name, " must start at a 16-byte aligned address (got ",
              addr % kAlignBytes, " bytes past); use .clone() or .contiguous() on a fresh tensor");
  if (t.dim() == 2) {
    int64_t row_bytes = t.size(1) * t.element_size();
    LOWBIT_CHECK(row_bytes % kAlignBytes == 0, op, ": ", name, " rows must be a multiple of 16 bytes, got ",
                t.size(1), " elements of ", t.element_size(), " bytes");
  }
}

// A contiguous tensor whose only requirement is its shape (scales, zeros, bias).
inline void contiguous(const char* op, const at::Tensor& t, const char* name) {
  LOWBIT_CHECK(t.is_contiguous(), op, ": ", name, " must be contiguous, got strides ", t.strides());
}

inline void shape_is(const char* op, const at::Tensor& t, const char* name, at::IntArrayRef want) {
  LOWBIT_CHECK(t.sizes() == want, op, ": ", name, " must have shape ", want, ", got ", t.sizes());
}

inline void k_multiple(const char* op, int64_t K, int64_t m, const char* why) {
  LOWBIT_CHECK(K > 0, op, ": K (the reduction dimension) must be positive, got ", K);
  LOWBIT_CHECK(K % m == 0, op, ": K must be a multiple of ", m, " (", why, "), got K = ", K);
}

// Activations x: 2-D (M, K) bf16/fp16, dense, aligned. Returns nothing; M may be 0.
inline void activation16(const char* op, const at::Tensor& x) {
  LOWBIT_CHECK(x.dim() == 2, op, ": x must be 2-D (M, K); flatten leading dimensions first, got shape ",
              x.sizes());
  is_16bit_float(op, x, "x");
  dense_aligned(op, x, "x");
}

inline void bias(const char* op, const std::optional<at::Tensor>& bias, const at::Tensor& ref, int64_t N,
                 c10::ScalarType out) {
  if (!bias) return;
  same_device(op, ref, *bias, "bias");
  dtype_is(op, *bias, "bias", out);
  shape_is(op, *bias, "bias", {N});
  contiguous(op, *bias, "bias");
}

// A scale that is per row (rows,) or per tensor (one element).
inline bool row_or_tensor_scale(const char* op, const at::Tensor& s, const char* name, int64_t rows,
                                const at::Tensor& ref) {
  same_device(op, ref, s, name);
  dtype_is(op, s, name, at::kFloat);
  contiguous(op, s, name);
  if (s.numel() == 1 && s.dim() <= 1) return false;  // per tensor
  LOWBIT_CHECK(s.dim() == 1 && s.size(0) == rows, op, ": ", name, " must have shape (", rows,
              ",) (one per row) or hold one element (per tensor), got shape ", s.sizes());
  return true;
}

}  // namespace lowbit::check
