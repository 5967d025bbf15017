"""Adam and AdamW, step for step like torch.optim.Adam / AdamW.

Each parameter's update is one call, `_adam_update`, on raw arrays with the
argument list of the fused kernel `pydl.backend.numba_kernels.adam_step`, so
a CUDA parameter can be handed to that kernel in place of the array code.
"""
from __future__ import annotations

import numpy as np

from ..backend import of_array
from ..tensor import Tensor
from .optimizer import Optimizer, _check_range


def _lerp_(start, end, weight):
    """start += weight * (end - start) in place, rounded like torch.lerp."""
    if weight < 0.5:
        start += weight * (end - start)
    else:
        start[...] = end - (end - start) * (1 - weight)


def _adam_update(param, grad, exp_avg, exp_avg_sq, lr, beta1, beta2, eps, weight_decay, step,
                 decoupled, amsgrad=False, max_exp_avg_sq=None):
    """One Adam (L2 weight decay) or AdamW (decoupled weight decay) step on arrays, in place.

    step counts from 1 and includes this update; grad is already negated for maximize.
    """
    if not isinstance(param, np.ndarray) and param.flags.c_contiguous and grad.flags.c_contiguous \
            and param.dtype == grad.dtype and param.dtype in (np.float32, np.float64):
        from ..backend import numba_kernels  # one fused kernel per parameter on the GPU

        numba_kernels.adam_step(param, grad, exp_avg, exp_avg_sq, lr, beta1, beta2, eps,
                                weight_decay, step, decoupled, amsgrad, max_exp_avg_sq)
        return
    xp = of_array(param).xp
    if weight_decay != 0:
        if decoupled:
            param *= 1 - lr * weight_decay
        else:
            grad = grad + weight_decay * param
    _lerp_(exp_avg, grad, 1 - beta1)
    exp_avg_sq *= beta2
    exp_avg_sq += (1 - beta2) * grad * grad
    bias_correction1 = 1 - beta1 ** step
    bias_correction2_sqrt = (1 - beta2 ** step) ** 0.5
    if amsgrad:
        xp.maximum(max_exp_avg_sq, exp_avg_sq, out=max_exp_avg_sq)
        second = max_exp_avg_sq
    else:
        second = exp_avg_sq
    denom = xp.sqrt(second) / bias_correction2_sqrt + eps
    param -= (lr / bias_correction1) * (exp_avg / denom)


def _zeros_like(p: Tensor) -> Tensor:
    return Tensor._wrap(p._backend.xp.zeros_like(p._data))


class Adam(Optimizer):
    """Adam: m = lerp(m, g, 1 - beta1), v = beta2 v + (1 - beta2) g^2,
    p -= lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps).

    weight_decay adds weight_decay * p to the gradient (L2), or with
    decoupled_weight_decay=True scales p by (1 - lr * weight_decay) first (AdamW).
    amsgrad uses the running maximum of v in the denominator.
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
                 amsgrad=False, maximize=False, decoupled_weight_decay=False):
        defaults = dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay,
                        amsgrad=amsgrad, maximize=maximize,
                        decoupled_weight_decay=decoupled_weight_decay)
        super().__init__(params, defaults)

    def _validate_group(self, group):
        super()._validate_group(group)
        _check_range("eps", group["eps"])
        betas = group["betas"]
        if len(betas) != 2:
            raise ValueError(f"betas must be a pair (beta1, beta2), got {betas!r}")
        _check_range("betas[0]", betas[0], 0.0, 1.0)
        _check_range("betas[1]", betas[1], 0.0, 1.0)
        _check_range("weight_decay", group["weight_decay"])

    def step(self, closure=None):
        loss = self._evaluate(closure)
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad = p.grad._data
                if group["maximize"]:
                    grad = p._backend.xp.asarray(-grad)
                state = self.state[p]
                if not state:
                    state["step"] = 0
                    state["exp_avg"] = _zeros_like(p)
                    state["exp_avg_sq"] = _zeros_like(p)
                if group["amsgrad"] and "max_exp_avg_sq" not in state:
                    state["max_exp_avg_sq"] = _zeros_like(p)
                state["step"] = int(state["step"]) + 1
                max_sq = state["max_exp_avg_sq"] if group["amsgrad"] else None
                _adam_update(p._data, grad, state["exp_avg"]._data, state["exp_avg_sq"]._data,
                             lr=group["lr"], beta1=beta1, beta2=beta2, eps=group["eps"],
                             weight_decay=group["weight_decay"], step=state["step"],
                             decoupled=group["decoupled_weight_decay"], amsgrad=group["amsgrad"],
                             max_exp_avg_sq=None if max_sq is None else max_sq._data)
        return loss


class AdamW(Adam):
    """Adam with decoupled weight decay: p is scaled by (1 - lr * weight_decay) each step."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2,
                 amsgrad=False, maximize=False):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                         amsgrad=amsgrad, maximize=maximize, decoupled_weight_decay=True)
