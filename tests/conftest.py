"""Shared test fixtures: the device list every parametrised test runs over, and
tolerances per dtype."""
import numpy as np
import pytest

import pydl


def _cuda_ok() -> bool:
    return pydl.cuda.is_available()


DEVICES = [
    "cpu",
    pytest.param("cuda", marks=[pytest.mark.cuda,
                                pytest.mark.skipif(not _cuda_ok(), reason="no usable GPU")]),
]


@pytest.fixture(params=DEVICES)
def device(request):
    return request.param


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def tol(dtype):
    """(atol, rtol) for comparing a result in `dtype` with a float64 reference."""
    name = np.dtype(dtype).name
    return {"float64": (1e-10, 1e-8), "float32": (1e-5, 1e-4), "float16": (2e-3, 2e-3),
            "bfloat16": (2e-2, 2e-2)}[name]
