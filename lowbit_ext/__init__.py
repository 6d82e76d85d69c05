"""lowbit_ext: low-bit matmuls (int4, int8, fp8, MX) for NVIDIA Hopper as torch custom ops.

Every op lives under ``torch.ops.lowbit`` and has a CPU reference implementation (the
specification); CUDA kernels (sm_90a) are registered for the ops that have them.
Typed wrappers: :mod:`lowbit_ext.ops`. Weight quantizers per format: :mod:`lowbit_ext.formats`.
Models: :func:`quantize_` (:mod:`lowbit_ext.quantize`) turns a model's ``nn.Linear`` layers
into :class:`LowBitLinear` (:mod:`lowbit_ext.nn`); :func:`save_quantized` /
:func:`load_quantized` (:mod:`lowbit_ext.checkpoint`) keep them in safetensors files.
"""
from ._library import load_library as _load_library

_load_library()

from . import ops  # noqa: E402  (registers the fake implementations)
from . import formats  # noqa: E402
from . import calibration  # noqa: E402
from ._library import cuda_ops, has_cuda_kernel, library_path  # noqa: E402
from .nn import LowBitLinear  # noqa: E402
from .quantize import (MXFP8, Fp8Block, Fp8Dynamic, Int4WeightOnly, Int8Dynamic, Int8WeightOnly,  # noqa: E402
                       MXFP4WeightOnly, MXFP8xMXFP4, QuantConfig, QuantizeReport, config_for, quantize_,
                       record_linear_inputs)
from .checkpoint import CheckpointError, load_quantized, read_metadata, save_quantized  # noqa: E402

__all__ = ["ops", "formats", "calibration", "has_cuda_kernel", "cuda_ops", "library_path",
           "LowBitLinear", "quantize_", "record_linear_inputs", "QuantConfig", "QuantizeReport", "config_for",
           "Int4WeightOnly", "Int8WeightOnly", "Int8Dynamic", "Fp8Dynamic", "Fp8Block", "MXFP8",
           "MXFP4WeightOnly", "MXFP8xMXFP4",
           "save_quantized", "load_quantized", "read_metadata", "CheckpointError"]
__version__ = "0.1.0"
