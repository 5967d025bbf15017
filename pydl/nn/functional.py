"""pydl.nn.functional (imported as F): the ops models are built from."""
from __future__ import annotations

from .. import _ops
from .. import dtypes as dt
from .._ops import nn as _nn
from .._ops import gelu, leaky_relu, elu, relu, sigmoid, silu, softplus, tanh, pad  # noqa: F401
from ..tensor import Tensor, _common_device


def _check_tensor(op, name, t):
    if not isinstance(t, Tensor):
        raise TypeError(f"{op}: {name} must be a tensor, got {type(t).__name__}")


def softmax(input, dim=-1, dtype=None):  # noqa: A002
    _check_tensor("softmax", "input", input)
    if dtype is not None:
        input = input.to(dtype)
    return _nn.Softmax.apply(input, dim=dim)


def log_softmax(input, dim=-1, dtype=None):  # noqa: A002
    _check_tensor("log_softmax", "input", input)
    if dtype is not None:
        input = input.to(dtype)
    return _nn.Softmax.apply(input, dim=dim, log=True)


def linear(input, weight, bias=None):  # noqa: A002
    _check_tensor("linear", "input", input)
    _common_device("linear", [t for t in (input, weight, bias) if t is not None])
    return _ops.Linear.apply(input, weight, bias)


def layer_norm(input, normalized_shape, weight=None, bias=None, eps=1e-5):  # noqa: A002
    _check_tensor("layer_norm", "input", input)
    _common_device("layer_norm", [t for t in (input, weight, bias) if t is not None])
    return _nn.LayerNorm.apply(input, weight, bias, normalized_shape=normalized_shape, eps=eps)


def rms_norm(input, normalized_shape, weight=None, eps=None):  # noqa: A002
    _check_tensor("rms_norm", "input", input)
    _common_device("rms_norm", [t for t in (input, weight) if t is not None])
    if eps is None:
        import numpy as np

        eps = float(np.finfo(np.float32 if input.dtype == dt.bfloat16 else input.dtype).eps)
    return _nn.LayerNorm.apply(input, weight, None, normalized_shape=normalized_shape, eps=eps,
                               rms=True)


def batch_norm(input, running_mean, running_var, weight=None, bias=None, training=False,  # noqa: A002
               momentum=0.1, eps=1e-5):
    _check_tensor("batch_norm", "input", input)
    _common_device("batch_norm", [t for t in (input, running_mean, running_var, weight, bias)
                                  if t is not None])
    rm = None if running_mean is None else running_mean._data
    rv = None if running_var is None else running_var._data
    return _nn.BatchNorm.apply(input, weight, bias, running_mean=rm, running_var=rv,
                               training=training, momentum=momentum, eps=eps)


def dropout(input, p=0.5, training=True):  # noqa: A002
    if not isinstance(p, (int, float)):
        raise TypeError(f"dropout: p must be a number, got {type(p).__name__}")
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout: p must be in [0, 1], got {p}")
    if not training or p == 0.0:
        return input
    if p == 1.0:
        return input * 0.0
    return _nn.Dropout.apply(input, p=p)


def embedding(input, weight, padding_idx=None):  # noqa: A002
    _check_tensor("embedding", "input", input)
    _common_device("embedding", [input, weight])
    if padding_idx is not None and padding_idx < 0:
        padding_idx += weight.shape[0]
    return _nn.Embedding.apply(weight, input, padding_idx=padding_idx)


def _check_loss_devices(op, input, target):
    _check_tensor(op, "input", input)
    _check_tensor(op, "target", target)
    _common_device(op, [input, target])


def cross_entropy(input, target, ignore_index=-100, reduction="mean", label_smoothing=0.0):  # noqa: A002
    _check_loss_devices("cross_entropy", input, target)
    return _nn.CrossEntropy.apply(input, target, ignore_index=ignore_index,
                                  label_smoothing=label_smoothing, reduction=reduction)


def nll_loss(input, target, ignore_index=-100, reduction="mean"):  # noqa: A002
    _check_loss_devices("nll_loss", input, target)
    return _nn.NLLLoss.apply(input, target, ignore_index=ignore_index, reduction=reduction)


def _reduce(loss, reduction, op):
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    if reduction == "none":
        return loss
    raise ValueError(f"{op}: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


def _same_shape(op, input, target):
    _check_loss_devices(op, input, target)
    if input.shape != target.shape:
        raise ValueError(f"{op}: target shape {tuple(target.shape)} differs from input shape "
                         f"{tuple(input.shape)}")


def mse_loss(input, target, reduction="mean"):  # noqa: A002
    _same_shape("mse_loss", input, target)
    d = input - target
    return _reduce(d * d, reduction, "mse_loss")


def l1_loss(input, target, reduction="mean"):  # noqa: A002
    _same_shape("l1_loss", input, target)
    return _reduce((input - target).abs(), reduction, "l1_loss")


def smooth_l1_loss(input, target, reduction="mean", beta=1.0):  # noqa: A002
    _same_shape("smooth_l1_loss", input, target)
    d = (input - target).abs()
    loss = _ops.where(d < beta, 0.5 * d * d / beta, d - 0.5 * beta) if beta > 0 else d
    return _reduce(loss, reduction, "smooth_l1_loss")


def huber_loss(input, target, reduction="mean", delta=1.0):  # noqa: A002
    _same_shape("huber_loss", input, target)
    d = (input - target).abs()
    loss = _ops.where(d < delta, 0.5 * d * d, delta * (d - 0.5 * delta))
    return _reduce(loss, reduction, "huber_loss")


def binary_cross_entropy_with_logits(input, target, reduction="mean", pos_weight=None):  # noqa: A002
    _check_loss_devices("binary_cross_entropy_with_logits", input, target)
    if pos_weight is not None:
        _common_device("binary_cross_entropy_with_logits", [input, pos_weight])
    return _nn.BCEWithLogits.apply(input, target, pos_weight, reduction=reduction)


def one_hot(tensor, num_classes=-1):
    if tensor.dtype.kind not in "iu":
        raise TypeError(f"one_hot: expected integer class indices, got {tensor.dtype}")
    xp = tensor._backend.xp
    n = int(tensor._data.max()) + 1 if num_classes < 0 else num_classes
    if tensor.numel() and (int(tensor._data.min()) < 0 or int(tensor._data.max()) >= n):
        raise IndexError(f"one_hot: class values must be in [0, {n})")
    return Tensor._wrap((tensor._data[..., None] == xp.arange(n)).astype(xp.int64))


# ---- convolution and pooling (pydl/_ops/conv.py, pydl/_ops/pool.py) ----------------

def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):  # noqa: A002
    from .._ops.conv import Conv2d
    _check_tensor("conv2d", "input", input)
    _common_device("conv2d", [t for t in (input, weight, bias) if t is not None])
    return Conv2d.apply(input, weight, bias, stride=stride, padding=padding, dilation=dilation,
                        groups=groups)


def _one_d(v):
    return v if isinstance(v, str) else (1, v if isinstance(v, int) else tuple(v)[0])


def conv1d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):  # noqa: A002
    _check_tensor("conv1d", "input", input)
    if input.ndim != 3 or weight.ndim != 3:
        raise ValueError(f"conv1d: expected a 3-D input (N, C, L) and a 3-D weight, got shapes "
                         f"{tuple(input.shape)} and {tuple(weight.shape)}")
    padding_2d = padding if isinstance(padding, str) else (0, _one_d(padding)[1])
    y = conv2d(input.unsqueeze(2), weight.unsqueeze(2), bias, _one_d(stride), padding_2d,
               _one_d(dilation), groups)
    return y.squeeze(2)


def conv_transpose2d(input, weight, bias=None, stride=1, padding=0, output_padding=0,  # noqa: A002
                     groups=1, dilation=1):
    from .._ops.conv import ConvTranspose2d
    _check_tensor("conv_transpose2d", "input", input)
    _common_device("conv_transpose2d", [t for t in (input, weight, bias) if t is not None])
    return ConvTranspose2d.apply(input, weight, bias, stride=stride, padding=padding,
                                 output_padding=output_padding, groups=groups, dilation=dilation)


def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,  # noqa: A002
               return_indices=False):
    from .._ops.pool import MaxPool2d
    _check_tensor("max_pool2d", "input", input)
    y, idx = MaxPool2d.apply(input, kernel_size, stride=stride, padding=padding,
                             dilation=dilation, ceil_mode=ceil_mode)
    return (y, idx) if return_indices else y


def avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False,  # noqa: A002
               count_include_pad=True, divisor_override=None):
    from .._ops.pool import AvgPool2d
    _check_tensor("avg_pool2d", "input", input)
    return AvgPool2d.apply(input, kernel_size, stride=stride, padding=padding, ceil_mode=ceil_mode,
                           count_include_pad=count_include_pad, divisor_override=divisor_override)


def adaptive_avg_pool2d(input, output_size):  # noqa: A002
    from .._ops.pool import SeparableResample, adaptive_avg_matrices
    _check_tensor("adaptive_avg_pool2d", "input", input)
    mh, mw = adaptive_avg_matrices(input._backend.xp, input._data, output_size)
    return SeparableResample.apply(input, mh, mw)


def interpolate(input, size=None, scale_factor=None, mode="nearest", align_corners=None,  # noqa: A002
                recompute_scale_factor=None):
    from .._ops.pool import SeparableResample, nearest_matrices
    _check_tensor("interpolate", "input", input)
    if mode != "nearest":
        raise ValueError(f"interpolate: only mode='nearest' is supported, got {mode!r}")
    if align_corners is not None:
        raise ValueError("interpolate: align_corners applies only to linear modes")
    if recompute_scale_factor and scale_factor is not None:
        size, scale_factor = tuple(int(s * f) for s, f in zip(
            input.shape[2:], (scale_factor,) * (input.ndim - 2)
            if isinstance(scale_factor, (int, float)) else scale_factor)), None
    mh, mw = nearest_matrices(input._backend.xp, input._data, size, scale_factor)
    if input.ndim == 3:
        n, c, length = input.shape
        return SeparableResample.apply(input.reshape(n, c, 1, length), mh, mw).squeeze(2)
    return SeparableResample.apply(input, mh, mw)
from .._ops.attention import scaled_dot_product_attention  # noqa: E402,F401
