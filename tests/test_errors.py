"""Bad input raises a clear exception of the right type whose message names the op."""
import numpy as np
import pytest

import pydl
import pydl.nn.functional as F
from pydl.tensor import Tensor, _common_device


def t(*shape, dtype=pydl.float32):
    return pydl.ones(*shape, dtype=dtype)


# ---- shapes -------------------------------------------------------------------------------

@pytest.mark.parametrize("a,b", [((2, 3), (4, 5)), ((3,), (4,)), ((2, 3), (2,)), ((5,), (4, 3)),
                                 ((2, 3, 4), (3, 4, 5)), ((2, 2, 3), (3, 3, 2))], ids=str)
def test_matmul_shape_mismatch(a, b):
    with pytest.raises(ValueError, match=r"^matmul:"):
        t(*a) @ t(*b)
    with pytest.raises(ValueError, match=r"^matmul:"):
        pydl.matmul(t(*a), t(*b))


def test_matmul_scalar_and_dtype_mismatch():
    with pytest.raises(ValueError, match="matmul"):
        pydl.tensor(2.0) @ t(2)
    with pytest.raises(TypeError, match="matmul"):
        t(2, 2) @ t(2, 2, dtype=pydl.float64)
    with pytest.raises(TypeError, match="matmul"):
        pydl.matmul(t(2, 2), np.ones((2, 2)))


BROADCAST = {
    "add": lambda a, b: a + b,
    "sub": lambda a, b: a - b,
    "mul": lambda a, b: pydl.mul(a, b),
    "div": lambda a, b: a / b,
    "pow": lambda a, b: a ** b,
    "maximum": lambda a, b: pydl.maximum(a, b),
    "minimum": lambda a, b: pydl.minimum(a, b),
    "where": lambda a, b: pydl.where(a > 0, a, b),
}


@pytest.mark.parametrize("op", list(BROADCAST))
def test_broadcast_mismatch_names_op(op):
    with pytest.raises(ValueError, match=rf"^{op}:.*\(2, 3\).*\(4,\)"):
        BROADCAST[op](t(2, 3), t(4))


def test_broadcast_mismatch_other_ops():
    with pytest.raises(ValueError, match=r"^masked_fill:"):
        t(2, 3).masked_fill(pydl.tensor([True, False]), 0.0)
    with pytest.raises(ValueError, match=r"^eq:"):
        t(2, 3) == t(4)
    with pytest.raises(ValueError, match=r"^lt:"):
        t(2, 3) < t(2, 2)


@pytest.mark.parametrize("fn,shape", [
    (lambda x: x.reshape(4, 2), (3, 3)),
    (lambda x: x.view(-1, 4), (3, 3)),
    (lambda x: pydl.reshape(x, (2, 2)), (5,)),
], ids=["reshape", "view", "reshape_fn"])
def test_reshape_wrong_size(fn, shape):
    with pytest.raises(RuntimeError, match=r"reshape.*invalid"):
        fn(t(*shape))


def test_shape_op_misuse():
    with pytest.raises(ValueError, match="expand"):
        t(2, 3).expand(4, 3)
    with pytest.raises(ValueError, match="expand"):
        t(2, 3).expand(3)
    with pytest.raises(ValueError, match="permute"):
        t(2, 3).permute(0)
    with pytest.raises(ValueError, match="permute"):
        t(2, 3).permute(0, 0)
    with pytest.raises(ValueError, match="cat"):
        pydl.cat([t(2, 3), t(3, 2)])
    with pytest.raises(ValueError, match="cat"):
        pydl.cat([])
    with pytest.raises(ValueError, match="stack"):
        pydl.stack([t(2, 3), t(2, 4)])
    with pytest.raises(ValueError, match="split"):
        t(5).split([2, 2])
    with pytest.raises(ValueError, match="split"):
        t(5).split(0)
    with pytest.raises(ValueError, match="chunk"):
        t(5).chunk(0)
    with pytest.raises(ValueError, match="pad"):
        F.pad(t(2, 3), (1, 2, 3))
    with pytest.raises(ValueError, match="pad"):
        F.pad(t(2, 3), (1, 1), mode="reflect")
    with pytest.raises(ValueError, match="clamp"):
        t(3).clamp()
    with pytest.raises(ValueError, match="flatten"):
        t(2, 3, 4).flatten(2, 1)


# ---- dims -----------------------------------------------------------------------------------

BAD_DIM = {
    "sum": lambda x: x.sum(dim=3),
    "sum_tuple": lambda x: x.sum(dim=(0, -4)),
    "mean": lambda x: x.mean(dim=-4),
    "var": lambda x: x.var(dim=5),
    "std": lambda x: x.std(dim=3),
    "max": lambda x: x.max(dim=3),
    "min": lambda x: x.min(dim=-4),
    "argmax": lambda x: x.argmax(dim=3),
    "argmin": lambda x: x.argmin(dim=-5),
    "logsumexp": lambda x: pydl.logsumexp(x, 3),
    "softmax": lambda x: x.softmax(3),
    "log_softmax": lambda x: F.log_softmax(x, -4),
    "transpose": lambda x: x.transpose(0, 3),
    "permute": lambda x: x.permute(0, 1, 3),
    "permute_neg": lambda x: x.permute(0, 1, -4),
    "squeeze": lambda x: x.squeeze(3),
    "unsqueeze": lambda x: x.unsqueeze(4),
    "unsqueeze_neg": lambda x: x.unsqueeze(-5),
    "flatten": lambda x: x.flatten(0, 3),
    "flatten_start": lambda x: x.flatten(-4),
    "cat": lambda x: pydl.cat([x, x], 3),
    "stack": lambda x: pydl.stack([x, x], 4),
    "split": lambda x: x.split(1, dim=3),
    "chunk": lambda x: x.chunk(2, dim=-4),
}


@pytest.mark.parametrize("op", list(BAD_DIM))
def test_bad_dim_raises_index_error(op):
    name = op.split("_neg")[0].split("_tuple")[0].split("_start")[0]
    with pytest.raises(IndexError, match=rf"^{name}:.*dim"):
        BAD_DIM[op](t(2, 3, 4))


def test_indexing_out_of_range():
    with pytest.raises(IndexError, match="index"):
        t(2, 3)[2]
    with pytest.raises(IndexError, match="index"):
        t(2, 3)[0, -4]
    with pytest.raises(IndexError, match="index"):
        t(2, 3)[pydl.tensor([0, 5])]
    with pytest.raises(IndexError, match="indexing"):
        t(2, 3)[pydl.tensor([0.0, 1.0])]


# ---- indices and classes ----------------------------------------------------------------------

def test_embedding_index_errors():
    w = pydl.randn(5, 3)
    with pytest.raises(TypeError, match=r"^embedding:"):
        F.embedding(pydl.tensor([0.0, 1.0]), w)
    with pytest.raises(IndexError, match=r"^embedding:.*5"):
        F.embedding(pydl.tensor([0, 5]), w)
    with pytest.raises(IndexError, match=r"^embedding:.*-1"):
        F.embedding(pydl.tensor([[1, -1]]), w)
    with pytest.raises(TypeError, match=r"^embedding:"):
        F.embedding([0, 1], w)


def test_cross_entropy_index_errors():
    x = pydl.randn(3, 4)
    with pytest.raises(TypeError, match=r"^cross_entropy:"):
        F.cross_entropy(x, pydl.tensor([0.0, 1.0, 2.0]))
    with pytest.raises(IndexError, match=r"^cross_entropy:.*target 4"):
        F.cross_entropy(x, pydl.tensor([0, 4, 1]))
    with pytest.raises(IndexError, match=r"^cross_entropy:.*target -2"):
        F.cross_entropy(x, pydl.tensor([0, -2, 1]))
    with pytest.raises(IndexError, match=r"^cross_entropy:"):
        F.cross_entropy(pydl.randn(2, 3, 5), pydl.tensor([[0, 1, 3, 0, 0], [0, 0, 0, 0, 0]]))
    with pytest.raises(ValueError, match=r"^cross_entropy:.*shape"):
        F.cross_entropy(x, pydl.tensor([0, 1]))
    with pytest.raises(ValueError, match=r"^cross_entropy:"):
        F.cross_entropy(x, pydl.tensor([0, 1, 2]), reduction="avg")
    with pytest.raises(ValueError, match=r"^cross_entropy:"):
        F.cross_entropy(x, pydl.tensor([0, 1, 2]), label_smoothing=1.5)
    with pytest.raises(TypeError, match=r"^cross_entropy:"):
        F.cross_entropy(pydl.tensor([[1, 2], [3, 4]]), pydl.tensor([0, 1]))


def test_nll_loss_index_errors():
    x = pydl.randn(3, 4)
    with pytest.raises(IndexError, match=r"^nll_loss:.*target 7"):
        F.nll_loss(x, pydl.tensor([0, 7, 1]))
    with pytest.raises(TypeError, match=r"^nll_loss:"):
        F.nll_loss(x, pydl.tensor([0.0, 1.0, 1.0]))


def test_functional_shape_errors():
    with pytest.raises(ValueError, match=r"^linear:"):
        F.linear(t(2, 3), t(4, 5))
    with pytest.raises(ValueError, match=r"^linear:"):
        F.linear(t(2, 3), t(4, 3), t(5))
    with pytest.raises(TypeError, match=r"^linear:"):
        F.linear(t(2, 3), t(4, 3, dtype=pydl.float64))
    with pytest.raises(ValueError, match=r"^layer_norm:"):
        F.layer_norm(t(2, 3), (4,))
    with pytest.raises(ValueError, match=r"^layer_norm:"):
        F.layer_norm(t(2, 3), (3,), weight=t(4))
    with pytest.raises(ValueError, match=r"^rms_norm:"):
        F.rms_norm(t(2, 3), (2, 3, 1))
    with pytest.raises(ValueError, match=r"^batch_norm:"):
        F.batch_norm(t(4, 3), t(2), t(2), training=True)
    with pytest.raises(ValueError, match=r"^batch_norm:"):
        F.batch_norm(t(1, 3), None, None, training=True)
    with pytest.raises(ValueError, match=r"^batch_norm:"):
        F.batch_norm(t(4, 3), None, None, training=False)
    with pytest.raises(ValueError, match=r"^mse_loss:"):
        F.mse_loss(t(2, 3), t(3))
    with pytest.raises(ValueError, match=r"^l1_loss:"):
        F.l1_loss(t(2, 3), t(3), reduction="bad")
    with pytest.raises(ValueError, match=r"^binary_cross_entropy_with_logits:"):
        F.binary_cross_entropy_with_logits(t(2, 3), t(3))
    with pytest.raises(TypeError, match=r"^softmax:"):
        F.softmax(pydl.tensor([1, 2]), -1)
    with pytest.raises(TypeError, match=r"^softmax:"):
        F.softmax([1.0, 2.0], -1)
    with pytest.raises(ValueError, match=r"^dropout:"):
        F.dropout(t(3), -0.1)


# ---- devices ----------------------------------------------------------------------------------

class FakeGpuArray:
    """Stands in for a CuPy array: not a NumPy array, so pydl sees a CUDA tensor."""

    def __init__(self, shape, dtype=np.float32):
        self.shape, self.dtype, self.ndim = tuple(shape), np.dtype(dtype), len(shape)
        self.size = int(np.prod(shape))


def gpu(*shape, dtype=np.float32):
    return Tensor._wrap(FakeGpuArray(shape, dtype))


def test_common_device():
    a, b = t(2), gpu(2)
    assert _common_device("op", [a, t(3)]) == "cpu"
    assert _common_device("op", [b, gpu(3)]) == "cuda"
    assert _common_device("op", []) == "cpu"
    with pytest.raises(pydl.DeviceError, match=r"^myop:.*cpu.*cuda"):
        _common_device("myop", [a, b])
    assert issubclass(pydl.DeviceError, RuntimeError)


MIXED = {
    "add": lambda c, g: c + g,
    "sub": lambda c, g: pydl.sub(g, c),
    "mul": lambda c, g: c * g,
    "div": lambda c, g: c / g,
    "maximum": lambda c, g: pydl.maximum(c, g),
    "matmul": lambda c, g: c @ g,
    "cat": lambda c, g: pydl.cat([c, g]),
    "stack": lambda c, g: pydl.stack([c, g]),
    "where": lambda c, g: pydl.where(c > 0, c, g),
    "masked_fill": lambda c, g: g.masked_fill(c > 0, 1.0),
    "indexing": lambda c, g: c[Tensor._wrap(FakeGpuArray((2,), np.int64))],
    "linear": lambda c, g: F.linear(c, g),
    "cross_entropy": lambda c, g: F.cross_entropy(c, Tensor._wrap(FakeGpuArray((2,), np.int64))),
    "embedding": lambda c, g: F.embedding(pydl.tensor([0, 1]), g),
    "mse_loss": lambda c, g: F.mse_loss(c, g),
    "layer_norm": lambda c, g: F.layer_norm(c, (2,), weight=gpu(2)),
    "eq": lambda c, g: c == g,
}


@pytest.mark.parametrize("op", list(MIXED))
def test_mixing_devices_raises_device_error(op):
    with pytest.raises(pydl.DeviceError, match=rf"{op}"):
        MIXED[op](t(2, 2), gpu(2, 2))


# ---- autograd misuse -----------------------------------------------------------------------------

def test_requires_grad_on_int_tensor():
    with pytest.raises(RuntimeError, match="floating"):
        pydl.tensor([1, 2, 3], requires_grad=True)
    with pytest.raises(RuntimeError, match="floating"):
        pydl.tensor([1, 2]).requires_grad_()
    with pytest.raises(RuntimeError, match="floating"):
        pydl.zeros(3, dtype=pydl.int64, requires_grad=True)
    with pytest.raises(RuntimeError, match="floating"):
        pydl.Tensor([True, False], requires_grad=True)


def test_backward_misuse():
    x = pydl.ones(2, 3, requires_grad=True)
    with pytest.raises(RuntimeError, match=r"backward.*scalar"):
        (x * 2).backward()
    with pytest.raises(RuntimeError, match=r"backward.*shape"):
        (x * 2).backward(pydl.ones(3))
    with pytest.raises(RuntimeError, match=r"backward.*grad"):
        pydl.ones(3).sum().backward()
    with pytest.raises(RuntimeError, match=r"backward"):
        with pydl.no_grad():
            y = (x * 2).sum()
        y.backward()


def test_conversion_misuse():
    with pytest.raises(ValueError, match="item"):
        t(2).item()
    with pytest.raises(RuntimeError, match="ambiguous"):
        bool(t(2))
    with pytest.raises(TypeError, match="len"):
        len(pydl.tensor(1.0))
    with pytest.raises(TypeError, match="dtype"):
        pydl.zeros(2, dtype="complex64")
    with pytest.raises(TypeError, match="rand"):
        pydl.rand(2, dtype=pydl.int64)
    with pytest.raises(ValueError, match="randint"):
        pydl.randint(5, 5, (2,))
    with pytest.raises(ValueError, match="negative"):
        pydl.zeros(-1, 2)
    with pytest.raises(ValueError, match="arange"):
        pydl.arange(0, 5, 0)
    with pytest.raises(ValueError, match="tensor"):
        pydl.tensor([[1, 2], [3]])


def test_inplace_on_leaf_requiring_grad():
    x = pydl.ones(3, requires_grad=True)
    with pytest.raises(RuntimeError, match="add_"):
        x.add_(1.0)
    with pytest.raises(RuntimeError, match="__setitem__"):
        x[0] = 2.0
    with pydl.no_grad():
        x.add_(1.0)
    np.testing.assert_array_equal(x.detach().numpy(), [2.0, 2.0, 2.0])
