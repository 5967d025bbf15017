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
from .. import dtypes as _dt
from .._ops import attention as _attention
from .._ops import conv as _conv
from .._ops import linalg as _linalg
from .._ops import nn as _nn
import functools as _functools

from ..autograd.function import Context
from ..errors import out_of_memory as _out_of_memory
from ._interop import convert_args, from_backend, stream_for

__all__ = ["matmul", "softmax", "log_softmax", "softmax_backward", "layer_norm", "rms_norm",
           "layer_norm_forward", "layer_norm_backward", "cross_entropy", "attention",
           "attention_forward", "attention_backward", "conv2d", "conv2d_backward", "run_forward",
           "run_backward"]


def _context(first, needs):
    ctx = Context()
    ctx.backend = _backend.of_array(first)
    ctx.needs_input_grad = needs
    ctx.saved_tensors = ()
    return ctx


def run_forward(fn, op: str, arrays: dict, needs=None, check=None, **kwargs):
    """Run Function `fn`'s forward on converted `arrays` (in order), after
    `check(*arrays, **kwargs)` where given; returns (outputs in the caller's library, the context for run_backward,
    library)."""
    with stream_for([a for a in arrays.values() if a is not None]):
        conv, lib = convert_args(op, **arrays)
        values = list(conv.values())
        if check is not None:
            check(*values, **kwargs)
        first = next(v for v in values if v is not None)
        ctx = _context(first, needs or tuple(v is not None for v in values))
        try:
            out = fn.forward(ctx, *values, **kwargs)
        except MemoryError as e:
            raise _out_of_memory(op, e) from e
    outs = out if isinstance(out, tuple) else (out,)
    res = tuple(from_backend(o, lib) for o in outs)
    return (res if isinstance(out, tuple) else res[0]), ctx, lib


def run_backward(fn, ctx, lib, *grads, like=()):
    """Run `fn`'s backward from a context made by run_forward; gradients come back
    in the caller's library (None where an input needs none)."""
    with stream_for(like):
        conv, _ = convert_args(fn.__name__, **{f"grad{i}": g for i, g in enumerate(grads)})
        try:
            gs = fn.backward(ctx, *conv.values())
        except MemoryError as e:
            raise _out_of_memory(f"{fn.op_name()}.backward", e) from e
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


def attention(query, key, value, attn_mask=None, is_causal: bool = False, scale=None,
              dropout_p: float = 0.0):
    """Fused scaled-dot-product attention with torch.nn.functional.scaled_dot_product_attention's
    semantics: query (..., L, E), key (..., S, E), value (..., S, Ev); attn_mask bool
    (True = may attend) or additive, broadcastable to (..., L, S)."""
    return attention_forward(query, key, value, attn_mask, is_causal, scale, dropout_p)[0]


def _attention_args(op, query, key, value, attn_mask, dropout_p):
    conv, lib = convert_args(op, query=query, key=key, value=value, attn_mask=attn_mask)
    _attention.check_arrays(op, conv["query"], conv["key"], conv["value"], conv["attn_mask"],
                            dropout_p)
    return conv, lib


def attention_forward(query, key, value, attn_mask=None, is_causal: bool = False, scale=None,
                      dropout_p: float = 0.0):
    """(out, lse): the attention output and the per-row log-sum-exp of the scaled, masked
    scores, shaped (..., L), which is all attention_backward needs besides the inputs. With
    dropout_p > 0 the backward needs the same random stream: use pydl.ops.torch.attention."""
    with stream_for([a for a in (query, key, value, attn_mask) if a is not None]):
        conv, lib = _attention_args("attention", query, key, value, attn_mask, dropout_p)
        ctx = _context(conv["query"], (False, False, False))
        out = _attention.ScaledDotProductAttention.forward(
            ctx, conv["query"], conv["key"], conv["value"], mask=conv["attn_mask"],
            dropout_p=float(dropout_p), is_causal=bool(is_causal), scale=scale)
        lse = ctx.saved_tensors[4].reshape(tuple(conv["query"].shape[:-1]))
    return from_backend(out, lib), from_backend(lse, lib)


def attention_backward(query, key, value, out, lse, grad_out, attn_mask=None,
                       is_causal: bool = False, scale=None):
    """(dquery, dkey, dvalue) for upstream gradient grad_out, from attention_forward's out and
    lse; the probabilities are recomputed tile by tile, never stored."""
    arrays = (query, key, value, out, lse, grad_out, attn_mask)
    with stream_for([a for a in arrays if a is not None]):
        conv, lib = _attention_args("attention_backward", query, key, value, attn_mask, 0.0)
        more, _ = convert_args("attention_backward", out=out, lse=lse, grad_out=grad_out)
        q, k, v = conv["query"], conv["key"], conv["value"]
        L, Ev = q.shape[-2], v.shape[-1]
        for name, a, shape in (("out", more["out"], q.shape[:-1] + (Ev,)),
                               ("grad_out", more["grad_out"], q.shape[:-1] + (Ev,)),
                               ("lse", more["lse"], q.shape[:-1])):
            if tuple(a.shape) != tuple(shape):
                raise ValueError(f"attention_backward: {name} has shape {tuple(a.shape)}, "
                                 f"expected {tuple(shape)}")
        if more["out"].dtype != q.dtype or more["grad_out"].dtype != q.dtype:
            raise TypeError(f"attention_backward: out and grad_out must have the inputs' dtype "
                            f"{q.dtype}, got {more['out'].dtype} and {more['grad_out'].dtype}")
        # The forward's saved state, rebuilt without running the forward again.
        ctx = _context(q, (True, True, True))
        xp = ctx.backend.xp
        E, S = q.shape[-1], k.shape[-2]
        wide = _dt.float32 if q.dtype in (_dt.float16, _dt.bfloat16) else q.dtype
        B = int(q.size // (L * E)) if q.size else 1
        mask = conv["attn_mask"]
        m4 = None if mask is None else _attention._mask_view(xp, mask, wide, tuple(q.shape[:-2]),
                                                             L, S)
        ctx.saved_tensors = (xp.ascontiguousarray(q).reshape(B, L, E),
                             xp.ascontiguousarray(k).reshape(B, S, E),
                             xp.ascontiguousarray(v).reshape(B, S, Ev),
                             xp.ascontiguousarray(more["out"]).reshape(B, L, Ev),
                             xp.ascontiguousarray(more["lse"], dtype=wide).reshape(B, L), m4)
        ctx.args = (1.0 / E ** 0.5 if scale is None else float(scale), bool(is_causal), 0.0, 0, 0,
                    q.shape, k.shape, v.shape)
        grads = _attention.ScaledDotProductAttention.backward(ctx, more["grad_out"])
    return tuple(from_backend(g, lib) for g in grads)


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):  # noqa: A002
    """NCHW convolution like torch.nn.functional.conv2d (padding may be 'same' or 'valid')."""
    return run_forward(_conv.Conv2d, "conv2d", {"x": input, "weight": weight, "bias": bias},
                       stride=stride, padding=padding, dilation=dilation, groups=groups)[0]


def conv2d_backward(grad_out, input, weight, stride=1, padding=0, dilation=1,  # noqa: A002
                    groups=1, needs=(True, True, True)):
    """(dinput, dweight, dbias) of conv2d for upstream gradient grad_out; an entry is None where
    `needs` says it is not wanted."""
    with stream_for([grad_out, input, weight]):
        conv, lib = convert_args("conv2d_backward", grad_out=grad_out, x=input, weight=weight)
        x, w, g = conv["x"], conv["weight"], conv["grad_out"]
        args, out_hw = _conv.plan("conv2d_backward", x, w, None, stride, padding, dilation,
                                  groups)
        want = (x.shape[0], w.shape[0]) + tuple(out_hw)
        if tuple(g.shape) != want:
            raise ValueError(f"conv2d_backward: grad_out has shape {tuple(g.shape)}, expected "
                             f"{want}")
        if g.dtype != x.dtype:
            raise TypeError(f"conv2d_backward: grad_out has dtype {g.dtype}, input has {x.dtype}")
        ctx = _context(x, tuple(bool(n) for n in needs))
        ctx.args, ctx.has_bias = args, True
        ctx.saved_tensors = (x, w)
        grads = _conv.Conv2d.backward(ctx, g)
    return tuple(None if a is None else from_backend(a, lib) for a in grads)


def _memory_errors_name_the_op(fn):
    """An allocator's MemoryError inside an op (CuPy's included) becomes pydl's
    OutOfMemoryError naming it, with CuPy's cached blocks freed for a retry."""
    @_functools.wraps(fn)
    def op(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except MemoryError as e:
            raise _out_of_memory(fn.__name__, e) from e
    return op


for _name in __all__:
    if _name not in ("run_forward", "run_backward"):
        globals()[_name] = _memory_errors_name_the_op(globals()[_name])
