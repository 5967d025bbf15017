"""Parameter: a leaf tensor that a Module registers as one of its weights."""
from __future__ import annotations

from ..tensor import Tensor, empty, tensor


class Parameter(Tensor):
    """A tensor that is a module's weight: a leaf, requiring grad by default.

    `Parameter(t)` shares t's memory (no copy), like PyTorch. Results of ops on a
    parameter are plain tensors; only the parameter itself is registered by a
    Module when assigned as an attribute.
    """

    def __init__(self, data=None, requires_grad: bool = True):
        if data is None:
            data = empty(0)
        elif not isinstance(data, Tensor):
            data = tensor(data)
        self._init(data._data)
        if requires_grad and not data.is_floating_point():
            raise RuntimeError(f"Parameter: only floating-point tensors can require gradients, "
                               f"got {data.dtype}")
        self.requires_grad = bool(requires_grad)

    def __repr__(self):
        return "Parameter containing:\n" + super().__repr__()
