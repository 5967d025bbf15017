"""Every differentiable op of pydl, and the Tensor methods and top-level
functions that call them. Each op is one Function class (forward + backward)
in elementwise.py, reduce.py, shape.py, linalg.py or nn.py."""
from __future__ import annotations

import numbers

import numpy as np

from .. import dtypes as dt
from ..autograd.function import Function
from ..tensor import Tensor, _common_device
from .elementwise import (Abs, Add, Clamp, Cos, Div, Elu, Exp, Gelu, LeakyRelu, Log, Maximum, Minimum,
                          Mul, Neg, Pow, Relu, RPow, Rsqrt, Sigmoid, Silu, Sin, Softplus, Sqrt, Sub,
                          Tanh, Where)
from .linalg import Linear, Matmul
from .reduce import LogSumExp, MaxAll, MaxMin, Mean, Sum, Var, argmax as _argmax, normalize_dims
from .shape import Cat, Clone, Contiguous, Expand, GetItem, MaskedFill, Pad, Permute, Reshape, Stack


class Cast(Function):
    @staticmethod
    def forward(ctx, a, dtype):
        ctx.src = a.dtype
        return a.astype(dtype)

    @staticmethod
    def backward(ctx, g):
        return g.astype(ctx.src) if dt.is_floating(ctx.src) else None


class ToDevice(Function):
    @staticmethod
    def forward(ctx, a, target):
        from .. import backend

        ctx.src = "cpu" if backend.of_array(a) is backend.cpu else "cuda"
        return _move(a, target)

    @staticmethod
    def backward(ctx, g):
        return _move(g, ctx.src)


def _move(a, target):
    from .. import backend

    if target == "cpu":
        return backend.of_array(a).to_numpy(a)
    return backend.get("cuda").from_numpy(a)


# ---- operand handling --------------------------------------------------------------

def _is_scalar(v):
    return isinstance(v, numbers.Number) and not isinstance(v, Tensor)


def _result_type(*tensors):
    """PyTorch's promotion for tensors: a 0-d tensor only decides the dtype when it is of a
    higher category than every dimensioned one (float32 (3,) * float64 () is float32)."""
    dims = [t.dtype for t in tensors if t.ndim]
    zeros = [t.dtype for t in tensors if not t.ndim]
    if not dims or not zeros:
        return dt.result_type(*dims, *zeros)
    hi, lo = dt.result_type(*dims), dt.result_type(*zeros)
    if dt.is_floating(hi):
        return hi
    if hi == dt.bool_ or dt.is_floating(lo):
        return dt.result_type(hi, lo)
    return hi


def _check_broadcast(name, *tensors):
    """ValueError naming the op when the shapes do not broadcast (not NumPy's bare message)."""
    shapes = [tuple(t.shape) for t in tensors]
    if all(s == shapes[0] for s in shapes):
        return
    try:
        np.broadcast_shapes(*shapes)
    except ValueError:
        raise ValueError(f"{name}: shapes {', '.join(str(tuple(t.shape)) for t in tensors)} "
                         "do not broadcast") from None


def _binary(fn, a, b, name):
    """Apply a binary Function with PyTorch's type promotion; Python scalars stay scalars."""
    if isinstance(b, Tensor) and isinstance(a, Tensor):
        _common_device(name, [a, b])
        _check_broadcast(name, a, b)
        want = _result_type(a, b)
        if a.dtype != want:
            a = a.to(want)
        if b.dtype != want:
            b = b.to(want)
        return fn.apply(a, b)
    if isinstance(a, Tensor) and _is_scalar(b):
        want = dt.scalar_result_type(a.dtype, b)
        if a.dtype != want:
            a = a.to(want)
        return fn.apply(a, b)
    if isinstance(b, Tensor) and _is_scalar(a):
        want = dt.scalar_result_type(b.dtype, a)
        if b.dtype != want:
            b = b.to(want)
        return fn.apply(Tensor._wrap(b._backend.xp.asarray(a, dtype=want)), b)
    raise TypeError(f"{name}: unsupported operand types {type(a).__name__} and {type(b).__name__}")


def _tensor_like(v, ref: Tensor):
    if isinstance(v, Tensor):
        return v
    return Tensor._wrap(ref._backend.xp.asarray(v, dtype=dt.scalar_result_type(ref.dtype, v)))


def _cmp(a, b, op):
    xp = a._backend.xp
    if isinstance(b, Tensor):
        _common_device(op.__name__, [a, b])
        _check_broadcast(op.__name__, a, b)
        b = b._data
    return Tensor._wrap(xp.asarray(op(a._data, b)))


def add(a, b, alpha=1):
    return _binary(Add, a, b * alpha if alpha != 1 else b, "add")


def sub(a, b, alpha=1):
    return _binary(Sub, a, b * alpha if alpha != 1 else b, "sub")


def mul(a, b):
    return _binary(Mul, a, b, "mul")


def div(a, b):
    if isinstance(a, Tensor) and not a.is_floating_point() and not (
            isinstance(b, Tensor) and b.is_floating_point()):
        a = a.to(dt.default_float)  # true division of integers gives floats, like PyTorch
    elif _is_scalar(a) and isinstance(b, Tensor) and not b.is_floating_point():
        b = b.to(dt.default_float)
    return _binary(Div, a, b, "div")


def pow(a, b):  # noqa: A001
    if isinstance(a, Tensor):
        if _is_scalar(b):
            if not a.is_floating_point() and isinstance(b, float):
                a = a.to(dt.default_float)
            return Pow.apply(a, b)
        return _binary(Pow, a, b, "pow")
    if isinstance(b, Tensor):
        want = dt.scalar_result_type(b.dtype, a)  # 2 ** int tensor stays integer, like PyTorch
        if b.dtype != want:
            b = b.to(want)
        return RPow.apply(b, a)
    raise TypeError("pow: one argument must be a tensor")


def matmul(a, b):
    if not isinstance(a, Tensor) or not isinstance(b, Tensor):
        raise TypeError("matmul: both arguments must be tensors")
    _common_device("matmul", [a, b])
    return Matmul.apply(a, b)


def _unary(fn):
    def op(a, *args, **kwargs):
        if not isinstance(a, Tensor):
            raise TypeError(f"{fn.__name__.lower()}: expected a tensor, got {type(a).__name__}")
        if not a.is_floating_point():
            a = a.to(dt.default_float)
        return fn.apply(a, *args, **kwargs)

    op.__name__ = fn.__name__.lower()
    return op


exp, log, sqrt, rsqrt, sin, cos = (_unary(f) for f in (Exp, Log, Sqrt, Rsqrt, Sin, Cos))
tanh, sigmoid, silu = (_unary(f) for f in (Tanh, Sigmoid, Silu))


def abs(a):  # noqa: A001
    return Abs.apply(a) if a.is_floating_point() else Tensor._wrap(a._backend.xp.abs(a._data))


def neg(a):
    return Neg.apply(a) if a.is_floating_point() else Tensor._wrap(-a._data)


def relu(a):
    return Relu.apply(a)


def gelu(a, approximate="none"):
    return Gelu.apply(a, approximate=approximate)


def leaky_relu(a, negative_slope=0.01):
    return LeakyRelu.apply(a, negative_slope=negative_slope)


def elu(a, alpha=1.0):
    return Elu.apply(a, alpha=alpha)


def softplus(a, beta=1.0, threshold=20.0):
    return Softplus.apply(a, beta=beta, threshold=threshold)


def clamp(a, min=None, max=None):  # noqa: A002
    if min is None and max is None:
        raise ValueError("clamp: at least one of min and max must be given")
    if a.is_floating_point():
        return Clamp.apply(a, min=min, max=max)
    return Tensor._wrap(a._backend.xp.clip(a._data, min, max))


def maximum(a, b):
    return _binary(Maximum, a, _tensor_like(b, a), "maximum")


def minimum(a, b):
    return _binary(Minimum, a, _tensor_like(b, a), "minimum")


def where(cond, a, b):
    if not isinstance(cond, Tensor) or cond.dtype != dt.bool_:
        raise TypeError("where: condition must be a bool tensor")
    ref = a if isinstance(a, Tensor) else b
    if not isinstance(ref, Tensor):
        raise TypeError("where: at least one of the values must be a tensor")
    a, b = _tensor_like(a, ref), _tensor_like(b, ref)
    _common_device("where", [cond, a, b])
    _check_broadcast("where", cond, a, b)
    want = _result_type(a, b)
    return Where.apply(cond, a.to(want), b.to(want))


# ---- reductions --------------------------------------------------------------------

def sum(a, dim=None, keepdim=False, dtype=None):  # noqa: A001
    if dtype is not None:
        a = a.to(dtype)
    if a.dtype == dt.bool_:
        a = a.to(dt.int64)
    return Sum.apply(a, dim=dim, keepdim=keepdim)


def mean(a, dim=None, keepdim=False, dtype=None):
    if dtype is not None:
        a = a.to(dtype)
    if not a.is_floating_point():
        raise TypeError(f"mean: input must be floating point, got {a.dtype}; pass dtype=pydl.float32")
    return Mean.apply(a, dim=dim, keepdim=keepdim)


def var(a, dim=None, unbiased=None, keepdim=False, correction=None):
    if correction is None:
        correction = 1 if unbiased is None or unbiased else 0
    return Var.apply(a, dim=dim, correction=correction, keepdim=keepdim)


def std(a, dim=None, unbiased=None, keepdim=False, correction=None):
    normalize_dims(dim, a.ndim, "std")
    return sqrt(var(a, dim=dim, unbiased=unbiased, keepdim=keepdim, correction=correction))


def _maxmin(a, dim, keepdim, is_max):
    if dim is None:
        return MaxAll.apply(a, is_max=is_max) if a.is_floating_point() else \
            Tensor._wrap(a._backend.xp.asarray(a._data.max() if is_max else a._data.min()))
    if isinstance(dim, Tensor):  # torch.max(a, b): elementwise
        return maximum(a, dim) if is_max else minimum(a, dim)
    if a.is_floating_point():
        return MaxMin.apply(a, dim=dim, keepdim=keepdim, is_max=is_max)
    vals, idx = MaxMin.forward(_NoGradCtx(a), a._data, dim=dim, keepdim=keepdim, is_max=is_max)
    return Tensor._wrap(vals), Tensor._wrap(idx)


class _NoGradCtx:
    """A throwaway context for running a Function's forward on non-float data."""

    def __init__(self, ref):
        self.backend = ref._backend

    def save_for_backward(self, *a):
        pass


def max(a, dim=None, keepdim=False):  # noqa: A001
    return _maxmin(a, dim, keepdim, True)


def min(a, dim=None, keepdim=False):  # noqa: A001
    return _maxmin(a, dim, keepdim, False)


def argmax(a, dim=None, keepdim=False):
    return Tensor._wrap(_argmax(a._data, dim, keepdim, True))


def argmin(a, dim=None, keepdim=False):
    return Tensor._wrap(_argmax(a._data, dim, keepdim, False))


def logsumexp(a, dim, keepdim=False):
    return LogSumExp.apply(a, dim=dim, keepdim=keepdim)


# ---- shapes ------------------------------------------------------------------------

def _shape(args):
    if len(args) == 1 and isinstance(args[0], (tuple, list)):
        args = tuple(args[0])
    return tuple(int(s) for s in args)


def reshape(a, *shape):
    shape = _shape(shape)
    if shape == tuple(a.shape):
        return a
    return Reshape.apply(a, shape=shape)


def view(a, *shape):
    return reshape(a, *shape)


def permute(a, *dims):
    dims = _shape(dims)
    norm = tuple(normalize_dims(d, a.ndim, "permute")[0] for d in dims)  # IndexError if out of range
    if sorted(norm) != list(range(a.ndim)):
        raise ValueError(f"permute: {dims} is not a permutation of the {a.ndim} dims")
    return Permute.apply(a, dims=norm)


def transpose(a, dim0, dim1):
    d0, d1 = (normalize_dims(d, a.ndim, "transpose")[0] for d in (dim0, dim1))
    dims = list(range(a.ndim))
    dims[d0], dims[d1] = dims[d1], dims[d0]
    return Permute.apply(a, dims=tuple(dims))


def expand(a, *shape):
    shape = _shape(shape)
    lead = len(shape) - a.ndim
    if lead < 0:
        raise ValueError(f"expand: cannot expand shape {tuple(a.shape)} to {shape}")
    full = tuple(a.shape[i - lead] if s == -1 else s for i, s in enumerate(shape))
    for i, s in enumerate(a.shape):
        if s != 1 and s != full[i + lead]:
            raise ValueError(f"expand: cannot expand shape {tuple(a.shape)} to {shape}")
    return Expand.apply(a, shape=full)


def expand_as(a, other):
    return expand(a, *other.shape)


def broadcast_to(a, shape):
    return expand(a, *shape)


def squeeze(a, dim=None):
    if dim is None:
        shape = tuple(s for s in a.shape if s != 1)
    else:
        dims = normalize_dims(dim, a.ndim, "squeeze")
        shape = tuple(s for i, s in enumerate(a.shape) if not (i in dims and s == 1))
    return reshape(a, shape)


def unsqueeze(a, dim):
    if not -a.ndim - 1 <= dim <= a.ndim:
        raise IndexError(f"unsqueeze: dim {dim} is out of range for a tensor with {a.ndim} dims")
    dim = dim % (a.ndim + 1)
    shape = list(a.shape)
    shape.insert(dim, 1)
    return Reshape.apply(a, shape=tuple(shape))


def flatten(a, start_dim=0, end_dim=-1):
    if a.ndim == 0:
        return reshape(a, 1)
    (s,), (e,) = normalize_dims(start_dim, a.ndim, "flatten"), normalize_dims(end_dim, a.ndim, "flatten")
    if s > e:
        raise ValueError("flatten: start_dim must not come after end_dim")
    n = 1
    for d in a.shape[s:e + 1]:
        n *= d
    return reshape(a, tuple(a.shape[:s]) + (n,) + tuple(a.shape[e + 1:]))


def contiguous(a):
    return a if a.is_contiguous() else Contiguous.apply(a)


def clone(a):
    return Clone.apply(a)


def index_arrays(index, ref):
    """An index with tensors replaced by their arrays (checked to be on ref's device)."""
    def conv(i):
        if isinstance(i, Tensor):
            _common_device("indexing", [ref, i])
            if i.dtype.kind not in "iub":
                raise IndexError(f"indexing: tensors used as indices must be integer or bool, "
                                 f"got {i.dtype}")
            return i._data
        if isinstance(i, list):
            return ref._backend.xp.asarray(i)
        return i

    return tuple(conv(i) for i in index) if isinstance(index, tuple) else conv(index)


def getitem(a, index):
    return GetItem.apply(a, index=index_arrays(index, a))


def _tensor_list(op, tensors):
    if isinstance(tensors, Tensor) or not isinstance(tensors, (list, tuple)):
        raise TypeError(f"{op}: expected a list or tuple of tensors, got {type(tensors).__name__}")
    return list(tensors)


def cat(tensors, dim=0):
    tensors = _tensor_list("cat", tensors)
    if not tensors:
        raise ValueError("cat: expected a non-empty sequence of tensors")
    _common_device("cat", tensors)
    nd = tensors[0].ndim
    (d,) = normalize_dims(dim, nd, "cat")
    for t in tensors:
        if t.ndim != nd or any(t.shape[i] != tensors[0].shape[i] for i in range(nd) if i != d):
            raise ValueError(f"cat: tensors must have the same shape except in dim {dim}, got "
                             f"{[tuple(t.shape) for t in tensors]}")
    want = dt.result_type(*(t.dtype for t in tensors))
    return Cat.apply(*(t.to(want) for t in tensors), dim=d)


def stack(tensors, dim=0):
    tensors = _tensor_list("stack", tensors)
    if not tensors:
        raise ValueError("stack: expected a non-empty sequence of tensors")
    _common_device("stack", tensors)
    if any(t.shape != tensors[0].shape for t in tensors):
        raise ValueError(f"stack: all tensors must have the same shape, got "
                         f"{[tuple(t.shape) for t in tensors]}")
    if not -tensors[0].ndim - 1 <= dim <= tensors[0].ndim:
        raise IndexError(f"stack: dim {dim} is out of range")
    want = dt.result_type(*(t.dtype for t in tensors))
    return Stack.apply(*(t.to(want) for t in tensors), dim=dim % (tensors[0].ndim + 1))


def split(a, split_size_or_sections, dim=0):
    (d,) = normalize_dims(dim, a.ndim, "split")
    n = a.shape[d]
    if isinstance(split_size_or_sections, int):
        if split_size_or_sections <= 0:
            raise ValueError("split: split_size must be positive")
        sizes = [split_size_or_sections] * (n // split_size_or_sections)
        if n % split_size_or_sections:
            sizes.append(n % split_size_or_sections)
    else:
        sizes = list(split_size_or_sections)
        total = 0
        for s in sizes:
            total += s
        if total != n:
            raise ValueError(f"split: sections {sizes} do not add up to {n}")
    out, start = [], 0
    for s in sizes:
        idx = (slice(None),) * d + (slice(start, start + s),)
        out.append(getitem(a, idx))
        start += s
    return tuple(out)


def chunk(a, chunks, dim=0):
    (d,) = normalize_dims(dim, a.ndim, "chunk")
    if chunks <= 0:
        raise ValueError(f"chunk: chunks must be positive, got {chunks}")
    size = -(-a.shape[d] // chunks)
    return split(a, size, dim=d)


def masked_fill(a, mask, value):
    if not isinstance(mask, Tensor) or mask.dtype != dt.bool_:
        raise TypeError("masked_fill: mask must be a bool tensor")
    _common_device("masked_fill", [a, mask])
    _check_broadcast("masked_fill", a, mask)
    return MaskedFill.apply(a, mask, value=value)


def pad(a, pad, mode="constant", value=0.0):
    if mode != "constant":
        raise ValueError(f"pad: only mode='constant' is supported, got {mode!r}")
    return Pad.apply(a, pad=tuple(pad), value=value)


def outer(a, b):
    return mul(reshape(a, -1, 1), reshape(b, 1, -1))


# ---- Tensor methods and operators --------------------------------------------------

def _install():
    T = Tensor
    T.__add__ = lambda a, b: add(a, b)
    T.__radd__ = lambda a, b: add(a, b)
    T.__sub__ = lambda a, b: sub(a, b)
    T.__rsub__ = lambda a, b: _binary(Sub, b, a, "sub")
    T.__mul__ = lambda a, b: mul(a, b)
    T.__rmul__ = lambda a, b: mul(a, b)
    T.__truediv__ = lambda a, b: div(a, b)
    T.__rtruediv__ = lambda a, b: div(_tensor_like(b, a).to(dt.result_type(
        a.dtype, dt.default_float)) if not isinstance(b, Tensor) else b, a)
    T.__pow__ = lambda a, b: pow(a, b)
    T.__rpow__ = lambda a, b: pow(b, a)
    T.__matmul__ = lambda a, b: matmul(a, b)
    T.__rmatmul__ = lambda a, b: matmul(b, a)
    T.__neg__ = lambda a: neg(a)
    T.__pos__ = lambda a: a
    T.__abs__ = lambda a: abs(a)
    T.__getitem__ = getitem
    import operator as _o

    for name, op in (("__eq__", _o.eq), ("__ne__", _o.ne), ("__lt__", _o.lt), ("__le__", _o.le),
                     ("__gt__", _o.gt), ("__ge__", _o.ge)):
        setattr(T, name, (lambda op: lambda a, b: _cmp(a, b, op))(op))
    T.__hash__ = object.__hash__
    for name, op in (("__and__", _o.and_), ("__or__", _o.or_), ("__xor__", _o.xor)):
        setattr(T, name, (lambda op: lambda a, b: _cmp(a, b, op))(op))
    T.__invert__ = lambda a: Tensor._wrap(~a._data)
    T.logical_not = lambda a: Tensor._wrap(a._backend.xp.logical_not(a._data))
    T.eq, T.ne, T.lt, T.le, T.gt, T.ge = (T.__eq__, T.__ne__, T.__lt__, T.__le__, T.__gt__, T.__ge__)
    methods = dict(
        add=add, sub=sub, mul=mul, div=div, pow=pow, matmul=matmul, exp=exp, log=log, sqrt=sqrt,
        rsqrt=rsqrt, sin=sin, cos=cos, abs=abs, neg=neg, tanh=tanh, sigmoid=sigmoid, relu=relu,
        gelu=gelu, silu=silu, leaky_relu=leaky_relu, elu=elu, softplus=softplus, clamp=clamp,
        clip=clamp, maximum=maximum, minimum=minimum, sum=sum, mean=mean, var=var, std=std,
        max=max, min=min, argmax=argmax, argmin=argmin, logsumexp=logsumexp, reshape=reshape,
        view=view, permute=permute, transpose=transpose, expand=expand, expand_as=expand_as,
        squeeze=squeeze, unsqueeze=unsqueeze, flatten=flatten, contiguous=contiguous,
        clone=clone, split=split, chunk=chunk, masked_fill=masked_fill,
    )
    for name, fn in methods.items():
        setattr(T, name, fn)
    T.softmax = lambda a, dim=-1: _nn.Softmax.apply(a, dim=dim)
    T.log_softmax = lambda a, dim=-1: _nn.Softmax.apply(a, dim=dim, log=True)
    T.view_as = lambda a, other: reshape(a, other.shape)
    T.reshape_as = lambda a, other: reshape(a, other.shape)
    T.t = lambda a: transpose(a, 0, 1) if a.ndim == 2 else a
    T.all = lambda a: Tensor._wrap(a._backend.xp.asarray(a._data.all()))
    T.any = lambda a: Tensor._wrap(a._backend.xp.asarray(a._data.any()))
    T.isnan = lambda a: Tensor._wrap(a._backend.xp.isnan(a._data))
    T.isfinite = lambda a: Tensor._wrap(a._backend.xp.isfinite(a._data))
    T.sign = lambda a: Tensor._wrap(a._backend.xp.sign(a._data))
    T.norm = lambda a, p=2: sqrt(sum(a * a)) if p == 2 else sum(abs(a) ** p) ** (1.0 / p)


from . import nn as _nn  # noqa: E402

_install()
