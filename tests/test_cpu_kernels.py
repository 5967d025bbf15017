"""The C++ CPU kernels (pydl._C.cpu), called directly on NumPy arrays and compared
with float64 NumPy references at atol + |ref| * eps(dtype) * k. Every output is
poisoned with NaN before the call, so an element the kernel forgets to write fails."""
import numpy as np
import pytest

import pydl._C

K = pydl._C.cpu
DTYPES = [np.float32, np.float64]
WIDTHS = [1, 2, 7, 1000, 4097, 65536 + 3]
ROWS = [1, 3, 17]


def poisoned(shape, dtype):
    return np.full(shape, np.nan, dtype=dtype)


def assert_kernel_close(out, ref, dtype, k=16, atol=0.0, what=""):
    """|out - ref| <= atol + |ref| * eps(dtype) * k elementwise; NaN never passes."""
    eps = np.finfo(dtype).eps
    out64 = out.astype(np.float64)
    assert out.dtype == np.dtype(dtype), f"{what}: dtype {out.dtype}"
    assert np.isfinite(out64).all(), f"{what}: NaN or inf in the kernel output"
    err = np.abs(out64 - ref)
    bound = atol + np.abs(ref) * eps * k
    bad = err > bound
    assert not bad.any(), (f"{what}: {bad.sum()} of {bad.size} elements out of tolerance; worst "
                           f"err {err.max():.3g} at {np.unravel_index(np.argmax(err - bound), err.shape)}")


def inputs(rows, cols, dtype, seed, offset=0.0, scale=1.0):
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal((rows, cols)) * scale + offset).astype(dtype)
    return x, rng


# ---- float64 references ------------------------------------------------------------------

def k_for(cols, dtype, base=16.0):
    """The k of atol + |ref| * eps * k: a few roundings, plus, in float64 (where the kernel's
    double accumulators are no wider than the data), the growth of a row sum's rounding error."""
    return base + (base * np.sqrt(cols) if np.dtype(dtype) == np.float64 else 0.0)


def ref_softmax(x, log):
    """Shift by the row max, exponentiate, normalise: no rounded log-sum-exp in the result."""
    x = x.astype(np.float64)
    m = x.max(axis=-1, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)
    e = np.exp(x - m)
    s = e.sum(axis=-1, keepdims=True)
    return (x - m) - np.log(s) if log else e / s


def ref_softmax_backward(y, dy, log):
    y, dy = y.astype(np.float64), dy.astype(np.float64)
    if log:
        return dy - np.exp(y) * dy.sum(axis=-1, keepdims=True)
    return y * (dy - (dy * y).sum(axis=-1, keepdims=True))


def ref_layer_norm(x, w, b, eps, rms):
    x = x.astype(np.float64)
    mu = np.zeros(x.shape[0]) if rms else x.mean(axis=-1)
    var = ((x - mu[:, None]) ** 2).mean(axis=-1)
    rstd = 1.0 / np.sqrt(var + eps)
    y = (x - mu[:, None]) * rstd[:, None]
    if w is not None:
        y = y * w.astype(np.float64)
    if b is not None:
        y = y + b.astype(np.float64)
    return y, mu, rstd


def ref_layer_norm_backward(x, w, mu, rstd, dy, rms):
    x, dy = x.astype(np.float64), dy.astype(np.float64)
    mu, rstd = mu.astype(np.float64), rstd.astype(np.float64)
    xhat = (x - (0.0 if rms else mu[:, None])) * rstd[:, None]
    g = dy * (w.astype(np.float64) if w is not None else 1.0)
    mg = 0.0 if rms else g.mean(axis=-1, keepdims=True)
    dx = rstd[:, None] * (g - mg - xhat * (g * xhat).mean(axis=-1, keepdims=True))
    return dx, (dy * xhat).sum(axis=0), dy.sum(axis=0)


def ref_row_lse(x):
    x = x.astype(np.float64)
    m = x.max(axis=1, keepdims=True)
    return (m + np.log(np.exp(x - m).sum(axis=1, keepdims=True)))[:, 0]


def ref_cross_entropy(x, t, ignore_index, smoothing, lse=None):
    x = x.astype(np.float64)
    rows, cols = x.shape
    valid = t != ignore_index
    lse = ref_row_lse(x) if lse is None else lse
    safe = np.where(valid, t, 0)
    nll = lse - x[np.arange(rows), safe]
    smooth = lse - x.mean(axis=1)
    loss = np.where(valid, (1 - smoothing) * nll + smoothing * smooth, 0.0)
    return loss, np.where(valid, lse, 0.0)


def ref_cross_entropy_backward(x, t, dloss, ignore_index, smoothing, p=None):
    rows, cols = x.shape
    valid = t != ignore_index
    p = ref_softmax(x, False) if p is None else p
    d = p - smoothing / cols
    safe = np.where(valid, t, 0)
    d[np.arange(rows), safe] -= 1 - smoothing
    return np.where(valid[:, None], d * dloss.astype(np.float64)[:, None], 0.0)


# ---- softmax -------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("rows", ROWS)
@pytest.mark.parametrize("cols", WIDTHS)
def test_softmax_forward_backward(cols, rows, dtype):
    x, rng = inputs(rows, cols, dtype, seed=cols * 31 + rows, scale=2.0, offset=0.5)
    eps = np.finfo(dtype).eps
    x64 = x.astype(np.float64)
    # exp(x - max) carries a relative error of about eps * |x - max|.
    spread = (x64.max(axis=-1, keepdims=True) - x64).max()
    k = k_for(cols, dtype) + 2 * spread
    lse = np.abs(x64.max(axis=-1) + np.log(np.exp(x64 - x64.max(axis=-1, keepdims=True)).sum(axis=-1)))
    for log in (False, True):
        name = "log_softmax" if log else "softmax"
        y = poisoned(x.shape, dtype)
        K.softmax_forward(x, y, log)
        ref = ref_softmax(x, log)
        # log_softmax: y = x - lse also carries the rounding of |lse| and |x|.
        atol = k * eps * (np.abs(x64).max() + lse.max()) if log else 0.0
        assert_kernel_close(y, ref, dtype, k=k, atol=atol, what=f"{name} forward")
        if not log:
            np.testing.assert_allclose(y.astype(np.float64).sum(axis=-1), 1.0, rtol=k * eps * 4)

        dy = rng.standard_normal(x.shape).astype(dtype)
        dx = poisoned(x.shape, dtype)
        K.softmax_backward(y, dy, dx, log)
        ref_dx = ref_softmax_backward(y, dy, log)
        y64, dy64 = y.astype(np.float64), np.abs(dy.astype(np.float64))
        if log:  # dx = dy - exp(y) * sum(dy): exp(y) is off by eps * |y| relative
            p = np.exp(y64)
            scale = dy64 + p * (1 + np.abs(y64)) * dy64.sum(axis=-1, keepdims=True)
        else:  # dx = y * (dy - sum(dy * y))
            scale = y64 * (dy64 + (dy64 * y64).sum(axis=-1, keepdims=True))
        assert_kernel_close(dx, ref_dx, dtype, k=k, atol=k * eps * scale, what=f"{name} backward")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("log", [False, True])
def test_softmax_all_neg_inf_row_is_nan(dtype, log):
    x = np.array([[-np.inf] * 5, [0.5, -np.inf, 1.0, 2.0, -1.0]], dtype=dtype)
    y = poisoned(x.shape, dtype)
    K.softmax_forward(x, y, log)
    assert np.isnan(y[0]).all()
    assert_kernel_close(y[1][np.isfinite(ref_softmax(x[1:], log)[0])],
                        ref_softmax(x[1:], log)[0][np.isfinite(ref_softmax(x[1:], log)[0])], dtype,
                        atol=1e-6)
    if not log:
        assert y[1, 1] == 0.0
    else:
        assert y[1, 1] == -np.inf


def test_softmax_large_values_stable():
    x = np.array([[1e4, 1e4 - 1, -1e4], [-1e30, -1e30, 0.0]], dtype=np.float64)
    y = poisoned(x.shape, np.float64)
    K.softmax_forward(x, y, False)
    assert_kernel_close(y, ref_softmax(x, False), np.float64, atol=1e-300)


def test_log_softmax_large_offset_float32():
    x = (np.array([[0.0, 1.0, 2.0, -0.5]]) - 1e4).astype(np.float32)
    y = poisoned(x.shape, np.float32)
    K.softmax_forward(x, y, True)
    ref = ref_softmax(x, True)
    # What a kernel that subtracts the max first achieves: a few ulps of |y| and of the shifted x.
    assert_kernel_close(y, ref, np.float32, k=16, atol=16 * np.finfo(np.float32).eps * 4)


def test_softmax_nd_rows():
    # The kernel takes any contiguous array and normalises over its last dimension.
    x, _ = inputs(6, 5, np.float64, seed=3)
    x = x.reshape(2, 3, 5)
    y = poisoned(x.shape, np.float64)
    K.softmax_forward(x, y, False)
    assert_kernel_close(y, ref_softmax(x, False), np.float64)


# ---- layer_norm / rms_norm -----------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("rows", ROWS)
@pytest.mark.parametrize("cols", WIDTHS)
@pytest.mark.parametrize("rms", [False, True])
def test_layer_norm_forward_backward(rms, cols, rows, dtype):
    x, rng = inputs(rows, cols, dtype, seed=cols * 7 + rows + rms, offset=0.3, scale=1.5)
    eps_ln = 1e-5
    eps = np.finfo(dtype).eps
    k = k_for(cols, dtype)
    x64 = x.astype(np.float64)
    for affine in (False, True):
        w = rng.uniform(0.5, 1.5, cols).astype(dtype) if affine else None
        b = rng.standard_normal(cols).astype(dtype) if affine and not rms else None
        y, mean, rstd = poisoned(x.shape, dtype), poisoned(rows, dtype), poisoned(rows, dtype)
        K.layer_norm_forward(x, w, b, y, mean, rstd, eps_ln, rms)
        ref_y, ref_mu, ref_rstd = ref_layer_norm(x, w, b, eps_ln, rms)
        # y = (x - mean) * rstd * w + b in the input dtype: error ~ eps * (|x| + |mean|) * rstd * |w|.
        w64 = np.ones(cols) if w is None else np.abs(w.astype(np.float64))
        atol = k * eps * ((np.abs(x64) + np.abs(ref_mu)[:, None]) * ref_rstd[:, None] * w64
                          + (0.0 if b is None else np.abs(b.astype(np.float64))))
        assert_kernel_close(y, ref_y, dtype, k=k, atol=atol, what="layer_norm y")
        assert_kernel_close(rstd, ref_rstd, dtype, k=k, what="layer_norm rstd")
        if rms:
            assert_kernel_close(mean, np.zeros(rows), dtype, what="rms_norm mean")
        else:
            assert_kernel_close(mean, ref_mu, dtype, k=k, atol=k * eps * np.abs(x64).mean(axis=-1),
                                what="layer_norm mean")

        dy = rng.standard_normal(x.shape).astype(dtype)
        dx = poisoned(x.shape, dtype)
        dw = poisoned(cols, dtype) if affine else None
        db = poisoned(cols, dtype) if b is not None else None
        K.layer_norm_backward(x, w, mean, rstd, dy, dx, dw, db, rms)
        ref_dx, ref_dw, ref_db = ref_layer_norm_backward(x, w, mean, rstd, dy, rms)
        # dx = rstd * (g - mean(g) - xhat * mean(g * xhat)), g = dy * w: error ~ eps * each term.
        g = np.abs(dy.astype(np.float64)) * w64
        xhat = np.abs(x64 - (0 if rms else mean.astype(np.float64)[:, None])) * \
            rstd.astype(np.float64)[:, None]
        scale = rstd.astype(np.float64)[:, None] * (g + g.mean(axis=-1, keepdims=True) * (1 + xhat)
                                                   + xhat * (g * xhat).mean(axis=-1, keepdims=True))
        assert_kernel_close(dx, ref_dx, dtype, k=k, atol=k * eps * scale, what="layer_norm dx")
        # dweight, dbias: sums over rows, accumulated in double and rounded once.
        rows_k = 16.0
        if affine:
            atol_dw = rows_k * eps * (np.abs(dy) * (xhat + 1)).sum(axis=0)
            assert_kernel_close(dw, ref_dw, dtype, k=rows_k, atol=atol_dw, what="layer_norm dweight")
        if db is not None:
            assert_kernel_close(db, ref_db, dtype, k=rows_k, atol=rows_k * eps * np.abs(dy).sum(axis=0),
                                what="layer_norm dbias")


@pytest.mark.parametrize("rms", [False, True])
def test_layer_norm_backward_only_dweight_or_dbias(rms):
    x, rng = inputs(5, 9, np.float64, seed=11)
    w = rng.uniform(0.5, 1.5, 9)
    y, mean, rstd = np.empty_like(x), np.empty(5), np.empty(5)
    K.layer_norm_forward(x, w, None, y, mean, rstd, 1e-5, rms)
    dy = rng.standard_normal(x.shape)
    ref_dx, ref_dw, ref_db = ref_layer_norm_backward(x, w, mean, rstd, dy, rms)
    for want_w, want_b in [(True, False), (False, True), (False, False)]:
        dx = poisoned(x.shape, np.float64)
        dw = poisoned(9, np.float64) if want_w else None
        db = poisoned(9, np.float64) if want_b else None
        K.layer_norm_backward(x, w, mean, rstd, dy, dx, dw, db, rms)
        assert_kernel_close(dx, ref_dx, np.float64, k=64, atol=1e-13)
        if want_w:
            assert_kernel_close(dw, ref_dw, np.float64, k=64, atol=1e-13)
        if want_b:
            assert_kernel_close(db, ref_db, np.float64, k=64, atol=1e-13)


# ---- cross_entropy ---------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("rows", ROWS)
@pytest.mark.parametrize("cols", WIDTHS)
def test_cross_entropy_forward_backward(cols, rows, dtype):
    x, rng = inputs(rows, cols, dtype, seed=cols * 13 + rows, scale=2.0)
    eps = np.finfo(dtype).eps
    x64 = x.astype(np.float64)
    k = k_for(cols, dtype)
    p, row_lse = ref_softmax(x, False), ref_row_lse(x)
    for ignore_index, smoothing in [(-100, 0.0), (-100, 0.1), (0, 0.0), (1, 0.25), (-1, 1.0)]:
        t = rng.integers(0, cols, rows).astype(np.int64)
        if rows > 1:
            t[rng.random(rows) < 0.3] = ignore_index  # some rows ignored
            t[0] = min(cols - 1, 3)
        loss, lse = poisoned(rows, dtype), poisoned(rows, dtype)
        K.cross_entropy_forward(x, t, loss, lse, ignore_index, smoothing)
        ref_loss, ref_lse = ref_cross_entropy(x64, t, ignore_index, smoothing, row_lse)
        # loss = lse - x[t] (and lse - mean(x)): cancellation, so the error scales with |lse| + |x|.
        scale = np.abs(ref_lse) + np.abs(x64).max(axis=1)
        assert_kernel_close(loss, ref_loss, dtype, k=k, atol=k * eps * scale, what="cross_entropy loss")
        assert_kernel_close(lse, ref_lse, dtype, k=k, what="cross_entropy lse")

        dloss = rng.standard_normal(rows).astype(dtype)
        dx = poisoned(x.shape, dtype)
        K.cross_entropy_backward(x, t, lse, dloss, dx, ignore_index, smoothing)
        ref_dx = ref_cross_entropy_backward(x64, t, dloss, ignore_index, smoothing, p)
        # exp(x - lse) with lse rounded to the dtype: relative error ~ eps * (|lse| + |x|).
        g = np.abs(dloss.astype(np.float64))[:, None]
        scale = g * (p * (1 + np.abs(ref_lse)[:, None] + np.abs(x64)) + smoothing / cols)
        onehot = np.zeros_like(scale)
        valid = t != ignore_index
        onehot[np.arange(rows)[valid], t[valid]] = 1.0
        scale += g * onehot  # the target's -(1 - smoothing) term
        assert_kernel_close(dx, ref_dx, dtype, k=k, atol=k * eps * scale, what="cross_entropy dx")
        ignored = t == ignore_index
        assert (dx[ignored] == 0).all() and (loss[ignored] == 0).all() and (lse[ignored] == 0).all()


def test_cross_entropy_all_neg_inf_row_is_nan():
    x = np.array([[-np.inf] * 4, [0.1, 0.2, 0.3, 0.4]])
    t = np.array([1, 2], dtype=np.int64)
    loss, lse = poisoned(2, np.float64), poisoned(2, np.float64)
    K.cross_entropy_forward(x, t, loss, lse, -100, 0.0)
    assert np.isnan(loss[0])
    assert_kernel_close(loss[1:], ref_cross_entropy(x[1:], t[1:], -100, 0.0)[0], np.float64)


def test_cross_entropy_masked_logit():
    x = np.array([[0.5, 1.0, -np.inf, 2.0]])
    t = np.array([1], dtype=np.int64)
    loss, lse = poisoned(1, np.float64), poisoned(1, np.float64)
    K.cross_entropy_forward(x, t, loss, lse, -100, 0.0)
    assert_kernel_close(loss, ref_cross_entropy(x, t, -100, 0.0)[0], np.float64)


def test_cross_entropy_leading_masked_logit_lse():
    x = np.array([[-np.inf, 1.0, 2.0, 0.5]])
    t = np.array([1], dtype=np.int64)
    loss, lse = poisoned(1, np.float64), poisoned(1, np.float64)
    K.cross_entropy_forward(x, t, loss, lse, -100, 0.0)
    assert_kernel_close(lse, ref_cross_entropy(x, t, -100, 0.0)[1], np.float64)


@pytest.mark.parametrize("bad", [4, 17, -1, -101])
def test_cross_entropy_out_of_range_target(bad):
    x, _ = inputs(3, 4, np.float64, seed=1)
    t = np.array([0, bad, 2], dtype=np.int64)
    with pytest.raises(IndexError, match=rf"cross_entropy.*target {bad}.*position 1.*4 classes"):
        K.cross_entropy_forward(x, t, np.empty(3), np.empty(3), -100, 0.0)


# ---- argument validation --------------------------------------------------------------------

def _ce_fwd(x=None, t=None, loss=None, lse=None):
    x = np.zeros((3, 4)) if x is None else x
    t = np.zeros(3, np.int64) if t is None else t
    K.cross_entropy_forward(x, t, np.empty(3, x.dtype) if loss is None else loss,
                            np.empty(3, x.dtype) if lse is None else lse, -100, 0.0)


def _ln_fwd(x=None, w=None, y=None, mean=None):
    x = np.zeros((3, 4)) if x is None else x
    K.layer_norm_forward(x, w, None, np.empty(x.shape, x.dtype) if y is None else y,
                         np.empty(3, x.dtype) if mean is None else mean, np.empty(3, x.dtype), 1e-5,
                         False)


WRONG_DTYPE = {
    "softmax_input_int": (lambda: K.softmax_forward(np.zeros((2, 3), np.int64), np.empty((2, 3), np.int64)),
                          "softmax"),
    "softmax_input_half": (lambda: K.softmax_forward(np.zeros((2, 3), np.float16),
                                                     np.empty((2, 3), np.float16)), "softmax"),
    "softmax_output_mixed": (lambda: K.softmax_forward(np.zeros((2, 3)), np.empty((2, 3), np.float32), True),
                             "log_softmax"),
    "softmax_backward_mixed": (lambda: K.softmax_backward(np.zeros((2, 3)), np.zeros((2, 3), np.float32),
                                                          np.empty((2, 3))), "softmax_backward"),
    "layer_norm_weight": (lambda: _ln_fwd(w=np.ones(4, np.float32)), "layer_norm"),
    "layer_norm_input_int": (lambda: _ln_fwd(x=np.zeros((3, 4), np.int32)), "layer_norm"),
    "cross_entropy_target_int32": (lambda: _ce_fwd(t=np.zeros(3, np.int32)), "cross_entropy"),
    "cross_entropy_target_float": (lambda: _ce_fwd(t=np.zeros(3)), "cross_entropy"),
    "cross_entropy_loss_float32": (lambda: _ce_fwd(loss=np.empty(3, np.float32)), "cross_entropy"),
    "not_an_array": (lambda: K.softmax_forward([[1.0, 2.0]], np.empty((1, 2))), "softmax"),
}


@pytest.mark.parametrize("case", list(WRONG_DTYPE))
def test_wrong_dtype_raises_type_error(case):
    fn, op = WRONG_DTYPE[case]
    with pytest.raises(TypeError, match=op):
        fn()


NON_CONTIGUOUS = {
    "softmax_input": (lambda: K.softmax_forward(np.zeros((4, 3)).T, np.empty((3, 4))), "softmax"),
    "softmax_output": (lambda: K.softmax_forward(np.zeros((2, 3)), np.empty((2, 6))[:, ::2]), "softmax"),
    "softmax_backward_dy": (lambda: K.softmax_backward(np.zeros((2, 3)), np.zeros((3, 2)).T,
                                                       np.empty((2, 3))), "softmax_backward"),
    "layer_norm_input": (lambda: _ln_fwd(x=np.zeros((4, 3)).T), "layer_norm"),
    "layer_norm_weight": (lambda: _ln_fwd(w=np.ones(8)[::2]), "layer_norm"),
    "cross_entropy_input": (lambda: _ce_fwd(x=np.zeros((4, 3)).T), "cross_entropy"),
    "cross_entropy_target": (lambda: _ce_fwd(t=np.zeros(6, np.int64)[::2]), "cross_entropy"),
}


@pytest.mark.parametrize("case", list(NON_CONTIGUOUS))
def test_non_contiguous_raises_value_error(case):
    fn, op = NON_CONTIGUOUS[case]
    with pytest.raises(ValueError, match=rf"{op}.*contiguous"):
        fn()


SHAPE_MISMATCH = {
    "softmax_output": (lambda: K.softmax_forward(np.zeros((2, 3)), np.empty((3, 2))), "softmax"),
    "softmax_backward": (lambda: K.softmax_backward(np.zeros((2, 3)), np.zeros((2, 3)), np.empty(6),
                                                    True), "log_softmax_backward"),
    "layer_norm_weight": (lambda: _ln_fwd(w=np.ones(3)), "layer_norm"),
    "layer_norm_mean": (lambda: _ln_fwd(mean=np.empty(4)), "layer_norm"),
    "layer_norm_output": (lambda: _ln_fwd(y=np.empty((4, 3))), "layer_norm"),
    "layer_norm_backward_dy": (lambda: K.layer_norm_backward(
        np.zeros((3, 4)), None, np.zeros(3), np.ones(3), np.zeros((3, 5)), np.empty((3, 4)), None, None,
        True), "rms_norm_backward"),
    "cross_entropy_target": (lambda: _ce_fwd(t=np.zeros(4, np.int64)), "cross_entropy"),
    "cross_entropy_loss": (lambda: _ce_fwd(loss=np.empty(2)), "cross_entropy"),
    "cross_entropy_3d_input": (lambda: _ce_fwd(x=np.zeros((3, 4, 1))), "cross_entropy"),
    "cross_entropy_backward_grad": (lambda: K.cross_entropy_backward(
        np.zeros((3, 4)), np.zeros(3, np.int64), np.zeros(3), np.zeros(3), np.empty((3, 5)), -100, 0.0),
        "cross_entropy_backward"),
}


@pytest.mark.parametrize("case", list(SHAPE_MISMATCH))
def test_shape_mismatch_raises_value_error(case):
    fn, op = SHAPE_MISMATCH[case]
    with pytest.raises(ValueError, match=rf"^{op}:"):
        fn()


def _empty(shape, dtype=np.float64):
    """A zero-size array with C strides (NumPy may give zero-size arrays all-zero strides)."""
    strides = tuple(int(np.prod(shape[i + 1:])) * np.dtype(dtype).itemsize for i in range(len(shape)))
    return np.lib.stride_tricks.as_strided(np.zeros(1, dtype), shape, strides)


def test_empty_inputs_with_c_strides():
    K.softmax_forward(_empty((0, 3)), _empty((0, 3)))
    K.cross_entropy_forward(_empty((0, 3)), _empty((0,), np.int64), _empty((0,)), _empty((0,)), -100, 0.0)
    K.layer_norm_forward(_empty((0, 3)), None, None, _empty((0, 3)), _empty((0,)), _empty((0,)), 1e-5, False)


def test_empty_inputs_as_numpy_makes_them():
    K.softmax_forward(np.zeros((0, 3)), np.empty((0, 3)))
