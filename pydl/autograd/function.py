"""The define-by-run graph.

An op is a subclass of `Function` with two static methods written against the
backend interface (arrays in, arrays out):

    class Mul(Function):
        @staticmethod
        def forward(ctx, a, b):
            ctx.save_for_backward(a, b)
            return a * b

        @staticmethod
        def backward(ctx, g):
            a, b = ctx.saved_tensors
            return g * b, g * a

`Mul.apply(x, y)` unwraps the tensors, runs forward on their backend and, if
any input needs a gradient, records the call as a node of the graph. Backward
may return gradients in the broadcast shape of the forward: `backward()` sums
them back to each input's shape in one place (`unbroadcast`).
"""
from __future__ import annotations

import re

from ..errors import out_of_memory
from .grad_mode import is_grad_enabled


class Context:
    """What a node keeps between forward and backward."""

    __slots__ = ("backend", "needs_input_grad", "saved_tensors", "inputs", "n_outputs",
                 "fn", "__dict__", "__weakref__")

    def save_for_backward(self, *arrays):
        self.saved_tensors = arrays

    def mark_non_differentiable(self, *_):
        pass


class Function:
    @staticmethod
    def forward(ctx, *args, **kwargs):
        raise NotImplementedError

    @staticmethod
    def backward(ctx, *grads):
        raise NotImplementedError

    # Outputs at these positions never carry gradients (indices, masks).
    non_differentiable_outputs: tuple = ()

    @classmethod
    def op_name(cls) -> str:
        """The op's name in messages: the class name in snake case (MaxPool2d -> max_pool2d)."""
        return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", cls.__name__).lower()

    @classmethod
    def apply(cls, *args, **kwargs):
        from ..tensor import Tensor, _common_device

        tensors = [a for a in args if isinstance(a, Tensor)]
        device = _common_device(cls.__name__, tensors)
        from .. import backend as _backend

        ctx = Context()
        ctx.backend = _backend.get(device)
        raw = [a._data if isinstance(a, Tensor) else a for a in args]
        requires = is_grad_enabled() and any(t.requires_grad for t in tensors)
        ctx.needs_input_grad = tuple(isinstance(a, Tensor) and a.requires_grad for a in args)
        ctx.saved_tensors = ()
        try:
            out = cls.forward(ctx, *raw, **kwargs)
        except MemoryError as e:  # name the op; on the GPU, free the pool's cache for a retry
            raise out_of_memory(cls.op_name(), e) from e
        multi = isinstance(out, tuple)
        outs = out if multi else (out,)
        results = []
        for i, o in enumerate(outs):
            t = Tensor._wrap(o)
            if requires and i not in cls.non_differentiable_outputs and _float_kind(o):
                t.requires_grad = True
                t._grad_fn = ctx
                t._output_idx = i
            results.append(t)
        if requires:
            ctx.fn = cls
            ctx.inputs = tuple(a if isinstance(a, Tensor) and a.requires_grad else None
                               for a in args)
            ctx.n_outputs = len(outs)
            if multi:
                ctx.out_meta = [(o.shape, o.dtype) for o in outs]
            from . import anomaly

            if anomaly.is_enabled():
                anomaly.check_forward(cls.__name__, outs)
        return tuple(results) if multi else results[0]


def _float_kind(a) -> bool:
    return a.dtype.kind == "f" or a.dtype.name == "bfloat16"


def unbroadcast(grad, shape):
    """Sum a gradient of a broadcast result back to an input's shape."""
    if grad.shape == tuple(shape):
        return grad
    extra = grad.ndim - len(shape)
    if extra > 0:
        grad = grad.sum(axis=tuple(range(extra)))
    axes = tuple(i for i, s in enumerate(shape) if s == 1 and grad.shape[i] != 1)
    if axes:
        grad = grad.sum(axis=axes, keepdims=True)
    return grad.reshape(shape)


def _topological_order(root_ctx):
    """Nodes reachable from root_ctx, each after every node that consumes its outputs."""
    order, seen = [], {id(root_ctx)}
    stack = [(root_ctx, iter(root_ctx.inputs))]
    while stack:
        node, it = stack[-1]
        for inp in it:
            parent = inp._grad_fn if inp is not None else None
            if parent is not None and id(parent) not in seen:
                seen.add(id(parent))
                stack.append((parent, iter(parent.inputs)))
                break
        else:
            stack.pop()
            order.append(node)
    order.reverse()
    return order


def backward(tensor, grad=None, retain_graph: bool = False):
    """Accumulate d(tensor)/d(leaf) into every leaf's .grad."""
    from ..tensor import Tensor

    if not tensor.requires_grad:
        raise RuntimeError("backward: tensor does not require grad and has no grad_fn")
    if grad is None:
        if tensor.numel() != 1:
            raise RuntimeError("backward: grad can be implicitly created only for scalar outputs; "
                               f"got shape {tuple(tensor.shape)}")
        grad = tensor._backend.xp.ones(tensor.shape, dtype=tensor.dtype)
    elif isinstance(grad, Tensor):
        grad = grad._data
    if tuple(grad.shape) != tuple(tensor.shape):
        raise RuntimeError(f"backward: grad has shape {tuple(grad.shape)}, "
                           f"expected {tuple(tensor.shape)}")
    if tensor._grad_fn is None:  # a leaf
        tensor._accumulate_grad(grad)
        return
    from . import anomaly

    root = tensor._grad_fn
    pending = {id(root): [None] * root.n_outputs}
    pending[id(root)][tensor._output_idx] = grad
    for node in _topological_order(root):
        out_grads = pending.pop(id(node), None)
        if out_grads is None:
            continue
        if node.saved_tensors is None:
            raise RuntimeError(f"{node.fn.__name__}.backward: the graph was already freed; "
                               "pass retain_graph=True to backward() the first time")
        if node.n_outputs > 1:  # outputs that received no gradient get zeros
            out_grads = [g if g is not None else node.backend.xp.zeros(s, d)
                         for g, (s, d) in zip(out_grads, node.out_meta)]
        try:
            in_grads = node.fn.backward(node, *out_grads)
        except MemoryError as e:
            raise out_of_memory(f"{node.fn.op_name()}.backward", e) from e
        if not isinstance(in_grads, tuple):
            in_grads = (in_grads,)
        if anomaly.is_enabled():
            anomaly.check_backward(node.fn.__name__, in_grads)
        for inp, g in zip(node.inputs, in_grads):
            if inp is None or g is None:
                continue
            # asarray: NumPy reductions of 0-d results give scalars, not arrays.
            g = node.backend.asarray(unbroadcast(g, inp.shape))
            if g.dtype != inp.dtype:
                g = g.astype(inp.dtype)
            if inp._grad_fn is None:
                inp._accumulate_grad(g)
            else:
                if inp._retains_grad:
                    inp._accumulate_grad(g)
                slot = pending.setdefault(id(inp._grad_fn), [None] * inp._grad_fn.n_outputs)
                k = inp._output_idx
                slot[k] = g if slot[k] is None else slot[k] + g
        if not retain_graph:
            node.saved_tensors = None
            node.__dict__.clear()
