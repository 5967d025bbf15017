"""Random state. `manual_seed` seeds both devices: a NumPy generator for
parameter initialisation and sampling on the CPU, CuPy's generator on the GPU,
and the counter-based stream that dropout draws from (same masks on both
devices for the same seed)."""
from __future__ import annotations

import numpy as np

_seed = 0
_generator = np.random.default_rng(0)
_offset = 0  # counter position of the dropout stream


def manual_seed(seed: int):
    global _seed, _generator, _offset
    seed = int(seed)
    _seed = seed
    _generator = np.random.default_rng(seed)
    _offset = 0
    from . import cuda

    if cuda.is_available():
        import cupy

        cupy.random.seed(seed)


def initial_seed() -> int:
    return _seed


def generator() -> np.random.Generator:
    return _generator


def next_counter(n: int) -> tuple[int, int]:
    """Reserve n values of the counter-based stream: returns (seed, offset)."""
    global _offset
    off = _offset
    _offset += int(n)
    return _seed, off


def get_rng_state() -> dict:
    return {"seed": _seed, "offset": _offset, "numpy": _generator.bit_generator.state}


def set_rng_state(state: dict):
    global _seed, _offset
    _seed, _offset = int(state["seed"]), int(state["offset"])
    _generator.bit_generator.state = state["numpy"]
