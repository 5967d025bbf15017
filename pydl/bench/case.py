"""What every `pydl bench ops` suite yields: a Case (pydl's call and PyTorch's on the same
memory, with the work it does), and the agreement test applied before any timing."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

# Relative error (Frobenius) at which pydl's output counts as wrong, per dtype.
TOLERANCE = {"float64": 1e-9, "float32": 1e-4, "float16": 1e-2, "bfloat16": 3e-2}


@dataclass
class Case:
    op: str
    dtype: str
    shape: str
    pydl_fn: Callable
    torch_fn: Callable
    flops: float = 0.0  # 0 for memory-bound ops
    nbytes: float = 0.0  # bytes the op must move at least
    outputs: Callable = None  # () -> (pydl output as torch tensor, torch output)
    extra: dict = field(default_factory=dict)  # notes kept with the row (e.g. PyTorch's kernel)
    unsupported: str = ""  # why the backend cannot run it (reported, neither checked nor timed)


def views(device):
    """(torch tensor -> backend array, backend array -> torch tensor), both zero-copy."""
    from ..ops._interop import from_backend, to_backend

    return (lambda t: to_backend(t, "bench", "x")[0]), (lambda a: from_backend(a, "torch"))


def missing(backend, *names) -> str:
    """The reason a backend cannot run a case, or "" when it has every kernel in names."""
    lacking = [n for n in names if not hasattr(backend, n)]
    return f"the {backend.name} backend has no {', '.join(lacking)}" if lacking else ""


def rel_error(got, want) -> float:
    g, w = got.double(), want.double()
    denom = float(w.norm()) or 1.0
    err = float((g - w).norm()) / denom
    return float("inf") if np.isnan(err) else err
