"""Convolution ops over the backend's conv2d kernels (conv2d_forward,
conv2d_backward_input, conv2d_backward_weight): conv2d and conv_transpose2d on
NCHW arrays. The transposed convolution is the conv2d input gradient run
forward, so both share the same three kernels."""
from __future__ import annotations

from .. import dtypes as dt
from ..autograd.function import Function


def pair(op, name, v, allow_zero=False):
    """An int or a pair of ints -> a pair, checked positive (non-negative if allow_zero)."""
    t = (v, v) if isinstance(v, int) else tuple(v)
    if len(t) == 1:
        t = (t[0], t[0])
    if len(t) != 2 or not all(isinstance(i, int) for i in t):
        raise ValueError(f"{op}: {name} must be an int or a pair of ints, got {v!r}")
    low = 0 if allow_zero else 1
    if any(i < low for i in t):
        kind = "non-negative" if allow_zero else "positive"
        raise ValueError(f"{op}: {name} must be {kind}, got {v!r}")
    return t


def _check_arrays(op, x, weight, bias, wdim):
    if x.ndim != 4:
        raise ValueError(f"{op}: expected a 4-D input (N, C, H, W), got shape {tuple(x.shape)}")
    if weight.ndim != 4:
        raise ValueError(f"{op}: expected a 4-D weight, got shape {tuple(weight.shape)}")
    if weight.shape[2] < 1 or weight.shape[3] < 1:
        raise ValueError(f"{op}: kernel size must be positive, got weight of shape "
                         f"{tuple(weight.shape)}")
    if not dt.is_floating(x.dtype):
        raise TypeError(f"{op}: input must be floating point, got {x.dtype}")
    for name, a in (("weight", weight), ("bias", bias)):
        if a is not None and a.dtype != x.dtype:
            raise TypeError(f"{op}: {name} has dtype {a.dtype}, input has {x.dtype}")
    if bias is not None and tuple(bias.shape) != (wdim,):
        raise ValueError(f"{op}: bias has shape {tuple(bias.shape)}, expected ({wdim},)")


def conv_padding(op, padding, kernel, stride, dilation):
    """Padding as ((top, bottom), (left, right)); 'same' pads the odd extra at the end."""
    if isinstance(padding, str):
        if padding == "valid":
            return (0, 0), (0, 0)
        if padding == "same":
            if stride != (1, 1):
                raise ValueError(f"{op}: padding='same' needs stride 1, got stride {stride}")
            out = []
            for k, d in zip(kernel, dilation):
                total = d * (k - 1)
                out.append((total // 2, total - total // 2))
            return tuple(out)
        raise ValueError(f"{op}: padding must be 'same', 'valid' or ints, got {padding!r}")
    ph, pw = pair(op, "padding", padding, allow_zero=True)
    return (ph, ph), (pw, pw)


def plan(op, x, weight, bias, stride, padding, dilation, groups):
    """Check a conv2d call; returns the kernels' arguments (stride, (top, left) padding,
    dilation, groups) and the output's (height, width)."""
    _check_arrays(op, x, weight, bias, weight.shape[0] if weight.ndim == 4 else -1)
    stride = pair(op, "stride", stride)
    dilation = pair(op, "dilation", dilation)
    if not isinstance(groups, int) or groups < 1:
        raise ValueError(f"{op}: groups must be a positive int, got {groups!r}")
    n, c, h, w = x.shape
    oc, cg, kh, kw = weight.shape
    if c % groups or oc % groups:
        raise ValueError(f"{op}: input channels {c} and output channels {oc} must both be "
                         f"divisible by groups={groups}")
    if cg != c // groups:
        raise ValueError(f"{op}: weight of shape {tuple(weight.shape)} expects "
                         f"{cg * groups} input channels with groups={groups}, got {c}")
    (pt, pb), (pl, pr) = conv_padding(op, padding, (kh, kw), stride, dilation)
    oh = (h + pt + pb - dilation[0] * (kh - 1) - 1) // stride[0] + 1
    ow = (w + pl + pr - dilation[1] * (kw - 1) - 1) // stride[1] + 1
    if oh < 1 or ow < 1:
        raise ValueError(f"{op}: output size ({oh}, {ow}) is less than 1 for input "
                         f"{tuple(x.shape)}, kernel ({kh}, {kw}), padding, stride {stride} "
                         f"and dilation {dilation}")
    return (stride, (pt, pl), dilation, groups), (oh, ow)


class Conv2d(Function):
    @staticmethod
    def forward(ctx, x, weight, bias, stride=1, padding=0, dilation=1, groups=1):
        ctx.args, out_hw = plan("conv2d", x, weight, bias, stride, padding, dilation, groups)
        ctx.save_for_backward(x, weight)
        ctx.has_bias = bias is not None
        return ctx.backend.conv2d_forward(x, weight, bias, *ctx.args, out_hw)

    @staticmethod
    def backward(ctx, g):
        x, weight = ctx.saved_tensors
        need = ctx.needs_input_grad
        g = ctx.backend.ascontiguous(g)
        dx = ctx.backend.conv2d_backward_input(g, weight, x.shape, *ctx.args) if need[0] else None
        dw = ctx.backend.conv2d_backward_weight(x, g, weight.shape, *ctx.args) if need[1] else None
        db = g.sum(axis=(0, 2, 3)) if ctx.has_bias and need[2] else None
        return dx, dw, db


class ConvTranspose2d(Function):
    """The gradient of conv2d with respect to its input, as a layer: weight is
    (in_channels, out_channels / groups, kh, kw)."""

    @staticmethod
    def forward(ctx, x, weight, bias, stride=1, padding=0, output_padding=0, groups=1,
                dilation=1):
        op = "conv_transpose2d"
        if not isinstance(groups, int) or groups < 1:
            raise ValueError(f"{op}: groups must be a positive int, got {groups!r}")
        _check_arrays(op, x, weight, bias,
                      weight.shape[1] * groups if weight.ndim == 4 else -1)
        stride = pair(op, "stride", stride)
        dilation = pair(op, "dilation", dilation)
        padding = pair(op, "padding", padding, allow_zero=True)
        output_padding = pair(op, "output_padding", output_padding, allow_zero=True)
        n, c, h, w = x.shape
        ic, ocg, kh, kw = weight.shape
        if ic != c:
            raise ValueError(f"{op}: weight of shape {tuple(weight.shape)} expects {ic} input "
                             f"channels, got {c}")
        if c % groups:
            raise ValueError(f"{op}: input channels {c} must be divisible by groups={groups}")
        for o, s, d in zip(output_padding, stride, dilation):
            if o >= s and o >= d:
                raise ValueError(f"{op}: output_padding {output_padding} must be smaller than "
                                 f"stride {stride} or dilation {dilation}")
        oh = (h - 1) * stride[0] - 2 * padding[0] + dilation[0] * (kh - 1) + output_padding[0] + 1
        ow = (w - 1) * stride[1] - 2 * padding[1] + dilation[1] * (kw - 1) + output_padding[1] + 1
        if oh < 1 or ow < 1:
            raise ValueError(f"{op}: output size ({oh}, {ow}) is less than 1 for input "
                             f"{tuple(x.shape)}")
        ctx.args = (stride, padding, dilation, groups)
        ctx.save_for_backward(x, weight)
        ctx.has_bias = bias is not None
        xc = ctx.backend.ascontiguous(x)
        y = ctx.backend.conv2d_backward_input(xc, weight, (n, ocg * groups, oh, ow), *ctx.args)
        if bias is not None:
            y += bias.reshape(1, -1, 1, 1)
        return y

    @staticmethod
    def backward(ctx, g):
        x, weight = ctx.saved_tensors
        need = ctx.needs_input_grad
        g = ctx.backend.ascontiguous(g)
        dx = dw = db = None
        if need[0]:
            dx = ctx.backend.conv2d_forward(g, weight, None, *ctx.args, tuple(x.shape[2:]))
        if need[1]:
            dw = ctx.backend.conv2d_backward_weight(g, ctx.backend.ascontiguous(x), weight.shape,
                                                    *ctx.args)
        if ctx.has_bias and need[2]:
            db = g.sum(axis=(0, 2, 3))
        return dx, dw, db
