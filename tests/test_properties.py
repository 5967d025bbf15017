"""Property-based checks of the CPU ops against float64 NumPy references over
random shapes, strides and values (hypothesis)."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import pydl
import pydl.nn.functional as F

finite = st.floats(-30, 30, allow_nan=False, width=32)
SETTINGS = settings(max_examples=40, deadline=None)


def _arrays(min_dims=1, max_dims=3, min_side=1, max_side=9):
    return hnp.arrays(np.float32, hnp.array_shapes(min_dims=min_dims, max_dims=max_dims,
                                                   min_side=min_side, max_side=max_side),
                      elements=finite)


def _maybe_strided(a, flip):
    """The same values as a non-contiguous view, when asked."""
    if flip and a.ndim >= 2:
        return np.ascontiguousarray(a.swapaxes(-1, -2)).swapaxes(-1, -2)
    return a


@SETTINGS
@given(_arrays(), st.booleans(), st.booleans())
def test_softmax_matches_float64(a, log, flip):
    a = _maybe_strided(a, flip)
    x = a.astype(np.float64)
    ref = x - x.max(-1, keepdims=True)
    ref = ref - np.log(np.exp(ref).sum(-1, keepdims=True)) if log else \
        np.exp(ref) / np.exp(ref).sum(-1, keepdims=True)
    got = (F.log_softmax if log else F.softmax)(pydl.tensor(a), dim=-1).numpy()
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-5)


@SETTINGS
@given(_arrays(min_dims=2, max_side=12), st.booleans())
def test_layer_norm_matches_float64(a, flip):
    a = _maybe_strided(a, flip)
    x = a.astype(np.float64)
    ref = (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + 1e-5)
    got = F.layer_norm(pydl.tensor(a), (a.shape[-1],)).numpy()
    np.testing.assert_allclose(got, ref, rtol=1e-3, atol=2e-3)


@SETTINGS
@given(_arrays(min_dims=2, max_dims=2), st.data(), st.floats(0, 1))
def test_cross_entropy_matches_float64(a, data, smoothing):
    n, c = a.shape
    t = np.array(data.draw(st.lists(st.integers(0, c - 1), min_size=n, max_size=n)), np.int64)
    x = a.astype(np.float64)
    m = x.max(1, keepdims=True)
    lse = (m + np.log(np.exp(x - m).sum(1, keepdims=True)))[:, 0]
    nll = lse - x[np.arange(n), t]
    ref = ((1 - smoothing) * nll + smoothing * (lse - x.mean(1))).mean()
    got = F.cross_entropy(pydl.tensor(a), pydl.tensor(t), label_smoothing=smoothing).item()
    assert got == pytest.approx(ref, rel=1e-4, abs=1e-4)


@SETTINGS
@given(st.integers(1, 6), st.integers(1, 6), st.integers(1, 6), st.booleans(), st.booleans())
def test_matmul_gradients_match_float64(m, k, n, ta, tb):
    rng = np.random.default_rng(m * 100 + k * 10 + n)
    a = rng.standard_normal((k, m) if ta else (m, k))
    b = rng.standard_normal((n, k) if tb else (k, n))
    pa = pydl.tensor(a, requires_grad=True)
    pb = pydl.tensor(b, requires_grad=True)
    out = (pa.T if ta else pa) @ (pb.T if tb else pb)
    g = rng.standard_normal((m, n))
    out.backward(pydl.tensor(g))
    A, B = (a.T if ta else a), (b.T if tb else b)
    np.testing.assert_allclose(out.detach().numpy(), A @ B, rtol=1e-12)
    ga, gb = g @ B.T, A.T @ g
    np.testing.assert_allclose(pa.grad.numpy(), ga.T if ta else ga, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(pb.grad.numpy(), gb.T if tb else gb, rtol=1e-12, atol=1e-12)


@SETTINGS
@given(_arrays(min_dims=1, max_dims=4, max_side=5), st.data())
def test_sum_over_random_dims_matches(a, data):
    dims = data.draw(st.lists(st.integers(0, a.ndim - 1), unique=True, min_size=1, max_size=a.ndim))
    keep = data.draw(st.booleans())
    t = pydl.tensor(a.astype(np.float64), requires_grad=True)
    s = t.sum(dim=tuple(dims), keepdim=keep)
    np.testing.assert_allclose(s.detach().numpy(), a.astype(np.float64).sum(axis=tuple(dims), keepdims=keep),
                               rtol=1e-12, atol=1e-9)
    s.sum().backward()
    np.testing.assert_array_equal(t.grad.numpy(), np.ones(a.shape))
