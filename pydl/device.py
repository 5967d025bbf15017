"""Devices: "cpu" (NumPy storage) and "cuda" (CuPy storage)."""
from __future__ import annotations

from .errors import DeviceError


class device:  # noqa: N801  (torch.device)
    """A device name with an optional index, compared equal to its string form."""

    __slots__ = ("type", "index")

    def __init__(self, spec="cpu", index=None):
        if isinstance(spec, device):
            self.type, self.index = spec.type, spec.index
            return
        if not isinstance(spec, str):
            raise TypeError(f"device must be a string like 'cpu' or 'cuda', got {spec!r}")
        name, _, idx = spec.partition(":")
        if name not in ("cpu", "cuda"):
            raise DeviceError(f"unknown device {spec!r}; expected 'cpu' or 'cuda'")
        self.type = name
        self.index = int(idx) if idx else index
        if name == "cuda" and self.index not in (None, 0):
            raise DeviceError(f"device {spec!r}: pydl uses one GPU, cuda:0")

    def __str__(self):
        return self.type if self.index is None or self.type == "cpu" else f"{self.type}:{self.index}"

    def __repr__(self):
        return f"device(type='{self.type}')"

    def __eq__(self, other):
        if isinstance(other, str):
            try:
                other = device(other)
            except (DeviceError, ValueError):
                return False
        return isinstance(other, device) and other.type == self.type

    def __hash__(self):
        return hash(self.type)


def as_device(spec) -> device:
    if spec is None:
        from . import _config

        spec = _config.DEVICE
    d = spec if isinstance(spec, device) else device(spec)
    if d.type == "cuda":
        from . import cuda

        if not cuda.is_available():
            raise DeviceError("CUDA device requested but no GPU is available "
                              f"({cuda.unavailable_reason()})")
    return d
