"""Shape ops: reshape, permute, expand, indexing, concatenation, padding."""
from __future__ import annotations

from ..autograd.function import Function


class Reshape(Function):
    @staticmethod
    def forward(ctx, a, shape):
        ctx.shape = a.shape
        try:
            if any(s < -1 for s in shape):  # NumPy takes any negative size for -1
                raise ValueError
            return a.reshape(shape)
        except ValueError:
            raise RuntimeError(f"reshape: shape {tuple(shape)} is invalid for an input of shape "
                               f"{tuple(a.shape)} ({a.size} elements)") from None

    @staticmethod
    def backward(ctx, g):
        return g.reshape(ctx.shape)


class Permute(Function):
    @staticmethod
    def forward(ctx, a, dims):
        ctx.inverse = tuple(sorted(range(len(dims)), key=lambda i: dims[i]))
        return a.transpose(dims)

    @staticmethod
    def backward(ctx, g):
        return g.transpose(ctx.inverse)


class Expand(Function):
    @staticmethod
    def forward(ctx, a, shape):
        return ctx.backend.xp.broadcast_to(a, shape)

    @staticmethod
    def backward(ctx, g):
        return g  # the engine sums the broadcast dims back


class Contiguous(Function):
    @staticmethod
    def forward(ctx, a):
        return ctx.backend.xp.ascontiguousarray(a)

    @staticmethod
    def backward(ctx, g):
        return g


class Clone(Function):
    @staticmethod
    def forward(ctx, a):
        return a.copy()

    @staticmethod
    def backward(ctx, g):
        return g


def _is_basic(index) -> bool:
    items = index if isinstance(index, tuple) else (index,)
    return all(i is None or i is Ellipsis or isinstance(i, (int, slice)) for i in items)


class GetItem(Function):
    @staticmethod
    def forward(ctx, a, index):
        ctx.shape, ctx.dtype, ctx.index = a.shape, a.dtype, index
        try:
            out = a[index]
        except IndexError as e:
            raise IndexError(f"indexing: {e}") from None
        return ctx.backend.xp.asarray(out)

    @staticmethod
    def backward(ctx, g):
        out = ctx.backend.xp.zeros(ctx.shape, g.dtype)
        if _is_basic(ctx.index):
            out[ctx.index] = g
        else:
            ctx.backend.index_add_at(out, ctx.index, g)
        return out


class Cat(Function):
    @staticmethod
    def forward(ctx, *arrays, dim=0):
        ctx.sizes = [a.shape[dim] for a in arrays]
        ctx.dim = dim
        return ctx.backend.xp.concatenate(arrays, axis=dim)

    @staticmethod
    def backward(ctx, g):
        xp = ctx.backend.xp
        bounds, acc = [], 0
        for s in ctx.sizes[:-1]:
            acc += s
            bounds.append(acc)
        return tuple(xp.split(g, bounds, axis=ctx.dim))


class Stack(Function):
    @staticmethod
    def forward(ctx, *arrays, dim=0):
        ctx.dim = dim
        return ctx.backend.xp.stack(arrays, axis=dim)

    @staticmethod
    def backward(ctx, g):
        xp = ctx.backend.xp
        return tuple(xp.squeeze(p, axis=ctx.dim) for p in xp.split(g, g.shape[ctx.dim], axis=ctx.dim))


class Pad(Function):
    """Constant padding; pad = (last_lo, last_hi, second_last_lo, second_last_hi, ...)."""

    @staticmethod
    def forward(ctx, a, pad, value=0.0):
        if len(pad) % 2 or len(pad) // 2 > a.ndim:
            raise ValueError(f"pad: pad must have an even length of at most 2*ndim, got {pad}")
        width = [(0, 0)] * a.ndim
        for i in range(len(pad) // 2):
            lo, hi = pad[2 * i], pad[2 * i + 1]
            if lo < 0 or hi < 0:
                raise ValueError("pad: negative padding is not supported")
            width[a.ndim - 1 - i] = (lo, hi)
        ctx.slices = tuple(slice(lo, lo + s) for (lo, _), s in zip(width, a.shape))
        return ctx.backend.xp.pad(a, width, constant_values=value)

    @staticmethod
    def backward(ctx, g):
        return g[ctx.slices]


class MaskedFill(Function):
    @staticmethod
    def forward(ctx, a, mask, value):
        ctx.save_for_backward(mask)
        xp = ctx.backend.xp
        return xp.where(mask, xp.asarray(value, dtype=a.dtype), a)

    @staticmethod
    def backward(ctx, g):
        (mask,) = ctx.saved_tensors
        # where, not g * ~mask: a NaN/inf gradient at a filled position must not leak (0 * inf).
        return ctx.backend.xp.where(mask, 0, g).astype(g.dtype, copy=False), None
