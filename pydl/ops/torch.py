"""pydl's kernels as differentiable PyTorch functions.

    import pydl.ops.torch as pt
    y = pt.layer_norm(x, (512,), weight, bias)   # trains like torch.nn.functional.layer_norm

Forward and backward run the same Function code as pydl's own autograd, on the
PyTorch tensors' memory (zero-copy) and, on the GPU, on PyTorch's current stream.
"""
from __future__ import annotations

import torch as _torch

from .._ops import nn as _nn
from . import run_backward, run_forward


def _autograd(fn, op: str, names: tuple):
    class _Op(_torch.autograd.Function):
        @staticmethod
        def forward(ctx, kwargs, *tensors):
            out, pctx, lib = run_forward(fn, op, dict(zip(names, tensors)),
                                         needs=tuple(ctx.needs_input_grad[1:]), **kwargs)
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
