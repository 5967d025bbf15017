"""Parity helpers: `check_op` runs an op in pydl and in PyTorch on the same fresh
random inputs, forward and backward, and compares outputs and input gradients;
`gradcheck` runs pydl's finite-difference check on fresh float64 inputs."""
from __future__ import annotations

import itertools
import os

import numpy as np
import torch

import pydl

# PyTorch's OpenMP pool and pydl's kernels' spin-wait against each other on a small machine
# (tens of ms per tiny op); the oracle needs no threads.
torch.set_num_threads(1)

# (atol, rtol) for pydl against PyTorch in the same dtype.
TOL = {"float64": (1e-9, 1e-7), "float32": (2e-5, 2e-4), "float16": (5e-3, 5e-3),
       "bfloat16": (3e-2, 3e-2)}

_TORCH_DTYPE = {"float64": torch.float64, "float32": torch.float32, "float16": torch.float16,
                "int64": torch.int64, "int32": torch.int32, "bool": torch.bool}

# PYDL_TEST_SEED shifts every draw: run with a few values to shake out tolerance flukes.
_seed = itertools.count(int(os.environ.get("PYDL_TEST_SEED", "1")) * 100003)


def fresh_rng():
    """A new generator per call: every test sees different values, each run the same ones."""
    return np.random.default_rng(next(_seed))


def rand_array(shape, low=-2.0, high=2.0, positive=False, rng=None, dtype=np.float64):
    """Uniform values in [low, high] with none at or near zero (|x| >= 0.05 of the range)."""
    rng = rng or fresh_rng()
    if positive:
        low = max(low, 0.1)
    a = rng.uniform(low, high, size=shape)
    near = np.abs(a) < 0.05 * (high - low)
    a = np.where(near, np.where(a >= 0, 1.0, -1.0) * 0.05 * (high - low) + a, a)
    if positive:
        a = np.clip(a, max(low, 0.1), None)
    return np.asarray(a, dtype=dtype)


def to_numpy(t) -> np.ndarray:
    if isinstance(t, torch.Tensor):
        t = t.detach()
        return (t.float() if t.dtype == torch.bfloat16 else t).numpy()
    return np.asarray(t.detach().cpu().numpy())


def assert_close(actual, expected, atol, rtol, what=""):
    a, e = to_numpy(actual) if not isinstance(actual, np.ndarray) else actual, \
        to_numpy(expected) if not isinstance(expected, np.ndarray) else expected
    assert a.shape == e.shape, f"{what}: shape {a.shape} != {e.shape}"
    assert not np.isnan(a).any() or np.array_equal(np.isnan(a), np.isnan(e)), \
        f"{what}: NaN where the reference has none"
    np.testing.assert_allclose(a.astype(np.float64), e.astype(np.float64), atol=atol, rtol=rtol,
                               err_msg=what, equal_nan=True)


def _make_leaf_pair(arr, dtype, device, layout, requires_grad):
    """(pydl leaf, torch leaf, pydl input, torch input). layout 'T' stores the leaf
    transposed and feeds the op its (non-contiguous) transpose; 'step' stores twice
    the last dim and feeds the op every other column."""
    name = np.dtype(dtype).name
    if layout == "T" and arr.ndim >= 2:
        stored = np.ascontiguousarray(arr.T)
    elif layout == "step" and arr.ndim >= 1:
        stored = np.repeat(arr, 2, axis=-1)
        stored[..., 1::2] = 7.0  # never read by the op
    else:
        stored = arr
    p = pydl.tensor(stored.astype(dtype), device=device, requires_grad=requires_grad)
    t = torch.tensor(stored.astype(dtype), dtype=_TORCH_DTYPE[name], requires_grad=requires_grad)
    if layout == "T" and arr.ndim >= 2:
        pi, ti = p.permute(*reversed(range(arr.ndim))), t.permute(*reversed(range(arr.ndim)))
        assert not pi.is_contiguous() or sum(s > 1 for s in arr.shape) < 2
    elif layout == "step" and arr.ndim >= 1:
        pi, ti = p[..., ::2], t[..., ::2]
        assert not pi.is_contiguous() or arr.shape[-1] <= 1
    else:
        pi, ti = p, t
    return p, t, pi, ti


def check_op(shapes, torch_fn, pydl_fn, dtype=np.float32, device="cpu", atol=None, rtol=None,
             grad=True, low=-2.0, high=2.0, positive=False, layout=None, inputs=None,
             grad_atol=None, grad_rtol=None):
    """Forward and backward parity of pydl_fn against torch_fn.

    shapes: one shape per float input (values drawn fresh, never zero); or pass
    `inputs`, a list of float64 arrays. layout: None, 'T' or 'step' (non-contiguous
    inputs). The backward pass is sum(output * w) for a random weight w per output.
    Returns (pydl outputs, torch outputs) for extra checks."""
    dtype = np.dtype(dtype)
    d_atol, d_rtol = TOL[dtype.name]
    atol = d_atol if atol is None else atol
    rtol = d_rtol if rtol is None else rtol
    grad_atol = atol if grad_atol is None else grad_atol
    grad_rtol = rtol if grad_rtol is None else grad_rtol
    rng = fresh_rng()
    if inputs is None:
        inputs = [rand_array(s, low, high, positive, rng) for s in shapes]
    pairs = [_make_leaf_pair(np.asarray(a, np.float64), dtype, device, layout, grad)
             for a in inputs]
    p_out = pydl_fn(*(q[2] for q in pairs))
    t_out = torch_fn(*(q[3] for q in pairs))
    p_outs = p_out if isinstance(p_out, (tuple, list)) else (p_out,)
    t_outs = t_out if isinstance(t_out, (tuple, list)) else (t_out,)
    assert len(p_outs) == len(t_outs), "different number of outputs"
    for i, (po, to) in enumerate(zip(p_outs, t_outs)):
        assert isinstance(po, pydl.Tensor), f"output {i} is {type(po).__name__}, not a Tensor"
        assert to_numpy(po).dtype == to_numpy(to).dtype or to.dtype == torch.bfloat16, \
            f"output {i}: dtype {po.dtype} != torch {to.dtype}"
        assert tuple(po.shape) == tuple(to.shape), f"output {i}: shape {tuple(po.shape)} != {tuple(to.shape)}"
        assert_close(po, to, atol, rtol, f"forward output {i}")
    if not grad:
        return p_out, t_out
    p_loss = t_loss = None
    for po, to in zip(p_outs, t_outs):
        if not to.requires_grad:
            continue
        assert po.requires_grad, "pydl output does not require grad where torch's does"
        w = rng.standard_normal(tuple(to.shape))
        pw = pydl.tensor(w.astype(po.dtype), device=device)
        tw = torch.tensor(w, dtype=to.dtype)
        pl, tl = (po * pw).sum(), (to * tw).sum()
        p_loss = pl if p_loss is None else p_loss + pl
        t_loss = tl if t_loss is None else t_loss + tl
    assert t_loss is not None, "no differentiable output"
    p_loss.backward()
    t_loss.backward()
    for i, (p, _, _, _) in enumerate(pairs):
        t = pairs[i][1]
        if t.grad is None:
            assert p.grad is None or not np.any(to_numpy(p.grad)), f"input {i}: unexpected gradient"
            continue
        assert p.grad is not None, f"input {i}: no gradient"
        assert p.grad.dtype == p.dtype, f"input {i}: gradient dtype {p.grad.dtype} != {p.dtype}"
        assert_close(p.grad, t.grad, grad_atol, grad_rtol, f"gradient of input {i}")
    return p_out, t_out


def gradcheck(fn, shapes=None, low=-2.0, high=2.0, positive=False, inputs=None, atol=1e-6,
              rtol=1e-4):
    """pydl.autograd.gradcheck on fresh float64 leaves (one per shape, or `inputs`)."""
    rng = fresh_rng()
    if inputs is None:
        inputs = [rand_array(s, low, high, positive, rng) for s in shapes]
    leaves = [pydl.tensor(np.asarray(a, np.float64), requires_grad=True) for a in inputs]
    assert pydl.autograd.gradcheck(fn, leaves, eps=1e-6, atol=atol, rtol=rtol)
