"""GPU availability. Never raises: with no GPU, driver, CuPy or compiled CUDA
kernels, is_available() is False and unavailable_reason() says why."""
from __future__ import annotations

import functools


@functools.lru_cache(maxsize=None)
def _probe() -> tuple[bool, str]:
    from . import _C

    if not _C.cuda.compiled:
        return False, "pydl was built without CUDA kernels"
    if _C.cuda.device_count() == 0:
        return False, "no GPU visible to the CUDA runtime"
    try:
        import cupy  # noqa: F401
    except Exception as e:  # ImportError, or CuPy failing to find its CUDA libraries
        return False, f"CuPy is not usable: {e}"
    return True, ""


def is_available() -> bool:
    return _probe()[0]


def unavailable_reason() -> str:
    return _probe()[1]


def device_count() -> int:
    from . import _C

    return _C.cuda.device_count()


def get_device_capability(index: int = 0) -> tuple[int, int]:
    from . import _C

    cc = _C.cuda.device_capability(index)
    return (cc // 10, cc % 10) if cc >= 0 else (0, 0)


def synchronize():
    if is_available():
        import cupy

        cupy.cuda.get_current_stream().synchronize()
