"""lowbit_ext: low-bit matmuls (int4, int8, fp8, MX) for NVIDIA Hopper as torch custom ops.

Every op lives under ``torch.ops.lowbit`` and has a CPU reference implementation (the
specification); CUDA kernels (sm_90a) are registered for the ops that have them.
Typed wrappers: :mod:`lowbit_ext.ops`. Weight quantizers per format: :mod:`lowbit_ext.formats`.
"""
from ._library import load_library as _load_library

_load_library()

from . import ops  # noqa: E402  (registers the fake implementations)
from . import formats  # noqa: E402
from ._library import cuda_ops, has_cuda_kernel, library_path  # noqa: E402

__all__ = ["ops", "formats", "has_cuda_kernel", "cuda_ops", "library_path"]
__version__ = "0.1.0"
