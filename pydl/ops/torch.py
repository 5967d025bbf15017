"""pydl's kernels as differentiable PyTorch functions.

    import pydl.ops.torch as pt
    y = pt.layer_norm(x, (512,), weight, bias)   # trains like torch.nn.functional.layer_norm

Forward and backward run the same Function code as pydl's own autograd, on the
PyTorch tensors' memory (zero-copy) and, on the GPU, on PyTorch's current stream.
"""
from __future__ import annotations

import torch as _torch

from .._ops import attention as _attention
from .._ops import conv as _conv
from .._ops import nn as _nn
from . import run_backward, run_forward


def _autograd(fn, op: str, names: tuple, check=None):
    class _Op(_torch.autograd.Function):
        @staticmethod
        def forward(ctx, kwargs, *tensors):
            out, pctx, lib = run_forward(fn, op, dict(zip(names, tensors)),
                                         needs=tuple(ctx.needs_input_grad[1:]), check=check,
                                         **kwargs)
            ctx.pctx, ctx.lib, ctx.like = pctx, lib, [t for t in tensors if t is not None][:1]
            return out

        @staticmethod
        def backward(ctx, *grads):
            gs = run_backward(fn, ctx.pctx, ctx.lib, *grads, like=ctx.like)
            return (None, *gs[:len(names)], *([None] * (len(names) - len(gs))))

    _Op.__name__ = _Op.__qualname__ = f"{op}_pydl"
    return _Op


_Softmax = _autograd(_nn.Softmax, "softmax", ("x",))
_LayerNorm = _autograd(_nn.LayerNorm, "layer_norm", ("x", "weight", "bias"))
_CrossEntropy = _autograd(_nn.CrossEntropy, "cross_entropy", ("logits", "target"))
_Conv2d = _autograd(_conv.Conv2d, "conv2d", ("input", "weight", "bias"))
_Attention = _autograd(_attention.ScaledDotProductAttention, "attention",
                       ("query", "key", "value", "attn_mask"),
                       check=lambda q, k, v, m, dropout_p=0.0, **_: _attention.check_arrays(
                           "attention", q, k, v, m, dropout_p))


def softmax(x, dim: int = -1):
    return _Softmax.apply({"dim": dim}, x)


def log_softmax(x, dim: int = -1):
    return _Softmax.apply({"dim": dim, "log": True}, x)


def layer_norm(x, normalized_shape, weight=None, bias=None, eps: float = 1e-5):
    return _LayerNorm.apply({"normalized_shape": tuple(normalized_shape) if not isinstance(
        normalized_shape, int) else normalized_shape, "eps": eps}, x, weight, bias)


def rms_norm(x, normalized_shape, weight=None, eps: float = 1e-6):
    return _LayerNorm.apply({"normalized_shape": normalized_shape, "eps": eps, "rms": True},
                            x, weight, None)


def cross_entropy(logits, target, ignore_index: int = -100, label_smoothing: float = 0.0,
                  reduction: str = "mean"):
    return _CrossEntropy.apply({"ignore_index": ignore_index, "label_smoothing": label_smoothing,
                                "reduction": reduction}, logits, target)


def attention(query, key, value, attn_mask=None, is_causal: bool = False, scale=None,
              dropout_p: float = 0.0):
    """Like torch.nn.functional.scaled_dot_product_attention; gradients flow to query, key,
    value and a float attn_mask (not with dropout). Dropout draws from pydl's generator
    (pydl.manual_seed)."""
    return _Attention.apply({"dropout_p": float(dropout_p), "is_causal": bool(is_causal), "scale": scale},
                    query, key, value, attn_mask)


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):  # noqa: A002
    return _Conv2d.apply({"stride": stride, "padding": padding, "dilation": dilation,
                          "groups": groups}, input, weight, bias)
