"""Gradient clipping and flat parameter vectors, like torch.nn.utils.

The clipping functions work in place on the gradients' arrays and never
bring a value back to the host unless asked to (error_if_nonfinite), so on
the GPU they queue work without synchronising.
"""
from __future__ import annotations

import math

import numpy as np

from .. import backend
from .. import dtypes as dt
from ..tensor import Tensor


def _grads(parameters) -> list:
    if isinstance(parameters, Tensor):
        parameters = [parameters]
    return [p.grad for p in parameters if p.grad is not None]


def _on(a, be):
    """Array a moved to backend be (a no-op when it is there already)."""
    src = backend.of_array(a)
    if src is be:
        return a
    return src.to_numpy(a) if be is backend.cpu else be.from_numpy(src.to_numpy(a))


def _vector_norm(a, p: float):
    """The p-norm of all elements of array a, a 0-d array; half types are summed in float32."""
    xp = backend.of_array(a).xp
    if a.dtype in (dt.float16, dt.bfloat16):
        a = a.astype(np.float32)
    if a.size == 0:
        return xp.zeros((), a.dtype)
    if p == math.inf:
        return xp.max(xp.abs(a))
    if p == 1:
        return xp.sum(xp.abs(a))
    if p == 2:
        return xp.sqrt(xp.sum(a * a))
    return xp.sum(xp.abs(a) ** p) ** (1 / p)


def clip_grad_norm_(parameters, max_norm: float, norm_type: float = 2.0,
                    error_if_nonfinite: bool = False) -> Tensor:
    """Scale the gradients of `parameters` in place so that their joint norm is at most max_norm.

    The joint norm is the norm_type-norm of all gradients seen as one vector (inf: the
    largest absolute value). Gradients are multiplied by min(1, max_norm / (norm + 1e-6)).
    Returns the norm before clipping, as a 0-d tensor on the first gradient's device.
    """
    max_norm = float(max_norm)
    norm_type = float(norm_type)
    if not norm_type > 0:
        raise ValueError(f"norm_type must be positive or inf, got {norm_type}")
    grads = _grads(parameters)
    if not grads:
        return Tensor._wrap(np.zeros((), np.float32))
    first = grads[0]._backend
    xp = first.xp
    out_dtype = dt.result_type(*(g.dtype for g in grads))
    norms = [_on(_vector_norm(g._data, norm_type), first) for g in grads]
    wide = dt.result_type(*(n.dtype for n in norms))
    total = _vector_norm(xp.stack([n.astype(wide) for n in norms]), norm_type)
    if error_if_nonfinite and not bool(xp.isfinite(total)):
        raise RuntimeError(f"the total norm of order {norm_type} of the gradients is non-finite, "
                           "so they cannot be clipped; pass error_if_nonfinite=False to scale "
                           "them by it anyway")
    coef = xp.minimum(max_norm / (total + 1e-6), 1.0)
    for g in grads:
        g._data *= _on(coef, g._backend).astype(g.dtype)
    return Tensor._wrap(xp.asarray(total, dtype=out_dtype))


def clip_grad_value_(parameters, clip_value: float) -> None:
    """Clamp every gradient of `parameters` in place to [-clip_value, clip_value]."""
    clip_value = float(clip_value)
    for g in _grads(parameters):
        g._backend.xp.clip(g._data, -clip_value, clip_value, out=g._data)


def parameters_to_vector(parameters) -> Tensor:
    """All parameters flattened and concatenated into one 1-d tensor (recorded by autograd)."""
    from .. import cat

    params = [parameters] if isinstance(parameters, Tensor) else list(parameters)
    return cat([p.reshape(-1) for p in params])


def vector_to_parameters(vec: Tensor, parameters) -> None:
    """Copy consecutive slices of the 1-d tensor vec into the parameters, in place."""
    if not isinstance(vec, Tensor) or vec.ndim != 1:
        raise TypeError("vector_to_parameters: vec must be a 1-d Tensor")
    params = [parameters] if isinstance(parameters, Tensor) else list(parameters)
    total = sum(p.numel() for p in params)
    if total != vec.numel():
        raise ValueError(f"vector_to_parameters: vec has {vec.numel()} elements, the parameters "
                         f"{total}")
    offset = 0
    for p in params:
        n = p.numel()
        piece = _on(vec._data[offset:offset + n], p._backend).reshape(p._data.shape)
        p._data[...] = piece.astype(p.dtype, copy=False)
        offset += n
