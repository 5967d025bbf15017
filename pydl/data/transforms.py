"""Sample transforms for datasets (TensorDataset(..., transform=...)): functions of a
sample that return a sample, composed left to right."""
from __future__ import annotations

import numpy as np


class Compose:
    def __init__(self, transforms):
        self.transforms = list(transforms)

    def __call__(self, x):
        for t in self.transforms:
            x = t(x)
        return x


class Lambda:
    def __init__(self, fn):
        if not callable(fn):
            raise TypeError(f"Lambda: expected a callable, got {type(fn).__name__}")
        self.fn = fn

    def __call__(self, x):
        return self.fn(x)


class Normalize:
    """(x - mean) / std on an array (or on field `field` of a tuple sample)."""

    def __init__(self, mean, std, field=None):
        if np.any(np.asarray(std) == 0):
            raise ValueError("Normalize: std must be nonzero")
        self.mean, self.std, self.field = mean, std, field

    def _one(self, x):
        x = np.asarray(x)
        dtype = x.dtype if x.dtype.kind == "f" else np.float32
        return ((x - self.mean) / self.std).astype(dtype)

    def __call__(self, x):
        if self.field is None:
            return self._one(x)
        x = list(x)
        x[self.field] = self._one(x[self.field])
        return tuple(x)


class AddNoise:
    """Adds Gaussian noise of std `std` drawn from a seeded generator (augmentation)."""

    def __init__(self, std: float, seed: int = 0, field=None):
        self.std, self.field = std, field
        self.rng = np.random.default_rng(seed)

    def _one(self, x):
        x = np.asarray(x)
        return (x + self.rng.normal(0.0, self.std, x.shape)).astype(x.dtype)

    def __call__(self, x):
        if self.field is None:
            return self._one(x)
        x = list(x)
        x[self.field] = self._one(x[self.field])
        return tuple(x)
