"""Dataset, TensorDataset and DataLoader with PyTorch's interface: map-style
datasets, seeded shuffling, drop_last, a collate function, batches as pydl
tensors on the device asked for."""
from __future__ import annotations

import numbers

import numpy as np

from ..tensor import Tensor, tensor


class Dataset:
    """A map-style dataset: __getitem__(i) and __len__."""

    def __getitem__(self, index):
        raise NotImplementedError

    def __len__(self):
        raise NotImplementedError


def _as_numpy(a):
    if isinstance(a, Tensor):
        return a.detach().cpu().numpy()
    return np.asarray(a)


class TensorDataset(Dataset):
    """Rows of equally long arrays (NumPy arrays or pydl tensors): item i is the
    tuple of every array's row i, passed through `transform` when given."""

    def __init__(self, *arrays, transform=None):
        if not arrays:
            raise ValueError("TensorDataset: expected at least one array")
        self.arrays = [_as_numpy(a) for a in arrays]
        n = len(self.arrays[0]) if self.arrays[0].ndim else 0
        for i, a in enumerate(self.arrays):
            if a.ndim == 0 or len(a) != n:
                raise ValueError(f"TensorDataset: array {i} has {len(a) if a.ndim else 0} rows, "
                                 f"array 0 has {n}")
        self.transform = transform

    def __len__(self):
        return len(self.arrays[0])

    def __getitem__(self, index):
        item = tuple(a[index] for a in self.arrays)
        return self.transform(item) if self.transform is not None else item

    def getitems(self, indices):
        """A whole batch at once (one fancy index per array): the loader's fast path."""
        if self.transform is not None:
            return default_collate([self[i] for i in indices])
        return tuple(a[indices] for a in self.arrays)


def default_collate(items):
    """Stacks a list of samples: arrays, numbers and tensors become one array per field;
    tuples, lists and dicts are collated field by field; strings stay lists."""
    first = items[0]
    if isinstance(first, dict):
        return {k: default_collate([it[k] for it in items]) for k in first}
    if isinstance(first, (tuple, list)):
        if any(len(it) != len(first) for it in items):
            raise ValueError("default_collate: samples have different numbers of fields")
        fields = [default_collate(list(f)) for f in zip(*items)]
        return fields if isinstance(first, list) else tuple(fields)
    if isinstance(first, str):
        return list(items)
    if isinstance(first, (Tensor, np.ndarray, numbers.Number, np.generic)):
        arrs = [_as_numpy(it) for it in items]
        if any(a.shape != arrs[0].shape for a in arrs):
            raise ValueError(f"default_collate: samples have different shapes "
                             f"{sorted({a.shape for a in arrs})}; pass a collate_fn that pads")
        return np.stack(arrs)
    raise TypeError(f"default_collate: cannot batch samples of type {type(first).__name__}")


def _to_device(batch, device):
    if isinstance(batch, dict):
        return {k: _to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, tuple):
        return tuple(_to_device(v, device) for v in batch)
    if isinstance(batch, list):
        return [_to_device(v, device) for v in batch]
    if isinstance(batch, np.ndarray) and batch.dtype.kind in "biuf":
        return tensor(batch, device=device or "cpu")
    if isinstance(batch, Tensor):
        return batch if device is None else batch.to(device)
    return batch


class DataLoader:
    """Iterates over `dataset` in batches of `batch_size`.

    shuffle: a new order each epoch from `generator` (a NumPy Generator) or, when
    none is given, from a generator seeded with `seed` (the same orders on every run).
    collate_fn(list of samples) -> batch; the default stacks fields. Batches come
    back as pydl tensors on `device` (NumPy arrays from collate become tensors;
    pass as_numpy=True to keep NumPy arrays)."""

    def __init__(self, dataset, batch_size: int = 1, shuffle: bool = False, drop_last: bool = False,
                 collate_fn=None, generator=None, seed: int = 0, device=None,
                 as_numpy: bool = False):
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
            raise ValueError(f"DataLoader: batch_size must be a positive integer, got {batch_size!r}")
        if not hasattr(dataset, "__len__") or not hasattr(dataset, "__getitem__"):
            raise TypeError("DataLoader: dataset must define __len__ and __getitem__")
        if generator is not None and not isinstance(generator, np.random.Generator):
            raise TypeError("DataLoader: generator must be a numpy.random.Generator")
        self.dataset = dataset
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.collate_fn = collate_fn
        self.generator = generator if generator is not None else np.random.default_rng(seed)
        self.device = device
        self.as_numpy = as_numpy

    def __len__(self):
        n = len(self.dataset)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def _order(self):
        n = len(self.dataset)
        return self.generator.permutation(n) if self.shuffle else np.arange(n)

    def __iter__(self):
        order = self._order()
        stop = len(self) * self.batch_size
        for i in range(0, min(stop, len(order)), self.batch_size):
            idx = order[i:i + self.batch_size]
            if self.collate_fn is None and hasattr(self.dataset, "getitems"):
                batch = self.dataset.getitems(idx)
            else:
                samples = [self.dataset[int(j)] for j in idx]
                batch = (self.collate_fn or default_collate)(samples)
            yield batch if self.as_numpy else _to_device(batch, self.device)
