"""scikit-learn's bundled 8x8 handwritten digits (1,797 images, 10 classes)."""
from __future__ import annotations

import numpy as np


def load_digits(test_fraction: float = 0.2, seed: int = 0, flatten: bool = True):
    """Returns (x_train, y_train, x_test, y_test) as NumPy arrays: pixels scaled
    to [0, 1] float32 (N, 64) or (N, 1, 8, 8), labels int64; a seeded split."""
    from sklearn.datasets import load_digits as _load

    d = _load()
    x = (d.data / 16.0).astype(np.float32)
    y = d.target.astype(np.int64)
    order = np.random.default_rng(seed).permutation(len(x))
    n_test = int(round(len(x) * test_fraction))
    test, train = order[:n_test], order[n_test:]
    if not flatten:
        x = x.reshape(-1, 1, 8, 8)
    return x[train], y[train], x[test], y[test]
