"""pydl.Tensor: an n-dimensional array (NumPy on the CPU, CuPy on the GPU) that
records the operations applied to it when gradients are wanted."""
from __future__ import annotations

import builtins
import math
import numbers
import operator
import sys

import numpy as np

from . import dtypes as dt
from .device import as_device, device
from .errors import DeviceError, out_of_memory


def _is_cpu_array(a) -> bool:
    return isinstance(a, np.ndarray)


class Tensor:
    __slots__ = ("_data", "requires_grad", "grad", "_grad_fn", "_output_idx", "_retains_grad",
                 "_hooks", "__weakref__", "__dict__")

    def __init__(self, data, dtype=None, device=None, requires_grad: bool = False):
        t = tensor(data, dtype=dtype, device=device)
        self._init(t._data)
        self.requires_grad = bool(requires_grad)
        if requires_grad and not dt.is_floating(self.dtype):
            raise RuntimeError("only floating-point tensors can require gradients")

    def _init(self, array):
        self._data = array
        self.requires_grad = False
        self.grad = None
        self._grad_fn = None
        self._output_idx = 0
        self._retains_grad = False
        self._hooks = None

    @classmethod
    def _wrap(cls, array) -> "Tensor":
        if isinstance(array, np.generic):  # NumPy reductions of 0-d arrays return scalars
            array = np.asarray(array)
        t = cls.__new__(cls)
        t._init(array)
        return t

    # ---- properties ------------------------------------------------------------
    @property
    def shape(self):
        return Size(self._data.shape)

    @property
    def dtype(self):
        return self._data.dtype

    @property
    def device(self) -> device:
        return device("cpu") if _is_cpu_array(self._data) else device("cuda", 0)

    @property
    def is_cuda(self) -> bool:
        return not _is_cpu_array(self._data)

    @property
    def _backend(self):
        from . import backend

        return backend.cpu if _is_cpu_array(self._data) else backend.get("cuda")

    @property
    def ndim(self) -> int:
        return self._data.ndim

    @property
    def data(self) -> "Tensor":
        return Tensor._wrap(self._data)

    @data.setter
    def data(self, value):
        value = value._data if isinstance(value, Tensor) else value
        self._data = value

    @property
    def grad_fn(self):
        return self._grad_fn

    @property
    def is_leaf(self) -> bool:
        return self._grad_fn is None

    @property
    def T(self) -> "Tensor":  # noqa: N802
        return self.permute(*reversed(range(self.ndim)))

    @property
    def mT(self) -> "Tensor":  # noqa: N802
        return self.transpose(-2, -1)

    def size(self, dim=None):
        return self.shape if dim is None else self._data.shape[dim]

    def dim(self) -> int:
        return self._data.ndim

    def numel(self) -> int:
        return int(self._data.size)

    def element_size(self) -> int:
        return self._data.dtype.itemsize

    def __len__(self):
        if self.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self._data.shape[0]

    def is_floating_point(self) -> bool:
        return dt.is_floating(self.dtype)

    def is_contiguous(self) -> bool:
        return bool(self._data.flags.c_contiguous)

    # ---- conversion ------------------------------------------------------------
    def numpy(self) -> np.ndarray:
        if self.requires_grad:
            raise RuntimeError("numpy(): call .detach() first on a tensor that requires grad")
        return self._backend.to_numpy(self._data)

    def item(self):
        if self.numel() != 1:
            raise ValueError(f"item(): tensor has {self.numel()} elements, expected 1")
        v = self._backend.to_numpy(self._data).reshape(()).item()
        return float(v) if self.dtype == dt.bfloat16 else v

    def tolist(self):
        a = self._backend.to_numpy(self._data)
        if a.dtype == dt.bfloat16:
            a = a.astype(np.float32)
        return a.tolist()

    def __array__(self, dtype=None, copy=None):
        a = self.detach().numpy()
        return a.astype(dtype) if dtype is not None else a

    def __float__(self):
        return float(self.item())

    def __int__(self):
        return int(self.item())

    def __bool__(self):
        if self.numel() != 1:
            raise RuntimeError("the truth value of a tensor with more than one element is ambiguous")
        return bool(self.item())

    def __index__(self):
        if dt.is_integer(self.dtype) and self.numel() == 1:
            return int(self.item())
        raise TypeError("only integer tensors of one element can be used as an index")

    def to(self, *args, dtype=None, device=None, copy: bool = False):
        for a in args:
            if isinstance(a, Tensor):
                dtype, device = a.dtype, a.device
            elif isinstance(a, (str, _DeviceType)):
                device = a
            else:
                dtype = a
        out = self
        if device is not None:
            d = as_device(device)
            if d != out.device:
                out = _ops.ToDevice.apply(out, target=d.type)
        if dtype is not None:
            dtype = dt.as_dtype(dtype)
            if dtype != out.dtype:
                out = _ops.Cast.apply(out, dtype=dtype)
        if copy and out is self:
            out = self.clone()
        return out

    def cpu(self):
        return self.to("cpu")

    def cuda(self):
        return self.to("cuda")

    def float(self):
        return self.to(dt.float32)

    def double(self):
        return self.to(dt.float64)

    def half(self):
        return self.to(dt.float16)

    def bfloat16(self):
        return self.to(dt.bfloat16)

    def long(self):
        return self.to(dt.int64)

    def int(self):
        return self.to(dt.int32)

    def bool(self):
        return self.to(dt.bool_)

    def type(self, dtype=None):
        return str(self.dtype) if dtype is None else self.to(dtype)

    def type_as(self, other):
        return self.to(other.dtype)

    # ---- autograd --------------------------------------------------------------
    def backward(self, gradient=None, retain_graph: bool = False):
        from .autograd.function import backward

        backward(self, gradient, retain_graph=retain_graph)

    def _accumulate_grad(self, g):
        if self._hooks:
            for h in self._hooks:
                r = h(Tensor._wrap(g))
                if r is not None:
                    g = r._data if isinstance(r, Tensor) else r
        if self.grad is None:
            # Own the memory: g may alias a saved array or another tensor's gradient.
            self.grad = Tensor._wrap(g.copy())
        else:
            # asarray: the sum of two 0-d NumPy arrays is a scalar, not an array.
            self.grad._data = self._backend.asarray(self.grad._data + g)

    def register_hook(self, fn):
        """fn(grad) -> new grad or None, called when this leaf's gradient is accumulated."""
        if self._hooks is None:
            self._hooks = []
        self._hooks.append(fn)
        return fn

    def retain_grad(self):
        self._retains_grad = True

    def detach(self) -> "Tensor":
        return Tensor._wrap(self._data)

    def detach_(self) -> "Tensor":
        self._grad_fn = None
        self.requires_grad = False
        return self

    def requires_grad_(self, requires_grad: bool = True) -> "Tensor":
        if requires_grad and not dt.is_floating(self.dtype):
            raise RuntimeError("only floating-point tensors can require gradients")
        if not self.is_leaf and not requires_grad:
            raise RuntimeError("requires_grad_(False) on a non-leaf tensor; use detach()")
        self.requires_grad = requires_grad
        return self

    # ---- in-place updates (no graph; for parameters, optimizers, initialisation) --
    def _check_inplace(self, op):
        from .autograd.grad_mode import is_grad_enabled

        if is_grad_enabled() and self.requires_grad:
            raise RuntimeError(f"{op}: in-place operation on a tensor that requires grad; "
                               "wrap it in pydl.no_grad()")

    def _value(self, v):
        if isinstance(v, Tensor):
            _common_device("in-place op", [self, v])
            return v._data
        return v

    def copy_(self, src) -> "Tensor":
        self._check_inplace("copy_")
        v = src._data if isinstance(src, Tensor) else src
        if isinstance(src, Tensor) and src.device != self.device:
            v = src.to(self.device)._data
        self._backend.xp.copyto(self._data, self._backend.xp.asarray(v).astype(self.dtype, copy=False))
        return self

    def zero_(self) -> "Tensor":
        self._check_inplace("zero_")
        self._data[...] = 0
        return self

    def fill_(self, value) -> "Tensor":
        self._check_inplace("fill_")
        self._data[...] = value
        return self

    def add_(self, other, alpha=1) -> "Tensor":
        self._check_inplace("add_")
        v = self._value(other)
        self._data += v * alpha if alpha != 1 else v
        return self

    def sub_(self, other, alpha=1) -> "Tensor":
        return self.add_(other, alpha=-alpha)

    def mul_(self, other) -> "Tensor":
        self._check_inplace("mul_")
        self._data *= self._value(other)
        return self

    def div_(self, other) -> "Tensor":
        self._check_inplace("div_")
        self._data /= self._value(other)
        return self

    def clamp_(self, min=None, max=None) -> "Tensor":  # noqa: A002
        self._check_inplace("clamp_")
        self._backend.xp.clip(self._data, min, max, out=self._data)
        return self

    def uniform_(self, a=0.0, b=1.0) -> "Tensor":
        self._check_inplace("uniform_")
        r = rand(*self.shape, dtype=self.dtype, device=self.device)._data
        self._data[...] = r * (b - a) + a
        return self

    def normal_(self, mean=0.0, std=1.0) -> "Tensor":
        self._check_inplace("normal_")
        r = randn(*self.shape, dtype=self.dtype, device=self.device)._data
        self._data[...] = r * std + mean
        return self

    def __setitem__(self, index, value):
        self._check_inplace("__setitem__")
        if isinstance(value, Tensor) and value.requires_grad:
            from .autograd.grad_mode import is_grad_enabled

            if is_grad_enabled():
                raise RuntimeError("__setitem__: assigning a tensor that requires grad is not "
                                   "recorded; build the result with where/cat instead")
        try:
            self._data[_ops.index_arrays(index, self)] = self._value(value)
        except (IndexError, ValueError) as e:
            raise type(e)(f"__setitem__: indexing {tuple(self.shape)}: {e}") from None

    # ---- printing --------------------------------------------------------------
    def __repr__(self):
        a = self._backend.to_numpy(self._data)
        body = np.array2string(a.astype(np.float32) if a.dtype == dt.bfloat16 else a,
                               separator=", ", prefix="tensor(", precision=4)
        extra = []
        if self.dtype not in (dt.float32, dt.int64, dt.bool_):
            extra.append(f"dtype=pydl.{self.dtype}")
        if self.is_cuda:
            extra.append("device='cuda:0'")
        if self._grad_fn is not None:
            extra.append(f"grad_fn=<{self._grad_fn.fn.__name__}Backward>"
                         if hasattr(self._grad_fn, "fn") else "grad_fn")
        elif self.requires_grad:
            extra.append("requires_grad=True")
        return "tensor(" + body + "".join(", " + e for e in extra) + ")"

    __hash__ = object.__hash__


class Size(tuple):
    """Shape of a tensor: a tuple, printed like PyTorch's."""

    def numel(self) -> int:
        n = 1
        for s in self:
            n *= s
        return n

    def __repr__(self):
        return f"pydl.Size({list(self)})"


_DeviceType = device


def _common_device(op: str, tensors) -> str:
    """The device all tensors live on; DeviceError when they disagree."""
    dev = None
    for t in tensors:
        d = "cpu" if _is_cpu_array(t._data) else "cuda"
        if dev is None:
            dev = d
        elif d != dev:
            raise DeviceError(f"{op}: expected all tensors on the same device, got {dev} and {d}")
    return dev or "cpu"


# ---- creation --------------------------------------------------------------------

def _array_module(dev):
    from . import backend

    return backend.get(dev.type).xp


def _infer_dtype(data):
    """PyTorch's inference: Python floats -> float32, ints -> int64, bools -> bool."""
    if isinstance(data, np.generic):
        return dt.as_dtype(data.dtype)
    if isinstance(data, builtins.bool):
        return dt.bool_
    if isinstance(data, numbers.Integral):
        return dt.int64
    if isinstance(data, numbers.Real):
        return dt.default_float
    if isinstance(data, (list, tuple)):
        try:
            flat = np.asarray(data)
        except ValueError:  # NumPy refuses ragged nesting outright
            raise ValueError("tensor(): nested sequences have inconsistent lengths (ragged)") from None
        if flat.dtype == np.float64:
            return dt.default_float
        if flat.dtype.kind in "iu":
            return dt.int64
        if flat.dtype == np.bool_:
            return dt.bool_
        if flat.dtype == object:
            raise TypeError("tensor(): could not infer a dtype from a nested sequence "
                            "(ragged or mixed types)")
        return flat.dtype
    return None


def tensor(data, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """A new tensor copied from data (a number, nested sequence, NumPy/CuPy array or Tensor)."""
    dtype = dt.as_dtype(dtype)
    if isinstance(data, Tensor):
        dev = as_device(device) if device is not None else data.device
        t = data.detach().to(dev).to(dtype or data.dtype, copy=True)
        t = Tensor._wrap(t._data.copy() if t._data is data._data else t._data)
        return t.requires_grad_(requires_grad) if requires_grad else t
    src_is_cpu = isinstance(data, (np.ndarray, np.generic, list, tuple, numbers.Number))
    if not src_is_cpu and not hasattr(data, "dtype"):
        raise TypeError(f"tensor(): expected a number, a nested sequence or an array, got "
                        f"{type(data).__name__}")
    if device is None and not src_is_cpu and hasattr(data, "__cuda_array_interface__"):
        device = "cuda"
    dev = as_device(device)
    if dtype is None:
        dtype = _infer_dtype(data)
        if dtype is None:
            dtype = dt.as_dtype(data.dtype)
    xp = _array_module(dev)
    if dev.type == "cpu" and not src_is_cpu and hasattr(data, "__cuda_array_interface__"):
        import cupy

        data = cupy.asnumpy(data)
    arr = xp.array(data if dtype != dt.bfloat16 or isinstance(data, np.ndarray)
                   else np.asarray(data, dtype=np.float32), dtype=dtype, copy=True)
    t = Tensor._wrap(arr)
    if requires_grad:
        t.requires_grad_(True)
    return t


def from_numpy(a: np.ndarray) -> Tensor:
    """A CPU tensor sharing memory with a NumPy array."""
    if not isinstance(a, np.ndarray):
        raise TypeError(f"from_numpy: expected a NumPy array, got {type(a).__name__}")
    dt.as_dtype(a.dtype)
    return Tensor._wrap(a)


def _shape_args(size, op):
    if len(size) == 1 and isinstance(size[0], (tuple, list, Size)):
        size = tuple(size[0])
    try:
        shape = tuple(operator.index(s) for s in size)
    except TypeError:
        raise TypeError(f"{op}: size must be integers, got {size!r}") from None
    if any(s < 0 for s in shape):
        raise ValueError(f"{op}: negative dimension in shape {shape}")
    return shape


def _allocate(op, shape, dtype, make):
    """make() under a check of the size: ValueError for a size no address space holds,
    pydl's OutOfMemoryError (naming the op) when the allocator fails."""
    nbytes = math.prod(shape) * np.dtype(dtype).itemsize
    if nbytes > sys.maxsize:
        raise ValueError(f"{op}: shape {shape} of {dtype} would take {nbytes} bytes, more than "
                         "an address space holds")
    try:
        return make()
    except MemoryError as e:
        raise out_of_memory(op, e, nbytes) from e


def _new(op, fill, size, dtype, device, requires_grad):
    shape = _shape_args(size, op)
    dtype = dt.as_dtype(dtype) or dt.default_float
    xp = _array_module(as_device(device))
    t = Tensor._wrap(_allocate(op, shape, dtype, lambda: fill(xp, shape, dtype)))
    return t.requires_grad_(True) if requires_grad else t


def zeros(*size, dtype=None, device=None, requires_grad=False) -> Tensor:
    return _new("zeros", lambda xp, s, d: xp.zeros(s, d), size, dtype, device, requires_grad)


def ones(*size, dtype=None, device=None, requires_grad=False) -> Tensor:
    return _new("ones", lambda xp, s, d: xp.ones(s, d), size, dtype, device, requires_grad)


def empty(*size, dtype=None, device=None, requires_grad=False) -> Tensor:
    return _new("empty", lambda xp, s, d: xp.empty(s, d), size, dtype, device, requires_grad)


def full(size, fill_value, dtype=None, device=None, requires_grad=False) -> Tensor:
    if dtype is None:
        dtype = _infer_dtype(fill_value)
    return _new("full", lambda xp, s, d: xp.full(s, fill_value, d), (size,), dtype, device,
                requires_grad)


def eye(n, m=None, dtype=None, device=None, requires_grad=False) -> Tensor:
    return _new("eye", lambda xp, s, d: xp.eye(*s, dtype=d), (n, n if m is None else m), dtype,
                device, requires_grad)


def arange(start, end=None, step=1, dtype=None, device=None, requires_grad=False) -> Tensor:
    if end is None:
        start, end = 0, start
    if dtype is None:
        ints = all(isinstance(v, numbers.Integral) for v in (start, end, step))
        dtype = dt.int64 if ints else dt.default_float
    if step == 0:
        raise ValueError("arange: step must be nonzero")
    n = builtins.max(0, math.ceil((end - start) / step))
    return _new("arange", lambda xp, s, d: xp.arange(start, end, step).astype(d), (n,), dtype,
                device, requires_grad)


def linspace(start, end, steps, dtype=None, device=None, requires_grad=False) -> Tensor:
    return _new("linspace", lambda xp, s, d: xp.linspace(start, end, s[0]).astype(d), (steps,),
                dtype, device, requires_grad)


def _random(kind, size, dtype, device, requires_grad):
    from . import random as _random_state

    shape = _shape_args(size, kind)
    dtype = dt.as_dtype(dtype) or dt.default_float
    if not dt.is_floating(dtype):
        raise TypeError(f"{kind}: dtype must be floating point, got {dtype}")
    dev = as_device(device)
    # Draw on the CPU from the seeded generator, so a seed gives the same numbers on
    # every device (initialisation is not a hot path).
    from .backend import cpu

    gen = _random_state.generator()
    draw = cpu.random_uniform if kind == "rand" else cpu.random_normal
    t = Tensor._wrap(_allocate(kind, shape, dtype, lambda: draw(gen, shape, dtype)))
    if dev.type != "cpu":
        t = t.to(dev)
    return t.requires_grad_(True) if requires_grad else t


def rand(*size, dtype=None, device=None, requires_grad=False) -> Tensor:
    return _random("rand", size, dtype, device, requires_grad)


def randn(*size, dtype=None, device=None, requires_grad=False) -> Tensor:
    return _random("randn", size, dtype, device, requires_grad)


def randint(low, high=None, size=(), dtype=None, device=None) -> Tensor:
    from . import random as _random_state
    from .backend import cpu

    if high is None:
        low, high = 0, low
    if high <= low:
        raise ValueError(f"randint: empty range [{low}, {high})")
    dtype = dt.as_dtype(dtype) or dt.int64
    shape = _shape_args((size,), "randint")
    arr = _allocate("randint", shape, dtype,
                    lambda: cpu.random_integers(_random_state.generator(), low, high, shape, dtype))
    t = Tensor._wrap(arr)
    return t.to(device) if device is not None else t


def randperm(n, dtype=None, device=None) -> Tensor:
    from . import random as _random_state

    dtype = dt.as_dtype(dtype) or dt.int64
    (n,) = _shape_args((n,), "randperm")
    arr = _allocate("randperm", (n,), dtype,
                    lambda: _random_state.generator().permutation(n).astype(dtype))
    t = Tensor._wrap(arr)
    return t.to(device) if device is not None else t


def _like(fn, t, dtype, device, requires_grad, *args):
    return fn(*args, *t.shape, dtype=dtype or t.dtype, device=device or t.device,
              requires_grad=requires_grad) if args == () else fn(t.shape, *args, dtype=dtype or t.dtype,
                                                                 device=device or t.device,
                                                                 requires_grad=requires_grad)


def zeros_like(t, dtype=None, device=None, requires_grad=False):
    return _like(zeros, t, dtype, device, requires_grad)


def ones_like(t, dtype=None, device=None, requires_grad=False):
    return _like(ones, t, dtype, device, requires_grad)


def empty_like(t, dtype=None, device=None, requires_grad=False):
    return _like(empty, t, dtype, device, requires_grad)


def rand_like(t, dtype=None, device=None, requires_grad=False):
    return _like(rand, t, dtype, device, requires_grad)


def randn_like(t, dtype=None, device=None, requires_grad=False):
    return _like(randn, t, dtype, device, requires_grad)


def full_like(t, fill_value, dtype=None, device=None, requires_grad=False):
    return _like(full, t, dtype, device, requires_grad, fill_value)


from . import _ops  # noqa: E402  (ops need Tensor defined)
