# The CUDA sources of the selected kernel families (LOWBIT_KERNELS), each compiled for
# LOWBIT_CUDA_ARCHS. Families are the folders csrc/quant and csrc/gemm/<family>.
set(_families quant)
file(GLOB _gemm_dirs LIST_DIRECTORIES true RELATIVE "${CMAKE_SOURCE_DIR}/csrc/gemm" "${CMAKE_SOURCE_DIR}/csrc/gemm/*")
foreach(_d ${_gemm_dirs})
  if(IS_DIRECTORY "${CMAKE_SOURCE_DIR}/csrc/gemm/${_d}")
    list(APPEND _families ${_d})
  endif()
endforeach()

# Families whose op glue calls into another's kernels build together: w4 (mxfp8 / a8w4_mx at small
# M run int8's 8-bit-row GEMV; their linears round x by quant's MXFP8 kernel) and int8 (a16w8's
# large-M path is w4's mixed-input wgmma). Without this a "quant,w4" build linked but could not
# load (undefined lowbit::int8::rows8_gemv).
if(NOT LOWBIT_KERNELS STREQUAL "all" AND ("w4" IN_LIST LOWBIT_KERNELS OR "int8" IN_LIST LOWBIT_KERNELS))
  list(APPEND LOWBIT_KERNELS quant w4 int8)
  list(REMOVE_DUPLICATES LOWBIT_KERNELS)
endif()

set(LOWBIT_CUDA_FAMILIES "")
foreach(_f ${_families})
  if(LOWBIT_KERNELS STREQUAL "all" OR _f IN_LIST LOWBIT_KERNELS)
    list(APPEND LOWBIT_CUDA_FAMILIES ${_f})
    # .cu: kernels and their launches (nvcc); .cpp: op glue (contracts, planning,
    # registration), compiled by the C++ compiler.
    if(_f STREQUAL "quant")
      set(_dir "${CMAKE_SOURCE_DIR}/csrc/quant")
    else()
      set(_dir "${CMAKE_SOURCE_DIR}/csrc/gemm/${_f}")
    endif()
    file(GLOB _cu CONFIGURE_DEPENDS "${_dir}/*.cu" "${_dir}/*.cpp")
    list(APPEND LOWBIT_SOURCES ${_cu})
  endif()
endforeach()
set(CMAKE_CUDA_ARCHITECTURES ${LOWBIT_CUDA_ARCHS})
# -lineinfo: ncu and compute-sanitizer point at source lines; costs no speed.
# --expt-relaxed-constexpr: constexpr helpers used on device.
set(CMAKE_CUDA_FLAGS "${CMAKE_CUDA_FLAGS} -lineinfo --expt-relaxed-constexpr -Xptxas=-warn-spills")
message(STATUS "lowbit_ext: CUDA families ${LOWBIT_CUDA_FAMILIES} for sm_${LOWBIT_CUDA_ARCHS}")
