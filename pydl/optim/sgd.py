"""Stochastic gradient descent with momentum, dampening, Nesterov momentum and
L2 weight decay, step for step like torch.optim.SGD."""
from __future__ import annotations

from ..tensor import Tensor
from .optimizer import Optimizer, _check_range


class SGD(Optimizer):
    """For each parameter p with gradient g (negated when maximize):

        g = g + weight_decay * p
        buf = g                                     on the first step
        buf = momentum * buf + (1 - dampening) * g  afterwards
        g = g + momentum * buf if nesterov else buf  (when momentum != 0)
        p = p - lr * g
    """

    def __init__(self, params, lr=1e-3, momentum=0.0, dampening=0.0, weight_decay=0.0,
                 nesterov=False, maximize=False):
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
                        nesterov=nesterov, maximize=maximize)
        super().__init__(params, defaults)

    def _validate_group(self, group):
        super()._validate_group(group)
        _check_range("momentum", group["momentum"])
        _check_range("weight_decay", group["weight_decay"])
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ValueError("Nesterov momentum requires a momentum > 0 and zero dampening")

    def step(self, closure=None):
        loss = self._evaluate(closure)
        for group in self.param_groups:
            lr, momentum, dampening = group["lr"], group["momentum"], group["dampening"]
            weight_decay, nesterov = group["weight_decay"], group["nesterov"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                param = p._data
                g = -p.grad._data if group["maximize"] else p.grad._data
                if weight_decay != 0:
                    g = g + weight_decay * param
                if momentum != 0:
                    state = self.state[p]
                    buf = state.get("momentum_buffer")
                    if buf is None:
                        buf = Tensor._wrap(p._backend.xp.array(g, copy=True))
                        state["momentum_buffer"] = buf
                    else:
                        buf._data *= momentum
                        buf._data += (1 - dampening) * g
                    g = g + momentum * buf._data if nesterov else buf._data
                param -= lr * g
        return loss
