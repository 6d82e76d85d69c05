#pragma once
// Host side of TMA: building CUtensorMap descriptors. cuTensorMapEncodeTiled is a driver
// API function; it is fetched through the runtime's cudaGetDriverEntryPoint so the
// library needs no -lcuda link (BRIEF section 4).
#include <cuda.h>
#include <cuda_runtime.h>

#include "lowbit/checks.h"

#include <cstdint>

namespace lowbit::tma {

using EncodeTiledFn = CUresult (*)(CUtensorMap*, CUtensorMapDataType, cuuint32_t, void*, const cuuint64_t*,
                                   const cuuint64_t*, const cuuint32_t*, const cuuint32_t*, CUtensorMapInterleave,
                                   CUtensorMapSwizzle, CUtensorMapL2promotion, CUtensorMapFloatOOBfill);

inline EncodeTiledFn encode_tiled_fn() {
  static EncodeTiledFn fn = [] {
    void* p = nullptr;
    cudaDriverEntryPointQueryResult q;
    cudaError_t err = cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &p, 12000, cudaEnableDefault, &q);
    LOWBIT_CHECK(err == cudaSuccess && q == cudaDriverEntryPointSuccess && p,
                "lowbit: cannot get cuTensorMapEncodeTiled from the driver (", cudaGetErrorString(err), ")");
    return reinterpret_cast<EncodeTiledFn>(p);
  }();
  return fn;
}

// A row-major 2-D tensor of 1- or 2-byte elements (rows, cols), row stride `ld` elements, as a
// map of box_rows x box_cols boxes with the given swizzle; elements outside the tensor read as zero.
inline CUtensorMap make_2d(const void* base, int elem_bytes, int64_t rows, int64_t cols, int64_t ld, uint32_t box_rows,
                           uint32_t box_cols, CUtensorMapSwizzle swizzle) {
  LOWBIT_CHECK(elem_bytes == 1 || elem_bytes == 2, "lowbit: TMA boxes of 1- or 2-byte elements only");
  LOWBIT_CHECK(reinterpret_cast<uintptr_t>(base) % 16 == 0 && (ld * elem_bytes) % 16 == 0 &&
                  (box_cols * elem_bytes) % 16 == 0 && box_rows >= 1 && box_rows <= 256 && box_cols <= 256,
              "lowbit: a TMA box of (", box_rows, ", ", box_cols, ") ", elem_bytes, "-byte elements needs a 16-byte "
              "aligned base and row stride, 16-byte box rows and at most 256 elements per side");
  CUtensorMap map;
  const cuuint64_t dims[2] = {cuuint64_t(cols), cuuint64_t(rows)};
  const cuuint64_t strides[1] = {cuuint64_t(ld * elem_bytes)};  // bytes, for dims 1..
  const cuuint32_t box[2] = {box_cols, box_rows};
  const cuuint32_t elem_strides[2] = {1, 1};
  const CUtensorMapDataType type = elem_bytes == 1 ? CU_TENSOR_MAP_DATA_TYPE_UINT8 : CU_TENSOR_MAP_DATA_TYPE_UINT16;
  CUresult r = encode_tiled_fn()(&map, type, 2, const_cast<void*>(base), dims, strides, box, elem_strides,
                                 CU_TENSOR_MAP_INTERLEAVE_NONE, swizzle, CU_TENSOR_MAP_L2_PROMOTION_L2_256B,
                                 CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
  LOWBIT_CHECK(r == CUDA_SUCCESS, "lowbit: cuTensorMapEncodeTiled failed (CUresult ", int(r), ") for a (", rows, ", ",
              cols, ") tensor, box (", box_rows, ", ", box_cols, ")");
  return map;
}

// Boxes of box_rows x (128 / elem_bytes) elements (one 128-byte swizzle row), 128-byte swizzle.
inline CUtensorMap make_2d_sw128(const void* base, int elem_bytes, int64_t rows, int64_t cols, int64_t ld,
                                 uint32_t box_rows) {
  return make_2d(base, elem_bytes, rows, cols, ld, box_rows, 128 / elem_bytes, CU_TENSOR_MAP_SWIZZLE_128B);
}

// 2-byte elements in boxes of box_rows x box_cols with no swizzle: a box lands as box_rows rows
// of 2 box_cols contiguous bytes.
inline CUtensorMap make_2d_rows16(const void* base, int64_t rows, int64_t cols, int64_t ld, uint32_t box_rows,
                                  uint32_t box_cols) {
  return make_2d(base, 2, rows, cols, ld, box_rows, box_cols, CU_TENSOR_MAP_SWIZZLE_NONE);
}

}  // namespace lowbit::tma
