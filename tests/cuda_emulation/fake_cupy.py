"""A NumPy stand-in for CuPy, for running pydl/backend/cuda.py over an emulated pydl._C.cuda
on the CPU: host arrays that present __cuda_array_interface__, uninitialised memory filled
with NaN (an output element nothing writes shows up), and a failure list with the checks
both emulated backends share. Imported by the *_emu_backend.py scripts (their folder is on
sys.path when they run)."""
import sys
import types

import ml_dtypes
import numpy as np

failures = []


class DevArray(np.ndarray):
    """A host array that presents itself as a GPU array."""

    @property
    def __cuda_array_interface__(self):
        return {"shape": self.shape, "typestr": self.dtype.str, "version": 3,
                "data": (self.__array_interface__["data"][0], False), "strides": self.strides}


def dev(a):
    return a.view(DevArray) if isinstance(a, np.ndarray) else a


def poisoned_empty(shape, dtype=np.float64):
    """Uninitialised memory, as NaN where it can be."""
    dtype = np.dtype(dtype)
    if dtype.kind == "f" or dtype == ml_dtypes.bfloat16:
        return dev(np.full(shape, np.nan, dtype))
    return dev(np.empty(shape, dtype))


def install(stream=0, wrap_all=False, **extra):
    """Puts a `cupy` (and an empty `cupyx.scipy.special`) into sys.modules and returns it.
    Other names resolve to NumPy's: as they are, or with wrap_all, calls whose results come
    back as GPU arrays. `extra` sets further attributes."""
    cp = types.ModuleType("cupy")
    cp.ndarray = DevArray
    cp.empty = poisoned_empty

    def numpy_name(name):
        f = getattr(np, name)
        if not wrap_all or not callable(f) or isinstance(f, type):
            return f
        return lambda *a, **k: dev(f(*a, **k))

    cp.__getattr__ = numpy_name
    cp.cuda = types.SimpleNamespace(get_current_stream=lambda: types.SimpleNamespace(ptr=stream),
                                    Device=lambda i=0: types.SimpleNamespace(id=i))
    for name, value in extra.items():
        setattr(cp, name, value)
    cupyx = types.ModuleType("cupyx")
    cupyx.scipy = types.ModuleType("cupyx.scipy")
    cupyx.scipy.special = types.ModuleType("cupyx.scipy.special")
    sys.modules.update({"cupy": cp, "cupyx": cupyx, "cupyx.scipy": cupyx.scipy,
                        "cupyx.scipy.special": cupyx.scipy.special})
    return cp


def expect_error(exc, text, fn):
    """fn() must raise exc with text in its message; a failure is recorded otherwise."""
    try:
        fn()
    except exc as e:
        if text not in str(e):
            failures.append(f"error '{e}' does not say '{text}'")
    except Exception as e:  # noqa: BLE001
        failures.append(f"expected {exc.__name__} with '{text}', got {type(e).__name__}: {e}")
    else:
        failures.append(f"expected {exc.__name__} with '{text}', nothing raised")
