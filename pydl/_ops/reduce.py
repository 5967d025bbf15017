"""Reductions over dimensions: sum, mean, max/min (values and indices), var,
logsumexp."""
from __future__ import annotations

from ..autograd.function import Function


def normalize_dims(dim, ndim, op="reduction"):
    """Tuple of non-negative dims (all dims when dim is None); IndexError if out of range."""
    if dim is None:
        return tuple(range(ndim))
    if not isinstance(dim, (int, tuple, list)):
        raise TypeError(f"{op}: dim must be an int or tuple of ints, got {dim!r}")
    dims = (dim,) if isinstance(dim, int) else tuple(dim)
    out = []
    for d in dims:
        if not isinstance(d, int):
            raise TypeError(f"{op}: dim must be an int or tuple of ints, got {d!r}")
        lim = max(ndim, 1)
        if not -lim <= d < lim:
            raise IndexError(f"{op}: dim {d} is out of range for a tensor with {ndim} dimensions")
        out.append(d % lim if ndim else 0)
    return tuple(sorted(set(out)))


def _expand_back(g, shape, dims, keepdim):
    """Reshape a reduced gradient so it broadcasts against the input shape."""
    if not keepdim and shape:
        g = g.reshape([1 if i in dims else s for i, s in enumerate(shape)])
    return g


class Sum(Function):
    @staticmethod
    def forward(ctx, a, dim=None, keepdim=False):
        dims = normalize_dims(dim, a.ndim, "sum")
        ctx.shape, ctx.dims, ctx.keepdim = a.shape, dims, keepdim
        out = a.sum(axis=dims if a.ndim else None, keepdims=keepdim)
        return ctx.backend.xp.asarray(out, dtype=out.dtype)

    @staticmethod
    def backward(ctx, g):
        g = _expand_back(g, ctx.shape, ctx.dims, ctx.keepdim)
        return ctx.backend.xp.broadcast_to(g, ctx.shape)


class Mean(Function):
    @staticmethod
    def forward(ctx, a, dim=None, keepdim=False):
        dims = normalize_dims(dim, a.ndim, "mean")
        ctx.shape, ctx.dims, ctx.keepdim = a.shape, dims, keepdim
        n = 1
        for d in dims:
            n *= a.shape[d] if a.ndim else 1
        ctx.n = n
        out = a.mean(axis=dims if a.ndim else None, keepdims=keepdim)
        return ctx.backend.xp.asarray(out, dtype=a.dtype)

    @staticmethod
    def backward(ctx, g):
        g = _expand_back(g, ctx.shape, ctx.dims, ctx.keepdim) / ctx.n
        return ctx.backend.xp.broadcast_to(g, ctx.shape)


class Var(Function):
    @staticmethod
    def forward(ctx, a, dim=None, correction=1, keepdim=False):
        xp = ctx.backend.xp
        dims = normalize_dims(dim, a.ndim, "var")
        n = 1
        for d in dims:
            n *= a.shape[d] if a.ndim else 1
        mu = a.mean(axis=dims, keepdims=True)
        diff = a - mu
        ctx.save_for_backward(diff)
        ctx.shape, ctx.dims, ctx.keepdim, ctx.denom = a.shape, dims, keepdim, max(n - correction, 0)
        out = (diff * diff).sum(axis=dims, keepdims=keepdim) / ctx.denom if ctx.denom else \
            xp.full((diff * diff).sum(axis=dims, keepdims=keepdim).shape, xp.nan, a.dtype)
        return xp.asarray(out, dtype=a.dtype)

    @staticmethod
    def backward(ctx, g):
        (diff,) = ctx.saved_tensors
        g = _expand_back(g, ctx.shape, ctx.dims, ctx.keepdim)
        return g * diff * (2.0 / ctx.denom) if ctx.denom else g * diff * float("nan")


class MaxMin(Function):
    """max/min along one dim: (values, indices). Gradient flows to the chosen element."""

    non_differentiable_outputs = (1,)

    @staticmethod
    def forward(ctx, a, dim, keepdim=False, is_max=True):
        xp = ctx.backend.xp
        (d,) = normalize_dims(dim, a.ndim, "max" if is_max else "min")
        if a.ndim and a.shape[d] == 0:
            raise IndexError(f"{'max' if is_max else 'min'}: cannot reduce over an empty dimension")
        idx = (xp.argmax if is_max else xp.argmin)(a, axis=d if a.ndim else None)
        idx = xp.asarray(idx)
        if a.ndim:
            vals = xp.take_along_axis(a, xp.expand_dims(idx, d), axis=d)
        else:
            vals = a
        ctx.shape, ctx.dim, ctx.keepdim = a.shape, d, keepdim
        ctx.save_for_backward(xp.expand_dims(idx, d) if a.ndim else idx)
        if not keepdim and a.ndim:
            vals = vals.squeeze(d)
        elif keepdim and a.ndim:
            idx = xp.expand_dims(idx, d)
        return vals, idx.astype(xp.int64)

    @staticmethod
    def backward(ctx, g, _gi):
        xp = ctx.backend.xp
        (idx,) = ctx.saved_tensors
        if not ctx.shape:
            return g
        if not ctx.keepdim:
            g = xp.expand_dims(g, ctx.dim)
        out = xp.zeros(ctx.shape, g.dtype)
        xp.put_along_axis(out, idx, g, axis=ctx.dim)
        return out


class MaxAll(Function):
    """max/min over all elements; ties share the gradient evenly, like PyTorch."""

    @staticmethod
    def forward(ctx, a, is_max=True):
        if a.size == 0:
            raise RuntimeError(f"{'max' if is_max else 'min'}: the input tensor is empty; "
                               "pass dim to reduce an empty tensor")
        out = a.max() if is_max else a.min()
        ctx.save_for_backward(a, out)
        return ctx.backend.xp.asarray(out, dtype=a.dtype)

    @staticmethod
    def backward(ctx, g):
        a, out = ctx.saved_tensors
        mask = a == out
        return mask * (g / mask.sum())


class LogSumExp(Function):
    @staticmethod
    def forward(ctx, a, dim, keepdim=False):
        xp = ctx.backend.xp
        dims = normalize_dims(dim, a.ndim, "logsumexp")
        m = a.max(axis=dims, keepdims=True)
        m = xp.where(xp.isfinite(m), m, 0)
        s = xp.log(xp.exp(a - m).sum(axis=dims, keepdims=True)) + m
        ctx.save_for_backward(a, s)
        ctx.shape, ctx.dims, ctx.keepdim = a.shape, dims, keepdim
        return s if keepdim else s.squeeze(dims)

    @staticmethod
    def backward(ctx, g):
        a, s = ctx.saved_tensors
        g = _expand_back(g, ctx.shape, ctx.dims, ctx.keepdim)
        return g * ctx.backend.xp.exp(a - s)


def argmax(a, dim=None, keepdim=False, is_max=True):
    """Indices only; no gradient (a plain function over arrays)."""
    from .. import backend

    xp = backend.of_array(a).xp
    f = xp.argmax if is_max else xp.argmin
    if dim is None:
        out = xp.asarray(f(a))
        return out.reshape([1] * a.ndim) if keepdim else out
    (d,) = normalize_dims(dim, a.ndim, "argmax" if is_max else "argmin")
    out = f(a, axis=d)
    return xp.expand_dims(out, d) if keepdim else out
