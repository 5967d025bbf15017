"""Your own data for the recipes, from plain files (NumPy .npz read without pickle, or
UTF-8 text), each format checked up front with errors that name the file and the problem.

- images (`pydl train mlp|cnn|resnet|gan|diffusion --data FILE.npz`): `x`, images
  (N, H, W) or (N, C, H, W), uint8 0..255 or floats in [0, 1]; `y`, int class labels (N,)
  for the classifiers; optionally `x_test` and `y_test`, else a seeded split.
- graphs (`pydl train gnn --data FILE.npz`): `edges` int node pairs (E, 2) or (2, E),
  taken as undirected; `x` node features (N, F); `y` int labels (N,); optionally
  `train_mask` (N,) bool, else 10% of the nodes of each class (at least one) are labelled.
- sequence pairs (`pydl train transformer --data FILE.txt`): one `source<TAB>target` pair
  per line, tokenised by characters.
"""
from __future__ import annotations

import numpy as np


def _npz(path: str, what: str) -> dict:
    try:
        with np.load(path, allow_pickle=False) as f:
            return {k: f[k] for k in f.files}
    except (OSError, ValueError) as e:
        raise ValueError(f"{what}: cannot read {path!r} as a NumPy .npz file ({e})") from None


def _labels(y, n: int, path: str, what: str, name: str = "y") -> np.ndarray:
    y = np.asarray(y)
    if y.shape != (n,) or y.dtype.kind not in "iu":
        raise ValueError(f"{what}: {path!r}: {name} must be integer labels of shape ({n},), got "
                         f"{y.dtype} {y.shape}")
    if n and y.min() < 0:
        raise ValueError(f"{what}: {path!r}: {name} has negative labels")
    return y.astype(np.int64)


def _images(x, path: str, name: str = "x") -> np.ndarray:
    x = np.asarray(x)
    if x.ndim == 3:
        x = x[:, None]
    if x.ndim != 4 or x.shape[0] == 0:
        raise ValueError(f"load_images: {path!r}: {name} must be images (N, H, W) or "
                         f"(N, C, H, W), got shape {x.shape}")
    if x.dtype == np.uint8:
        return (x / 255.0).astype(np.float32)
    if x.dtype.kind != "f":
        raise ValueError(f"load_images: {path!r}: {name} must be uint8 or float, got {x.dtype}")
    x = x.astype(np.float32)
    if not np.isfinite(x).all() or x.min() < 0.0 or x.max() > 1.0:
        raise ValueError(f"load_images: {path!r}: float {name} must lie in [0, 1]")
    return x


def load_images(path: str, test_fraction: float = 0.2, seed: int = 0, flatten: bool = False,
                labels: bool = True):
    """(x_train, y_train, x_test, y_test) like load_digits: float32 pixels in [0, 1],
    (N, C, H, W) or flattened (N, C*H*W); labels int64 (None when labels=False)."""
    d = _npz(path, "load_images")
    if "x" not in d:
        raise ValueError(f"load_images: {path!r} has no array 'x' (has {sorted(d)})")
    x = _images(d["x"], path)
    y = None
    if labels:
        if "y" not in d:
            raise ValueError(f"load_images: {path!r} has no labels 'y'")
        y = _labels(d["y"], len(x), path, "load_images")
    if "x_test" in d:
        xt = _images(d["x_test"], path, "x_test")
        if xt.shape[1:] != x.shape[1:]:
            raise ValueError(f"load_images: {path!r}: x_test images are {xt.shape[1:]}, x are "
                             f"{x.shape[1:]}")
        yt = _labels(d["y_test"], len(xt), path, "load_images", "y_test") if labels else None
    else:
        order = np.random.default_rng(seed).permutation(len(x))
        n_test = int(round(len(x) * test_fraction))
        test, order = order[:n_test], order[n_test:]
        xt, yt = x[test], None if y is None else y[test]
        x, y = x[order], None if y is None else y[order]
    if flatten:
        x, xt = x.reshape(len(x), -1), xt.reshape(len(xt), -1)
    return x, y, xt, yt


def load_graph(path: str, seed: int = 0) -> dict:
    """A graph in the format of pydl.data.graphs' loaders: edge_index (2, E) with both
    directions, x, y, num_classes, train_mask, test_mask."""
    d = _npz(path, "load_graph")
    missing = {"edges", "x", "y"} - set(d)
    if missing:
        raise ValueError(f"load_graph: {path!r} lacks {sorted(missing)}")
    x = np.asarray(d["x"])
    if x.ndim != 2 or x.dtype.kind != "f":
        raise ValueError(f"load_graph: {path!r}: x must be float features (N, F), got "
                         f"{x.dtype} {x.shape}")
    n = len(x)
    y = _labels(d["y"], n, path, "load_graph")
    e = np.asarray(d["edges"])
    if e.ndim == 2 and e.shape[1] == 2 and e.shape[0] != 2:
        e = e.T
    if e.ndim != 2 or e.shape[0] != 2 or e.dtype.kind not in "iu":
        raise ValueError(f"load_graph: {path!r}: edges must be int pairs (E, 2) or (2, E), got "
                         f"{e.dtype} {e.shape}")
    if e.size and (e.min() < 0 or e.max() >= n):
        raise ValueError(f"load_graph: {path!r}: edges name nodes outside 0..{n - 1}")
    e = e.astype(np.int64)
    edge_index = np.unique(np.concatenate([e, e[::-1]], axis=1), axis=1)
    if "train_mask" in d:
        train = np.asarray(d["train_mask"]).astype(bool)
        if train.shape != (n,):
            raise ValueError(f"load_graph: {path!r}: train_mask must have shape ({n},)")
    else:
        rng = np.random.default_rng(seed)
        train = np.zeros(n, bool)
        for c in np.unique(y):
            nodes = np.flatnonzero(y == c)
            train[rng.choice(nodes, max(1, len(nodes) // 10), replace=False)] = True
    return {"edge_index": edge_index, "x": x.astype(np.float32), "y": y,
            "num_classes": int(y.max()) + 1, "train_mask": train, "test_mask": ~train}


def load_pairs(path: str, test_fraction: float = 0.1, seed: int = 0):
    """(src, tgt, test_src, test_tgt, vocab) like the transformer recipe's synthetic task:
    tokens PAD=0, BOS=1, EOS=2, then the characters of the file; src padded to the longest
    source, tgt = BOS, target, EOS, padded."""
    from .synthetic import BOS, EOS, PAD

    try:
        with open(path, encoding="utf-8") as f:
            lines = [ln.rstrip("\n") for ln in f if ln.strip()]
    except (OSError, UnicodeDecodeError) as e:
        raise ValueError(f"load_pairs: cannot read {path!r} as UTF-8 text ({e})") from None
    pairs = []
    for i, ln in enumerate(lines, 1):
        parts = ln.split("\t")
        if len(parts) != 2 or not parts[0] or not parts[1]:
            raise ValueError(f"load_pairs: {path!r} line {i}: expected 'source<TAB>target'")
        pairs.append(parts)
    if len(pairs) < 2:
        raise ValueError(f"load_pairs: {path!r} needs at least two pairs, has {len(pairs)}")
    chars = sorted({c for s, t in pairs for c in s + t})
    vocab = ["<pad>", "<bos>", "<eos>"] + chars
    ids = {c: i + 3 for i, c in enumerate(chars)}
    ls, lt = max(len(s) for s, _ in pairs), max(len(t) for _, t in pairs)
    src = np.full((len(pairs), ls), PAD, np.int64)
    tgt = np.full((len(pairs), lt + 2), PAD, np.int64)
    for i, (s, t) in enumerate(pairs):
        src[i, :len(s)] = [ids[c] for c in s]
        tgt[i, 0], tgt[i, len(t) + 1] = BOS, EOS
        tgt[i, 1:len(t) + 1] = [ids[c] for c in t]
    order = np.random.default_rng(seed).permutation(len(pairs))
    n_test = max(1, int(round(len(pairs) * test_fraction)))
    test, train = order[:n_test], order[n_test:]
    return src[train], tgt[train], src[test], tgt[test], vocab
