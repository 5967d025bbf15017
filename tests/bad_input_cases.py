"""The bad-input table for tests/test_bad_input.py, and the worker that runs it.

Each case calls one public entry point (pydl.*, pydl.nn.functional, a module,
pydl.ops on NumPy and torch arrays, the `pydl` command) with one kind of bad input:
wrong rank or shape, mismatched shapes, wrong dtype, mixed devices, empty tensors,
non-contiguous views, NaN/inf, out-of-range indices, negative or zero sizes,
absurd allocations, wrong argument types. A case either

- `bad`: must raise the given exception type with a message naming the op, or
- `value`: must return, and checks the value the contract defines (softmax of an
  inf row is NaN as in PyTorch; an empty batch gives an empty result), or
- `cli`: the `pydl` command must exit nonzero with a clear message, no traceback.

Run as a script, this module is the worker: it reads a JSON list of case ids on
stdin and writes one JSON line per finished case on its original stdout (anything
the cases print goes to stderr), so the test can tell which case a crash killed.
"""
from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
import tempfile
import traceback
from dataclasses import dataclass, field

import numpy as np

import pydl
import pydl.nn as nn
import pydl.nn.functional as F
import pydl.ops
from pydl.tensor import Tensor

inf, nan = float("inf"), float("nan")


@dataclass
class Case:
    kind: str                    # "bad", "value" or "cli"
    fn: object = None            # the call (bad, value)
    exc: type = None             # expected exception type (bad)
    op: str = ""                 # a name the message must contain (bad), or text the CLI prints
    argv: list = field(default_factory=list)   # cli
    process: bool = False        # cli: a real `python -m pydl` process instead of cli.main


CASES: dict[str, Case] = {}


def bad(case_id, exc, op, fn):
    assert case_id not in CASES, case_id
    CASES[case_id] = Case("bad", fn, exc, op)


def value(case_id, fn):
    assert case_id not in CASES, case_id
    CASES[case_id] = Case("value", fn)


def cli(case_id, argv, says, process=False):
    assert case_id not in CASES, case_id
    CASES[case_id] = Case("cli", op=says, argv=list(argv), process=process)


class Skip(Exception):
    """The case cannot run here (for example torch is not installed)."""


def t(*shape, dtype=pydl.float32):
    return pydl.ones(*shape, dtype=dtype)


def r(*shape):
    return pydl.randn(*shape)


def a(*shape, dtype="float32"):
    return np.ones(shape, dtype)


def torch():
    try:
        import torch as _torch
    except ImportError:
        raise Skip("torch is not installed") from None
    return _torch


class _FakeCudaArray:
    """Stands in for a CuPy array: not a NumPy array, so pydl sees a CUDA tensor."""

    def __init__(self, *shape, dtype=np.float32):
        self.shape, self.dtype, self.ndim = shape, np.dtype(dtype), len(shape)
        self.size = int(np.prod(shape))


def gpu(*shape, dtype=np.float32):
    return Tensor._wrap(_FakeCudaArray(*shape, dtype=dtype))


def close(x, expected):
    got = x.detach().numpy() if isinstance(x, Tensor) else np.asarray(x)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


# ---- matmul ------------------------------------------------------------------------------------
bad("matmul-inner-mismatch", ValueError, "matmul", lambda: pydl.matmul(t(2, 3), t(4, 5)))
bad("matmul-batch-mismatch", ValueError, "matmul", lambda: pydl.matmul(t(2, 2, 3), t(3, 3, 2)))
bad("matmul-0d", ValueError, "matmul", lambda: pydl.matmul(t(3), pydl.tensor(1.0)))
bad("matmul-dtype-mismatch", TypeError, "matmul", lambda: pydl.matmul(t(2, 2), t(2, 2, dtype=pydl.float64)))
bad("matmul-int-float", TypeError, "matmul", lambda: pydl.matmul(t(2, 2, dtype=pydl.int64), t(2, 2)))
bad("matmul-list", TypeError, "matmul", lambda: pydl.matmul([[1.0]], t(1, 1)))
bad("matmul-mixed-devices", pydl.DeviceError, "matmul", lambda: pydl.matmul(t(2, 2), gpu(2, 2)))
value("matmul-empty-rows", lambda: close(pydl.matmul(t(0, 3), t(3, 4)), np.zeros((0, 4))))
value("matmul-empty-inner", lambda: close(pydl.matmul(t(2, 0), t(0, 4)), np.zeros((2, 4))))
value("matmul-non-contiguous", lambda: close(pydl.matmul(t(4, 3).T, t(4, 5)), np.full((3, 5), 4.0)))
value("matmul-nan-propagates", lambda: close(pydl.matmul(pydl.tensor([[nan, 1.0]]), t(2, 1)), [[nan]]))
# A 256 TiB result from 32 MiB inputs.
bad("matmul-huge-output", MemoryError, "matmul", lambda: pydl.matmul(t(2**23, 1), t(1, 2**23)))

# ---- softmax / log_softmax ------------------------------------------------------------------------
bad("softmax-int", TypeError, "softmax", lambda: F.softmax(pydl.tensor([1, 2]), -1))
bad("softmax-list", TypeError, "softmax", lambda: F.softmax([1.0, 2.0], -1))
bad("softmax-dim-out-of-range", IndexError, "softmax", lambda: F.softmax(t(2, 3), 2))
bad("softmax-dim-str", TypeError, "softmax", lambda: F.softmax(t(2, 3), "a"))
bad("softmax-dim-float", TypeError, "softmax", lambda: F.softmax(t(2, 3), 1.0))
bad("softmax-dim-none", TypeError, "softmax", lambda: F.softmax(t(2, 3), None))
bad("log_softmax-bool", TypeError, "log_softmax", lambda: F.log_softmax(pydl.tensor([True]), -1))
bad("log_softmax-dim-out-of-range", IndexError, "log_softmax", lambda: F.log_softmax(t(2, 3), -3))
# PyTorch's values: a row holding +inf or NaN is all NaN, an all -inf row too; -inf entries are 0.
value("softmax-inf-rows", lambda: close(
    F.softmax(pydl.tensor([[inf, 1.0], [-inf, -inf], [nan, 0.0], [-inf, 0.0], [3e38, 3e38]]), -1),
    [[nan, nan], [nan, nan], [nan, nan], [0.0, 1.0], [0.5, 0.5]]))
value("log_softmax-inf-rows", lambda: close(
    F.log_softmax(pydl.tensor([[inf, 1.0], [-inf, -inf], [-inf, 0.0]]), -1),
    [[nan, nan], [nan, nan], [-inf, 0.0]]))
value("softmax-empty-batch", lambda: close(F.softmax(t(0, 3), -1), np.zeros((0, 3))))
value("softmax-empty-row", lambda: close(F.softmax(t(3, 0), -1), np.zeros((3, 0))))
value("softmax-0d", lambda: close(F.softmax(pydl.tensor(2.0), 0), 1.0))
value("softmax-non-contiguous", lambda: close(F.softmax(t(3, 4).T, -1), np.full((4, 3), 1 / 3)))

# ---- layer_norm ----------------------------------------------------------------------------------
bad("layer_norm-shape", ValueError, "layer_norm", lambda: F.layer_norm(t(2, 3), (4,)))
bad("layer_norm-empty-shape", ValueError, "layer_norm", lambda: F.layer_norm(t(2, 3), ()))
bad("layer_norm-weight-shape", ValueError, "layer_norm", lambda: F.layer_norm(t(2, 3), (3,), weight=t(4)))
bad("layer_norm-int", TypeError, "layer_norm", lambda: F.layer_norm(t(2, 3, dtype=pydl.int64), (3,)))
bad("layer_norm-weight-dtype", TypeError, "layer_norm",
    lambda: F.layer_norm(t(2, 3), (3,), weight=t(3, dtype=pydl.float64)))
bad("layer_norm-list", TypeError, "layer_norm", lambda: F.layer_norm([[1.0, 2.0]], (2,)))
bad("layer_norm-mixed-devices", pydl.DeviceError, "layer_norm",
    lambda: F.layer_norm(t(2, 2), (2,), weight=gpu(2)))
value("layer_norm-empty-batch", lambda: close(F.layer_norm(t(0, 3), (3,)), np.zeros((0, 3))))
value("layer_norm-zero-features", lambda: close(F.layer_norm(t(2, 0), (0,)), np.zeros((2, 0))))
value("layer_norm-nan-row", lambda: close(
    F.layer_norm(pydl.tensor([[nan, 1.0, 2.0], [1.0, 2.0, 3.0]]), (3,)),
    [[nan, nan, nan], [-1.2247357, 0.0, 1.2247357]]))
value("layer_norm-non-contiguous", lambda: close(F.layer_norm(r(3, 4).T, (3,)).sum(-1), np.zeros(4)))

# ---- cross_entropy -----------------------------------------------------------------------------------
bad("cross_entropy-target-too-big", IndexError, "cross_entropy",
    lambda: F.cross_entropy(r(3, 4), pydl.tensor([0, 4, 1])))
bad("cross_entropy-target-negative", IndexError, "cross_entropy",
    lambda: F.cross_entropy(r(3, 4), pydl.tensor([0, -2, 1])))
bad("cross_entropy-target-huge", IndexError, "cross_entropy",
    lambda: F.cross_entropy(r(2, 3), pydl.tensor([0, 2**40])))
bad("cross_entropy-zero-classes", IndexError, "cross_entropy",
    lambda: F.cross_entropy(t(2, 0), pydl.tensor([0, 0])))
bad("cross_entropy-float-target", TypeError, "cross_entropy",
    lambda: F.cross_entropy(r(3, 4), pydl.tensor([0.0, 1.0, 2.0])))
bad("cross_entropy-int-input", TypeError, "cross_entropy",
    lambda: F.cross_entropy(pydl.tensor([[1, 2]]), pydl.tensor([0])))
bad("cross_entropy-target-shape", ValueError, "cross_entropy",
    lambda: F.cross_entropy(r(3, 4), pydl.tensor([0, 1])))
bad("cross_entropy-spatial-target-shape", ValueError, "cross_entropy",
    lambda: F.cross_entropy(r(2, 3, 5), pydl.tensor([[0, 1, 2, 0], [0, 0, 0, 0]])))
bad("cross_entropy-reduction", ValueError, "cross_entropy",
    lambda: F.cross_entropy(r(3, 4), pydl.tensor([0, 1, 2]), reduction="avg"))
bad("cross_entropy-smoothing", ValueError, "cross_entropy",
    lambda: F.cross_entropy(r(3, 4), pydl.tensor([0, 1, 2]), label_smoothing=1.5))
bad("cross_entropy-target-list", TypeError, "cross_entropy", lambda: F.cross_entropy(r(2, 3), [0, 1]))
bad("cross_entropy-mixed-devices", pydl.DeviceError, "cross_entropy",
    lambda: F.cross_entropy(t(2, 2), gpu(2, dtype=np.int64)))
value("cross_entropy-empty-batch-is-nan", lambda: close(
    F.cross_entropy(r(0, 4), pydl.tensor([], dtype=pydl.int64)), nan))
value("cross_entropy-all-ignored-is-nan", lambda: close(
    F.cross_entropy(r(2, 3), pydl.tensor([-100, -100])), nan))
value("cross_entropy-inf-logits", lambda: close(
    pydl.stack([F.cross_entropy(pydl.tensor([[inf, 1.0]]), pydl.tensor([0])),
                F.cross_entropy(pydl.tensor([[-inf, 1.0]]), pydl.tensor([0]))]), [nan, inf]))
value("cross_entropy-non-contiguous", lambda: close(
    F.cross_entropy(t(4, 3).T, pydl.tensor([0, 1, 2])), np.log(4.0)))

# ---- embedding -------------------------------------------------------------------------------------
bad("embedding-index-too-big", IndexError, "embedding", lambda: F.embedding(pydl.tensor([0, 5]), r(5, 3)))
bad("embedding-index-negative", IndexError, "embedding", lambda: F.embedding(pydl.tensor([[1, -1]]), r(5, 3)))
bad("embedding-index-huge", IndexError, "embedding", lambda: F.embedding(pydl.tensor([2**40]), r(5, 3)))
bad("embedding-no-rows", IndexError, "embedding", lambda: F.embedding(pydl.tensor([0]), t(0, 3)))
bad("embedding-float-indices", TypeError, "embedding", lambda: F.embedding(pydl.tensor([0.0]), r(5, 3)))
bad("embedding-bool-indices", TypeError, "embedding", lambda: F.embedding(pydl.tensor([True]), r(5, 3)))
bad("embedding-uint8-indices", TypeError, "embedding",
    lambda: F.embedding(pydl.tensor([1], dtype=pydl.uint8), r(5, 3)))
bad("embedding-list-indices", TypeError, "embedding", lambda: F.embedding([0, 1], r(5, 3)))
bad("embedding-1d-weight", ValueError, "embedding", lambda: F.embedding(pydl.tensor([0]), t(5)))
bad("embedding-padding-idx", ValueError, "embedding",
    lambda: F.embedding(pydl.tensor([0]), r(5, 3), padding_idx=7))
bad("embedding-mixed-devices", pydl.DeviceError, "embedding", lambda: F.embedding(pydl.tensor([0]), gpu(5, 3)))
value("embedding-empty-indices", lambda: close(
    F.embedding(pydl.tensor([], dtype=pydl.int64), t(5, 3)), np.zeros((0, 3))))
value("embedding-non-contiguous-indices", lambda: close(
    F.embedding(pydl.tensor([[0, 1], [2, 3]]).T, pydl.arange(5.0).reshape(5, 1)), [[[0], [2]], [[1], [3]]]))

# ---- indexing -----------------------------------------------------------------------------------------
bad("getitem-out-of-range", IndexError, "index", lambda: t(2, 3)[2])
bad("getitem-negative-out-of-range", IndexError, "index", lambda: t(3)[-4])
bad("getitem-tensor-out-of-range", IndexError, "index", lambda: t(3)[pydl.tensor([0, 3])])
bad("getitem-float-tensor", IndexError, "index", lambda: t(3)[pydl.tensor([0.0])])
bad("getitem-float", IndexError, "index", lambda: t(3)[1.5])
bad("getitem-str", IndexError, "index", lambda: t(3)["a"])
bad("getitem-too-many", IndexError, "index", lambda: t(3)[0, 0])
bad("getitem-mixed-devices", pydl.DeviceError, "index", lambda: t(3)[gpu(2, dtype=np.int64)])
bad("setitem-out-of-range", IndexError, "index", lambda: t(3).__setitem__(5, 1.0))
bad("setitem-shape", ValueError, "setitem", lambda: t(3).__setitem__(slice(None), t(4)))
if hasattr(pydl, "gather"):
    bad("gather-out-of-range", IndexError, "gather", lambda: pydl.gather(t(2, 3), 1, pydl.tensor([[3]])))

# ---- conv2d / max_pool2d --------------------------------------------------------------------------------
bad("conv2d-3d-input", ValueError, "conv2d", lambda: F.conv2d(t(3, 8, 8), t(4, 3, 3, 3)))
bad("conv2d-3d-weight", ValueError, "conv2d", lambda: F.conv2d(t(1, 3, 8, 8), t(4, 3, 3)))
bad("conv2d-channels", ValueError, "conv2d", lambda: F.conv2d(t(1, 2, 8, 8), t(4, 3, 3, 3)))
bad("conv2d-kernel-too-big", ValueError, "conv2d", lambda: F.conv2d(t(1, 3, 2, 2), t(4, 3, 3, 3)))
bad("conv2d-zero-kernel", ValueError, "conv2d", lambda: F.conv2d(t(1, 3, 8, 8), t(4, 3, 0, 0)))
bad("conv2d-empty-image", ValueError, "conv2d", lambda: F.conv2d(t(1, 3, 0, 8), t(4, 3, 3, 3)))
bad("conv2d-stride-zero", ValueError, "conv2d", lambda: F.conv2d(t(1, 3, 8, 8), t(4, 3, 3, 3), stride=0))
bad("conv2d-padding-negative", ValueError, "conv2d",
    lambda: F.conv2d(t(1, 3, 8, 8), t(4, 3, 3, 3), padding=-1))
bad("conv2d-dilation-zero", ValueError, "conv2d", lambda: F.conv2d(t(1, 3, 8, 8), t(4, 3, 3, 3), dilation=0))
bad("conv2d-stride-str", ValueError, "conv2d", lambda: F.conv2d(t(1, 3, 8, 8), t(4, 3, 3, 3), stride="a"))
bad("conv2d-groups", ValueError, "conv2d", lambda: F.conv2d(t(1, 3, 8, 8), t(4, 3, 3, 3), groups=2))
bad("conv2d-bias-shape", ValueError, "conv2d", lambda: F.conv2d(t(1, 3, 8, 8), t(4, 3, 3, 3), t(5)))
bad("conv2d-dtype-mismatch", TypeError, "conv2d",
    lambda: F.conv2d(t(1, 3, 8, 8), t(4, 3, 3, 3, dtype=pydl.float64)))
bad("conv2d-int", TypeError, "conv2d",
    lambda: F.conv2d(t(1, 3, 8, 8, dtype=pydl.int64), t(4, 3, 3, 3, dtype=pydl.int64)))
bad("conv2d-mixed-devices", pydl.DeviceError, "conv2d", lambda: F.conv2d(t(1, 3, 8, 8), gpu(4, 3, 3, 3)))
value("conv2d-empty-batch", lambda: close(F.conv2d(t(0, 3, 8, 8), t(4, 3, 3, 3)), np.zeros((0, 4, 6, 6))))
value("conv2d-zero-out-channels", lambda: close(F.conv2d(t(1, 3, 8, 8), t(0, 3, 3, 3)), np.zeros((1, 0, 6, 6))))
value("conv2d-zero-in-channels", lambda: close(F.conv2d(t(1, 0, 4, 4), t(2, 0, 3, 3)), np.zeros((1, 2, 2, 2))))
value("conv2d-non-contiguous", lambda: close(
    F.conv2d(t(1, 3, 5, 8).permute(0, 1, 3, 2), t(4, 3, 3, 3)), np.full((1, 4, 6, 3), 27.0)))
value("conv2d-nan-propagates", lambda: close(
    F.conv2d(t(1, 1, 3, 3) * nan, t(1, 1, 3, 3)), [[[[nan]]]]))
bad("max_pool2d-2d-input", ValueError, "max_pool2d", lambda: F.max_pool2d(t(8, 8), 2))
bad("max_pool2d-kernel-zero", ValueError, "max_pool2d", lambda: F.max_pool2d(t(1, 3, 8, 8), 0))
bad("max_pool2d-kernel-too-big", ValueError, "max_pool2d", lambda: F.max_pool2d(t(1, 3, 2, 2), 3))
bad("max_pool2d-kernel-huge", ValueError, "max_pool2d", lambda: F.max_pool2d(t(1, 3, 8, 8), 2**62))
bad("max_pool2d-stride-zero", ValueError, "max_pool2d", lambda: F.max_pool2d(t(1, 1, 8, 8), 2, stride=0))
bad("max_pool2d-padding-too-big", ValueError, "max_pool2d", lambda: F.max_pool2d(t(1, 1, 8, 8), 2, padding=2))
bad("max_pool2d-empty-image", ValueError, "max_pool2d", lambda: F.max_pool2d(t(1, 3, 0, 8), 2))
bad("max_pool2d-int", TypeError, "max_pool2d", lambda: F.max_pool2d(t(1, 1, 8, 8, dtype=pydl.int64), 2))
value("max_pool2d-nan-wins", lambda: close(F.max_pool2d(pydl.tensor([[[[nan, 1.0], [2.0, 3.0]]]]), 2), [[[[nan]]]]))
value("max_pool2d-empty-batch", lambda: close(F.max_pool2d(t(0, 1, 4, 4), 2), np.zeros((0, 1, 2, 2))))
value("max_pool2d-non-contiguous", lambda: close(
    F.max_pool2d(pydl.arange(16.0).reshape(1, 1, 4, 4).transpose(2, 3), 2), [[[[5.0, 13.0], [7.0, 15.0]]]]))

# ---- scaled_dot_product_attention -------------------------------------------------------------------------
SDPA = "scaled_dot_product_attention"
sdpa = F.scaled_dot_product_attention
bad("sdpa-head-dim-mismatch", ValueError, SDPA, lambda: sdpa(t(1, 4, 8), t(1, 4, 6), t(1, 4, 8)))
bad("sdpa-kv-length-mismatch", ValueError, SDPA, lambda: sdpa(t(1, 4, 8), t(1, 5, 8), t(1, 4, 8)))
bad("sdpa-batch-mismatch", ValueError, SDPA, lambda: sdpa(t(2, 4, 8), t(3, 4, 8), t(3, 4, 8)))
bad("sdpa-1d", ValueError, SDPA, lambda: sdpa(t(8), t(8), t(8)))
bad("sdpa-dtype-mismatch", TypeError, SDPA, lambda: sdpa(t(1, 4, 8), t(1, 4, 8, dtype=pydl.float64), t(1, 4, 8)))
bad("sdpa-int", TypeError, SDPA, lambda: sdpa(*(t(1, 2, 8, dtype=pydl.int64),) * 3))
bad("sdpa-list", TypeError, SDPA, lambda: sdpa([1.0], t(1, 4, 8), t(1, 4, 8)))
bad("sdpa-mask-shape", ValueError, SDPA, lambda: sdpa(t(1, 4, 8), t(1, 4, 8), t(1, 4, 8), attn_mask=t(3, 3)))
bad("sdpa-mask-int", TypeError, SDPA,
    lambda: sdpa(t(1, 4, 8), t(1, 4, 8), t(1, 4, 8), attn_mask=t(4, 4, dtype=pydl.int64)))
bad("sdpa-dropout", ValueError, SDPA, lambda: sdpa(t(1, 4, 8), t(1, 4, 8), t(1, 4, 8), dropout_p=2.0))
bad("sdpa-mixed-devices", pydl.DeviceError, SDPA, lambda: sdpa(t(1, 4, 8), gpu(1, 4, 8), t(1, 4, 8)))
value("sdpa-empty-queries", lambda: close(sdpa(t(1, 0, 8), t(1, 4, 8), t(1, 4, 8)), np.zeros((1, 0, 8))))
value("sdpa-empty-keys", lambda: close(sdpa(t(1, 4, 8), t(1, 0, 8), t(1, 0, 8)), np.zeros((1, 4, 8))))
# PyTorch: q and k with head dim 0 give zero scores, so uniform weights over the values.
value("sdpa-zero-head-dim", lambda: close(sdpa(t(1, 4, 0), t(1, 4, 0), r(1, 4, 8)).std(1), np.zeros((1, 8))))
# PyTorch (2.5+): a query row that may attend nowhere gives zeros, not NaN.
value("sdpa-fully-masked-row", lambda: close(
    sdpa(t(1, 2, 8), t(1, 2, 8), t(1, 2, 8), attn_mask=pydl.tensor([[False, False], [True, True]])),
    [[[0.0] * 8, [1.0] * 8]]))
value("sdpa-non-contiguous", lambda: close(sdpa(t(1, 8, 4).transpose(1, 2), t(1, 4, 8), t(1, 4, 8)),
                                           np.ones((1, 4, 8))))

# ---- tensor factories: sizes, types, absurd allocations --------------------------------------------------
bad("zeros-negative", ValueError, "zeros", lambda: pydl.zeros(-1))
bad("zeros-negative-2d", ValueError, "zeros", lambda: pydl.zeros(2, -3))
bad("zeros-float-size", TypeError, "zeros", lambda: pydl.zeros(2.5))
bad("zeros-str-size", TypeError, "zeros", lambda: pydl.zeros("a"))
bad("zeros-none-size", TypeError, "zeros", lambda: pydl.zeros(None))
bad("ones-negative", ValueError, "ones", lambda: pydl.ones(3, -1))
bad("full-negative", ValueError, "full", lambda: pydl.full((-2,), 1.0))
bad("randn-negative", ValueError, "randn", lambda: pydl.randn(-1))
bad("rand-int-dtype", TypeError, "rand", lambda: pydl.rand(2, dtype=pydl.int64))
bad("randint-empty-range", ValueError, "randint", lambda: pydl.randint(5, 5, (2,)))
bad("randperm-negative", ValueError, "randperm", lambda: pydl.randperm(-1))
bad("eye-negative", ValueError, "eye", lambda: pydl.eye(-1))
bad("linspace-negative", ValueError, "linspace", lambda: pydl.linspace(0, 1, -1))
bad("arange-zero-step", ValueError, "arange", lambda: pydl.arange(0, 5, 0))
bad("empty-2**62", (MemoryError, ValueError), "empty", lambda: pydl.empty(2**62))
bad("empty-2**64", (MemoryError, ValueError), "empty", lambda: pydl.empty(2**64))
bad("empty-2**31-squared", (MemoryError, ValueError), "empty", lambda: pydl.empty(2**31, 2**31))
bad("zeros-4TiB", MemoryError, "zeros", lambda: pydl.zeros(2**40))
bad("ones-4TiB", MemoryError, "ones", lambda: pydl.ones(2**40))
bad("full-4TiB", MemoryError, "full", lambda: pydl.full((2**40,), 1.0))
bad("randn-4TiB", MemoryError, "randn", lambda: pydl.randn(2**40))
bad("arange-2**62", (MemoryError, ValueError), "arange", lambda: pydl.arange(2**62))
bad("tensor-str", TypeError, "tensor", lambda: pydl.tensor("abc"))
bad("tensor-dict", TypeError, "tensor", lambda: pydl.tensor({1: 2}))
bad("tensor-none", TypeError, "tensor", lambda: pydl.tensor(None))
bad("tensor-ragged", ValueError, "tensor", lambda: pydl.tensor([[1, 2], [3]]))
bad("tensor-complex-dtype", TypeError, "dtype", lambda: pydl.zeros(2, dtype="complex64"))
bad("from_numpy-list", TypeError, "from_numpy", lambda: pydl.from_numpy([1.0]))

# ---- shape ops and argument types ---------------------------------------------------------------------------
bad("reshape-size", RuntimeError, "reshape", lambda: t(3, 3).reshape(4, 2))
bad("reshape-negative", RuntimeError, "reshape", lambda: t(6).reshape(-2, 3))
bad("reshape-two-inferred", RuntimeError, "reshape", lambda: t(6).reshape(-1, -1))
bad("cat-not-a-sequence", TypeError, "cat", lambda: pydl.cat(t(2)))
bad("cat-empty", ValueError, "cat", lambda: pydl.cat([]))
bad("cat-shapes", ValueError, "cat", lambda: pydl.cat([t(2, 3), t(3, 2)]))
bad("stack-not-a-sequence", TypeError, "stack", lambda: pydl.stack(t(2)))
bad("sum-dim-str", TypeError, "sum", lambda: t(2, 3).sum("x"))
bad("sum-dim-out-of-range", IndexError, "sum", lambda: t(2, 3).sum(2))
bad("add-str", TypeError, "add", lambda: t(2) + "a")
bad("add-none", TypeError, "add", lambda: t(2) + None)
bad("add-broadcast", ValueError, "add", lambda: t(2, 3) + t(4))
bad("dropout-p", ValueError, "dropout", lambda: F.dropout(t(3), 1.5))
bad("dropout-p-str", TypeError, "dropout", lambda: F.dropout(t(3), "a"))
bad("one_hot-out-of-range", IndexError, "one_hot", lambda: F.one_hot(pydl.tensor([3]), 3))
bad("one_hot-float", TypeError, "one_hot", lambda: F.one_hot(pydl.tensor([1.0]), 3))
bad("interpolate-negative-size", ValueError, "interpolate", lambda: F.interpolate(t(1, 1, 4, 4), size=(-1, 2)))
bad("adaptive_avg_pool2d-zero", ValueError, "adaptive_avg_pool2d", lambda: F.adaptive_avg_pool2d(t(1, 3, 8, 8), 0))
bad("linear-int-input", TypeError, "linear", lambda: F.linear(t(2, 4, dtype=pydl.int64), t(3, 4)))

# ---- modules --------------------------------------------------------------------------------------------------
bad("Linear-in-features", ValueError, "linear", lambda: nn.Linear(4, 3)(t(2, 5)))
bad("Linear-0d-input", ValueError, "linear", lambda: nn.Linear(4, 3)(pydl.tensor(1.0)))
bad("Linear-float64-input", TypeError, "linear", lambda: nn.Linear(4, 3)(t(2, 4, dtype=pydl.float64)))
bad("Linear-numpy-input", TypeError, "linear", lambda: nn.Linear(4, 3)(a(2, 4)))
bad("Linear-mixed-devices", pydl.DeviceError, "linear", lambda: nn.Linear(4, 3)(gpu(2, 4)))
bad("Linear-negative-size", ValueError, "Linear", lambda: nn.Linear(-1, 3))
bad("Linear-float-size", TypeError, "Linear", lambda: nn.Linear(2.5, 3))
value("Linear-empty-batch", lambda: close(nn.Linear(4, 3)(t(0, 4)).detach(), np.zeros((0, 3))))


def _linear_non_contiguous():
    lin, x = nn.Linear(4, 3), r(4, 2)
    close(lin(x.T), lin(x.T.contiguous()).detach().numpy())


value("Linear-non-contiguous", _linear_non_contiguous)
bad("Conv2d-channels", ValueError, "conv2d", lambda: nn.Conv2d(3, 4, 3)(t(1, 2, 8, 8)))
bad("Conv2d-negative-channels", ValueError, "Conv2d", lambda: nn.Conv2d(3, -4, 3))
bad("Conv2d-zero-kernel", ValueError, "Conv2d", lambda: nn.Conv2d(3, 4, 0))
bad("Conv2d-groups", ValueError, "Conv2d", lambda: nn.Conv2d(3, 4, 3, groups=2))
bad("Conv2d-3d-input", ValueError, "conv2d", lambda: nn.Conv2d(3, 4, 3)(t(3, 8, 8)))
bad("Conv2d-float64-input", TypeError, "conv2d", lambda: nn.Conv2d(3, 4, 3)(t(1, 3, 8, 8, dtype=pydl.float64)))
bad("LSTM-input-size", ValueError, "LSTM", lambda: nn.LSTM(4, 8)(t(5, 2, 3)))
bad("LSTM-1d-input", ValueError, "LSTM", lambda: nn.LSTM(4, 8)(t(4)))
bad("LSTM-h0-shape", ValueError, "LSTM", lambda: nn.LSTM(4, 8)(t(5, 2, 4), (t(1, 2, 7), t(1, 2, 8))))
bad("LSTM-negative-hidden", ValueError, "LSTM", lambda: nn.LSTM(4, -8))
bad("LSTM-zero-layers", ValueError, "LSTM", lambda: nn.LSTM(4, 8, num_layers=0))
bad("LSTM-empty-sequence", ValueError, "LSTM", lambda: nn.LSTM(4, 8)(t(0, 2, 4)))
bad("LSTM-float64-input", TypeError, "LSTM", lambda: nn.LSTM(4, 8)(t(5, 2, 4, dtype=pydl.float64)))
bad("LSTM-mixed-devices", pydl.DeviceError, "LSTM", lambda: nn.LSTM(4, 8)(gpu(5, 2, 4)))
bad("Embedding-index", IndexError, "embedding", lambda: nn.Embedding(5, 3)(pydl.tensor([5])))
bad("Embedding-float-indices", TypeError, "embedding", lambda: nn.Embedding(5, 3)(t(2)))
bad("Embedding-negative-size", ValueError, "Embedding", lambda: nn.Embedding(-5, 3))
bad("Embedding-padding-idx", ValueError, "Embedding", lambda: nn.Embedding(5, 3, padding_idx=9))
MHA = "MultiheadAttention"
bad("MultiheadAttention-heads-divide", ValueError, MHA, lambda: nn.MultiheadAttention(10, 3))
bad("MultiheadAttention-zero-heads", ValueError, MHA, lambda: nn.MultiheadAttention(8, 0))
bad("MultiheadAttention-embed-dim", ValueError, MHA, lambda: nn.MultiheadAttention(8, 2)(*(t(4, 2, 6),) * 3))
bad("MultiheadAttention-attn-mask", ValueError, MHA,
    lambda: nn.MultiheadAttention(8, 2)(*(t(4, 2, 8),) * 3, attn_mask=t(3, 3)))
bad("MultiheadAttention-key-padding-mask", ValueError, MHA,
    lambda: nn.MultiheadAttention(8, 2)(*(t(4, 2, 8),) * 3, key_padding_mask=pydl.zeros(3, 4, dtype=pydl.bool)))
bad("MultiheadAttention-kv-length", ValueError, MHA,
    lambda: nn.MultiheadAttention(8, 2)(t(4, 2, 8), t(5, 2, 8), t(4, 2, 8)))
bad("BatchNorm2d-channels", ValueError, "batch_norm", lambda: nn.BatchNorm2d(3)(t(2, 4, 5, 5)))


# ---- pydl.ops on NumPy and torch arrays ------------------------------------------------------------------------
def _ops_cases(lib, arr, tensor_of):
    """The same bad calls with `arr(*shape, dtype=...)` arrays of one library."""
    ops = pydl.ops
    f64, i64 = "float64", "int64"
    bad(f"ops.matmul-{lib}-shape", ValueError, "matmul", lambda: ops.matmul(arr(2, 3), arr(4, 5)))
    bad(f"ops.matmul-{lib}-dtype", TypeError, "matmul", lambda: ops.matmul(arr(2, 3), arr(3, 5, dtype=f64)))
    bad(f"ops.matmul-{lib}-bias-shape", ValueError, "matmul",
        lambda: ops.matmul(arr(2, 3), arr(3, 5), bias=arr(4)))
    bad(f"ops.matmul-{lib}-activation", ValueError, "matmul",
        lambda: ops.matmul(arr(2, 3), arr(3, 5), activation="tanh"))
    bad(f"ops.matmul-{lib}-list", TypeError, "matmul", lambda: ops.matmul([[1.0]], arr(1, 1)))
    value(f"ops.matmul-{lib}-empty", lambda: close(ops.matmul(arr(0, 3), arr(3, 5)), np.zeros((0, 5))))
    value(f"ops.matmul-{lib}-non-contiguous", lambda: close(ops.matmul(arr(3, 2).T, arr(3, 5)), np.full((2, 5), 3.0)))
    bad(f"ops.softmax-{lib}-int", TypeError, "softmax", lambda: ops.softmax(arr(3, dtype=i64)))
    bad(f"ops.softmax-{lib}-dim", IndexError, "softmax", lambda: ops.softmax(arr(3), dim=2))
    bad(f"ops.softmax-{lib}-str", TypeError, "softmax", lambda: ops.softmax("abc"))
    value(f"ops.softmax-{lib}-inf", lambda: close(ops.softmax(tensor_of([[inf, 1.0], [-inf, 0.0]])),
                                                  [[nan, nan], [0.0, 1.0]]))
    value(f"ops.softmax-{lib}-empty", lambda: close(ops.softmax(arr(0, 3)), np.zeros((0, 3))))
    value(f"ops.softmax-{lib}-non-contiguous", lambda: close(ops.softmax(arr(3, 4).T), np.full((4, 3), 1 / 3)))
    bad(f"ops.layer_norm-{lib}-shape", ValueError, "layer_norm", lambda: ops.layer_norm(arr(2, 3), (4,)))
    bad(f"ops.layer_norm-{lib}-weight", ValueError, "layer_norm",
        lambda: ops.layer_norm(arr(2, 3), (3,), weight=arr(4)))
    bad(f"ops.layer_norm-{lib}-weight-dtype", TypeError, "layer_norm",
        lambda: ops.layer_norm(arr(2, 3), (3,), weight=arr(3, dtype=f64)))
    bad(f"ops.layer_norm-{lib}-int", TypeError, "layer_norm", lambda: ops.layer_norm(arr(2, 3, dtype=i64), (3,)))
    value(f"ops.layer_norm-{lib}-zero-features", lambda: close(ops.layer_norm(arr(2, 0), (0,)), np.zeros((2, 0))))
    bad(f"ops.cross_entropy-{lib}-target-too-big", IndexError, "cross_entropy",
        lambda: ops.cross_entropy(arr(2, 3), tensor_of([0, 3])))
    bad(f"ops.cross_entropy-{lib}-target-negative", IndexError, "cross_entropy",
        lambda: ops.cross_entropy(arr(2, 3), tensor_of([0, -2])))
    bad(f"ops.cross_entropy-{lib}-float-target", TypeError, "cross_entropy",
        lambda: ops.cross_entropy(arr(2, 3), tensor_of([0.0, 1.0])))
    bad(f"ops.cross_entropy-{lib}-target-shape", ValueError, "cross_entropy",
        lambda: ops.cross_entropy(arr(2, 3), tensor_of([0, 1, 1])))
    bad(f"ops.cross_entropy-{lib}-reduction", ValueError, "cross_entropy",
        lambda: ops.cross_entropy(arr(2, 3), tensor_of([0, 1]), reduction="bad"))
    if hasattr(ops, "attention"):
        bad(f"ops.attention-{lib}-head-dim", ValueError, "attention",
            lambda: ops.attention(arr(1, 4, 8), arr(1, 4, 6), arr(1, 4, 8)))
        bad(f"ops.attention-{lib}-kv-length", ValueError, "attention",
            lambda: ops.attention(arr(1, 4, 8), arr(1, 5, 8), arr(1, 4, 8)))
        bad(f"ops.attention-{lib}-mask-shape", ValueError, "attention",
            lambda: ops.attention(arr(1, 4, 8), arr(1, 4, 8), arr(1, 4, 8), attn_mask=arr(3, 3)))
        bad(f"ops.attention-{lib}-dtype", TypeError, "attention",
            lambda: ops.attention(arr(1, 4, 8), arr(1, 4, 8, dtype=f64), arr(1, 4, 8)))
        bad(f"ops.attention-{lib}-int", TypeError, "attention",
            lambda: ops.attention(*(arr(1, 4, 8, dtype=i64),) * 3))
        value(f"ops.attention-{lib}-empty-queries",
              lambda: close(ops.attention(arr(1, 0, 8), arr(1, 4, 8), arr(1, 4, 8)), np.zeros((1, 0, 8))))
    if hasattr(ops, "conv2d"):
        bad(f"ops.conv2d-{lib}-channels", ValueError, "conv2d",
            lambda: ops.conv2d(arr(1, 2, 8, 8), arr(4, 3, 3, 3)))
        bad(f"ops.conv2d-{lib}-3d-input", ValueError, "conv2d", lambda: ops.conv2d(arr(3, 8, 8), arr(4, 3, 3, 3)))
        bad(f"ops.conv2d-{lib}-zero-kernel", ValueError, "conv2d",
            lambda: ops.conv2d(arr(1, 3, 8, 8), arr(4, 3, 0, 0)))
        bad(f"ops.conv2d-{lib}-stride-zero", ValueError, "conv2d",
            lambda: ops.conv2d(arr(1, 3, 8, 8), arr(4, 3, 3, 3), stride=0))
        bad(f"ops.conv2d-{lib}-bias-shape", ValueError, "conv2d",
            lambda: ops.conv2d(arr(1, 3, 8, 8), arr(4, 3, 3, 3), bias=arr(5)))
        bad(f"ops.conv2d-{lib}-dtype", TypeError, "conv2d",
            lambda: ops.conv2d(arr(1, 3, 8, 8), arr(4, 3, 3, 3, dtype=f64)))
        bad(f"ops.conv2d-{lib}-int", TypeError, "conv2d",
            lambda: ops.conv2d(arr(1, 3, 8, 8, dtype=i64), arr(4, 3, 3, 3, dtype=i64)))
        value(f"ops.conv2d-{lib}-empty-batch",
              lambda: close(ops.conv2d(arr(0, 3, 8, 8), arr(4, 3, 3, 3)), np.zeros((0, 4, 6, 6))))


def _torch_arr(*shape, dtype="float32"):
    th = torch()
    return th.ones(shape, dtype=getattr(th, dtype))


def _torch_tensor(data):
    return torch().tensor(data)


_ops_cases("numpy", a, np.array)
_ops_cases("torch", _torch_arr, _torch_tensor)
bad("ops.softmax-torch-meta-device", pydl.DeviceError, "softmax",
    lambda: pydl.ops.softmax(torch().ones(3, device="meta")))
bad("ops.softmax-torch-complex", TypeError, "softmax",
    lambda: pydl.ops.softmax(torch().ones(3, dtype=torch().complex64)))

# ---- the pydl command ------------------------------------------------------------------------------------------
cli("cli-train-unknown-family-process", ["train", "nosuchfamily"], "invalid choice", process=True)
cli("cli-train-no-gpu-process", ["train", "mlp", "--device", "cuda", "--out", ""], "CUDA", process=True)
cli("cli-no-command", [], "required")
cli("cli-unknown-command", ["nosuchcmd"], "invalid choice")
cli("cli-train-no-family", ["train"], "required")
cli("cli-train-unknown-family", ["train", "nosuchfamily"], "invalid choice")
cli("cli-train-epochs-not-int", ["train", "mlp", "--epochs", "abc"], "--epochs")
cli("cli-train-epochs-negative", ["train", "mlp", "--epochs", "-1"], "--epochs")
cli("cli-train-epochs-zero", ["train", "mlp", "--epochs", "0"], "--epochs")
cli("cli-train-seed-not-int", ["train", "mlp", "--seed", "x"], "--seed")
cli("cli-train-unknown-device", ["train", "mlp", "--device", "tpu"], "--device")
cli("cli-train-out-is-a-file", ["train", "mlp", "--epochs", "1", "--out", "{file}"], "{file}")
cli("cli-zoo-unknown-family", ["zoo", "--families", "nosuch"], "nosuch")
cli("cli-zoo-epochs-negative", ["zoo", "--families", "mlp", "--epochs", "-2"], "--epochs")
cli("cli-bench-no-suite", ["bench"], "required")
cli("cli-bench-unknown-option", ["bench", "ops", "--nosuch"], "--nosuch")


# ---- the worker -------------------------------------------------------------------------------------------------
def _run_cli(case: Case, tmp: str) -> dict:
    argv = [s.replace("{file}", os.path.join(tmp, "a-file")) for s in case.argv]
    if case.process:
        p = subprocess.run([sys.executable, "-m", "pydl", *argv], capture_output=True, text=True,
                           timeout=120, cwd=tmp)
        return {"outcome": "exit", "code": p.returncode, "stderr": p.stderr}
    from pydl import cli as pydl_cli

    err, out = io.StringIO(), io.StringIO()
    code = 0
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
        try:
            code = pydl_cli.main(argv)
        except SystemExit as e:  # what `python -m pydl` turns into an exit status and message
            code = e.code if isinstance(e.code, int) else 1
            if e.code is not None and not isinstance(e.code, int):
                err.write(str(e.code))
    return {"outcome": "exit", "code": code, "stderr": err.getvalue()}


def run_case(case_id: str, tmp: str) -> dict:
    case = CASES[case_id]
    try:
        if case.kind == "cli":
            return _run_cli(case, tmp)
        case.fn()
        return {"outcome": "ok"}
    except Skip as e:
        return {"outcome": "skip", "message": str(e)}
    except BaseException as e:  # noqa: B036 (reported to the test, which judges it)
        return {"outcome": "raised", "type": type(e).__qualname__,
                "mro": [f"{c.__module__}.{c.__qualname__}" for c in type(e).__mro__],
                "message": str(e), "traceback": traceback.format_exc(limit=-6)}


def main():
    ids = json.load(sys.stdin)
    # Results go to the original stdout; whatever the cases print goes to stderr.
    channel = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    with tempfile.TemporaryDirectory() as tmp:
        os.chdir(tmp)  # whatever a command writes by default lands here
        open(os.path.join(tmp, "a-file"), "w").close()
        for case_id in ids:
            result = run_case(case_id, tmp)
            result["id"] = case_id
            channel.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
