"""Running out of memory inside an op raises pydl.errors.OutOfMemoryError (a MemoryError)
naming the op and the bytes asked for; on the GPU CuPy's cached blocks are freed first, so
the caller can catch it and go on with a smaller batch.

Without a GPU, CuPy's error is simulated: a class of the same module and name, raised by a
backend function, and a stand-in for `cupy` whose pool records free_all_blocks()."""
from __future__ import annotations

import sys
import types
import weakref

import numpy as np
import pytest

import pydl
import pydl.nn.functional as F
from pydl.backend import cpu
from pydl.errors import OutOfMemoryError


class _CupyOutOfMemory(MemoryError):
    """What cupy.cuda.memory.OutOfMemoryError looks like: same module and name, _size."""

    def __init__(self, size, total):
        self._size = size
        super().__init__(f"Out of memory allocating {size:,} bytes (allocated so far: {total:,} bytes).")


_CupyOutOfMemory.__module__ = "cupy.cuda.memory"
_CupyOutOfMemory.__name__ = _CupyOutOfMemory.__qualname__ = "OutOfMemoryError"


class _Pool:
    def __init__(self):
        self.freed = 0

    def free_all_blocks(self):
        self.freed += 1


@pytest.fixture
def pool(monkeypatch):
    """A stand-in `cupy` module whose default pool counts free_all_blocks() calls."""
    p = _Pool()
    monkeypatch.setitem(sys.modules, "cupy", types.SimpleNamespace(get_default_memory_pool=lambda: p))
    return p


def _limited(monkeypatch, name, max_elements):
    """Make backend function `name` raise CuPy's error for inputs over max_elements."""
    real = getattr(cpu, name)

    def fn(x, *args):
        if x.size > max_elements:
            raise _CupyOutOfMemory(x.size * x.dtype.itemsize, 10**9)
        return real(x, *args)

    monkeypatch.setattr(cpu, name, fn)


def test_simulated_gpu_oom_in_forward_then_a_smaller_batch(monkeypatch, pool):
    _limited(monkeypatch, "softmax_forward", 1000)
    w = pydl.randn(32, 10, requires_grad=True)
    big = pydl.randn(256, 32)
    with pytest.raises(OutOfMemoryError) as info:
        F.softmax(big @ w, -1)
    e = info.value
    assert isinstance(e, MemoryError)
    assert (e.op, e.nbytes, e.device) == ("softmax", 256 * 10 * 4, "cuda")
    assert str(e).startswith("softmax: out of cuda memory allocating 10,240 bytes")
    assert pool.freed == 1
    # the caller retries with a smaller batch, forward and backward
    F.softmax(big[:64] @ w, -1)[:, 0].sum().backward()
    assert w.grad is not None and np.isfinite(w.grad.numpy()).all()


def test_temporaries_of_the_failed_op_are_released(monkeypatch, pool):
    temporaries = []

    def fails(x, log):
        tmp = np.ones(1000, np.float32)  # what the op had allocated when the pool ran dry
        temporaries.append(weakref.ref(tmp))
        raise _CupyOutOfMemory(10**12, 0)

    monkeypatch.setattr(cpu, "softmax_forward", fails)
    try:
        F.softmax(pydl.randn(4, 4), -1)
    except OutOfMemoryError:
        # in the except block, where a caller retries, the failed op holds no memory
        assert temporaries[0]() is None
    else:
        raise AssertionError("no error")


def test_simulated_gpu_oom_in_backward_names_the_op(monkeypatch, pool):
    _limited(monkeypatch, "softmax_backward", 1000)
    x = pydl.randn(256, 10, requires_grad=True)
    y = F.softmax(x, -1)
    with pytest.raises(OutOfMemoryError, match=r"^softmax\.backward: .*10,240 bytes"):
        y[:, 0].sum().backward()
    assert pool.freed == 1


def test_simulated_gpu_oom_in_a_factory(monkeypatch, pool):
    tensor_module = sys.modules["pydl.tensor"]  # pydl.tensor is also the function

    class FullPool:
        def zeros(self, shape, dtype):
            raise _CupyOutOfMemory(int(np.prod(shape)) * np.dtype(dtype).itemsize, 0)

    monkeypatch.setattr(tensor_module, "_array_module", lambda dev: FullPool())
    with pytest.raises(OutOfMemoryError, match=r"^zeros: out of cuda memory allocating 4,000,000 bytes"):
        pydl.zeros(1000, 1000)
    assert pool.freed == 1


def test_cpu_oom_names_the_op_and_bytes():
    a, b = pydl.ones(2**23, 1), pydl.ones(1, 2**23)  # a 256 TiB product
    with pytest.raises(OutOfMemoryError) as info:
        a @ b
    assert info.value.op == "matmul" and info.value.device == "cpu"
    assert info.value.nbytes == 2**46 * 4
    with pytest.raises(OutOfMemoryError, match=r"^zeros: .*TiB"):
        pydl.zeros(2**40)
    assert (a[:4] @ b[:, :4]).shape == (4, 4)


def test_other_memory_errors_pass_through_unchanged():
    e = OutOfMemoryError("op", 5, "cpu")
    from pydl.errors import out_of_memory

    assert out_of_memory("other", e) is e
    plain = out_of_memory("add", MemoryError("no"))
    assert plain.nbytes is None and str(plain) == "add: out of cpu memory allocating an unknown size: no"


@pytest.mark.cuda
@pytest.mark.skipif(not pydl.cuda.is_available(), reason="no usable GPU")
def test_gpu_oom_is_recoverable():
    import cupy

    _, total = cupy.cuda.runtime.memGetInfo()
    cols = 2**16
    rows = 2 * total // (4 * cols) + 1  # the product alone needs twice the GPU's memory
    a = pydl.ones(rows, 1, device="cuda")
    b = pydl.ones(1, cols, device="cuda")
    with pytest.raises(OutOfMemoryError) as info:
        a @ b
    e = info.value
    assert e.op == "matmul" and e.device == "cuda" and e.nbytes is not None and e.nbytes >= rows * cols * 4
    with pytest.raises(OutOfMemoryError, match=r"^empty: out of cuda memory"):
        pydl.empty(2 * total // 4, device="cuda")
    # the pool's cache was released; a smaller step on the same arrays works
    small = a[:1024] @ b
    assert small.shape == (1024, cols)
    assert float(small.sum().item()) == 1024 * cols


def test_pydl_ops_and_their_torch_functions_name_the_op(monkeypatch, pool):
    import pydl.ops as ops

    _limited(monkeypatch, "softmax_forward", 1000)
    x = np.random.default_rng(0).standard_normal((256, 10)).astype(np.float32)
    with pytest.raises(OutOfMemoryError, match="^log_softmax: out of cuda memory"):
        ops.log_softmax(x)
    assert pool.freed == 1
    assert ops.log_softmax(x[:64]).shape == (64, 10)  # a smaller call goes through
    torch = pytest.importorskip("torch")
    import pydl.ops.torch as pt

    with pytest.raises(OutOfMemoryError, match="^softmax: out of cuda memory"):
        pt.softmax(torch.from_numpy(x))
    assert pool.freed == 2
