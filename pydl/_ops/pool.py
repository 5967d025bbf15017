"""Pooling and nearest upsampling as vectorised array code over the backend's xp
(NumPy or CuPy): max_pool2d (indices saved for the backward), avg_pool2d,
adaptive_avg_pool2d and nearest interpolation. Window ops loop over the kh*kw
window offsets, each a strided slice of the whole batch; adaptive pooling and
nearest resizing are separable, so they are two small matrix products."""
from __future__ import annotations

import math

from .. import dtypes as dt
from ..autograd.function import Function
from .conv import pair


def _check_input(op, x):
    if x.ndim != 4:
        raise ValueError(f"{op}: expected a 4-D input (N, C, H, W), got shape {tuple(x.shape)}")
    if not dt.is_floating(x.dtype):
        raise TypeError(f"{op}: input must be floating point, got {x.dtype}")


def _out_size(op, size, k, s, p, d, ceil_mode):
    if p > (d * (k - 1) + 1) // 2:
        raise ValueError(f"{op}: padding {p} must be at most half the effective kernel size "
                         f"{d * (k - 1) + 1}")
    span = size + 2 * p - d * (k - 1) - 1
    out = (-(-span // s) if ceil_mode else span // s) + 1
    if ceil_mode and (out - 1) * s >= size + p:  # the last window must start inside the input
        out -= 1
    if out < 1:
        raise ValueError(f"{op}: output size {out} is less than 1 for input size {size}, kernel "
                         f"{k}, stride {s}, padding {p}, dilation {d}")
    return out


def _window_args(op, kernel_size, stride, padding, dilation=1):
    k = pair(op, "kernel_size", kernel_size)
    s = k if stride is None or (not isinstance(stride, int) and len(stride) == 0) \
        else pair(op, "stride", stride)
    p = pair(op, "padding", padding, allow_zero=True)
    d = pair(op, "dilation", dilation)
    return k, s, p, d


def _padded(xp, x, p, full_h, full_w, value):
    n, c, h, w = x.shape
    out = xp.full((n, c, full_h, full_w), value, dtype=x.dtype)
    out[:, :, p[0]:p[0] + h, p[1]:p[1] + w] = x
    return out


class MaxPool2d(Function):
    non_differentiable_outputs = (1,)

    @staticmethod
    def forward(ctx, x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False):
        op = "max_pool2d"
        _check_input(op, x)
        xp = ctx.backend.xp
        k, s, p, d = _window_args(op, kernel_size, stride, padding, dilation)
        n, c, h, w = x.shape
        oh = _out_size(op, h, k[0], s[0], p[0], d[0], ceil_mode)
        ow = _out_size(op, w, k[1], s[1], p[1], d[1], ceil_mode)
        full_h = max(h + 2 * p[0], (oh - 1) * s[0] + d[0] * (k[0] - 1) + 1)
        full_w = max(w + 2 * p[1], (ow - 1) * s[1] + d[1] * (k[1] - 1) + 1)
        xpad = _padded(xp, x, p, full_h, full_w, -xp.inf)
        best = idx = None
        rows = xp.arange(oh).reshape(oh, 1) * s[0] - p[0]
        cols = xp.arange(ow).reshape(1, ow) * s[1] - p[1]
        for i in range(k[0]):
            for j in range(k[1]):
                v = xpad[:, :, i * d[0]:i * d[0] + (oh - 1) * s[0] + 1:s[0],
                         j * d[1]:j * d[1] + (ow - 1) * s[1] + 1:s[1]]
                flat = (rows + i * d[0]) * w + (cols + j * d[1])
                if best is None:
                    best = v.copy()
                    idx = xp.broadcast_to(flat, v.shape).copy()
                else:
                    take = (v > best) | xp.isnan(v)  # the first maximum wins; NaN propagates
                    best = xp.where(take, v, best)
                    idx = xp.where(take, flat, idx)
        ctx.save_for_backward(idx)
        ctx.in_shape = x.shape
        return best, idx.astype(xp.int64)

    @staticmethod
    def backward(ctx, g, _=None):
        xp = ctx.backend.xp
        (idx,) = ctx.saved_tensors
        n, c, h, w = ctx.in_shape
        dx = xp.zeros(n * c * h * w, dtype=g.dtype)
        base = (xp.arange(n * c) * (h * w)).reshape(n, c, 1, 1)
        ctx.backend.index_add_at(dx, (idx + base).reshape(-1), g.reshape(-1))
        return dx.reshape(n, c, h, w)


class AvgPool2d(Function):
    @staticmethod
    def forward(ctx, x, kernel_size, stride=None, padding=0, ceil_mode=False,
                count_include_pad=True, divisor_override=None):
        op = "avg_pool2d"
        _check_input(op, x)
        xp = ctx.backend.xp
        k, s, p, _ = _window_args(op, kernel_size, stride, padding)
        if divisor_override is not None and (not isinstance(divisor_override, int)
                                             or divisor_override == 0):
            raise ValueError(f"{op}: divisor_override must be a non-zero int, got "
                             f"{divisor_override!r}")
        n, c, h, w = x.shape
        oh = _out_size(op, h, k[0], s[0], p[0], 1, ceil_mode)
        ow = _out_size(op, w, k[1], s[1], p[1], 1, ceil_mode)
        full_h = max(h + 2 * p[0], (oh - 1) * s[0] + k[0])
        full_w = max(w + 2 * p[1], (ow - 1) * s[1] + k[1])
        xpad = _padded(xp, x, p, full_h, full_w, 0)
        acc = xp.zeros((n, c, oh, ow), dtype=x.dtype)
        for i in range(k[0]):
            for j in range(k[1]):
                acc += xpad[:, :, i:i + (oh - 1) * s[0] + 1:s[0], j:j + (ow - 1) * s[1] + 1:s[1]]
        if divisor_override is not None:
            div = xp.full((oh, ow), float(divisor_override), dtype=x.dtype)
        else:
            div = (_counts(xp, oh, h, k[0], s[0], p[0], count_include_pad).reshape(oh, 1)
                   * _counts(xp, ow, w, k[1], s[1], p[1], count_include_pad).reshape(1, ow))
            div = div.astype(x.dtype)
        ctx.args = (k, s, p, oh, ow, full_h, full_w, x.shape)
        ctx.save_for_backward(div)
        return acc / div

    @staticmethod
    def backward(ctx, g):
        xp = ctx.backend.xp
        (div,) = ctx.saved_tensors
        k, s, p, oh, ow, full_h, full_w, shape = ctx.args
        n, c, h, w = shape
        gd = g / div
        dpad = xp.zeros((n, c, full_h, full_w), dtype=g.dtype)
        for i in range(k[0]):
            for j in range(k[1]):
                dpad[:, :, i:i + (oh - 1) * s[0] + 1:s[0], j:j + (ow - 1) * s[1] + 1:s[1]] += gd
        return dpad[:, :, p[0]:p[0] + h, p[1]:p[1] + w]


def _counts(xp, out, size, k, s, p, include_pad):
    """Window lengths along one axis: clipped to the padded input, and to the input
    itself unless padding counts."""
    start = xp.arange(out) * s - p
    end = xp.minimum(start + k, size + p)
    if include_pad:
        return end - start
    return xp.minimum(end, size) - xp.maximum(start, 0)


def _adaptive_matrix(xp, out, size, dtype):
    """(out, size) averaging matrix: row o averages [floor(o*size/out), ceil((o+1)*size/out))."""
    m = xp.zeros((out, size), dtype=dtype)
    for o in range(out):
        a, b = (o * size) // out, -(-((o + 1) * size) // out)
        m[o, a:b] = 1.0 / (b - a)
    return m


class SeparableResample(Function):
    """y = Mh @ x @ Mw^T over the last two dims (adaptive average pooling, nearest resize)."""

    @staticmethod
    def forward(ctx, x, mh, mw):
        ctx.save_for_backward(mh, mw)
        return ctx.backend.matmul(ctx.backend.matmul(mh, x), mw.T).astype(x.dtype, copy=False)

    @staticmethod
    def backward(ctx, g):
        mh, mw = ctx.saved_tensors
        return ctx.backend.matmul(ctx.backend.matmul(mh.T, g), mw), None, None


def adaptive_avg_matrices(xp, x, output_size):
    op = "adaptive_avg_pool2d"
    if x.ndim not in (3, 4):
        raise ValueError(f"{op}: expected a 3-D or 4-D input, got shape {tuple(x.shape)}")
    if not dt.is_floating(x.dtype):
        raise TypeError(f"{op}: input must be floating point, got {x.dtype}")
    os_ = (output_size, output_size) if isinstance(output_size, int) or output_size is None \
        else tuple(output_size)
    if len(os_) != 2:
        raise ValueError(f"{op}: output_size must be an int or a pair, got {output_size!r}")
    h, w = x.shape[-2:]
    oh = h if os_[0] is None else os_[0]
    ow = w if os_[1] is None else os_[1]
    if not (isinstance(oh, int) and isinstance(ow, int)) or oh < 1 or ow < 1 or h < 1 or w < 1:
        raise ValueError(f"{op}: output_size must be positive ints and the input non-empty, "
                         f"got output_size {output_size!r} for input {tuple(x.shape)}")
    wide = x.dtype if x.dtype in (dt.float32, dt.float64) else dt.float32
    return _adaptive_matrix(xp, oh, h, wide), _adaptive_matrix(xp, ow, w, wide)


def nearest_matrices(xp, x, size, scale_factor):
    """One-hot (out, in) selection matrices: out index o reads floor(o * scale), where
    scale is 1/scale_factor when given and in/out otherwise (PyTorch's 'nearest')."""
    op = "interpolate"
    if x.ndim not in (3, 4):
        raise ValueError(f"{op}: mode 'nearest' takes a 3-D or 4-D input, got shape "
                         f"{tuple(x.shape)}")
    if not dt.is_floating(x.dtype):
        raise TypeError(f"{op}: input must be floating point, got {x.dtype}")
    nsp = x.ndim - 2
    ins = tuple(x.shape[2:])
    if (size is None) == (scale_factor is None):
        raise ValueError(f"{op}: give exactly one of size and scale_factor")
    if size is not None:
        outs = (size,) * nsp if isinstance(size, int) else tuple(size)
        scales = [i / o if o > 0 else 0 for i, o in zip(ins, outs)]
    else:
        sf = (scale_factor,) * nsp if isinstance(scale_factor, (int, float)) else tuple(scale_factor)
        if len(sf) != nsp or any(f <= 0 for f in sf):
            raise ValueError(f"{op}: scale_factor must be positive, one per spatial dim, got "
                             f"{scale_factor!r}")
        outs = tuple(int(math.floor(i * f)) for i, f in zip(ins, sf))
        scales = [1.0 / f for f in sf]
    if len(outs) != nsp or any(o < 1 for o in outs):
        raise ValueError(f"{op}: output size {outs} must be positive, one per spatial dim")
    wide = x.dtype if x.dtype in (dt.float32, dt.float64) else dt.float32
    mats = []
    for i, o, sc in zip(ins, outs, scales):
        src = [min(int(math.floor(j * sc)), i - 1) for j in range(o)]
        m = xp.zeros((o, i), dtype=wide)
        m[xp.arange(o), xp.asarray(src)] = 1
        mats.append(m)
    if nsp == 1:
        mats.insert(0, xp.ones((1, 1), dtype=wide))
    return mats
