"""CPU backend: NumPy arrays, the C++ kernels of pydl._C.cpu, NumPy's BLAS for
matrix products. Half-precision inputs are widened to float32 for the kernels
and the result is narrowed back, so every dtype gets the same numerics."""
from __future__ import annotations

import numpy as np
import scipy.special

from .. import _C
from .. import dtypes as dt
from . import rng

name = "cpu"
xp = np
_k = _C.cpu
_HALF = (dt.float16, dt.bfloat16)


def asarray(data, dtype=None):
    return np.asarray(data, dtype=dtype)


def to_numpy(a):
    return a


def from_numpy(a):
    return a


def ascontiguous(a):
    return np.ascontiguousarray(a)


def _wide(a):
    """Kernel input: contiguous, half types widened to float32."""
    if a.dtype in _HALF:
        a = a.astype(np.float32)
    return np.ascontiguousarray(a)


def _narrow(out, dtype):
    return out.astype(dtype) if out.dtype != dtype else out


# ---- matrix products ---------------------------------------------------------------

def matmul(a, b):
    if a.dtype in _HALF:
        return np.matmul(a.astype(np.float32), b.astype(np.float32)).astype(a.dtype)
    return np.matmul(a, b)


def linear(x, weight, bias=None):
    y = matmul(x, weight.T)
    if bias is not None:
        y += bias
    return y


# ---- softmax -----------------------------------------------------------------------

def softmax_forward(x, log: bool):
    """softmax or log_softmax over the last dimension."""
    if x.size == 0:  # the kernels' contiguity check rejects NumPy's zero strides of empty arrays
        return np.empty(x.shape, x.dtype)
    xw = _wide(x)
    y = np.empty_like(xw)
    _k.softmax_forward(xw, y, log)
    return _narrow(y, x.dtype)


def softmax_backward(y, dy, log: bool):
    if y.size == 0:
        return np.empty(y.shape, y.dtype)
    yw, dyw = _wide(y), _wide(dy)
    dx = np.empty_like(yw)
    _k.softmax_backward(yw, dyw, dx, log)
    return _narrow(dx, y.dtype)


# ---- normalisation -----------------------------------------------------------------

def layer_norm_forward(x, weight, bias, eps: float, rms: bool = False):
    """x is (rows, cols); returns (y, mean, rstd) with mean/rstd of shape (rows,)."""
    xw = _wide(x)
    w = None if weight is None else _wide(weight)
    b = None if bias is None else _wide(bias)
    rows = xw.shape[0] if xw.ndim else 1
    if xw.size == 0:
        return np.empty(x.shape, x.dtype), np.zeros(rows, xw.dtype), np.zeros(rows, xw.dtype)
    y = np.empty_like(xw)
    mean = np.empty(rows, xw.dtype)
    rstd = np.empty(rows, xw.dtype)
    _k.layer_norm_forward(xw, w, b, y, mean, rstd, float(eps), rms)
    return _narrow(y, x.dtype), mean, rstd


def layer_norm_backward(x, weight, mean, rstd, dy, rms: bool, need_weight: bool, need_bias: bool):
    xw, dyw = _wide(x), _wide(dy)
    w = None if weight is None else _wide(weight)
    dx = np.empty_like(xw)
    cols = xw.shape[-1]
    dw = np.zeros(cols, xw.dtype) if need_weight else None
    db = np.zeros(cols, xw.dtype) if need_bias else None
    if xw.size == 0:
        pdt = x.dtype if weight is None else weight.dtype
        return (np.empty(x.shape, x.dtype), None if dw is None else _narrow(dw, pdt),
                None if db is None else _narrow(db, pdt))
    _k.layer_norm_backward(xw, w, mean, rstd, dyw, dx, dw, db, rms)
    pdt = x.dtype if weight is None else weight.dtype
    return (_narrow(dx, x.dtype), None if dw is None else _narrow(dw, pdt),
            None if db is None else _narrow(db, pdt))


# ---- convolution -------------------------------------------------------------------
# NCHW arrays; stride, padding (top, left), dilation are pairs. The output's spatial size is
# passed where padding may be asymmetric ("same" with an even window pads more at the end).

def conv2d_forward(x, weight, bias, stride, padding, dilation, groups, out_hw):
    xw, ww = _wide(x), _wide(weight)
    bw = None if bias is None else _wide(bias)
    y = np.empty((x.shape[0], weight.shape[0]) + tuple(out_hw), xw.dtype)
    _k.conv2d_forward(xw, ww, bw, y, *stride, *padding, *dilation, groups)
    return _narrow(y, x.dtype)


def conv2d_backward_input(dy, weight, in_shape, stride, padding, dilation, groups):
    dyw, ww = _wide(dy), _wide(weight)
    dx = np.empty(tuple(in_shape), dyw.dtype)
    _k.conv2d_backward_input(dyw, ww, dx, *stride, *padding, *dilation, groups)
    return _narrow(dx, dy.dtype)


def conv2d_backward_weight(x, dy, weight_shape, stride, padding, dilation, groups):
    xw, dyw = _wide(x), _wide(dy)
    dw = np.empty(tuple(weight_shape), xw.dtype)
    _k.conv2d_backward_weight(xw, dyw, dw, *stride, *padding, *dilation, groups)
    return _narrow(dw, x.dtype)


# ---- losses ------------------------------------------------------------------------

def cross_entropy_forward(logits, target, ignore_index: int, label_smoothing: float):
    """logits (N, C), target int64 (N,) -> (per-row loss, per-row log-sum-exp)."""
    xw = _wide(logits)
    n = xw.shape[0]
    loss = np.empty(n, xw.dtype)
    lse = np.empty(n, xw.dtype)
    if n == 0:
        return loss, lse
    _k.cross_entropy_forward(xw, np.ascontiguousarray(target), loss, lse, int(ignore_index),
                             float(label_smoothing))
    return loss, lse


def cross_entropy_backward(logits, target, lse, dloss, ignore_index: int, label_smoothing: float):
    xw = _wide(logits)
    dx = np.empty_like(xw)
    if xw.size == 0:
        return _narrow(dx, logits.dtype)
    _k.cross_entropy_backward(xw, np.ascontiguousarray(target), lse,
                              np.ascontiguousarray(dloss, dtype=xw.dtype), dx,
                              int(ignore_index), float(label_smoothing))
    return _narrow(dx, logits.dtype)


# ---- elementwise helpers NumPy lacks --------------------------------------------

def erf(x):
    if x.dtype in _HALF:
        return scipy.special.erf(x.astype(np.float32)).astype(x.dtype)
    return scipy.special.erf(x)


# ---- scatter / gather --------------------------------------------------------------

def index_add_rows(out, index, src):
    """out[index[i]] += src[i], duplicates accumulating; in place."""
    np.add.at(out, index, src)
    return out


def index_add_at(out, index, values):
    """out[index] += values for an advanced (fancy) index, duplicates accumulating."""
    np.add.at(out, index, values)
    return out


def embedding_backward(grad_out, indices, num_embeddings: int, padding_idx=None):
    dim = grad_out.shape[-1]
    gw = np.zeros((num_embeddings, dim), grad_out.dtype)
    np.add.at(gw, indices.reshape(-1), grad_out.reshape(-1, dim))
    if padding_idx is not None:
        gw[padding_idx] = 0
    return gw


# ---- random ------------------------------------------------------------------------

def dropout(x, p: float, seed: int, offset: int):
    """Returns (y, keep_mask) with y = x * keep / (1 - p); the mask is drawn from the
    counter-based stream, so the GPU draws the same mask for the same seed and offset."""
    keep = rng.uniform(seed, offset, x.size).reshape(x.shape) >= p
    scale = np.asarray(1.0 / (1.0 - p), dtype=x.dtype)
    return x * keep * scale, keep


def random_uniform(gen: np.random.Generator, shape, dtype):
    return gen.random(shape, dtype=np.float32 if dtype in _HALF else dtype).astype(dtype, copy=False)


def random_normal(gen: np.random.Generator, shape, dtype):
    w = np.float32 if dtype in _HALF else dtype
    return gen.standard_normal(shape, dtype=w).astype(dtype, copy=False)


def random_integers(gen: np.random.Generator, low, high, shape, dtype):
    return gen.integers(low, high, size=shape, dtype=dtype)


# ---- attention ---------------------------------------------------------------------

def attention_forward(q, k, v, mask, scale: float, is_causal: bool, dropout_p: float = 0.0,
                      seed: int = 0, offset: int = 0):
    """Fused attention. q (B, L, E), k (B, S, E), v (B, S, Ev); mask None or an additive
    view (B1, B2, L, S) with B1*B2 = B (zero strides where broadcast). Returns
    (out (B, L, Ev), lse (B, L)); the L x S scores are never stored."""
    qw, kw, vw = _wide(q), _wide(k), _wide(v)
    mw = None if mask is None else (mask.astype(qw.dtype) if mask.dtype != qw.dtype else mask)
    out = np.empty(qw.shape[:2] + (vw.shape[2],), qw.dtype)
    lse = np.empty(qw.shape[:2], qw.dtype)
    _k.attention_forward(qw, kw, vw, mw, out, lse, float(scale), bool(is_causal),
                         float(dropout_p), int(seed), int(offset))
    return _narrow(out, q.dtype), lse


def attention_backward(q, k, v, mask, out, lse, dout, scale: float, is_causal: bool,
                       dropout_p: float = 0.0, seed: int = 0, offset: int = 0):
    """Gradients (dq, dk, dv) of attention_forward, recomputing the probabilities tile by tile
    from the saved log-sum-exp."""
    qw, kw, vw, ow, gw = _wide(q), _wide(k), _wide(v), _wide(out), _wide(dout)
    mw = None if mask is None else (mask.astype(qw.dtype) if mask.dtype != qw.dtype else mask)
    dq, dk, dv = np.empty_like(qw), np.empty_like(kw), np.empty_like(vw)
    _k.attention_backward(qw, kw, vw, mw, ow, np.ascontiguousarray(lse), gw, dq, dk, dv,
                          float(scale), bool(is_causal), float(dropout_p), int(seed), int(offset))
    return _narrow(dq, q.dtype), _narrow(dk, k.dtype), _narrow(dv, v.dtype)
