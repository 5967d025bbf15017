"""pydl.ops: pydl's kernels as plain functions over other libraries' arrays.

Each function takes PyTorch tensors, CuPy arrays, NumPy arrays, JAX arrays or
any `__dlpack__` object, and returns the caller's kind of array, zero-copy in
both directions. On the GPU the kernels run on the caller's current stream
(PyTorch's or CuPy's). The math is the same code the pydl autograd ops run: each
function here runs the forward of the op's Function, and `pydl.ops.torch` wraps
forward and backward as `torch.autograd.Function`s.

    import torch, pydl.ops
    y = pydl.ops.softmax(torch.randn(4, 10), dim=-1)      # a torch tensor
"""
from __future__ import annotations

from .. import backend as _backend
from .._ops import linalg as _linalg
from .._ops import nn as _nn
from ..autograd.function import Context
from ._interop import convert_args, from_backend, stream_for

__all__ = ["matmul", "softmax", "log_softmax", "softmax_backward", "layer_norm", "rms_norm",
           "layer_norm_forward", "layer_norm_backward", "cross_entropy", "run_forward",
           "run_backward"]


def _context(first, needs):
    ctx = Context()
    ctx.backend = _backend.of_array(first)
    ctx.needs_input_grad = needs
    ctx.saved_tensors = ()
    return ctx


def run_forward(fn, op: str, arrays: dict, needs=None, **kwargs):
    """Run Function `fn`'s forward on converted `arrays` (in order); returns
    (outputs in the caller's library, the context for run_backward, library)."""
    with stream_for([a for a in arrays.values() if a is not None]):
        conv, lib = convert_args(op, **arrays)
        values = list(conv.values())
        first = next(v for v in values if v is not None)
        ctx = _context(first, needs or tuple(v is not None for v in values))
        out = fn.forward(ctx, *values, **kwargs)
    outs = out if isinstance(out, tuple) else (out,)
    res = tuple(from_backend(o, lib) for o in outs)
    return (res if isinstance(out, tuple) else res[0]), ctx, lib


def run_backward(fn, ctx, lib, *grads, like=()):
    """Run `fn`'s backward from a context made by run_forward; gradients come back
    in the caller's library (None where an input needs none)."""
    with stream_for(like):
        conv, _ = convert_args(fn.__name__, **{f"grad{i}": g for i, g in enumerate(grads)})
        gs = fn.backward(ctx, *conv.values())
    gs = gs if isinstance(gs, tuple) else (gs,)
    return tuple(None if g is None else from_backend(g, lib) for g in gs)


def matmul(a, b, bias=None, activation: str | None = None):
    """a @ b (batched, broadcast), then + bias and an activation ("relu" or "gelu")."""
    if activation not in (None, "none", "relu", "gelu"):
        raise ValueError(f"matmul: activation must be None, 'relu' or 'gelu', got {activation!r}")
    with stream_for([x for x in (a, b, bias) if x is not None]):
        conv, lib = convert_args("matmul", a=a, b=b, bias=bias)
        ctx = _context(conv["a"], (False, False))
        out = _linalg.Matmul.forward(ctx, conv["a"], conv["b"])
        if conv["bias"] is not None:
            bias = conv["bias"]
            if bias.ndim > out.ndim or any(b not in (1, o)
                                           for b, o in zip(bias.shape[::-1], out.shape[::-1])):
                raise ValueError(f"matmul: bias of shape {tuple(bias.shape)} does not broadcast "
                                 f"to the product's shape {tuple(out.shape)}")
            out = out + bias
        if activation == "relu":
            out = ctx.backend.xp.maximum(out, 0)
        elif activation == "gelu":
            from .._ops.elementwise import Gelu

            out = Gelu.forward(ctx, out)
    return from_backend(out, lib)


def softmax(x, dim: int = -1):
    return run_forward(_nn.Softmax, "softmax", {"x": x}, dim=dim)[0]


def log_softmax(x, dim: int = -1):
    return run_forward(_nn.Softmax, "log_softmax", {"x": x}, dim=dim, log=True)[0]


def softmax_backward(y, dy, dim: int = -1, log: bool = False):
    """Gradient of softmax (or log_softmax) at output y for upstream gradient dy."""
    with stream_for([y, dy]):
        conv, lib = convert_args("softmax_backward", y=y, dy=dy)
        yb, dyb = conv["y"], conv["dy"]
        xp = _backend.of_array(yb).xp
        d = dim % yb.ndim if yb.ndim else 0
        dx = _backend.of_array(yb).softmax_backward(
            xp.ascontiguousarray(xp.moveaxis(yb, d, -1)),
            xp.ascontiguousarray(xp.moveaxis(dyb, d, -1)), log)
    return from_backend(xp.moveaxis(dx, -1, d), lib)


def layer_norm(x, normalized_shape, weight=None, bias=None, eps: float = 1e-5):
    return run_forward(_nn.LayerNorm, "layer_norm", {"x": x, "weight": weight, "bias": bias},
                       normalized_shape=normalized_shape, eps=eps)[0]


def rms_norm(x, normalized_shape, weight=None, eps: float = 1e-6):
    return run_forward(_nn.LayerNorm, "rms_norm", {"x": x, "weight": weight, "bias": None},
                       normalized_shape=normalized_shape, eps=eps, rms=True)[0]


def layer_norm_forward(x, weight, bias, eps: float = 1e-5, rms: bool = False):
    """Row kernel on (rows, cols) x: returns (y, mean, rstd), the statistics for the backward."""
    with stream_for([a for a in (x, weight, bias) if a is not None]):
        conv, lib = convert_args("layer_norm", x=x, weight=weight, bias=bias)
        outs = _backend.of_array(conv["x"]).layer_norm_forward(conv["x"], conv["weight"],
                                                               conv["bias"], eps, rms)
    return tuple(from_backend(o, lib) for o in outs)


def layer_norm_backward(x, weight, mean, rstd, dy, rms: bool = False):
    """Gradients (dx, dweight, dbias) of the row kernel; dweight and dbias are None without a
    weight, dbias also for RMSNorm."""
    with stream_for([a for a in (x, weight, mean, rstd, dy) if a is not None]):
        conv, lib = convert_args("layer_norm_backward", x=x, weight=weight, mean=mean, rstd=rstd,
                                 dy=dy)
        has_w = conv["weight"] is not None
        outs = _backend.of_array(conv["x"]).layer_norm_backward(
            conv["x"], conv["weight"], conv["mean"], conv["rstd"], conv["dy"], rms, has_w,
            has_w and not rms)
    return tuple(None if o is None else from_backend(o, lib) for o in outs)


def cross_entropy(logits, target, ignore_index: int = -100, label_smoothing: float = 0.0,
                  reduction: str = "mean"):
    """Fused log-softmax + NLL over class indices, like torch.nn.functional.cross_entropy."""
    return run_forward(_nn.CrossEntropy, "cross_entropy", {"logits": logits, "target": target},
                       needs=(True, False), ignore_index=ignore_index,
                       label_smoothing=label_smoothing, reduction=reduction)[0]
