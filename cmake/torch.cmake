# Find torch. With CUDA: through torch's own CMake config (TorchConfig.cmake), which
# also finds the toolkit. Without CUDA (no nvcc, or a CPU build of torch), torch's
# config cannot be used when torch itself is a CUDA build (Caffe2Config stops when it
# finds no toolkit), so the interface target is made from torch's install prefix.
#
# In: TORCH_INSTALL_PREFIX (site-packages/torch), LOWBIT_ENABLE_CUDA.
# Out: target lowbit_torch, LOWBIT_HAS_CUDA.
if(NOT TORCH_INSTALL_PREFIX)
  message(FATAL_ERROR "pass -DTORCH_INSTALL_PREFIX=<site-packages>/torch (setup.py does)")
endif()

add_library(lowbit_torch INTERFACE)
set(LOWBIT_HAS_CUDA OFF)

if(LOWBIT_ENABLE_CUDA)
  enable_language(CUDA)
  set(CMAKE_CUDA_STANDARD 20)
  set(CMAKE_CUDA_STANDARD_REQUIRED ON)
  # torch's Caffe2 config looks for nvrtc beside the toolkit; pip wheels keep it in
  # nvidia/cu13/lib. setup.py passes CUDA_nvrtc_LIBRARY when it finds it there.
  list(APPEND CMAKE_PREFIX_PATH "${TORCH_INSTALL_PREFIX}/share/cmake")
  find_package(Torch REQUIRED)
  target_link_libraries(lowbit_torch INTERFACE ${TORCH_LIBRARIES})
  # cuBLAS/cuSPARSE headers that ATen/cuda/CUDAContext.h includes: the pip wheel
  # ships them in nvidia/cu<major>/include, which a system toolkit may lack.
  if(LOWBIT_EXTRA_CUDA_INCLUDE)
    target_include_directories(lowbit_torch INTERFACE ${LOWBIT_EXTRA_CUDA_INCLUDE})
  endif()
  # torch's config adds its CXX flags (ABI) to TORCH_CXX_FLAGS.
  separate_arguments(_torch_cxx_flags UNIX_COMMAND "${TORCH_CXX_FLAGS}")
  target_compile_options(lowbit_torch INTERFACE $<$<COMPILE_LANGUAGE:CXX>:${_torch_cxx_flags}>)
  set(LOWBIT_HAS_CUDA ON)
else()
  target_include_directories(lowbit_torch INTERFACE
    "${TORCH_INSTALL_PREFIX}/include"
    "${TORCH_INSTALL_PREFIX}/include/torch/csrc/api/include")
  foreach(_lib c10 torch_cpu torch)
    find_library(_lowbit_${_lib} ${_lib} PATHS "${TORCH_INSTALL_PREFIX}/lib" NO_DEFAULT_PATH REQUIRED)
    target_link_libraries(lowbit_torch INTERFACE ${_lowbit_${_lib}})
  endforeach()
  if(DEFINED TORCH_CXX11_ABI)
    target_compile_definitions(lowbit_torch INTERFACE _GLIBCXX_USE_CXX11_ABI=${TORCH_CXX11_ABI})
  endif()
endif()
