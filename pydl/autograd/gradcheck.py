"""Finite-difference gradient check in float64."""
from __future__ import annotations

import numpy as np


def gradcheck(fn, inputs, eps: float = 1e-6, atol: float = 1e-5, rtol: float = 1e-3,
              raise_exception: bool = True) -> bool:
    """Compare the analytic gradient of sum(fn(*inputs) * w), for a random weight w,
    with central differences of the same scalar, for every float64 input that
    requires grad. Inputs must be float64 CPU tensors (others are passed through)."""
    from ..tensor import Tensor

    inputs = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
    checked = [i for i, t in enumerate(inputs) if isinstance(t, Tensor) and t.requires_grad]
    if not checked:
        raise ValueError("gradcheck: no input requires grad")
    for i in checked:
        if inputs[i].dtype != np.float64:
            raise TypeError(f"gradcheck: input {i} is {inputs[i].dtype}; use float64 inputs")

    def outputs():
        out = fn(*inputs)
        return out if isinstance(out, (tuple, list)) else (out,)

    rng = np.random.default_rng(1234)
    outs = outputs()
    weights = [rng.standard_normal(o.shape) for o in outs]

    def scalar_value():
        from .grad_mode import no_grad

        with no_grad():
            return float(sum((o.detach().numpy().astype(np.float64) * w).sum()
                             for o, w in zip(outputs(), weights)))

    for i in checked:
        inputs[i].grad = None
    total = None
    for o, w in zip(outs, weights):
        if o.requires_grad:
            term = (o * Tensor._wrap(w.astype(o.dtype))).sum()
            total = term if total is None else total + term
    if total is not None:
        total.backward()
    ok = True
    for i in checked:
        x = inputs[i]
        analytic = np.zeros(x.shape) if x.grad is None else x.grad.numpy().copy()
        numeric = np.zeros(x.shape)
        flat = x._data.reshape(-1)
        if not np.shares_memory(flat, x._data):
            raise ValueError("gradcheck: inputs must be contiguous")
        for j in range(flat.size):
            orig = flat[j]
            flat[j] = orig + eps
            hi = scalar_value()
            flat[j] = orig - eps
            lo = scalar_value()
            flat[j] = orig
            numeric.reshape(-1)[j] = (hi - lo) / (2 * eps)
        if not np.allclose(analytic, numeric, atol=atol, rtol=rtol):
            ok = False
            if raise_exception:
                err = np.abs(analytic - numeric).max()
                raise AssertionError(f"gradcheck: gradient of input {i} differs from finite "
                                     f"differences by up to {err:.3g}\nanalytic:\n{analytic}\n"
                                     f"numeric:\n{numeric}")
    return ok
