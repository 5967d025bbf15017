"""GNN family: graph convolutional networks on a sparse edge list.

A GCN layer computes H' = A_hat (H W) + b with A_hat = D^-1/2 (A + I) D^-1/2, D the
degrees of A + I. A_hat is never built as an N x N matrix: it is the edge list (with a
self loop per node) and one weight per edge, and the product is a gather of source rows
and a scatter-add into destination rows (the backend's `index_add_rows`).
"""
from __future__ import annotations

import numpy as np

from .. import nn
from ..autograd.function import Function


def normalized_adjacency(edge_index, num_nodes: int):
    """(src, dst, weight) of D^-1/2 (A + I) D^-1/2 from a (2, E) edge list.

    Edges are taken as given (pass both directions for an undirected graph); a self loop
    is added to every node, existing ones dropped so none counts twice. Returns int64,
    int64 and float64 NumPy arrays.
    """
    e = np.asarray(edge_index)
    if e.ndim != 2 or e.shape[0] != 2:
        raise ValueError(f"normalized_adjacency: edge_index must have shape (2, E), got {e.shape}")
    if not np.issubdtype(e.dtype, np.integer):
        raise TypeError(f"normalized_adjacency: edge_index must hold integers, got {e.dtype}")
    if e.size and (e.min() < 0 or e.max() >= num_nodes):
        raise IndexError(f"normalized_adjacency: node index out of range [0, {num_nodes}): "
                         f"min {e.min()}, max {e.max()}")
    e = e[:, e[0] != e[1]].astype(np.int64)
    loops = np.arange(num_nodes, dtype=np.int64)
    src = np.concatenate([e[0], loops])
    dst = np.concatenate([e[1], loops])
    deg = np.bincount(dst, minlength=num_nodes).astype(np.float64)
    weight = 1.0 / np.sqrt(deg[src] * deg[dst])
    return src, dst, weight


class SparseAggregate(Function):
    """out[dst[e]] += weight[e] * x[src[e]] over the edges e; backward is the transpose:
    dx[src[e]] += weight[e] * dout[dst[e]]."""

    @staticmethod
    def forward(ctx, x, src, dst, weight, num_nodes):
        be = ctx.backend
        ctx.save_for_backward(src, dst, weight)
        ctx.x_rows = x.shape[0]
        out = be.xp.zeros((num_nodes,) + x.shape[1:], dtype=x.dtype)
        be.index_add_rows(out, dst, x[src] * weight[:, None].astype(x.dtype))
        return out

    @staticmethod
    def backward(ctx, g):
        src, dst, weight = ctx.saved_tensors
        be = ctx.backend
        dx = be.xp.zeros((ctx.x_rows,) + g.shape[1:], dtype=g.dtype)
        be.index_add_rows(dx, src, g[dst] * weight[:, None].astype(g.dtype))
        return dx, None, None, None, None


class Graph:
    """A graph's normalised adjacency as tensors on one device (built once, reused)."""

    def __init__(self, edge_index, num_nodes: int, device: str = "cpu"):
        from ..tensor import tensor

        src, dst, w = normalized_adjacency(edge_index, num_nodes)
        self.num_nodes = int(num_nodes)
        self.src = tensor(src, device=device)
        self.dst = tensor(dst, device=device)
        self.weight = tensor(w, device=device)

    def to(self, device: str) -> "Graph":
        g = Graph.__new__(Graph)
        g.num_nodes = self.num_nodes
        g.src, g.dst, g.weight = self.src.to(device), self.dst.to(device), self.weight.to(device)
        return g


def propagate(x, graph: Graph):
    """A_hat @ x for node features x (N, F) without forming A_hat."""
    if x.ndim != 2 or x.shape[0] != graph.num_nodes:
        raise ValueError(f"gcn propagate: expected node features of shape ({graph.num_nodes}, F), "
                         f"got {tuple(x.shape)}")
    if not x.is_floating_point():
        raise TypeError(f"gcn propagate: node features must be floating point, got {x.dtype}")
    return SparseAggregate.apply(x, graph.src, graph.dst, graph.weight, graph.num_nodes)


class GCNConv(nn.Module):
    """One graph convolution: A_hat (x W^T) + b."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.linear = nn.Linear(in_features, out_features, bias=False)
        from ..tensor import zeros

        self.bias = nn.Parameter(zeros(out_features)) if bias else None

    def forward(self, x, graph: Graph):
        h = propagate(self.linear(x), graph)
        return h + self.bias if self.bias is not None else h


class GCN(nn.Module):
    """A node classifier: GCN layers with ReLU and dropout between them; logits per node."""

    def __init__(self, in_features: int, hidden: tuple = (16,), num_classes: int = 2,
                 dropout: float = 0.5):
        super().__init__()
        widths = [in_features, *hidden, num_classes]
        self.convs = nn.ModuleList([GCNConv(a, b) for a, b in zip(widths[:-1], widths[1:])])
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()

    def forward(self, x, graph: Graph):
        for i, conv in enumerate(self.convs):
            x = conv(self.dropout(x), graph)
            if i < len(self.convs) - 1:
                x = x.relu()
        return x
