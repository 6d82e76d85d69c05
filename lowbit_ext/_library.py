"""Loading the compiled op library (lowbit_ext/_C.so) and asking what it holds."""
from pathlib import Path

import torch

# Must equal LOWBIT_ABI_VERSION in csrc/include/lowbit/version.h: a library built from
# other sources would register other schemas or layouts than this Python code expects.
ABI_VERSION = 3

_REBUILD = "rebuild it from the repository root with: pip install --no-build-isolation -e ."
_path = None


def library_path():
    return _path


def load_library():
    global _path
    if _path is not None:
        return
    here = Path(__file__).resolve().parent
    candidates = sorted(here.glob("_C*.so"))
    if not candidates:
        raise ImportError(f"lowbit_ext: the compiled library lowbit_ext/_C.so is missing; {_REBUILD}")
    try:
        torch.ops.load_library(str(candidates[0]))
    except OSError as e:
        raise ImportError(f"lowbit_ext: could not load {candidates[0]} ({e}); it may have been built "
                          f"against another torch than {torch.__version__}; {_REBUILD}") from e
    got = torch.ops.lowbit._abi_version()
    if got != ABI_VERSION:
        raise ImportError(f"lowbit_ext: {candidates[0]} is stale (ABI version {got}, the Python package "
                          f"expects {ABI_VERSION}); {_REBUILD}")
    _path = str(candidates[0])


def has_cuda_kernel(op_name: str) -> bool:
    """Whether torch.ops.lowbit.<op_name> has a CUDA kernel in this build."""
    return torch._C._dispatch_has_kernel_for_dispatch_key(f"lowbit::{op_name}", "CUDA")


def cuda_ops():
    """Names of the ops that have a CUDA kernel in this build."""
    from .ops import OP_NAMES
    return [n for n in OP_NAMES if has_cuda_kernel(n)]
