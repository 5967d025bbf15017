"""Arrays of other libraries in and out of pydl's backends, zero-copy.

Inputs become NumPy arrays (CPU) or CuPy arrays (GPU) through DLPack or the
array interfaces, sharing memory; outputs go back to the caller's library the
same way. bfloat16 crosses as 16-bit integers reinterpreted on each side, since
NumPy's DLPack import has no bfloat16.
"""
from __future__ import annotations

import numpy as np

from .. import dtypes as dt
from ..errors import DeviceError


def _library(a, op: str, arg: str) -> str:
    mod = type(a).__module__.split(".")[0]
    if isinstance(a, np.ndarray):
        return "numpy"
    if mod in ("torch", "cupy", "jax", "jaxlib"):
        return "jax" if mod == "jaxlib" else mod
    if hasattr(a, "__dlpack__"):
        return "dlpack"
    raise TypeError(f"{op}: expected an array (NumPy, PyTorch, CuPy, JAX or any __dlpack__ "
                    f"object) for {arg}, got {type(a).__name__}")


def _torch_in(t, op: str, arg: str):
    import torch

    if t.device.type == "cuda":
        import cupy

        if t.dtype == torch.bfloat16:
            return cupy.from_dlpack(t.view(torch.int16)).view(dt.bfloat16)
        return cupy.from_dlpack(t)
    if t.device.type != "cpu":
        raise DeviceError(f"{op}: {arg} is on device {t.device}, which pydl does not support")
    t = t.detach()
    if t.dtype == torch.bfloat16:
        return np.from_dlpack(t.view(torch.int16)).view(dt.bfloat16)
    return np.from_dlpack(t)


def to_backend(a, op: str, arg: str):
    """(backend array, library name) for an input array; None stays None."""
    if a is None:
        return None, None
    lib = _library(a, op, arg)
    if lib == "numpy":
        return a, lib
    if lib == "torch":
        return _torch_in(a, op, arg), lib
    if lib == "cupy":
        return a, lib
    dev_type = a.__dlpack_device__()[0] if hasattr(a, "__dlpack_device__") else 1
    if dev_type == 1:  # kDLCPU
        return np.from_dlpack(a), lib
    if dev_type == 2:  # kDLCUDA
        import cupy

        return cupy.from_dlpack(a), lib
    raise DeviceError(f"{op}: {arg} is on an unsupported device (DLPack device type {dev_type})")


def from_backend(x, lib: str):
    """Give an output array back in the caller's library."""
    if lib == "numpy" or lib is None:
        return x
    is_cpu = isinstance(x, np.ndarray)
    if lib == "torch":
        import torch

        if x.dtype == dt.bfloat16:
            return torch.from_dlpack(x.view(np.int16) if is_cpu else x.view("int16")).view(torch.bfloat16)
        return torch.from_dlpack(x)
    if lib == "cupy":
        return x
    if lib == "jax":
        import jax.numpy as jnp

        return jnp.from_dlpack(x)
    return x


def convert_args(op: str, **arrays):
    """Convert named inputs; check they share one device. Returns (dict, library of the first)."""
    out, lib, device = {}, None, None
    for name, a in arrays.items():
        x, l = to_backend(a, op, name)
        out[name] = x
        if x is None:
            continue
        lib = lib or l
        d = "cpu" if isinstance(x, np.ndarray) else "cuda"
        if device is None:
            device = d
        elif d != device:
            raise DeviceError(f"{op}: all arrays must be on one device; {name} is on {d}, "
                              f"the others on {device}")
    return out, lib


class _Null:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def stream_for(arrays):
    """PyTorch CUDA inputs: run on PyTorch's current stream, so our kernels order
    with the caller's work without a host sync. Everything else: CuPy's current stream."""
    for a in arrays:
        if type(a).__module__.split(".")[0] == "torch" and a.device.type == "cuda":
            import cupy
            import torch

            return cupy.cuda.ExternalStream(torch.cuda.current_stream(a.device).cuda_stream)
    return _Null()
