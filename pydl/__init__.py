"""pydl: a deep-learning engine with hand-written CUDA and C++ kernels under a
small define-by-run autograd."""
from __future__ import annotations

__version__ = "0.1.0"

from . import _config  # noqa: F401  (reads the environment first)
from .device import device
from .dtypes import (bfloat16, bool_ as bool, double, float, float16, float32, float64, half,  # noqa: A004
                     int, int8, int16, int32, int64, long, uint8)
from .errors import DeviceError
from .tensor import (Size, Tensor, arange, empty, empty_like, eye, from_numpy, full, full_like,
                     linspace, ones, ones_like, rand, rand_like, randint, randn, randn_like, randperm,
                     tensor, zeros, zeros_like)
from ._ops import (abs, add, argmax, argmin, broadcast_to, cat, chunk, clamp, clone, cos, div, exp,
                   flatten, gelu, log, logsumexp, masked_fill, matmul, max, maximum, mean, min, minimum,
                   mul, neg, outer, permute, pow, relu, reshape, rsqrt, sigmoid, silu, sin, split, sqrt,
                   squeeze, stack, std, sub, sum, tanh, transpose, unsqueeze, var, where)
from .autograd import enable_grad, is_grad_enabled, no_grad, set_grad_enabled
from .random import get_rng_state, initial_seed, manual_seed, set_rng_state
from . import autograd, cuda  # noqa: F401
from . import nn, optim  # noqa: E402,F401

clip = clamp
concat = cat
from .serialization import load, save  # noqa: E402
