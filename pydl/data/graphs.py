"""Node-classification graphs built with networkx (nothing is downloaded).

Each loader returns a dict: `edge_index` (2, E) int64 with both directions of every
undirected edge, `x` (N, F) float32 node features, `y` (N,) int64 labels, and boolean
masks `train_mask` / `test_mask`.
"""
from __future__ import annotations

import numpy as np


def _edge_index(g) -> np.ndarray:
    e = np.array(list(g.edges()), dtype=np.int64).reshape(-1, 2).T
    return np.concatenate([e, e[::-1]], axis=1)


def karate_club() -> dict:
    """Zachary's karate club: 34 members, 78 friendships, two factions (the 'club'
    attribute). Features are one-hot node ids; one labelled node per faction (the two
    leaders, 0 and 33); every other node is a test node."""
    import networkx as nx

    g = nx.karate_club_graph()
    n = g.number_of_nodes()
    y = np.array([0 if g.nodes[i]["club"] == "Mr. Hi" else 1 for i in range(n)], dtype=np.int64)
    train = np.zeros(n, bool)
    train[[0, 33]] = True
    return {"edge_index": _edge_index(g), "x": np.eye(n, dtype=np.float32), "y": y,
            "train_mask": train, "test_mask": ~train, "num_classes": 2}


def stochastic_block_model(num_blocks: int = 4, block_size: int = 550, p_in: float = 0.02,
                           p_out: float = 0.002, num_features: int = 16, feature_signal: float = 0.5,
                           labels_per_class: int = 20, seed: int = 0) -> dict:
    """A stochastic block model (class = block) with noisy Gaussian node features whose
    mean depends weakly on the class, so the graph has to be used to classify well.
    `labels_per_class` nodes of each block are labelled; the rest are test nodes."""
    import networkx as nx

    if num_blocks < 2 or block_size < 1:
        raise ValueError("stochastic_block_model: need num_blocks >= 2 and block_size >= 1")
    sizes = [block_size] * num_blocks
    probs = [[p_in if i == j else p_out for j in range(num_blocks)] for i in range(num_blocks)]
    g = nx.stochastic_block_model(sizes, probs, seed=seed)
    n = g.number_of_nodes()
    y = np.repeat(np.arange(num_blocks, dtype=np.int64), block_size)
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((num_blocks, num_features)) * feature_signal
    x = (centers[y] + rng.standard_normal((n, num_features))).astype(np.float32)
    train = np.zeros(n, bool)
    for c in range(num_blocks):
        idx = np.flatnonzero(y == c)
        train[rng.choice(idx, labels_per_class, replace=False)] = True
    return {"edge_index": _edge_index(g), "x": x, "y": y, "train_mask": train, "test_mask": ~train,
            "num_classes": num_blocks}
