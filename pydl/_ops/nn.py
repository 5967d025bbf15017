"""Neural-network ops over the backend kernels: softmax, normalisation, losses,
dropout and embedding."""
from __future__ import annotations

import math

from .. import dtypes as dt
from ..autograd.function import Function
from .reduce import normalize_dims


def _last(a, dim, xp):
    """Move `dim` to the end, contiguous: the layout the row kernels take."""
    return xp.ascontiguousarray(xp.moveaxis(a, dim, -1)) if dim != a.ndim - 1 else xp.ascontiguousarray(a)


class Softmax(Function):
    @staticmethod
    def forward(ctx, x, dim=-1, log=False):
        xp = ctx.backend.xp
        if not dt.is_floating(x.dtype):
            raise TypeError(f"{'log_softmax' if log else 'softmax'}: input must be floating point, "
                            f"got {x.dtype}")
        if x.ndim == 0:
            x = x.reshape(1)
            ctx.scalar = True
            dim = 0
        else:
            ctx.scalar = False
            op = "log_softmax" if log else "softmax"
            if not isinstance(dim, int):  # normalize_dims would take None for all dims
                raise TypeError(f"{op}: dim must be an int, got {dim!r}")
            (dim,) = normalize_dims(dim, x.ndim, op)
        y = ctx.backend.softmax_forward(_last(x, dim, xp), log)
        ctx.dim, ctx.log = dim, log
        ctx.save_for_backward(y)
        y = xp.moveaxis(y, -1, dim)
        return y.reshape(()) if ctx.scalar else y

    @staticmethod
    def backward(ctx, g):
        xp = ctx.backend.xp
        (y,) = ctx.saved_tensors
        g = g.reshape(1) if ctx.scalar else g
        dx = ctx.backend.softmax_backward(y, _last(g, ctx.dim, xp), ctx.log)
        dx = xp.moveaxis(dx, -1, ctx.dim)
        return dx.reshape(()) if ctx.scalar else dx


def _norm_shape(op, x, normalized_shape):
    ns = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    if len(ns) == 0 or len(ns) > x.ndim or tuple(x.shape[x.ndim - len(ns):]) != ns:
        raise ValueError(f"{op}: normalized_shape {ns} does not match the trailing dimensions of "
                         f"an input of shape {tuple(x.shape)}")
    return ns


class LayerNorm(Function):
    """layer_norm (rms=False) or rms_norm (rms=True) over the trailing normalized_shape."""

    @staticmethod
    def forward(ctx, x, weight, bias, normalized_shape, eps=1e-5, rms=False):
        op = "rms_norm" if rms else "layer_norm"
        if not dt.is_floating(x.dtype):
            raise TypeError(f"{op}: input must be floating point, got {x.dtype}")
        ns = _norm_shape(op, x, normalized_shape)
        for name, p in (("weight", weight), ("bias", bias)):
            if p is not None and tuple(p.shape) != ns:
                raise ValueError(f"{op}: {name} has shape {tuple(p.shape)}, expected {ns}")
        cols = 1
        for s in ns:
            cols *= s
        rows = math.prod(x.shape[:x.ndim - len(ns)])  # not -1: NumPy can't infer it when cols is 0
        x2 = ctx.backend.xp.ascontiguousarray(x).reshape(rows, cols)
        w2 = None if weight is None else weight.reshape(cols)
        b2 = None if bias is None else bias.reshape(cols)
        y, mean, rstd = ctx.backend.layer_norm_forward(x2, w2, b2, eps, rms)
        ctx.save_for_backward(x2, w2, mean, rstd)
        ctx.rms, ctx.x_shape, ctx.ns = rms, x.shape, ns
        return y.reshape(x.shape)

    @staticmethod
    def backward(ctx, g):
        x2, w2, mean, rstd = ctx.saved_tensors
        need = ctx.needs_input_grad
        dx, dw, db = ctx.backend.layer_norm_backward(
            x2, w2, mean, rstd, ctx.backend.xp.ascontiguousarray(g).reshape(x2.shape), ctx.rms,
            need[1], len(need) > 2 and need[2])
        return (dx.reshape(ctx.x_shape), None if dw is None else dw.reshape(ctx.ns),
                None if db is None else db.reshape(ctx.ns))


def _class_last(op, logits, target, xp):
    """(N, C, d1, ...) logits and (N, d1, ...) targets -> (M, C) rows and (M,) targets."""
    if not dt.is_floating(logits.dtype):
        raise TypeError(f"{op}: input must be floating point, got {logits.dtype}")
    if target.dtype.kind not in "iu":
        raise TypeError(f"{op}: target must hold integer class indices (int64), got {target.dtype}")
    if logits.ndim == 1:
        if target.ndim != 0:
            raise ValueError(f"{op}: for 1-D input of shape {tuple(logits.shape)} the target must "
                             f"be a scalar, got shape {tuple(target.shape)}")
        return logits.reshape(1, logits.shape[0]), target.reshape(1).astype(xp.int64)
    if logits.ndim == 0:
        raise ValueError(f"{op}: input must have a class dimension")
    want = (logits.shape[0],) + tuple(logits.shape[2:])
    if tuple(target.shape) != want:
        raise ValueError(f"{op}: target has shape {tuple(target.shape)}, expected {want} for input "
                         f"of shape {tuple(logits.shape)}")
    x2 = _last(logits, 1, xp).reshape(target.size, logits.shape[1])
    return x2, xp.ascontiguousarray(target.reshape(-1).astype(xp.int64, copy=False))


def _reduce_rows(xp, loss, valid_count, reduction, shape, op):
    if reduction == "none":
        return loss.reshape(shape)
    if reduction == "sum":
        return loss.sum()
    if reduction == "mean":
        return loss.sum() / valid_count if valid_count else xp.asarray(float("nan"), loss.dtype)
    raise ValueError(f"{op}: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


def _row_grad(xp, g, reduction, valid_count, n, dtype):
    if reduction == "none":
        return g.reshape(-1).astype(dtype)
    scale = 1.0 / valid_count if reduction == "mean" and valid_count else 1.0
    return xp.full(n, g * scale, dtype=dtype) if xp.__name__ == "numpy" else \
        xp.broadcast_to((g * scale).astype(dtype), (n,)).copy()


def _target_shape(logits, target):
    return () if logits.ndim == 1 else target.shape


class CrossEntropy(Function):
    """Fused log-softmax + NLL with ignore_index and label smoothing."""

    @staticmethod
    def forward(ctx, logits, target, ignore_index=-100, label_smoothing=0.0, reduction="mean"):
        xp = ctx.backend.xp
        if not 0.0 <= label_smoothing <= 1.0:
            raise ValueError(f"cross_entropy: label_smoothing must be in [0, 1], got {label_smoothing}")
        x2, t1 = _class_last("cross_entropy", logits, target, xp)
        loss, lse = ctx.backend.cross_entropy_forward(x2, t1, ignore_index, label_smoothing)
        valid = int((t1 != ignore_index).sum()) if reduction == "mean" else 0
        ctx.save_for_backward(x2, t1, lse)
        ctx.args = (ignore_index, label_smoothing, reduction, valid, logits.shape, logits.dtype)
        out = _reduce_rows(xp, loss, valid, reduction, _target_shape(logits, target), "cross_entropy")
        return xp.asarray(out).astype(logits.dtype, copy=False)

    @staticmethod
    def backward(ctx, g, *_):
        xp = ctx.backend.xp
        x2, t1, lse = ctx.saved_tensors
        ignore_index, smoothing, reduction, valid, shape, dtype = ctx.args
        dloss = _row_grad(xp, g, reduction, valid, x2.shape[0], lse.dtype)
        dx2 = ctx.backend.cross_entropy_backward(x2, t1, lse, dloss, ignore_index, smoothing)
        if len(shape) == 1:
            return dx2.reshape(shape), None
        moved = dx2.reshape((shape[0],) + tuple(shape[2:]) + (shape[1],))
        return xp.moveaxis(moved, -1, 1), None


class NLLLoss(Function):
    @staticmethod
    def forward(ctx, logp, target, ignore_index=-100, reduction="mean"):
        xp = ctx.backend.xp
        x2, t1 = _class_last("nll_loss", logp, target, xp)
        c = x2.shape[1]
        valid = t1 != ignore_index
        bad = valid & ((t1 < 0) | (t1 >= c))
        if bool(bad.any()):
            i = int(xp.argmax(bad))
            raise IndexError(f"nll_loss: target {int(t1[i])} at position {i} is out of range for "
                             f"{c} classes")
        safe = xp.where(valid, t1, 0)
        picked = xp.take_along_axis(x2, safe[:, None], axis=1)[:, 0]
        loss = -picked * valid
        count = int(valid.sum()) if reduction == "mean" else 0
        ctx.save_for_backward(safe, valid)
        ctx.args = (reduction, count, logp.shape, x2.shape)
        out = _reduce_rows(xp, loss, count, reduction, _target_shape(logp, target), "nll_loss")
        return xp.asarray(out).astype(logp.dtype, copy=False)

    @staticmethod
    def backward(ctx, g, *_):
        xp = ctx.backend.xp
        safe, valid = ctx.saved_tensors
        reduction, count, shape, shape2 = ctx.args
        dl = _row_grad(xp, g, reduction, count, shape2[0], g.dtype) * valid
        dx2 = xp.zeros(shape2, g.dtype)
        xp.put_along_axis(dx2, safe[:, None], -dl[:, None], axis=1)
        if len(shape) == 1:
            return dx2.reshape(shape), None
        moved = dx2.reshape((shape[0],) + tuple(shape[2:]) + (shape[1],))
        return xp.moveaxis(moved, -1, 1), None


class BCEWithLogits(Function):
    @staticmethod
    def forward(ctx, x, y, pos_weight=None, reduction="mean"):
        xp = ctx.backend.xp
        if x.shape != y.shape:
            raise ValueError(f"binary_cross_entropy_with_logits: target shape {tuple(y.shape)} "
                             f"differs from input shape {tuple(x.shape)}")
        sp = xp.logaddexp(0, -x)  # softplus(-x), stable
        pw = 1.0 if pos_weight is None else pos_weight
        loss = (1 - y) * x + (1 + (pw - 1) * y) * sp
        ctx.save_for_backward(x, y, pos_weight)
        ctx.reduction = reduction
        out = _reduce_rows(xp, loss.reshape(-1), x.size, reduction, x.shape,
                           "binary_cross_entropy_with_logits")
        return xp.asarray(out).astype(x.dtype, copy=False)

    @staticmethod
    def backward(ctx, g):
        xp = ctx.backend.xp
        x, y, pos_weight = ctx.saved_tensors
        pw = 1.0 if pos_weight is None else pos_weight
        e = xp.exp(-xp.abs(x))
        sig_neg = xp.where(x >= 0, e / (1 + e), 1 / (1 + e))  # sigmoid(-x)
        if ctx.reduction == "mean":
            g = g / x.size
        dx = g * ((1 - y) - (1 + (pw - 1) * y) * sig_neg)
        dy = None
        if ctx.needs_input_grad[1]:
            dy = g * (-x + (pw - 1) * xp.logaddexp(0, -x))
        return dx, dy, None


class Dropout(Function):
    @staticmethod
    def forward(ctx, x, p=0.5):
        from .. import random as rs

        seed, offset = rs.next_counter(x.size)
        y, keep = ctx.backend.dropout(x, p, seed, offset)
        ctx.save_for_backward(keep)
        ctx.scale = 1.0 / (1.0 - p)
        return y

    @staticmethod
    def backward(ctx, g):
        (keep,) = ctx.saved_tensors
        return g * keep * ctx.backend.xp.asarray(ctx.scale, dtype=g.dtype)


class Embedding(Function):
    @staticmethod
    def forward(ctx, weight, indices, padding_idx=None):
        xp = ctx.backend.xp
        if indices.dtype not in (dt.int64, dt.int32):
            raise TypeError(f"embedding: indices must be integers (int64 or int32), got {indices.dtype}")
        if weight.ndim != 2:
            raise ValueError(f"embedding: weight must be 2-D (num_embeddings, embedding_dim), got "
                             f"shape {tuple(weight.shape)}")
        n = weight.shape[0]
        if padding_idx is not None and not 0 <= padding_idx < n:
            raise ValueError(f"embedding: padding_idx must be within [-{n}, {n})")
        if indices.size:
            lo, hi = int(indices.min()), int(indices.max())
            if lo < 0 or hi >= n:
                bad = hi if hi >= n else lo
                raise IndexError(f"embedding: index {bad} is out of range for {n} embeddings")
        ctx.save_for_backward(indices)
        ctx.n, ctx.padding_idx = n, padding_idx
        return xp.take(weight, indices, axis=0)

    @staticmethod
    def backward(ctx, g):
        (indices,) = ctx.saved_tensors
        return ctx.backend.embedding_backward(g, indices, ctx.n, ctx.padding_idx), None


class BatchNorm(Function):
    """Batch normalisation over every dim but 1. In training, running statistics
    (arrays passed as keywords) are updated in place like PyTorch's."""

    @staticmethod
    def forward(ctx, x, weight, bias, running_mean=None, running_var=None, training=True,
                momentum=0.1, eps=1e-5):
        xp = ctx.backend.xp
        if x.ndim < 2:
            raise ValueError(f"batch_norm: expected input with at least 2 dims (N, C, ...), "
                             f"got shape {tuple(x.shape)}")
        c = x.shape[1]
        for name, p in (("weight", weight), ("bias", bias), ("running_mean", running_mean),
                        ("running_var", running_var)):
            if p is not None and tuple(p.shape) != (c,):
                raise ValueError(f"batch_norm: {name} has shape {tuple(p.shape)}, expected ({c},)")
        axes = (0,) + tuple(range(2, x.ndim))
        bshape = (1, c) + (1,) * (x.ndim - 2)
        n = x.size // c if c else 0
        if training:
            if n <= 1:
                raise ValueError(f"batch_norm: expected more than 1 value per channel when "
                                 f"training, got input of shape {tuple(x.shape)}")
            xf = x.astype(xp.float32) if x.dtype in (dt.float16, dt.bfloat16) else x
            mean = xf.mean(axis=axes)
            var = xf.var(axis=axes)
            if running_mean is not None:
                running_mean *= 1 - momentum
                running_mean += (momentum * mean).astype(running_mean.dtype)
            if running_var is not None:
                running_var *= 1 - momentum
                running_var += (momentum * var * (n / (n - 1))).astype(running_var.dtype)
        else:
            if running_mean is None or running_var is None:
                raise ValueError("batch_norm: running_mean and running_var are needed in eval mode")
            mean, var = running_mean, running_var
        rstd = (1.0 / xp.sqrt(var + eps)).astype(x.dtype)
        xhat = (x - mean.astype(x.dtype).reshape(bshape)) * rstd.reshape(bshape)
        y = xhat * weight.reshape(bshape) if weight is not None else xhat
        if bias is not None:
            y = y + bias.reshape(bshape)
        ctx.save_for_backward(xhat, rstd, weight)
        ctx.axes, ctx.bshape, ctx.training, ctx.n = axes, bshape, training, n
        return y.astype(x.dtype, copy=False)

    @staticmethod
    def backward(ctx, g):
        xhat, rstd, weight = ctx.saved_tensors
        axes, bshape = ctx.axes, ctx.bshape
        dw = (g * xhat).sum(axis=axes) if ctx.needs_input_grad[1] else None
        db = g.sum(axis=axes) if len(ctx.needs_input_grad) > 2 and ctx.needs_input_grad[2] else None
        dxhat = g * weight.reshape(bshape) if weight is not None else g
        if ctx.training:
            s1 = dxhat.sum(axis=axes, keepdims=True)
            s2 = (dxhat * xhat).sum(axis=axes, keepdims=True)
            dx = (dxhat - s1 / ctx.n - xhat * (s2 / ctx.n)) * rstd.reshape(bshape)
        else:
            dx = dxhat * rstd.reshape(bshape)
        return dx, dw, db
