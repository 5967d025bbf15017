"""Matrix products: matmul (batched, NumPy broadcasting) and linear."""
from __future__ import annotations

from ..autograd.function import Function, unbroadcast


def _swap(a):
    return a.swapaxes(-1, -2)


class Matmul(Function):
    @staticmethod
    def forward(ctx, a, b):
        if a.ndim == 0 or b.ndim == 0:
            raise ValueError("matmul: both arguments need at least one dimension")
        if a.dtype != b.dtype:
            raise TypeError(f"matmul: expected both operands to have the same dtype, "
                            f"got {a.dtype} and {b.dtype}")
        a1 = a[None, :] if a.ndim == 1 else a
        b1 = b[:, None] if b.ndim == 1 else b
        if a1.shape[-1] != b1.shape[-2]:
            raise ValueError(f"matmul: shapes {tuple(a.shape)} and {tuple(b.shape)} cannot be "
                             f"multiplied ({a1.shape[-1]} != {b1.shape[-2]})")
        try:
            out = ctx.backend.matmul(a1, b1)
        except ValueError:
            raise ValueError(f"matmul: batch dimensions of {tuple(a.shape)} and {tuple(b.shape)} "
                             "do not broadcast") from None
        ctx.save_for_backward(a1, b1)
        ctx.a_shape, ctx.b_shape, ctx.out_shape = a.shape, b.shape, out.shape
        if a.ndim == 1:
            out = out.squeeze(-2)
        if b.ndim == 1:
            out = out.squeeze(-1)
        return out

    @staticmethod
    def backward(ctx, g):
        a1, b1 = ctx.saved_tensors
        g = g.reshape(ctx.out_shape)
        mm = ctx.backend.matmul
        da = db = None
        if ctx.needs_input_grad[0]:
            da = unbroadcast(mm(g, _swap(b1)), a1.shape).reshape(ctx.a_shape)
        if ctx.needs_input_grad[1]:
            db = unbroadcast(mm(_swap(a1), g), b1.shape).reshape(ctx.b_shape)
        return da, db


class Linear(Function):
    """y = x @ weight.T + bias over the last dimension of x."""

    @staticmethod
    def forward(ctx, x, weight, bias=None):
        if x.ndim == 0 or weight.ndim != 2 or x.shape[-1] != weight.shape[1]:
            raise ValueError(f"linear: input of shape {tuple(x.shape)} does not match weight of "
                             f"shape {tuple(weight.shape)} (expected last dim {weight.shape[1] if weight.ndim == 2 else '?'})")
        if x.dtype != weight.dtype or (bias is not None and bias.dtype != x.dtype):
            raise TypeError(f"linear: input, weight and bias must share a dtype, got {x.dtype}, "
                            f"{weight.dtype}" + (f" and {bias.dtype}" if bias is not None else ""))
        if bias is not None and bias.shape != (weight.shape[0],):
            raise ValueError(f"linear: bias has shape {tuple(bias.shape)}, expected ({weight.shape[0]},)")
        ctx.save_for_backward(x, weight)
        ctx.has_bias = bias is not None
        return ctx.backend.linear(x, weight, bias)

    @staticmethod
    def backward(ctx, g):
        x, w = ctx.saved_tensors
        mm = ctx.backend.matmul
        g2 = g.reshape(-1, g.shape[-1])
        dx = mm(g, w) if ctx.needs_input_grad[0] else None
        dw = mm(_swap(g2), x.reshape(-1, x.shape[-1])) if ctx.needs_input_grad[1] else None
        db = g2.sum(axis=0) if ctx.has_bias and ctx.needs_input_grad[2] else None
        return dx, dw, db
