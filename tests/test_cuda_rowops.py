"""GPU tests of the CUDA row kernels (softmax, layer norm / RMSNorm, fused
cross-entropy) called directly through pydl._C.cuda on CuPy arrays, against
float64 NumPy references, for every dtype and at awkward widths that reach
every launch variant (warp per row, staged block, unstaged block; 128-bit and
scalar accesses). Outputs are poisoned with NaN before each launch.

Tolerance: |out - ref| <= 2 * eps(out dtype) * |ref| + K * eps(compute) * scale
+ atol, where `scale` bounds the magnitude of the terms that produced the value
and the compute precision is float32 for the half types.
"""

import ml_dtypes
import numpy as np
import pytest

cp = pytest.importorskip("cupy")
_C = pytest.importorskip("pydl._C")

if not getattr(_C.cuda, "compiled", False) or _C.cuda.device_count() == 0:
    pytest.skip("needs a CUDA build of pydl and a GPU", allow_module_level=True)
try:
    if cp.cuda.runtime.getDeviceCount() == 0:
        pytest.skip("CuPy sees no GPU", allow_module_level=True)
except cp.cuda.runtime.CUDARuntimeError:
    pytest.skip("CuPy sees no GPU", allow_module_level=True)

pytestmark = pytest.mark.cuda

BF16 = np.dtype(ml_dtypes.bfloat16)
F16, F32, F64 = np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64)
K = 16

# 4096 and 12288 put the half-type layer_norm backward right at and past the 48 KiB
# shared-memory default (static plus dynamic), where the kernel must opt in.
WIDTHS = [1, 7, 31, 1000, 1024, 4096, 4097, 12288, 32768 + 3, 131072, 262144]
ROWS = [1, 3, 65]
# 65 rows of the widest widths would only add memory and reference time.
SHAPES = [(r, c) for c in WIDTHS for r in ROWS if not (r == 65 and c >= 131072)]
SHAPE_IDS = [f"{r}x{c}" for r, c in SHAPES]


def _bf16_on_gpu():
    try:
        a = np.arange(4, dtype=np.float32).astype(BF16)
        return np.array_equal(_to_host(_to_gpu(a)).astype(np.float32), a.astype(np.float32))
    except Exception:
        return False


def _to_gpu(a):
    a = np.ascontiguousarray(a)
    if a.dtype == BF16:
        try:
            return cp.asarray(a)
        except Exception:
            return cp.asarray(a.view(np.uint16)).view(BF16)
    return cp.asarray(a)


def _to_host(g):
    if g.dtype == BF16:
        try:
            return g.get()
        except Exception:
            return g.view(cp.uint16).get().view(BF16)
    return g.get()


DTYPES = [
    pytest.param(F32, id="float32"),
    pytest.param(F16, id="float16"),
    pytest.param(BF16, id="bfloat16",
                 marks=pytest.mark.skipif(not _bf16_on_gpu(), reason="CuPy lacks bfloat16")),
    pytest.param(F64, id="float64"),
]


def eps(dtype):
    return float(ml_dtypes.finfo(dtype).eps)


def compute_eps(dtype):
    return eps(F64) if dtype == F64 else eps(F32)


def stats_dtype(dtype):
    return F32 if dtype in (F16, BF16) else dtype


def atol_of(dtype):
    # float16 results below its normal range are rounded to a fixed spacing.
    fi = ml_dtypes.finfo(dtype)
    return float(fi.smallest_subnormal) if dtype == F16 else float(fi.tiny)


def stream():
    return cp.cuda.get_current_stream().ptr


def poisoned(shape, dtype):
    return _to_gpu(np.full(shape, np.nan, dtype=dtype))


def randn(rng, shape, dtype, scale=1.0):
    """Random values already rounded to dtype, and their exact float64 copy."""
    a = (rng.standard_normal(shape) * scale).astype(dtype)
    return a, a.astype(np.float64)


def assert_close(out, ref, in_dtype, scale, what):
    """`out` is a CuPy array or its host copy (NumPy, same dtype)."""
    got = (_to_host(out) if isinstance(out, cp.ndarray) else out).astype(np.float64)
    ref = np.asarray(ref, np.float64)
    assert got.shape == ref.shape, what
    tol = (2 * eps(out.dtype) * np.abs(ref) + K * compute_eps(in_dtype) * np.asarray(scale)
           + atol_of(out.dtype))
    with np.errstate(invalid="ignore"):  # inf - inf where both are the same infinity
        ok = (got == ref) | (np.abs(got - ref) <= tol)
    if not ok.all():
        i = np.unravel_index(np.argmin(np.where(ok, np.inf, -np.abs(got - ref))), ok.shape)
        raise AssertionError(f"{what}: {np.count_nonzero(~ok)} of {ok.size} values off; worst at "
                             f"{i}: got {got[i]!r}, expected {ref[i]!r}, tol {np.broadcast_to(tol, ok.shape)[i]!r}")


# ---------------------------------------------------------------- softmax


def ref_softmax(x):
    m = x.max(-1, keepdims=True)
    e = np.exp(x - m)
    s = e.sum(-1, keepdims=True)
    return e / s, m + np.log(s)


@pytest.mark.parametrize("log", [False, True], ids=["softmax", "log_softmax"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("rows,cols", SHAPES, ids=SHAPE_IDS)
def test_softmax_forward(rows, cols, dtype, log):
    rng = np.random.default_rng(rows * 7919 + cols)
    x, x64 = randn(rng, (rows, cols), dtype, 2.0)
    y = poisoned((rows, cols), dtype)
    _C.cuda.softmax_forward(_to_gpu(x), y, log, stream())
    p, lse = ref_softmax(x64)
    if log:
        assert_close(y, x64 - lse, dtype, np.abs(x64) + np.abs(lse), "log_softmax")
    else:
        assert_close(y, p, dtype, p * (4 + np.abs(x64 - x64.max(-1, keepdims=True))), "softmax")


@pytest.mark.parametrize("log", [False, True], ids=["softmax", "log_softmax"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("rows,cols", SHAPES, ids=SHAPE_IDS)
def test_softmax_backward(rows, cols, dtype, log):
    rng = np.random.default_rng(rows * 104729 + cols)
    x64 = rng.standard_normal((rows, cols)) * 2.0
    p, lse = ref_softmax(x64)
    y = (x64 - lse if log else p).astype(dtype)
    y64 = y.astype(np.float64)
    dy, dy64 = randn(rng, (rows, cols), dtype)
    dx = poisoned((rows, cols), dtype)
    _C.cuda.softmax_backward(_to_gpu(y), _to_gpu(dy), dx, log, stream())
    if log:
        s = dy64.sum(-1, keepdims=True)
        ref = dy64 - np.exp(y64) * s
        scale = np.abs(dy64) + np.exp(y64) * (np.abs(dy64).sum(-1, keepdims=True) + np.abs(s) * (1 + np.abs(y64)))
    else:
        dot = (dy64 * y64).sum(-1, keepdims=True)
        ref = y64 * (dy64 - dot)
        scale = np.abs(y64) * (np.abs(dy64) + (np.abs(dy64) * np.abs(y64)).sum(-1, keepdims=True))
    assert_close(dx, ref, dtype, scale, "softmax_backward")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("cols", [1024, 4096, 65536])
def test_softmax_misaligned_rows_take_the_scalar_path(cols, dtype):
    # A view one element into its buffer: contiguous, but not 16-byte aligned.
    rng = np.random.default_rng(cols)
    rows = 3
    x, x64 = randn(rng, (rows, cols), dtype, 2.0)
    xbuf = _to_gpu(np.concatenate([np.zeros(1, dtype), x.ravel()]))
    ybuf = poisoned(rows * cols + 1, dtype)
    xv, yv = xbuf[1:].reshape(rows, cols), ybuf[1:].reshape(rows, cols)
    for log in (False, True):
        _C.cuda.softmax_forward(xv, yv, log, stream())
        p, lse = ref_softmax(x64)
        ref = x64 - lse if log else p
        scale = (np.abs(x64) + np.abs(lse)) if log else p * (4 + np.abs(x64 - x64.max(-1, keepdims=True)))
        assert_close(yv, ref, dtype, scale, "softmax (misaligned)")
    assert np.isnan(_to_host(ybuf[:1]).astype(np.float64)).all(), "wrote before the output"


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("cols", [5, 1000, 4097, 131072])
def test_softmax_all_neg_inf_row_is_nan_and_masked_entries_are_zero(cols, dtype):
    rng = np.random.default_rng(cols)
    x64 = rng.standard_normal((3, cols))
    x64[1] = -np.inf                 # a fully masked row
    x64[2, : (cols + 1) // 2] = -np.inf  # masked prefix, before any finite value
    x = x64.astype(dtype)
    x64 = x.astype(np.float64)
    for log in (False, True):
        y = poisoned((3, cols), dtype)
        _C.cuda.softmax_forward(_to_gpu(x), y, log, stream())
        host = _to_host(y)
        assert np.isnan(host[1].astype(np.float64)).all()
        keep = [0, 2]
        p, lse = ref_softmax(x64[keep])
        ref = x64[keep] - lse if log else p
        assert_close(host[keep], ref, dtype,
                     np.where(np.isfinite(ref), np.abs(ref) * 10 + np.abs(np.nan_to_num(lse)), 0), "masked softmax")


def test_softmax_runs_on_the_given_stream():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((65, 4097)).astype(np.float32)
    with cp.cuda.Stream(non_blocking=True) as s:
        xg = cp.asarray(x)
        y = cp.full(x.shape, cp.nan, cp.float32)
        _C.cuda.softmax_forward(xg, y, False, s.ptr)
        got = y.get()
    p, _ = ref_softmax(x.astype(np.float64))
    assert np.allclose(got, p, rtol=1e-5, atol=1e-12)


# ---------------------------------------------------------------- layer norm

NORM_MODES = ["layer_norm", "layer_norm_no_affine", "rms_norm"]


def norm_params(rng, mode, cols, dtype):
    w = b = None
    if mode != "layer_norm_no_affine":
        w = (1 + 0.5 * rng.standard_normal(cols)).astype(dtype)
    if mode == "layer_norm":
        b = (0.5 * rng.standard_normal(cols)).astype(dtype)
    return w, b


def ref_norm_forward(x64, w64, b64, eps_, rms):
    mu = np.zeros(x64.shape[:-1] + (1,)) if rms else x64.mean(-1, keepdims=True)
    var = ((x64 - mu) ** 2).mean(-1, keepdims=True)
    rs = 1 / np.sqrt(var + eps_)
    xhat = (x64 - mu) * rs
    y = xhat * (w64 if w64 is not None else 1) + (b64 if b64 is not None else 0)
    return y, mu[..., 0], rs[..., 0]


def _opt(a):
    return None if a is None else _to_gpu(a)


def _f64(a):
    return None if a is None else a.astype(np.float64)


@pytest.mark.parametrize("mode", NORM_MODES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("rows,cols", SHAPES, ids=SHAPE_IDS)
def test_layer_norm_forward(rows, cols, dtype, mode):
    rng = np.random.default_rng(rows * 31 + cols)
    rms = mode == "rms_norm"
    x, x64 = randn(rng, (rows, cols), dtype)
    x = (x64 * 1.5 + 3.0).astype(dtype)  # an offset mean checks the variance is not E[x^2]-E[x]^2
    x64 = x.astype(np.float64)
    w, b = norm_params(rng, mode, cols, dtype)
    y = poisoned((rows, cols), dtype)
    sd = stats_dtype(dtype)
    mean, rstd = poisoned((rows,), sd), poisoned((rows,), sd)
    eps_ = 1e-5
    _C.cuda.layer_norm_forward(_to_gpu(x), _opt(w), _opt(b), y, mean, rstd, eps_, rms, stream())
    ref_y, ref_mu, ref_rs = ref_norm_forward(x64, _f64(w), _f64(b), eps_, rms)
    wa = np.abs(_f64(w)) if w is not None else 1.0
    ba = np.abs(_f64(b)) if b is not None else 0.0
    mu_c = ref_mu[:, None]
    scale = (np.abs(x64) + np.abs(mu_c)) * ref_rs[:, None] * wa + ba
    assert_close(y, ref_y, dtype, scale, f"{mode} output")
    assert_close(mean, ref_mu, dtype, 4 * np.abs(x64).max(-1), f"{mode} mean")
    assert_close(rstd, ref_rs, dtype, 4 * ref_rs * (1 + np.abs(ref_mu) * ref_rs) ** 2, f"{mode} rstd")


@pytest.mark.parametrize("mode", NORM_MODES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("rows,cols", SHAPES, ids=SHAPE_IDS)
def test_layer_norm_backward(rows, cols, dtype, mode):
    rng = np.random.default_rng(rows * 37 + cols)
    rms = mode == "rms_norm"
    x, x64 = randn(rng, (rows, cols), dtype)
    w, _ = norm_params(rng, mode, cols, dtype)
    want_params = mode != "layer_norm_no_affine"
    sd = stats_dtype(dtype)
    _, mu64, rs64 = ref_norm_forward(x64, None, None, 1e-5, rms)
    mu = mu64.astype(sd)
    rs = rs64.astype(sd)
    mu64, rs64 = mu.astype(np.float64), rs.astype(np.float64)
    dy, dy64 = randn(rng, (rows, cols), dtype)
    dx = poisoned((rows, cols), dtype)
    dw = poisoned((cols,), dtype) if want_params else None
    db = poisoned((cols,), dtype) if want_params else None
    ws = None
    if want_params:
        ws = cp.full(_C.cuda.layer_norm_backward_workspace_size(rows, cols), cp.nan, cp.float32)
    _C.cuda.layer_norm_backward(_to_gpu(x), _opt(w), _to_gpu(mu), _to_gpu(rs), _to_gpu(dy), dx,
                                dw, db, ws, rms, stream())

    m = 0.0 if rms else mu64[:, None]
    s = rs64[:, None]
    xhat = (x64 - m) * s
    w64 = _f64(w) if w is not None else np.ones(cols)
    g = dy64 * w64
    mg = 0.0 if rms else g.mean(-1, keepdims=True)
    mgx = (g * xhat).mean(-1, keepdims=True)
    ref_dx = s * (g - mg - xhat * mgx)
    ga = np.abs(g)
    scale_dx = s * (ga * (1 + np.abs(x64) * s) + ga.mean(-1, keepdims=True)
                    + (np.abs(xhat) + 1) * (ga * (np.abs(x64) + np.abs(m)) * s).mean(-1, keepdims=True))
    assert_close(dx, ref_dx, dtype, scale_dx, f"{mode} grad_input")
    if want_params:
        scale_w = (np.abs(dy64) * (np.abs(x64) + np.abs(m)) * s).sum(0)
        assert_close(dw, (dy64 * xhat).sum(0), dtype, scale_w, f"{mode} grad_weight")
        assert_close(db, dy64.sum(0), dtype, np.abs(dy64).sum(0), f"{mode} grad_bias")


@pytest.mark.parametrize("dtype", DTYPES)
def test_layer_norm_backward_only_grad_bias(dtype):
    rng = np.random.default_rng(5)
    rows, cols = 65, 1000
    x, x64 = randn(rng, (rows, cols), dtype)
    sd = stats_dtype(dtype)
    _, mu64, rs64 = ref_norm_forward(x64, None, None, 1e-5, False)
    dy, dy64 = randn(rng, (rows, cols), dtype)
    dx = poisoned((rows, cols), dtype)
    db = poisoned((cols,), dtype)
    ws = cp.full(_C.cuda.layer_norm_backward_workspace_size(rows, cols), cp.nan, cp.float32)
    _C.cuda.layer_norm_backward(_to_gpu(x), None, _to_gpu(mu64.astype(sd)), _to_gpu(rs64.astype(sd)),
                                _to_gpu(dy), dx, None, db, ws, False, stream())
    assert_close(db, dy64.sum(0), dtype, np.abs(dy64).sum(0), "grad_bias")


def test_layer_norm_workspace_size_is_bounded():
    size = _C.cuda.layer_norm_backward_workspace_size
    assert size(0, 10) == 0
    assert size(1, 7) > 0
    assert size(10**6, 262144) * 4 <= 64 << 20
    assert size(10**6, 64) * 4 <= 64 << 20


# ---------------------------------------------------------------- cross-entropy


def ref_cross_entropy(x64, t, ignore_index, smoothing):
    n, c = x64.shape
    m = x64.max(-1, keepdims=True)
    with np.errstate(invalid="ignore"):
        lse = (m + np.log(np.exp(x64 - m).sum(-1, keepdims=True)))[:, 0]
    valid = t != ignore_index
    tt = np.where(valid, t, 0)
    xt = x64[np.arange(n), tt]
    loss = (1 - smoothing) * (lse - xt)
    if smoothing:
        loss = loss + smoothing * (lse - x64.mean(-1))
    return np.where(valid, loss, 0.0), np.where(valid, lse, 0.0), valid, tt


def targets(rng, rows, cols, ignore_index):
    t = rng.integers(0, cols, size=rows).astype(np.int64)
    if rows > 1:
        t[1] = ignore_index
    return t


@pytest.mark.parametrize("smoothing", [0.0, 0.1])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("rows,cols", SHAPES, ids=SHAPE_IDS)
def test_cross_entropy_forward(rows, cols, dtype, smoothing):
    rng = np.random.default_rng(rows * 13 + cols)
    x, x64 = randn(rng, (rows, cols), dtype, 3.0)
    t = targets(rng, rows, cols, -100)
    sd = stats_dtype(dtype)
    loss, lse = poisoned((rows,), sd), poisoned((rows,), sd)
    flag = cp.zeros(1, cp.int32)
    _C.cuda.cross_entropy_forward(_to_gpu(x), cp.asarray(t), loss, lse, flag, -100, smoothing, stream())
    ref_loss, ref_lse, valid, tt = ref_cross_entropy(x64, t, -100, smoothing)
    amax = np.abs(x64).max(-1)
    assert_close(lse, ref_lse, dtype, np.where(valid, np.abs(ref_lse) + amax, 0), "lse")
    assert_close(loss, ref_loss, dtype, np.where(valid, np.abs(ref_lse) + 2 * amax, 0), "loss")
    assert int(flag.get()[0]) == 0


@pytest.mark.parametrize("smoothing", [0.0, 0.1])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("rows,cols", SHAPES, ids=SHAPE_IDS)
def test_cross_entropy_backward(rows, cols, dtype, smoothing):
    rng = np.random.default_rng(rows * 17 + cols)
    x, x64 = randn(rng, (rows, cols), dtype, 3.0)
    t = targets(rng, rows, cols, -100)
    sd = stats_dtype(dtype)
    _, ref_lse, valid, tt = ref_cross_entropy(x64, t, -100, smoothing)
    lse = ref_lse.astype(sd)
    lse64 = lse.astype(np.float64)
    g = rng.standard_normal(rows).astype(sd)
    g64 = g.astype(np.float64)
    dx = poisoned((rows, cols), dtype)
    _C.cuda.cross_entropy_backward(_to_gpu(x), cp.asarray(t), _to_gpu(lse), _to_gpu(g), dx, -100,
                                   smoothing, stream())
    p = np.exp(x64 - lse64[:, None])
    onehot = np.zeros_like(x64)
    onehot[np.arange(rows), tt] = 1.0
    ref = g64[:, None] * (p - (1 - smoothing) * onehot - smoothing / cols)
    ref[~valid] = 0.0
    scale = np.abs(g64)[:, None] * (p * (1 + np.abs(x64) + np.abs(lse64)[:, None]) + onehot + smoothing / cols)
    scale[~valid] = 0.0
    assert_close(dx, ref, dtype, scale, "cross_entropy grad_input")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("cols", [10, 4097])
def test_cross_entropy_ignore_index_inside_the_class_range(cols, dtype):
    rng = np.random.default_rng(cols)
    rows = 65
    x, x64 = randn(rng, (rows, cols), dtype)
    t = rng.integers(0, 3, size=rows).astype(np.int64)  # class 0 is ignored
    sd = stats_dtype(dtype)
    loss, lse = poisoned((rows,), sd), poisoned((rows,), sd)
    flag = cp.zeros(1, cp.int32)
    _C.cuda.cross_entropy_forward(_to_gpu(x), cp.asarray(t), loss, lse, flag, 0, 0.1, stream())
    ref_loss, _, valid, _ = ref_cross_entropy(x64, t, 0, 0.1)
    got = _to_host(loss).astype(np.float64)
    assert (got[~valid] == 0).all()
    assert_close(loss, ref_loss, dtype, 4 * np.abs(x64).max(-1) + 20, "loss")
    dx = poisoned((rows, cols), dtype)
    _C.cuda.cross_entropy_backward(_to_gpu(x), cp.asarray(t), lse, cp.ones(rows, sd), dx, 0, 0.1, stream())
    assert (_to_host(dx).astype(np.float64)[~valid] == 0).all()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("cols", [7, 4097])
def test_cross_entropy_masked_logits_stay_finite(cols, dtype):
    rng = np.random.default_rng(cols)
    x64 = rng.standard_normal((3, cols))
    x64[:, : cols // 2] = -np.inf
    t = np.full(3, cols - 1, np.int64)
    x = x64.astype(dtype)
    sd = stats_dtype(dtype)
    loss, lse = poisoned((3,), sd), poisoned((3,), sd)
    flag = cp.zeros(1, cp.int32)
    _C.cuda.cross_entropy_forward(_to_gpu(x), cp.asarray(t), loss, lse, flag, -100, 0.0, stream())
    ref_loss, ref_lse, _, _ = ref_cross_entropy(x.astype(np.float64), t, -100, 0.0)
    assert_close(loss, ref_loss, dtype, np.abs(ref_lse) + 10, "masked loss")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("cols", [10, 4097])
def test_cross_entropy_out_of_range_target_sets_the_error_flag(cols, dtype):
    rng = np.random.default_rng(cols)
    rows = 65
    x, x64 = randn(rng, (rows, cols), dtype)
    t = rng.integers(0, cols, size=rows).astype(np.int64)
    t[40], t[7], t[3] = cols, -5, -100  # two bad targets and one ignored row
    sd = stats_dtype(dtype)
    loss, lse = poisoned((rows,), sd), poisoned((rows,), sd)
    flag = cp.zeros(1, cp.int32)
    _C.cuda.cross_entropy_forward(_to_gpu(x), cp.asarray(t), loss, lse, flag, -100, 0.0, stream())
    assert int(flag.get()[0]) == 7 + 1  # the smallest bad row, plus one
    got = _to_host(loss).astype(np.float64)
    assert np.isnan(got[[7, 40]]).all()
    good = np.ones(rows, bool)
    good[[7, 40]] = False
    ref_loss, _, _, _ = ref_cross_entropy(x64[good], np.where(good, t, 0)[good], -100, 0.0)
    assert_close(loss.get()[good], ref_loss, dtype, 4 * np.abs(x64).max() + 20, "loss")
    dx = poisoned((rows, cols), dtype)
    _C.cuda.cross_entropy_backward(_to_gpu(x), cp.asarray(t), lse, cp.ones(rows, sd), dx, -100, 0.0, stream())
    assert (_to_host(dx).astype(np.float64)[[3, 7, 40]] == 0).all()


# ---------------------------------------------------------------- bad inputs


def test_bad_inputs_raise_errors_naming_the_op():
    s = stream()
    x = cp.ones((4, 8), cp.float32)
    y = cp.empty((4, 8), cp.float32)
    with pytest.raises(TypeError, match="softmax: input"):
        _C.cuda.softmax_forward(cp.ones((4, 8), cp.int32), cp.empty((4, 8), cp.int32), False, s)
    with pytest.raises(TypeError, match="softmax: output"):
        _C.cuda.softmax_forward(x, cp.empty((4, 8), cp.float64), False, s)
    with pytest.raises(ValueError, match="log_softmax: input must be contiguous"):
        _C.cuda.softmax_forward(cp.ones((4, 16), cp.float32)[:, ::2], y, True, s)
    with pytest.raises(ValueError, match="softmax: output has shape"):
        _C.cuda.softmax_forward(x, cp.empty((4, 9), cp.float32), False, s)
    with pytest.raises(TypeError, match="softmax: input must be a GPU array"):
        _C.cuda.softmax_forward(np.ones((4, 8), np.float32), y, False, s)
    with pytest.raises(ValueError, match="softmax_backward: grad_output has shape"):
        _C.cuda.softmax_backward(x, cp.ones((4, 7), cp.float32), y, False, s)

    h = cp.ones((4, 8), cp.float16)
    with pytest.raises(TypeError, match="layer_norm: mean must be float32"):
        _C.cuda.layer_norm_forward(h, None, None, cp.empty_like(h), cp.empty(4, cp.float16),
                                   cp.empty(4, cp.float32), 1e-5, False, s)
    with pytest.raises(ValueError, match="rms_norm: weight has shape"):
        _C.cuda.layer_norm_forward(x, cp.ones(7, cp.float32), None, y, cp.empty(4, cp.float32),
                                   cp.empty(4, cp.float32), 1e-5, True, s)
    with pytest.raises(ValueError, match="layer_norm_backward: workspace"):
        _C.cuda.layer_norm_backward(x, None, cp.zeros(4, cp.float32), cp.ones(4, cp.float32), x, y,
                                    cp.empty(8, cp.float32), None, cp.empty(1, cp.float32), False, s)
    with pytest.raises(ValueError, match="layer_norm_backward: workspace is required"):
        _C.cuda.layer_norm_backward(x, None, cp.zeros(4, cp.float32), cp.ones(4, cp.float32), x, y,
                                    None, cp.empty(8, cp.float32), None, False, s)

    loss, lse, flag = cp.empty(4, cp.float32), cp.empty(4, cp.float32), cp.zeros(1, cp.int32)
    with pytest.raises(TypeError, match="cross_entropy: target must be int64"):
        _C.cuda.cross_entropy_forward(x, cp.zeros(4, cp.int32), loss, lse, flag, -100, 0.0, s)
    with pytest.raises(ValueError, match="cross_entropy: input must be 2-D"):
        _C.cuda.cross_entropy_forward(cp.ones((2, 2, 8), cp.float32), cp.zeros(2, cp.int64), loss, lse,
                                      flag, -100, 0.0, s)
    with pytest.raises(TypeError, match="cross_entropy: loss must be float32"):
        _C.cuda.cross_entropy_forward(h, cp.zeros(4, cp.int64), cp.empty(4, cp.float16), lse, flag,
                                      -100, 0.0, s)
    with pytest.raises(TypeError, match="cross_entropy: error_flag must be int32"):
        _C.cuda.cross_entropy_forward(x, cp.zeros(4, cp.int64), loss, lse, cp.zeros(1, cp.int64),
                                      -100, 0.0, s)
    with pytest.raises(ValueError, match="cross_entropy_backward: grad_input has shape"):
        _C.cuda.cross_entropy_backward(x, cp.zeros(4, cp.int64), lse, loss, cp.empty((4, 9), cp.float32),
                                       -100, 0.0, s)
