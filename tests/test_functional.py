"""pydl.nn.functional against torch.nn.functional: forward and backward parity in
float32 and float64, and finite-difference gradient checks in float64."""
import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import pydl
import pydl.nn.functional as F
from helpers import assert_close, check_op, fresh_rng, gradcheck, rand_array, to_numpy

FLOATS = [np.float32, np.float64]
TORCH = {np.float32: torch.float32, np.float64: torch.float64}


def both(pydl_value, torch_value):
    return lambda x: pydl_value if isinstance(x, pydl.Tensor) else torch_value


def pair(a, device, dtype=None):
    """The same array as a pydl tensor (on device) and a torch tensor."""
    a = np.asarray(a) if dtype is None else np.asarray(a, dtype=dtype)
    return pydl.tensor(a, device=device), torch.tensor(a)


# ---- softmax -----------------------------------------------------------------------

@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("width", [1, 2, 3, 7, 64, 1000, 5000])
@pytest.mark.parametrize("log", [False, True])
def test_softmax_widths(device, log, width, dtype):
    tf, pf = (TF.log_softmax, F.log_softmax) if log else (TF.softmax, F.softmax)
    check_op([(3, width)], lambda x: tf(x, -1), lambda x: pf(x, -1), dtype, device, low=-8, high=8)


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("dim", [0, 1, 2, -1, -2, -3])
@pytest.mark.parametrize("log", [False, True])
def test_softmax_dims(device, log, dim, dtype):
    tf, pf = (TF.log_softmax, F.log_softmax) if log else (TF.softmax, F.softmax)
    check_op([(4, 5, 3)], lambda x: tf(x, dim), lambda x: pf(x, dim), dtype, device)
    check_op([(4, 5, 3)], lambda x: tf(x, dim), lambda x: pf(x, dim), dtype, device, layout="T")


@pytest.mark.parametrize("log", [False, True])
def test_softmax_edge_inputs(device, log):
    tf, pf = (TF.log_softmax, F.log_softmax) if log else (TF.softmax, F.softmax)
    check_op([()], lambda x: tf(x, 0), lambda x: pf(x, 0), np.float64, device)
    check_op([(1, 1)], lambda x: tf(x, 1), lambda x: pf(x, 1), np.float64, device)
    big = np.array([[1000.0, 999.0, -1000.0], [-1e4, -1e4 + 1, -1e4 + 2]])
    check_op(None, lambda x: x.softmax(1) if not log else x.log_softmax(1),
             lambda x: x.softmax(1) if not log else x.log_softmax(1), np.float64, device,
             inputs=[big])
    # A row of -inf: NaN like PyTorch; other rows unaffected.
    x = np.array([[-np.inf, -np.inf, -np.inf], [0.5, -np.inf, 1.0]])
    p = pf(pydl.tensor(x, device=device), 1)
    t = tf(torch.tensor(x), 1)
    assert_close(p, t, 1e-12, 1e-12, "softmax with -inf")
    assert np.isnan(to_numpy(p)[0]).all()
    check_op([(3, 6)], lambda x: tf(x, -1, dtype=torch.float64),
             lambda x: pf(x, -1, dtype=pydl.float64), np.float32, device)


@pytest.mark.parametrize("log", [False, True])
def test_softmax_large_offset_float32(device, log):
    tf, pf = (TF.log_softmax, F.log_softmax) if log else (TF.softmax, F.softmax)
    big = np.array([[1000.0, 999.0, -1000.0], [-1e4, -1e4 + 1, -1e4 + 2], [3e4, 3e4 - 0.5, 3e4 - 2]])
    check_op(None, lambda x: tf(x, 1), lambda x: pf(x, 1), np.float32, device, inputs=[big])


def test_softmax_float16_forward(device):
    for w in [1, 7, 300]:
        check_op([(4, w)], lambda x: TF.softmax(x, -1), lambda x: F.softmax(x, -1), np.float16,
                 device, grad=False)
        check_op([(4, w)], lambda x: TF.log_softmax(x, 0), lambda x: F.log_softmax(x, 0), np.float16,
                 device, grad=False)


# ---- layer_norm / rms_norm ----------------------------------------------------------

LN_CASES = [((4, 7), (7,)), ((2, 3, 5), (5,)), ((2, 3, 5), (3, 5)), ((6, 1), (1,)), ((3, 1000), (1000,)),
            ((1, 13), (13,)), ((5,), (5,))]


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("affine", ["none", "weight", "both"])
@pytest.mark.parametrize("shape,ns", LN_CASES, ids=str)
def test_layer_norm(device, shape, ns, affine, dtype):
    shapes = [shape] + ([ns] if affine != "none" else []) + ([ns] if affine == "both" else [])

    def tfn(x, w=None, b=None):
        return TF.layer_norm(x, ns, w, b, eps=1e-5)

    def pfn(x, w=None, b=None):
        return F.layer_norm(x, ns, w, b, eps=1e-5)

    # With one normalised element the exact dx is 0; PyTorch's float32 value is rounding noise
    # amplified by rstd = 1/sqrt(eps).
    grad_atol = 1e-3 if ns == (1,) and dtype == np.float32 else None
    check_op(shapes, tfn, pfn, dtype, device, low=-3, high=3, grad_atol=grad_atol)


def test_layer_norm_bias_only_and_non_contiguous(device):
    check_op([(4, 6), (6,)], lambda x, b: TF.layer_norm(x, (6,), None, b),
             lambda x, b: F.layer_norm(x, (6,), None, b), np.float64, device)
    check_op([(5, 4), (4,), (4,)], lambda x, w, b: TF.layer_norm(x, (4,), w, b),
             lambda x, w, b: F.layer_norm(x, (4,), w, b), np.float32, device, layout="T")
    check_op([(3, 4, 6)], lambda x: TF.layer_norm(x, (6,)), lambda x: F.layer_norm(x, 6),
             np.float32, device, layout="step")
    # Large offset: the variance is computed around the mean, not as E[x^2] - E[x]^2.
    x = rand_array((3, 64)) + 1e4
    check_op(None, lambda x: TF.layer_norm(x, (64,)), lambda x: F.layer_norm(x, (64,)),
             np.float64, device, inputs=[x])


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("weight", [False, True])
@pytest.mark.parametrize("shape,ns", [((4, 7), (7,)), ((2, 3, 5), (3, 5)), ((3, 1), (1,)),
                                      ((2, 2000), (2000,))], ids=str)
def test_rms_norm(device, shape, ns, weight, dtype):
    shapes = [shape] + ([ns] if weight else [])
    check_op(shapes, lambda x, w=None: TF.rms_norm(x, ns, w), lambda x, w=None: F.rms_norm(x, ns, w),
             dtype, device)
    check_op(shapes, lambda x, w=None: TF.rms_norm(x, ns, w, eps=1e-3),
             lambda x, w=None: F.rms_norm(x, ns, w, eps=1e-3), dtype, device)


def test_norms_float16_forward(device):
    check_op([(4, 33), (33,), (33,)], lambda x, w, b: TF.layer_norm(x, (33,), w, b),
             lambda x, w, b: F.layer_norm(x, (33,), w, b), np.float16, device, grad=False,
             atol=1e-2, rtol=1e-2)
    check_op([(4, 33)], lambda x: TF.rms_norm(x, (33,)), lambda x: F.rms_norm(x, (33,)),
             np.float16, device, grad=False, atol=1e-2, rtol=1e-2)


# ---- batch_norm ---------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("affine", [False, True])
@pytest.mark.parametrize("shape", [(6, 3), (4, 3, 5), (2, 3, 4, 5), (3, 1, 2)], ids=str)
def test_batch_norm_training(device, shape, affine, dtype):
    c = shape[1]
    rng = fresh_rng()
    rm0, rv0 = rng.standard_normal(c), rng.uniform(0.5, 2.0, c)
    state = {}

    def tfn(x, w=None, b=None):
        rm, rv = torch.tensor(rm0, dtype=x.dtype), torch.tensor(rv0, dtype=x.dtype)
        state["torch"] = (rm, rv)
        return TF.batch_norm(x, rm, rv, w, b, training=True, momentum=0.3, eps=1e-4)

    def pfn(x, w=None, b=None):
        rm = pydl.tensor(rm0, dtype=x.dtype, device=device)
        rv = pydl.tensor(rv0, dtype=x.dtype, device=device)
        state["pydl"] = (rm, rv)
        return F.batch_norm(x, rm, rv, w, b, training=True, momentum=0.3, eps=1e-4)

    shapes = [shape] + ([(c,), (c,)] if affine else [])
    check_op(shapes, tfn, pfn, dtype, device, low=-3, high=5)
    for p, t in zip(state["pydl"], state["torch"]):
        assert_close(p, t, 1e-6, 1e-5, "running statistics")


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("shape", [(6, 3), (4, 3, 5), (2, 3, 4, 5)], ids=str)
def test_batch_norm_eval(device, shape, dtype):
    c = shape[1]
    rng = fresh_rng()
    rm0, rv0 = rng.standard_normal(c), rng.uniform(0.5, 2.0, c)

    def tfn(x, w, b):
        return TF.batch_norm(x, torch.tensor(rm0, dtype=x.dtype), torch.tensor(rv0, dtype=x.dtype),
                             w, b, training=False)

    def pfn(x, w, b):
        rm = pydl.tensor(rm0, dtype=x.dtype, device=device)
        rv = pydl.tensor(rv0, dtype=x.dtype, device=device)
        out = F.batch_norm(x, rm, rv, w, b, training=False)
        np.testing.assert_array_equal(to_numpy(rm), rm0.astype(x.dtype))  # untouched in eval
        return out

    check_op([shape, (c,), (c,)], tfn, pfn, dtype, device)


def test_batch_norm_without_running_stats(device):
    check_op([(5, 4, 3)], lambda x: TF.batch_norm(x, None, None, training=True),
             lambda x: F.batch_norm(x, None, None, training=True), np.float64, device)
    check_op([(5, 4, 3)], lambda x: TF.batch_norm(x, None, None, training=True),
             lambda x: F.batch_norm(x, None, None, training=True), np.float32, device, layout="T")


# ---- cross_entropy / nll_loss -----------------------------------------------------------

def _targets(shape, classes, ignore=None, frac=0.3, rng=None):
    rng = rng or fresh_rng()
    t = rng.integers(0, classes, size=shape)
    if ignore is not None:
        t = np.where(rng.random(shape) < frac, ignore, t)
        t.reshape(-1)[0] = rng.integers(0, classes)  # at least one row counts
    return t.astype(np.int64)


CE_CASES = [((5, 7), (5,)), ((1, 1), (1,)), ((3, 2), (3,)), ((2, 4, 3, 5), (2, 3, 5)),
            ((3, 6, 4), (3, 4)), ((8, 1000), (8,)), ((7,), ())]


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("shape,tshape", CE_CASES, ids=str)
def test_cross_entropy(device, shape, tshape, reduction, dtype):
    classes = shape[0] if len(shape) == 1 else shape[1]
    tp, tt = pair(_targets(tshape, classes), device)
    tgt = both(tp, tt)
    check_op([shape], lambda x: TF.cross_entropy(x, tgt(x), reduction=reduction),
             lambda x: F.cross_entropy(x, tgt(x), reduction=reduction), dtype, device, low=-4, high=4)


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("smoothing", [0.0, 0.1, 1.0])
@pytest.mark.parametrize("ignore", [None, -100, 2])
def test_cross_entropy_ignore_and_smoothing(device, ignore, smoothing, reduction, dtype):
    kw = dict(reduction=reduction, label_smoothing=smoothing)
    if ignore is not None:
        kw["ignore_index"] = ignore
    for shape, tshape in [((9, 5), (9,)), ((2, 5, 3, 2), (2, 3, 2))]:
        tp, tt = pair(_targets(tshape, 5, ignore=ignore if ignore is not None else None), device)
        tgt = both(tp, tt)
        check_op([shape], lambda x: TF.cross_entropy(x, tgt(x), **kw),
                 lambda x: F.cross_entropy(x, tgt(x), **kw), dtype, device)


def test_cross_entropy_non_contiguous_and_extreme(device):
    tp, tt = pair(_targets((6,), 4), device)
    tgt = both(tp, tt)
    check_op([(6, 4)], lambda x: TF.cross_entropy(x, tgt(x)), lambda x: F.cross_entropy(x, tgt(x)),
             np.float32, device, layout="T")
    big = np.array([[1000.0, -1000.0, 0.0, 5.0]] * 6) * np.array([[1], [-1], [1], [-1], [1], [-1]])
    check_op(None, lambda x: TF.cross_entropy(x, tgt(x), label_smoothing=0.2),
             lambda x: F.cross_entropy(x, tgt(x), label_smoothing=0.2), np.float64, device,
             inputs=[big])


def test_cross_entropy_masked_logits(device):
    # -inf logits (masked classes) after the first column.
    x = np.array([[0.2, 1.0, 2.0, -np.inf], [0.3, -np.inf, -np.inf, 1.5], [2.0, 1.0, -np.inf, 0.1]])
    tp, tt = pair(np.array([1, 3, 0]), device)
    tgt = both(tp, tt)
    check_op(None, lambda x: TF.cross_entropy(x, tgt(x)), lambda x: F.cross_entropy(x, tgt(x)),
             np.float64, device, inputs=[x])


def test_cross_entropy_leading_masked_logit(device):
    x = np.array([[-np.inf, 1.0, 2.0, -0.5], [-np.inf, -np.inf, 0.3, 1.5]])
    tp, tt = pair(np.array([1, 3]), device)
    tgt = both(tp, tt)
    check_op(None, lambda x: TF.cross_entropy(x, tgt(x)), lambda x: F.cross_entropy(x, tgt(x)),
             np.float64, device, inputs=[x])


def test_cross_entropy_all_ignored_is_nan(device):
    x = rand_array((4, 3))
    t = np.full(4, -100)
    p = F.cross_entropy(pydl.tensor(x, device=device, requires_grad=True), pydl.tensor(t, device=device))
    tr = TF.cross_entropy(torch.tensor(x), torch.tensor(t))
    assert np.isnan(p.item()) and torch.isnan(tr)
    xp_ = pydl.tensor(x, device=device, requires_grad=True)
    F.cross_entropy(xp_, pydl.tensor(t, device=device), reduction="sum").backward()
    np.testing.assert_array_equal(to_numpy(xp_.grad), np.zeros((4, 3)))
    s = F.cross_entropy(pydl.tensor(x, device=device), pydl.tensor(t, device=device), reduction="sum")
    assert s.item() == 0.0


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("ignore", [None, 1])
def test_nll_loss(device, ignore, reduction, dtype):
    kw = dict(reduction=reduction)
    if ignore is not None:
        kw["ignore_index"] = ignore
    for shape, tshape in [((6, 4), (6,)), ((2, 4, 3), (2, 3)), ((4,), ())]:
        classes = shape[0] if len(shape) == 1 else shape[1]
        tp, tt = pair(_targets(tshape, classes, ignore=ignore, frac=0.3), device)
        tgt = both(tp, tt)
        dim = 0 if len(shape) == 1 else 1
        check_op([shape], lambda x: TF.nll_loss(TF.log_softmax(x, dim), tgt(x), **kw),
                 lambda x: F.nll_loss(F.log_softmax(x, dim), tgt(x), **kw), dtype, device)
        check_op([shape], lambda x: TF.nll_loss(x, tgt(x), **kw), lambda x: F.nll_loss(x, tgt(x), **kw),
                 dtype, device)


# ---- regression losses -----------------------------------------------------------------

REGRESSION = {
    "mse": (TF.mse_loss, F.mse_loss, {}),
    "l1": (TF.l1_loss, F.l1_loss, {}),
    "smooth_l1": (TF.smooth_l1_loss, F.smooth_l1_loss, {}),
    "smooth_l1_beta": (TF.smooth_l1_loss, F.smooth_l1_loss, {"beta": 0.5}),
    "smooth_l1_beta0": (TF.smooth_l1_loss, F.smooth_l1_loss, {"beta": 0.0}),
    "huber": (TF.huber_loss, F.huber_loss, {}),
    "huber_delta": (TF.huber_loss, F.huber_loss, {"delta": 0.4}),
}


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("name", list(REGRESSION))
def test_regression_losses(device, name, reduction, dtype):
    tf, pf, kw = REGRESSION[name]
    for shape in [(7,), (3, 1, 4), ()]:
        check_op([shape, shape], lambda a, b: tf(a, b, reduction=reduction, **kw),
                 lambda a, b: pf(a, b, reduction=reduction, **kw), dtype, device)


# ---- binary_cross_entropy_with_logits ----------------------------------------------------

@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("pos_weight", [False, True])
def test_bce_with_logits(device, pos_weight, reduction, dtype):
    for shape in [(5, 4), (7,), (2, 3, 4)]:
        rng = fresh_rng()
        y = rng.random(shape)
        y = np.where(rng.random(shape) < 0.5, np.round(y), y)  # hard and soft labels
        x = rand_array(shape, -6, 6, rng=rng)
        inputs = [x, y] + ([rng.uniform(0.2, 3.0, shape[-1:])] if pos_weight else [])

        def tfn(x, y, pw=None):
            return TF.binary_cross_entropy_with_logits(x, y, reduction=reduction, pos_weight=pw.detach()
                                                       if pw is not None else None)

        def pfn(x, y, pw=None):
            return F.binary_cross_entropy_with_logits(x, y, reduction=reduction, pos_weight=pw.detach()
                                                      if pw is not None else None)

        check_op(None, tfn, pfn, dtype, device, inputs=inputs)


def test_bce_with_logits_extreme(device):
    x = np.array([-200.0, -50.0, -1.0, 0.5, 40.0, 300.0])
    y = np.array([1.0, 0.0, 0.3, 1.0, 0.0, 1.0])
    check_op(None, lambda x, y: TF.binary_cross_entropy_with_logits(x, y),
             lambda x, y: F.binary_cross_entropy_with_logits(x, y), np.float32, device, inputs=[x, y])


# ---- dropout ------------------------------------------------------------------------------

def test_dropout_train_statistics(device):
    pydl.manual_seed(0)
    x = pydl.ones(200, 100, device=device, requires_grad=True)
    p = 0.3
    y = F.dropout(x, p, training=True)
    v = to_numpy(y)
    kept = v != 0
    assert abs(kept.mean() - (1 - p)) < 0.01
    np.testing.assert_allclose(v[kept], 1 / (1 - p), rtol=1e-6)
    g = fresh_rng().standard_normal((200, 100))
    y.backward(pydl.tensor(g.astype(np.float32), device=device))
    np.testing.assert_allclose(to_numpy(x.grad), g * kept / (1 - p), rtol=1e-5, atol=1e-6)
    assert abs(v.mean() - 1.0) < 0.02


def test_dropout_eval_and_edge_probabilities(device):
    x = pydl.tensor(rand_array((4, 5)), device=device, requires_grad=True)
    for y in [F.dropout(x, 0.5, training=False), F.dropout(x, 0.0)]:
        np.testing.assert_array_equal(to_numpy(y), to_numpy(x))
    z = F.dropout(x, 1.0)
    np.testing.assert_array_equal(to_numpy(z), np.zeros((4, 5)))
    z.sum().backward()
    np.testing.assert_array_equal(to_numpy(x.grad), np.zeros((4, 5)))
    with pytest.raises(ValueError, match="dropout"):
        F.dropout(x, 1.5)


def test_dropout_reproducible_with_seed(device):
    x = pydl.ones(64, 33, device=device)
    pydl.manual_seed(42)
    a = to_numpy(F.dropout(x, 0.5))
    b = to_numpy(F.dropout(x, 0.5))
    pydl.manual_seed(42)
    a2 = to_numpy(F.dropout(x, 0.5))
    np.testing.assert_array_equal(a, a2)
    assert not np.array_equal(a, b)
    assert set(np.unique(a)) <= {0.0, 2.0}


# ---- embedding ------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("padding_idx", [None, 0, 3, -1])
@pytest.mark.parametrize("ishape", [(5,), (2, 4), (), (3, 1, 2)], ids=str)
def test_embedding(device, ishape, padding_idx, dtype):
    rng = fresh_rng()
    idx = rng.integers(0, 6, size=ishape)
    if idx.size > 1:
        idx.reshape(-1)[:2] = [3, 3]  # repeated indices accumulate
        if padding_idx is not None:
            idx.reshape(-1)[-1] = padding_idx % 6
    ip, it = pair(idx.astype(np.int64), device)
    ind = both(ip, it)
    check_op([(6, 4)], lambda w: TF.embedding(ind(w), w, padding_idx=padding_idx),
             lambda w: F.embedding(ind(w), w, padding_idx=padding_idx), dtype, device)


def test_embedding_int32_indices(device):
    ip, it = pair(np.array([[1, 0, 1]], dtype=np.int32), device)
    ind = both(ip, it)
    check_op([(3, 2)], lambda w: TF.embedding(ind(w), w), lambda w: F.embedding(ind(w), w),
             np.float64, device)


# ---- linear ----------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("xshape", [(5, 3), (1, 3), (2, 4, 3), (3,), (2, 1, 2, 3)], ids=str)
def test_linear(device, xshape, bias, dtype):
    shapes = [xshape, (7, 3)] + ([(7,)] if bias else [])
    check_op(shapes, TF.linear, F.linear, dtype, device)


def test_linear_non_contiguous(device):
    check_op([(3, 5), (4, 5), (4,)], TF.linear, F.linear, np.float32, device, layout="T")
    check_op([(3, 6), (4, 6)], TF.linear, F.linear, np.float64, device, layout="step")


# ---- finite-difference gradient checks (float64) ----------------------------------------------

def _idx(a):
    return pydl.tensor(np.asarray(a, dtype=np.int64))


GRADCHECK = {
    "softmax": (lambda x: F.softmax(x, 1), [(2, 3, 2)]),
    "log_softmax": (lambda x: F.log_softmax(x, 0), [(3, 2)]),
    "softmax_width1": (lambda x: F.softmax(x, -1) * x, [(3, 1)]),
    "layer_norm": (lambda x, w, b: F.layer_norm(x, (3,), w, b), [(2, 3), (3,), (3,)]),
    "layer_norm_2d": (lambda x, w: F.layer_norm(x, (2, 2), w), [(2, 2, 2), (2, 2)]),
    "layer_norm_plain": (lambda x: F.layer_norm(x, (4,)), [(2, 4)]),
    "rms_norm": (lambda x, w: F.rms_norm(x, (3,), w), [(2, 3), (3,)]),
    "rms_norm_plain": (lambda x: F.rms_norm(x, (2, 2), eps=1e-3), [(2, 2, 2)]),
    "batch_norm_train": (lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True),
                         [(3, 2, 2), (2,), (2,)]),
    "batch_norm_train_2d": (lambda x: F.batch_norm(x, None, None, training=True), [(4, 3)]),
    "batch_norm_eval": (lambda x, w, b: F.batch_norm(
        x, pydl.tensor([0.1, -0.2], dtype=pydl.float64), pydl.tensor([1.5, 0.7], dtype=pydl.float64),
        w, b), [(3, 2, 2), (2,), (2,)]),
    "cross_entropy": (lambda x: F.cross_entropy(x, _idx([0, 2, 1])), [(3, 3)]),
    "cross_entropy_smooth_ignore": (lambda x: F.cross_entropy(
        x, _idx([[0, -100], [2, 1]]), label_smoothing=0.2, reduction="sum"), [(2, 3, 2)]),
    "cross_entropy_none": (lambda x: F.cross_entropy(x, _idx([1, 1]), reduction="none"), [(2, 3)]),
    "nll_loss": (lambda x: F.nll_loss(x, _idx([0, 2, -100]), ignore_index=-100), [(3, 3)]),
    "mse": (lambda a, b: F.mse_loss(a, b), [(2, 3), (2, 3)]),
    "l1": (lambda a, b: F.l1_loss(a, b, reduction="sum"), [(2, 3), (2, 3)]),
    "smooth_l1": (lambda a, b: F.smooth_l1_loss(a, b, beta=0.7), [(2, 3), (2, 3)]),
    "huber": (lambda a, b: F.huber_loss(a, b, delta=0.6, reduction="none"), [(2, 3), (2, 3)]),
    "bce_logits": (lambda x, y: F.binary_cross_entropy_with_logits(x, y), [(2, 3), (2, 3)]),
    "bce_logits_pos_weight": (lambda x, y: F.binary_cross_entropy_with_logits(
        x, y, pos_weight=pydl.tensor([0.5, 2.0, 3.0], dtype=pydl.float64), reduction="sum"),
        [(2, 3), (2, 3)]),
    "dropout": (lambda x: (pydl.manual_seed(3), F.dropout(x, 0.4))[1], [(3, 4)]),
    "embedding": (lambda w: F.embedding(_idx([[0, 2], [2, 2]]), w), [(3, 2)]),
    "linear": (lambda x, w, b: F.linear(x, w, b), [(2, 2, 3), (4, 3), (4,)]),
    "linear_no_bias": (lambda x, w: F.linear(x, w), [(3,), (2, 3)]),
}


@pytest.mark.parametrize("name", list(GRADCHECK))
def test_gradcheck(name):
    fn, shapes = GRADCHECK[name]
    gradcheck(fn, shapes)


def test_empty_batch(device):
    # Zero rows: empty results and gradients, like PyTorch (mean of nothing is NaN).
    x = pydl.zeros(0, 5, device=device, requires_grad=True)
    w = pydl.ones(5, device=device, requires_grad=True)
    t = pydl.zeros(0, dtype=pydl.int64, device=device)
    out = F.softmax(x, -1).sum() + F.log_softmax(x, 0).sum() + F.layer_norm(x, (5,), w).sum() + \
        F.rms_norm(x, (5,)).sum() + F.cross_entropy(x, t, reduction="sum")
    out.backward()
    assert out.item() == 0.0
    assert x.grad.shape == (0, 5) and w.grad.shape == (5,)
    np.testing.assert_array_equal(to_numpy(w.grad), np.zeros(5))
    assert np.isnan(F.cross_entropy(x, t).item())
