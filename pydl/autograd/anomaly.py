"""`detect_anomaly()`: while active, every op's forward outputs and backward
gradients are checked, and the first NaN or inf raises an error naming the op."""
from __future__ import annotations

_enabled = False


def is_enabled() -> bool:
    return _enabled


class detect_anomaly:  # noqa: N801
    def __enter__(self):
        global _enabled
        self._prev, _enabled = _enabled, True
        return self

    def __exit__(self, *exc):
        global _enabled
        _enabled = self._prev
        return False


def _bad(a) -> bool:
    if a is None or not hasattr(a, "dtype") or a.dtype.kind not in "fV":
        return False
    from ..backend import of_array

    xp = of_array(a).xp
    return not bool(xp.isfinite(a.astype(xp.float32) if a.dtype.kind == "V" else a).all())


def check_forward(op: str, outputs):
    for o in outputs:
        if _bad(o):
            raise FloatingPointError(f"detect_anomaly: {op} produced NaN or inf in its forward output")


def check_backward(op: str, grads):
    for g in grads:
        if _bad(g):
            raise FloatingPointError(f"detect_anomaly: {op}.backward produced NaN or inf in a gradient")
