"""Exceptions pydl raises beyond Python's own."""
from __future__ import annotations

import sys
import traceback


class DeviceError(RuntimeError):
    """Tensors on different devices were mixed, or a device is unavailable."""


class OutOfMemoryError(MemoryError):
    """An op could not allocate memory for its result or workspace.

    On the GPU, CuPy's cached free blocks are released before this is raised, so
    catching it and retrying with a smaller batch can succeed. `op` names the op,
    `nbytes` the request that failed (None when the allocator did not say)."""

    def __init__(self, op: str, nbytes: int | None, device: str, detail: str = ""):
        self.op, self.nbytes, self.device = op, nbytes, device
        size = "an unknown size" if nbytes is None else f"{nbytes:,} bytes ({_human(nbytes)})"
        super().__init__(f"{op}: out of {device} memory allocating {size}"
                         + (f": {detail}" if detail else ""))


def _human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024:
            return f"{n:.4g} {unit}"
        n /= 1024
    return f"{n:.4g} TiB"


def _is_cupy_oom(exc: BaseException) -> bool:
    # By module and name, so that no import of CuPy is needed to recognise it.
    cls = type(exc)
    return cls.__name__ == "OutOfMemoryError" and cls.__module__.split(".")[0] == "cupy"


def out_of_memory(op: str, exc: MemoryError, nbytes: int | None = None) -> OutOfMemoryError:
    """pydl's OutOfMemoryError for an allocator's MemoryError inside `op` (NumPy's, CuPy's,
    a C++ std::bad_alloc). The finished frames of exc's traceback drop their locals (the
    failed op's temporaries would otherwise live as long as the caller holds the error, in
    the very except block that retries), then for CuPy the pool's cached blocks are freed,
    so the memory is really there for a retry. The failed request's size comes from the
    exception when the allocator records it."""
    if isinstance(exc, OutOfMemoryError):
        return exc
    traceback.clear_frames(exc.__traceback__)
    device = "cpu"
    if _is_cupy_oom(exc):
        device = "cuda"
        cupy = sys.modules.get("cupy")
        if cupy is not None:
            cupy.get_default_memory_pool().free_all_blocks()
        nbytes = getattr(exc, "_size", nbytes)
    elif nbytes is None and hasattr(exc, "_total_size"):  # NumPy's _ArrayMemoryError
        nbytes = int(exc._total_size)
    return OutOfMemoryError(op, nbytes, device, str(exc))
