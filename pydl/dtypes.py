"""The dtypes pydl tensors hold, and PyTorch's rules for combining them.

A pydl dtype is a NumPy dtype (bfloat16 comes from ml_dtypes), so arrays of
either backend carry it directly.
"""
from __future__ import annotations

import builtins

import ml_dtypes
import numpy as np

float32 = np.dtype(np.float32)
float64 = np.dtype(np.float64)
float16 = np.dtype(np.float16)
bfloat16 = np.dtype(ml_dtypes.bfloat16)
int32 = np.dtype(np.int32)
int64 = np.dtype(np.int64)
bool_ = np.dtype(np.bool_)
uint8 = np.dtype(np.uint8)
int8 = np.dtype(np.int8)
int16 = np.dtype(np.int16)

float = float32  # noqa: A001  (torch.float)
double = float64
half = float16
long = int64
int = int32  # noqa: A001

_FLOATS = (float16, bfloat16, float32, float64)
_INTS = (uint8, int8, int16, int32, int64)

default_float = float32

_BY_NAME = {
    "float32": float32, "float": float32, "float64": float64, "double": float64,
    "float16": float16, "half": float16, "bfloat16": bfloat16,
    "int32": int32, "int": int32, "int64": int64, "long": int64,
    "bool": bool_, "uint8": uint8, "int8": int8, "int16": int16,
}


def as_dtype(dtype) -> np.dtype:
    """Turn a pydl/NumPy dtype, a name, or a Python type into a pydl dtype."""
    if dtype is None:
        return None
    if isinstance(dtype, str):
        try:
            return _BY_NAME[dtype]
        except KeyError:
            raise TypeError(f"unknown dtype {dtype!r}") from None
    if dtype is builtins.float:
        return float32
    if dtype is builtins.int:
        return int64
    if dtype is builtins.bool:
        return bool_
    d = np.dtype(dtype)
    if d not in _FLOATS and d not in _INTS and d != bool_:
        raise TypeError(f"unsupported dtype {d}")
    return d


def is_floating(dtype) -> bool:
    return np.dtype(dtype) in _FLOATS


def is_integer(dtype) -> bool:
    return np.dtype(dtype) in _INTS


def _category(d: np.dtype) -> int:
    if d == bool_:
        return 0
    if d in _INTS:
        return 1
    return 2


def result_type(*dtypes) -> np.dtype:
    """PyTorch's promotion for tensors: the highest category wins (bool < int < float),
    and within a category the wider type. float16 with bfloat16 gives float32."""
    best = None
    for d in dtypes:
        d = np.dtype(d)
        if best is None:
            best = d
            continue
        cb, cd = _category(best), _category(d)
        if cd > cb:
            best = d
        elif cd == cb and d != best:
            if {best, d} == {float16, bfloat16}:
                best = float32
            elif d.itemsize > best.itemsize:
                best = d
    return best


def scalar_result_type(dtype: np.dtype, scalar) -> np.dtype:
    """Dtype of `tensor op python_scalar`: the scalar only matters when it is of a
    higher category (an int tensor times 2.5 gives the default float dtype)."""
    if isinstance(scalar, builtins.bool):
        cat = 0
    elif isinstance(scalar, (builtins.int, np.integer)):
        cat = 1
    else:
        cat = 2
    if cat > _category(dtype):
        return default_float if cat == 2 else int64
    return dtype
