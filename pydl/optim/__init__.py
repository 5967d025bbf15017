"""Optimizers and learning-rate schedulers with PyTorch's names, arguments and
numerics: `pydl.optim.SGD`, `Adam`, `AdamW`, and `pydl.optim.lr_scheduler`."""
from . import lr_scheduler
from .adam import Adam, AdamW
from .optimizer import Optimizer
from .sgd import SGD

__all__ = ["SGD", "Adam", "AdamW", "Optimizer", "lr_scheduler"]
