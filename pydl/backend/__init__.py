"""Backends: modules exporting the same function names over their own arrays.

`pydl.backend.cpu` works on NumPy arrays with the C++ kernels of pydl._C.cpu;
`pydl.backend.cuda` on CuPy arrays with the CUDA kernels of pydl._C.cuda and
the Numba kernels. Ops call `get(device)` and never import a backend directly.
"""
from __future__ import annotations

from . import cpu

_cuda = None


def get(device_type: str):
    if device_type == "cpu":
        return cpu
    global _cuda
    if _cuda is None:
        from .. import cuda as _cuda_state
        from ..errors import DeviceError

        if not _cuda_state.is_available():
            raise DeviceError(f"CUDA is not available: {_cuda_state.unavailable_reason()}")
        from . import cuda as cuda_backend

        _cuda = cuda_backend
    return _cuda


def of_array(a):
    """The backend owning an array (NumPy -> cpu, anything else -> cuda)."""
    import numpy as np

    if isinstance(a, (np.ndarray, np.generic)):
        return cpu
    return get("cuda")
