"""Numba CUDA kernels against their NumPy twins, float64 references and PyTorch.

Each kernel test runs on two targets: "sim", Numba's CUDA simulator on NumPy
arrays (the default on a machine without a GPU), and "gpu", the real kernels on
CuPy arrays (`-m cuda`). Numba reads NUMBA_ENABLE_CUDASIM once, at import, so
one process runs one of them: the simulator unless a GPU is visible through
CuPy. Set NUMBA_ENABLE_CUDASIM=1 to force the simulator on a GPU machine.
"""

import functools
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest


def _gpu_visible():
    """Return True when CuPy imports and sees at least one GPU."""
    try:
        import cupy

        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:
        return False


if "numba" not in sys.modules and "NUMBA_ENABLE_CUDASIM" not in os.environ and not _gpu_visible():
    os.environ["NUMBA_ENABLE_CUDASIM"] = "1"

from pydl.backend import numba_kernels as nk  # noqa: E402
from pydl.backend import rng  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


@functools.cache
def _sim_unavailable():
    """Return why the simulator cannot run here, or None."""
    try:
        if not nk.simulator_enabled():
            return ("numba is set up without its CUDA simulator in this process (a GPU is visible, or numba "
                    "was imported first); run with NUMBA_ENABLE_CUDASIM=1 for the simulator")
        out = np.zeros(4, dtype=np.uint32)
        nk.random_uint32(out, 0, 0)
    except Exception as e:  # an unusable numba-cuda install
        return f"the Numba CUDA simulator cannot run here: {type(e).__name__}: {e}"
    return None


@functools.cache
def _gpu_unavailable():
    """Return why the GPU target cannot run here, or None."""
    try:
        import cupy  # noqa: F401
    except ImportError:
        return "cupy is not installed"
    if not _gpu_visible():
        return "no CUDA GPU visible"
    try:
        if nk.simulator_enabled():
            return "numba runs its CUDA simulator in this process"
    except ImportError:
        return "numba-cuda is not installed"
    return None


@pytest.fixture(params=["sim", pytest.param("gpu", marks=pytest.mark.cuda)])
def xp(request):
    """The array library of the target: numpy for the simulator, cupy for the GPU."""
    reason = _sim_unavailable() if request.param == "sim" else _gpu_unavailable()
    if reason:
        pytest.skip(reason)
    if request.param == "sim":
        return np
    import cupy

    return cupy


def host(a):
    """Return a as a NumPy array."""
    return a.get() if hasattr(a, "get") and not isinstance(a, np.ndarray) else np.asarray(a)


def on_gpu(xp):
    """Return True for the GPU target, where larger sizes are affordable."""
    return xp is not np


# ---------------------------------------------------------------- import hygiene

def test_import_does_not_import_numba():
    code = "import sys, pydl.backend.numba_kernels, pydl.backend.rng; assert 'numba' not in sys.modules"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    subprocess.run([sys.executable, "-c", code], check=True, env=env, cwd=REPO)


# ---------------------------------------------------------------- RNG (NumPy side)

# Random123's known-answer vectors for philox4x32_10.
PHILOX_KAT = [
    ((0, 0, 0, 0), (0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
    ((0xFFFFFFFF,) * 4, (0xFFFFFFFF, 0xFFFFFFFF), (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
    ((0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344), (0xA4093822, 0x299F31D0),
     (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1)),
]


@pytest.mark.parametrize("counter,key,expected", PHILOX_KAT)
def test_philox_known_answers(counter, key, expected):
    assert tuple(int(w) for w in rng.philox4x32_10(counter, key)) == expected


def test_stream_layout_is_counter_order():
    seed = 0x0123456789ABCDEF
    words = rng.philox4x32_10((5, 0, 0, 0), rng.split_seed(seed))
    assert [int(w) for w in words] == [int(u) for u in rng.random_uint32(seed, 20, 4)]
    assert rng.split_seed(-1) == (0xFFFFFFFF, 0xFFFFFFFF)


def test_random_uint32_windows_agree():
    full = rng.random_uint32(7, 0, 40)
    assert full.dtype == np.uint32
    for offset in range(10):
        for n in range(14):
            np.testing.assert_array_equal(rng.random_uint32(7, offset, n), full[offset:offset + n])
    far = rng.random_uint32(7, 2**62 + 1, 9)
    np.testing.assert_array_equal(far[3:], rng.random_uint32(7, 2**62 + 4, 6))


def test_seeds_give_different_streams():
    a, b = rng.random_uint32(1, 0, 64), rng.random_uint32(2, 0, 64)
    assert (a != b).mean() > 0.9
    np.testing.assert_array_equal(rng.random_uint32(2**64 + 1, 0, 64), rng.random_uint32(1, 0, 64))


def test_uniform_is_exact_and_uniform():
    u = rng.uniform(2024, 11, 200_000)
    assert u.dtype == np.float32 and u.shape == (200_000,)
    assert u.min() >= 0.0 and u.max() < 1.0
    np.testing.assert_array_equal(u, (rng.random_uint32(2024, 11, 200_000) >> 8) * 2.0**-24)
    assert abs(u.mean() - 0.5) < 0.005
    assert abs(u.var() - 1 / 12) < 0.002
    counts = np.bincount((u * 16).astype(np.int64), minlength=16)
    assert counts.min() > 0.9 * len(u) / 16


@pytest.mark.parametrize("p", [0.0, 2.0**-24, 0.1, 1 / 3, 0.5, 0.9, 1 - 2.0**-24, 1.0])
def test_keep_threshold_equals_float_comparison(p):
    u = rng.uniform(5, 0, 50_000).astype(np.float64)
    np.testing.assert_array_equal(rng.dropout_keep(5, 0, 50_000, p), u >= p)


def test_keep_threshold_rejects_bad_p():
    for p in (-0.1, 1.5, float("nan")):
        with pytest.raises(ValueError):
            rng.keep_threshold(p)


# ---------------------------------------------------------------- CPU twins against float64 references

@pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
def test_dropout_cpu_reference(p):
    x = np.random.default_rng(0).standard_normal((300, 333)).astype(np.float32)
    y, mask = nk.dropout_cpu(x, p, seed=3, offset=17)
    keep = rng.uniform(3, 17, x.size).reshape(x.shape) >= p
    np.testing.assert_array_equal(mask, keep.astype(np.uint8))
    assert mask.dtype == np.uint8 and y.dtype == np.float32
    ref = x.astype(np.float64) * keep / (1 - p)
    np.testing.assert_allclose(y, ref, rtol=np.finfo(np.float32).eps, atol=0)
    assert abs(mask.mean() - (1 - p)) < 0.01
    dx = nk.dropout_backward_cpu(x, mask, p)
    np.testing.assert_allclose(dx, x.astype(np.float64) * keep / (1 - p), rtol=np.finfo(np.float32).eps, atol=0)


def test_dropout_cpu_edge_probabilities():
    x = np.random.default_rng(1).standard_normal(50).astype(np.float16)
    y, mask = nk.dropout_cpu(x, 0.0, 1, 0)
    np.testing.assert_array_equal(y, x)
    assert mask.all() and y is not x
    y, mask = nk.dropout_cpu(x, 1.0, 1, 0)
    assert not y.any() and not mask.any() and y.dtype == np.float16
    with pytest.raises(TypeError):
        nk.dropout_cpu(np.arange(4), 0.5, 1, 0)


def _index_add_reference(out, index, src):
    """Return (out + scatter-sum in float64, scatter-sum of |src|, largest duplicate count)."""
    ref = out.astype(np.float64)
    mag = np.abs(out).astype(np.float64)
    for i, r in enumerate(index):
        ref[r] += src[i]
        mag[r] += np.abs(src[i])
    dup = np.bincount(index, minlength=out.shape[0]).max() if len(index) else 0
    return ref, mag, dup


def assert_scatter_close(got, ref, mag, dup, dtype):
    """Check a scatter-sum to the rounding bound of dup + 1 sequential additions."""
    bound = (dup + 1) * np.finfo(dtype).eps * mag + np.finfo(dtype).tiny
    err = np.abs(host(got).astype(np.float64) - ref)
    assert np.all(err <= bound), f"max error {err.max()} over bound"


def test_index_add_rows_cpu_reference():
    g = np.random.default_rng(2)
    out = g.standard_normal((9, 6)).astype(np.float32)
    index = g.integers(0, 9, 50)
    src = g.standard_normal((50, 6)).astype(np.float32)
    ref, mag, dup = _index_add_reference(out, index, src)
    assert nk.index_add_rows_cpu(out, index, src) is out
    assert_scatter_close(out, ref, mag, dup, np.float32)


def test_embedding_backward_cpu_matches_torch():
    torch = pytest.importorskip("torch")
    g = np.random.default_rng(3)
    indices = g.integers(0, 11, (4, 7))
    grad_out = g.standard_normal((4, 7, 5)).astype(np.float32)
    for padding_idx in (None, 3, -2):
        weight = torch.zeros(11, 5, requires_grad=True)
        torch.nn.functional.embedding(torch.from_numpy(indices), weight, padding_idx=padding_idx).backward(
            torch.from_numpy(grad_out))
        got = nk.embedding_backward_cpu(grad_out, indices, 11, padding_idx=padding_idx)
        np.testing.assert_allclose(got, weight.grad.numpy(), rtol=1e-6, atol=1e-6)


def _validation_cases(op, xp):
    """Yield (exception, call) pairs that the op must reject."""
    out = xp.zeros((4, 3), dtype=xp.float32)
    src = xp.ones((2, 3), dtype=xp.float32)
    yield IndexError, lambda: op(out, xp.array([0, 4]), src)
    yield IndexError, lambda: op(out, xp.array([-1, 2]), src)
    yield ValueError, lambda: op(out, xp.array([0, 1, 2]), src)
    yield ValueError, lambda: op(out, xp.array([0, 1]), xp.ones((2, 2), dtype=xp.float32))
    yield ValueError, lambda: op(out, xp.array([[0, 1]]), src)
    yield TypeError, lambda: op(out, xp.array([0.0, 1.0]), src)
    yield TypeError, lambda: op(out, xp.array([0, 1]), src.astype(xp.float64))


def test_index_add_rows_cpu_validation():
    for exc, call in _validation_cases(nk.index_add_rows_cpu, np):
        with pytest.raises(exc, match="index_add_rows"):
            call()
    with pytest.raises(IndexError, match="embedding_backward"):
        nk.embedding_backward_cpu(np.ones((3, 2), np.float32), np.array([0, 1, 5]), 5)
    with pytest.raises(ValueError, match="padding_idx"):
        nk.embedding_backward_cpu(np.ones((3, 2), np.float32), np.array([0, 1, 2]), 5, padding_idx=5)
    with pytest.raises(ValueError, match="embedding_backward"):
        nk.embedding_backward_cpu(np.ones((3, 2), np.float32), np.array([0, 1]), 5)


# ---------------------------------------------------------------- Adam against torch.optim

ADAM_CASES = [
    # (decoupled, weight_decay, amsgrad)
    (False, 0.0, False),
    (False, 0.1, False),
    (True, 0.0, False),
    (True, 0.1, False),
    (False, 0.1, True),
    (True, 0.1, True),
]


def _adam_grads(shape, steps, dtype, seed=0):
    """Return a list of gradients for a few steps."""
    g = np.random.default_rng(seed)
    return [g.standard_normal(shape).astype(dtype) for _ in range(steps)]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("decoupled,weight_decay,amsgrad", ADAM_CASES)
def test_adam_cpu_matches_torch(decoupled, weight_decay, amsgrad, dtype):
    torch = pytest.importorskip("torch")
    hp = dict(lr=3e-2, beta1=0.9, beta2=0.99, eps=1e-8)
    shape, steps = (13, 7), 6
    param = np.random.default_rng(1).standard_normal(shape).astype(dtype)
    grads = _adam_grads(shape, steps, dtype)

    p_t = torch.nn.Parameter(torch.from_numpy(param.copy()))
    cls = torch.optim.AdamW if decoupled else torch.optim.Adam
    opt = cls([p_t], lr=hp["lr"], betas=(hp["beta1"], hp["beta2"]), eps=hp["eps"],
              weight_decay=weight_decay, amsgrad=amsgrad, foreach=False)
    m, v, vmax = np.zeros_like(param), np.zeros_like(param), np.zeros_like(param)
    for step, grad in enumerate(grads, start=1):
        p_t.grad = torch.from_numpy(grad.copy())
        opt.step()
        nk.adam_step_cpu(param, grad, m, v, weight_decay=weight_decay, step=step, decoupled=decoupled,
                         amsgrad=amsgrad, max_exp_avg_sq=vmax if amsgrad else None, **hp)

    state = opt.state[p_t]
    rtol = 1e-12 if dtype == np.float64 else 2e-6
    np.testing.assert_allclose(param, p_t.detach().numpy(), rtol=rtol, atol=rtol * 1e-2)
    np.testing.assert_allclose(m, state["exp_avg"].numpy(), rtol=rtol, atol=rtol * 1e-2)
    np.testing.assert_allclose(v, state["exp_avg_sq"].numpy(), rtol=rtol, atol=rtol * 1e-4)
    if amsgrad:
        np.testing.assert_allclose(vmax, state["max_exp_avg_sq"].numpy(), rtol=rtol, atol=rtol * 1e-4)


def test_adam_cpu_validation():
    a = np.zeros(4, np.float32)
    hp = dict(lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0, decoupled=False)
    with pytest.raises(ValueError):
        nk.adam_step_cpu(a, np.zeros(5, np.float32), a.copy(), a.copy(), step=1, **hp)
    with pytest.raises(ValueError):
        nk.adam_step_cpu(a, a.copy(), a.copy(), a.copy(), step=0, **hp)
    with pytest.raises(ValueError):
        nk.adam_step_cpu(a, a.copy(), a.copy(), a.copy(), step=1, amsgrad=True, **hp)
    with pytest.raises(TypeError):
        nk.adam_step_cpu(a, a.astype(np.float64), a.copy(), a.copy(), step=1, **hp)
    with pytest.raises(ValueError):
        nk.adam_step_cpu(np.zeros((4, 4), np.float32)[:, ::2], *(np.zeros((4, 2), np.float32),) * 3, step=1, **hp)


# ---------------------------------------------------------------- kernels: simulator and GPU

@pytest.mark.parametrize("seed", [0, 12345, 2**64 - 1])
@pytest.mark.parametrize("offset", [0, 1, 3, 2**40 + 3])
def test_random_uint32_kernel_matches_numpy(xp, seed, offset):
    for n in (1, 5, 130) + ((1_000_003,) if on_gpu(xp) else ()):
        out = xp.zeros(n, dtype=xp.uint32)
        nk.random_uint32(out, seed, offset)
        np.testing.assert_array_equal(host(out), rng.random_uint32(seed, offset, n))
    if on_gpu(xp):
        np.testing.assert_array_equal(host(rng.uniform(seed, offset, 999, xp=xp)), rng.uniform(seed, offset, 999))


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
@pytest.mark.parametrize("p", [0.0, 0.25, 0.5, 1.0])
def test_dropout_matches_cpu(xp, dtype, p):
    g = np.random.default_rng(4)
    shapes = [(1,), (7,), (3, 37)] + ([(1001, 1003)] if on_gpu(xp) else [])
    for shape in shapes:
        for offset in (0, 6):
            x = g.standard_normal(shape).astype(dtype)
            y, mask = nk.dropout(xp.array(x), p, seed=11, offset=offset)
            y_cpu, mask_cpu = nk.dropout_cpu(x, p, seed=11, offset=offset)
            assert y.dtype == x.dtype and mask.dtype == np.uint8 and y.shape == x.shape == mask.shape
            np.testing.assert_array_equal(host(mask), mask_cpu)
            np.testing.assert_array_equal(host(y), y_cpu)
            dy = g.standard_normal(shape).astype(dtype)
            dx = nk.dropout_backward(xp.array(dy), mask, p)
            np.testing.assert_array_equal(host(dx), nk.dropout_backward_cpu(dy, mask_cpu, p))


def test_dropout_offsets_shift_the_stream(xp):
    x = xp.ones(40, dtype=xp.float32)
    _, whole = nk.dropout(x, 0.5, seed=9, offset=0)
    for offset in (1, 2, 5, 13):
        _, part = nk.dropout(x[: 40 - offset], 0.5, seed=9, offset=offset)
        np.testing.assert_array_equal(host(part), host(whole)[offset:])


def test_dropout_non_contiguous_input(xp):
    x = np.random.default_rng(5).standard_normal((9, 14)).astype(np.float32)
    view = xp.array(x)[:, ::2].T
    y, mask = nk.dropout(view, 0.3, seed=2, offset=4)
    y_cpu, mask_cpu = nk.dropout_cpu(np.ascontiguousarray(x[:, ::2].T), 0.3, seed=2, offset=4)
    np.testing.assert_array_equal(host(mask), mask_cpu)
    np.testing.assert_array_equal(host(y), y_cpu)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_index_add_rows_matches_reference(xp, dtype):
    g = np.random.default_rng(6)
    cases = [(1, 1, 1), (5, 3, 17), (13, 7, 40), (4, 2, 0)]
    if on_gpu(xp):
        cases += [(1000, 129, 50_000), (3, 64, 20_000)]  # the second: heavy contention
    for rows, d, n in cases:
        out = g.standard_normal((rows, d)).astype(dtype)
        index = g.integers(0, rows, n)
        src = g.standard_normal((n, d)).astype(dtype)
        ref, mag, dup = _index_add_reference(out, index, src)
        out_dev = xp.array(out)
        assert nk.index_add_rows(out_dev, xp.array(index), xp.array(src)) is out_dev
        assert_scatter_close(out_dev, ref, mag, dup, dtype)
        cpu = nk.index_add_rows_cpu(out.copy(), index, src)
        assert_scatter_close(cpu, ref, mag, dup, dtype)


def test_index_add_rows_validation(xp):
    for exc, call in _validation_cases(nk.index_add_rows, xp):
        with pytest.raises(exc, match="index_add_rows"):
            call()
    if not on_gpu(xp):
        with pytest.raises(TypeError):
            nk.index_add_rows([[0.0]], np.array([0]), np.zeros((1, 1), np.float32))


@pytest.mark.parametrize("dtype", ["float32", "float16"])
@pytest.mark.parametrize("padding_idx", [None, 2, -1])
def test_embedding_backward_matches_cpu(xp, dtype, padding_idx):
    g = np.random.default_rng(7)
    num, d = 6, 5
    shapes = [(2, 3), (17,)] + ([(64, 333)] if on_gpu(xp) else [])
    for shape in shapes:
        indices = g.integers(0, num, shape)
        grad_out = g.standard_normal(shape + (d,)).astype(dtype)
        got = nk.embedding_backward(xp.array(grad_out), xp.array(indices), num, padding_idx=padding_idx)
        cpu = nk.embedding_backward_cpu(grad_out, indices, num, padding_idx=padding_idx)
        assert got.dtype == grad_out.dtype and got.shape == (num, d)
        flat_index = indices.reshape(-1)
        skip = None if padding_idx is None else padding_idx % num
        keep = flat_index != skip
        src = grad_out.reshape(-1, d).astype(np.float32)[keep]
        ref, mag, dup = _index_add_reference(np.zeros((num, d), np.float32), flat_index[keep], src)
        if skip is not None:
            assert not host(got)[skip].any()
        acc = np.float32 if dtype == "float32" else np.float16  # float16: one final rounding dominates
        assert_scatter_close(got, ref, mag, dup, acc)
        assert_scatter_close(cpu, ref, mag, dup, acc)
    with pytest.raises(IndexError, match="embedding_backward"):
        nk.embedding_backward(xp.ones((3, 2), dtype=xp.float32), xp.array([0, 1, num]), num)


@pytest.mark.parametrize("decoupled,weight_decay,amsgrad", ADAM_CASES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_adam_step_matches_cpu(xp, decoupled, weight_decay, amsgrad, dtype):
    shape = (1000, 37) if on_gpu(xp) else (5, 29)
    hp = dict(lr=1e-2, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=weight_decay, decoupled=decoupled,
              amsgrad=amsgrad)
    # param, exp_avg, exp_avg_sq, max_exp_avg_sq
    cpu = [np.random.default_rng(8).standard_normal(shape).astype(dtype)] + [np.zeros(shape, dtype) for _ in range(3)]
    dev = [xp.array(a) for a in cpu]
    for step, grad in enumerate(_adam_grads(shape, 4, dtype, seed=9), start=1):
        nk.adam_step(dev[0], xp.array(grad), dev[1], dev[2], step=step,
                     max_exp_avg_sq=dev[3] if amsgrad else None, **hp)
        nk.adam_step_cpu(cpu[0], grad, cpu[1], cpu[2], step=step,
                         max_exp_avg_sq=cpu[3] if amsgrad else None, **hp)
    # The GPU may fuse multiply-adds (errors of a few ulps of the array's scale, not of
    # each element); the simulator repeats the twin's arithmetic exactly.
    tol = 0 if not on_gpu(xp) else 8 * np.finfo(dtype).eps
    for got, want in zip(dev, cpu):
        np.testing.assert_allclose(host(got), want, rtol=tol, atol=tol * np.abs(want).max())
    assert amsgrad or not host(dev[3]).any()
