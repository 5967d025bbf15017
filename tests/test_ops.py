"""Forward and backward parity of pydl's core ops with PyTorch, finite-difference
gradient checks in float64, type promotion, autograd semantics and creation."""
import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import pydl
import pydl.nn.functional as F
from helpers import assert_close, check_op, fresh_rng, gradcheck, rand_array, to_numpy

FLOATS = [np.float32, np.float64]

BINARY_SHAPES = [((), ()), ((1,), (1,)), ((7,), (7,)), ((5, 1, 3), (4, 1)), ((3,), ()),
                 ((), (2, 3)), ((2, 3, 5), (3, 1)), ((1, 13), (11, 1))]
BINARY = {
    "add": lambda a, b: a + b,
    "sub": lambda a, b: a - b,
    "mul": lambda a, b: a * b,
    "div": lambda a, b: a / b,
}
PROMOTION_OPS = dict(BINARY, pow=lambda a, b: a ** b)


def both(pydl_value, torch_value):
    """A function that picks the pydl or torch variant of a constant by the input's type."""
    return lambda x: pydl_value if isinstance(x, pydl.Tensor) else torch_value


# ---- arithmetic --------------------------------------------------------------------

@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("shapes", BINARY_SHAPES, ids=str)
@pytest.mark.parametrize("op", list(BINARY))
def test_binary_tensor_tensor(device, op, shapes, dtype):
    check_op(shapes, BINARY[op], BINARY[op], dtype, device)


@pytest.mark.parametrize("layout", ["T", "step"])
@pytest.mark.parametrize("op", list(BINARY))
def test_binary_non_contiguous(device, op, layout):
    check_op([(3, 5), (3, 5)], BINARY[op], BINARY[op], np.float32, device, layout=layout)
    check_op([(4, 1, 6), (6,)], BINARY[op], BINARY[op], np.float64, device, layout=layout)


@pytest.mark.parametrize("dtype", FLOATS)
def test_binary_functional_forms(device, dtype):
    check_op([(3, 4), (4,)], lambda a, b: torch.add(a, b, alpha=2.5),
             lambda a, b: pydl.add(a, b, alpha=2.5), dtype, device)
    check_op([(3, 4), (4,)], lambda a, b: torch.sub(a, b, alpha=-3),
             lambda a, b: pydl.sub(a, b, alpha=-3), dtype, device)
    check_op([(3, 4), (3, 1)], torch.mul, pydl.mul, dtype, device)
    check_op([(3, 4), (3, 1)], torch.div, pydl.div, dtype, device)


SCALAR_FORMS = {
    "t+s": lambda a: a + 2.5, "s+t": lambda a: 2.5 + a, "t+int": lambda a: a + 3,
    "t-s": lambda a: a - 1.25, "s-t": lambda a: 1.25 - a, "int-t": lambda a: 4 - a,
    "t*s": lambda a: a * -1.5, "s*t": lambda a: -1.5 * a, "t*int": lambda a: a * 3,
    "t/s": lambda a: a / 3.0, "s/t": lambda a: 3.0 / a, "int/t": lambda a: 2 / a,
    "t/int": lambda a: a / 7,
}


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("shape", [(), (1,), (5, 3)], ids=str)
@pytest.mark.parametrize("form", list(SCALAR_FORMS))
def test_binary_scalar(device, form, shape, dtype):
    check_op([shape], SCALAR_FORMS[form], SCALAR_FORMS[form], dtype, device)


POW_FORMS = {
    "square": (lambda a: a ** 2, False), "cube_int": (lambda a: a ** 3, False),
    "sqrt": (lambda a: a ** 0.5, True), "neg_frac": (lambda a: a ** -1.5, True),
    "zero": (lambda a: a ** 0, False), "one": (lambda a: a ** 1, False),
    "rpow": (lambda a: 2.0 ** a, False), "rpow_int": (lambda a: 3 ** a, False),
    "rpow_frac": (lambda a: 0.5 ** a, False),
}


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("form", list(POW_FORMS))
def test_pow_scalar(device, form, dtype):
    fn, positive = POW_FORMS[form]
    check_op([(4, 7)], fn, fn, dtype, device, positive=positive, low=0.2 if positive else -2.0)


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("shapes", [((3, 4), (3, 4)), ((2, 3), (3,)), ((5,), ()), ((), (4,))], ids=str)
def test_pow_tensor_exponent(device, shapes, dtype):
    check_op(shapes, lambda a, b: a ** b, lambda a, b: a ** b, dtype, device, low=0.2, high=2.0,
             positive=True)
    check_op(shapes, torch.pow, pydl.pow, dtype, device, low=0.2, high=2.0, positive=True)


# ---- unary math and activations ------------------------------------------------------

UNARY = {
    # name: (torch fn, pydl fn, positive inputs)
    "neg": (lambda x: -x, lambda x: -x, False),
    "neg_fn": (torch.neg, pydl.neg, False),
    "exp": (torch.exp, pydl.exp, False),
    "log": (torch.log, pydl.log, True),
    "sqrt": (torch.sqrt, pydl.sqrt, True),
    "rsqrt": (torch.rsqrt, pydl.rsqrt, True),
    "abs": (torch.abs, pydl.abs, False),
    "abs_op": (lambda x: abs(x), lambda x: abs(x), False),
    "sin": (torch.sin, pydl.sin, False),
    "cos": (torch.cos, pydl.cos, False),
    "tanh": (torch.tanh, pydl.tanh, False),
    "sigmoid": (torch.sigmoid, pydl.sigmoid, False),
    "relu": (torch.relu, pydl.relu, False),
    "gelu": (TF.gelu, F.gelu, False),
    "gelu_tanh": (lambda x: TF.gelu(x, approximate="tanh"), lambda x: F.gelu(x, approximate="tanh"),
                  False),
    "silu": (TF.silu, F.silu, False),
    "leaky_relu": (TF.leaky_relu, F.leaky_relu, False),
    "leaky_relu_0.2": (lambda x: TF.leaky_relu(x, 0.2), lambda x: F.leaky_relu(x, 0.2), False),
    "elu": (TF.elu, F.elu, False),
    "elu_alpha": (lambda x: TF.elu(x, alpha=0.7), lambda x: F.elu(x, alpha=0.7), False),
    "softplus": (TF.softplus, F.softplus, False),
    "softplus_beta": (lambda x: TF.softplus(x, beta=2.0, threshold=3.0),
                      lambda x: F.softplus(x, beta=2.0, threshold=3.0), False),
    "clamp_min": (lambda x: torch.clamp(x, min=-0.5), lambda x: pydl.clamp(x, min=-0.5), False),
    "clamp_max": (lambda x: x.clamp(max=0.7), lambda x: x.clamp(max=0.7), False),
    "clamp_both": (lambda x: x.clamp(-0.5, 0.7), lambda x: x.clamp(-0.5, 0.7), False),
    "clip": (lambda x: x.clip(-1, 1), lambda x: x.clip(-1, 1), False),
}


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("shape", [(), (1,), (13,), (3, 1, 5)], ids=str)
@pytest.mark.parametrize("name", list(UNARY))
def test_unary(device, name, shape, dtype):
    tf, pf, positive = UNARY[name]
    check_op([shape], tf, pf, dtype, device, positive=positive, low=0.1 if positive else -3.0,
             high=3.0)


@pytest.mark.parametrize("name", list(UNARY))
def test_unary_non_contiguous(device, name):
    tf, pf, positive = UNARY[name]
    check_op([(4, 6)], tf, pf, np.float32, device, positive=positive, low=0.1 if positive else -3.0,
             high=3.0, layout="T")


LARGE = np.array([-120.0, -80.0, -30.0, -15.0, -4.0, -0.3, 0.4, 3.0, 16.0, 30.0, 80.0, 120.0])


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("name", ["sigmoid", "tanh", "silu", "softplus", "softplus_beta", "elu",
                                  "gelu", "gelu_tanh", "relu", "leaky_relu", "exp"])
def test_unary_large_magnitude(device, name, dtype):
    tf, pf, _ = UNARY[name]
    x = LARGE if name != "exp" or dtype == np.float64 else LARGE[np.abs(LARGE) < 80]
    p, _ = check_op(None, tf, pf, dtype, device, inputs=[x])
    assert np.isfinite(to_numpy(p)).all()


@pytest.mark.parametrize("name", ["neg", "exp", "log", "sqrt", "abs", "tanh", "sigmoid", "relu",
                                  "gelu", "gelu_tanh", "silu", "softplus", "elu", "clamp_both"])
def test_unary_float16_forward(device, name):
    tf, pf, positive = UNARY[name]
    check_op([(7, 9)], tf, pf, np.float16, device, grad=False, positive=positive,
             low=0.1 if positive else -3.0, high=3.0)


def test_float16_binary_and_reduction_forward(device):
    check_op([(5, 1, 3), (4, 1)], lambda a, b: a * b + a / b, lambda a, b: a * b + a / b,
             np.float16, device, grad=False)
    check_op([(6, 11)], lambda a: a.sum(dim=1), lambda a: a.sum(dim=1), np.float16, device,
             grad=False, atol=2e-2, rtol=1e-2)
    check_op([(6, 11)], lambda a: a.mean(dim=0), lambda a: a.mean(dim=0), np.float16, device,
             grad=False)
    check_op([(6, 11), (11, 4)], lambda a, b: a @ b, lambda a, b: a @ b, np.float16, device,
             grad=False, atol=2e-2, rtol=1e-2)
    check_op([(6, 11)], lambda a: a.softmax(-1), lambda a: a.softmax(-1), np.float16, device,
             grad=False)


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("shapes", [((3, 4), (3, 4)), ((5, 1, 3), (4, 1)), ((), (6,))], ids=str)
@pytest.mark.parametrize("op", ["maximum", "minimum"])
def test_maximum_minimum(device, op, shapes, dtype):
    check_op(shapes, getattr(torch, op), getattr(pydl, op), dtype, device)


def test_maximum_ties_split_gradient(device):
    # Ties share the gradient evenly between the two inputs, like PyTorch.
    x = np.array([1.0, 2.0, -3.0, 4.0])
    check_op(None, torch.maximum, pydl.maximum, np.float64, device, inputs=[x, x.copy()])
    check_op(None, torch.minimum, pydl.minimum, np.float64, device, inputs=[x, x.copy()])


@pytest.mark.parametrize("dtype", FLOATS)
def test_where(device, dtype):
    cond = fresh_rng().random((5, 1, 3)) > 0.5
    pc, tc = pydl.tensor(cond, device=device), torch.tensor(cond)
    sel = both(pc, tc)
    check_op([(5, 4, 3), (4, 1)], lambda a, b: torch.where(tc, a, b),
             lambda a, b: pydl.where(pc, a, b), dtype, device)
    check_op([(5, 4, 3)], lambda a: torch.where(sel(a), a, 0.5),
             lambda a: pydl.where(sel(a), a, 0.5), dtype, device)
    check_op([(4, 3)], lambda a: torch.where(sel(a), -1.0, a),
             lambda a: pydl.where(sel(a), -1.0, a), dtype, device)


# ---- reductions ----------------------------------------------------------------------

DIMS = [None, 0, 1, -1, (0, 2), (-1, -3), (2, 0, 1)]


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("keepdim", [False, True])
@pytest.mark.parametrize("dim", DIMS, ids=str)
@pytest.mark.parametrize("op", ["sum", "mean", "var", "std"])
def test_reductions_dim(device, op, dim, keepdim, dtype):
    def fn(x):
        if dim is None and not keepdim:
            return getattr(x, op)()
        return getattr(x, op)(dim=dim, keepdim=keepdim)

    check_op([(3, 4, 5)], fn, fn, dtype, device)


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("op", ["sum", "mean"])
def test_reductions_small_shapes(device, op, dtype):
    for shape, dim in [((), None), ((), 0), ((1,), 0), ((1, 1), (0, 1)), ((7,), -1)]:
        f = (lambda x: getattr(x, op)()) if dim is None else (lambda x: getattr(x, op)(dim=dim))
        check_op([shape], f, f, dtype, device)
    check_op([(4, 6)], lambda x: getattr(torch, op)(x, 1), lambda x: getattr(pydl, op)(x, 1),
             dtype, device, layout="T")


@pytest.mark.parametrize("dtype", FLOATS)
def test_var_std_correction(device, dtype):
    for kw in [dict(unbiased=False), dict(unbiased=True), dict(correction=0), dict(correction=2)]:
        check_op([(4, 5)], lambda x: x.var(dim=1, **kw), lambda x: x.var(dim=1, **kw), dtype, device)
        check_op([(4, 5)], lambda x: x.std(dim=0, **kw), lambda x: x.std(dim=0, **kw), dtype, device)
    check_op([(4, 5)], lambda x: torch.var(x), lambda x: pydl.var(x), dtype, device)
    check_op([(4, 5)], lambda x: torch.std(x, -1, keepdim=True),
             lambda x: pydl.std(x, -1, keepdim=True), dtype, device, layout="T")


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("op", ["max", "min"])
def test_max_min_all(device, op, dtype):
    for shape in [(), (1,), (7,), (3, 5, 2)]:
        check_op([shape], lambda x: getattr(x, op)(), lambda x: getattr(x, op)(), dtype, device)
    # Ties over all elements share the gradient evenly, like PyTorch.
    x = np.array([[1.0, 3.0, 3.0], [-2.0, 3.0, 0.5]]) * (1 if op == "max" else -1)
    check_op(None, lambda x: getattr(x, op)(), lambda x: getattr(x, op)(), dtype, device, inputs=[x])


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("keepdim", [False, True])
@pytest.mark.parametrize("dim", [0, 1, -1, 2, -3])
@pytest.mark.parametrize("op", ["max", "min"])
def test_max_min_dim(device, op, dim, keepdim, dtype):
    p, t = check_op([(4, 5, 3)], lambda x: getattr(x, op)(dim, keepdim=keepdim),
                    lambda x: getattr(x, op)(dim, keepdim=keepdim), dtype, device)
    assert p[1].dtype == pydl.int64
    assert np.array_equal(to_numpy(p[1]), to_numpy(t[1]))
    assert not p[1].requires_grad


@pytest.mark.parametrize("op", ["max", "min"])
def test_max_min_dim_edge_shapes(device, op):
    for shape, dim in [((1,), 0), ((7,), 0), ((), 0), ((1, 5), 0), ((6, 1), 1)]:
        p, t = check_op([shape], lambda x: getattr(torch, op)(x, dim),
                        lambda x: getattr(pydl, op)(x, dim), np.float64, device)
        assert np.array_equal(to_numpy(p[1]), to_numpy(t[1]))
    check_op([(5, 6)], lambda x: x.max(0), lambda x: x.max(0), np.float32, device, layout="T")


@pytest.mark.parametrize("op", ["argmax", "argmin"])
def test_argmax_argmin(device, op):
    a = rand_array((4, 5, 3))
    pa, ta = pydl.tensor(a, device=device), torch.tensor(a)
    for kw in [{}, dict(dim=0), dict(dim=-1), dict(dim=1, keepdim=True), dict(dim=None, keepdim=True)]:
        p, t = getattr(pa, op)(**kw), getattr(ta, op)(**kw)
        assert p.dtype == pydl.int64
        assert tuple(p.shape) == tuple(t.shape), kw
        assert np.array_equal(to_numpy(p), t.numpy()), kw
    p, t = getattr(pydl, op)(pa[:, 1]), getattr(torch, op)(ta[:, 1])
    assert np.array_equal(to_numpy(p), t.numpy())


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("keepdim", [False, True])
@pytest.mark.parametrize("dim", [0, -1, (0, 2), 1], ids=str)
def test_logsumexp(device, dim, keepdim, dtype):
    check_op([(3, 4, 5)], lambda x: torch.logsumexp(x, dim, keepdim=keepdim),
             lambda x: pydl.logsumexp(x, dim, keepdim=keepdim), dtype, device, low=-30, high=30)


def test_logsumexp_inf_rows(device):
    x = np.array([[-np.inf, -np.inf, -np.inf], [1.0, -np.inf, 2.0], [1000.0, 999.0, 0.5]])
    p = pydl.logsumexp(pydl.tensor(x, device=device), 1)
    t = torch.logsumexp(torch.tensor(x), 1)
    assert_close(p, t, 1e-12, 1e-12, "logsumexp")


# ---- matmul ----------------------------------------------------------------------------

MATMUL_SHAPES = [((5,), (5,)), ((1,), (1,)), ((4,), (4, 3)), ((3, 4), (4,)), ((1, 1), (1, 1)),
                 ((3, 7), (7, 2)), ((2, 3, 4), (4, 5)), ((4,), (2, 4, 5)), ((2, 3, 4), (4,)),
                 ((2, 1, 3, 4), (5, 4, 6)), ((3, 4), (2, 4, 5)), ((1, 3, 4), (2, 1, 4, 2))]


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("shapes", MATMUL_SHAPES, ids=str)
def test_matmul(device, shapes, dtype):
    check_op(shapes, lambda a, b: a @ b, lambda a, b: a @ b, dtype, device)


def test_matmul_non_contiguous_and_functional(device):
    check_op([(3, 5), (5, 4)], torch.matmul, pydl.matmul, np.float32, device, layout="T")
    check_op([(3, 6), (6, 4)], torch.matmul, pydl.matmul, np.float64, device, layout="step")
    check_op([(3, 5)], lambda a: a @ a.T, lambda a: a @ a.T, np.float64, device)
    check_op([(3, 5), (5,)], lambda a, b: torch.outer(a[0], b), lambda a, b: pydl.outer(a[0], b),
             np.float64, device)


# ---- shape ops -----------------------------------------------------------------------

SHAPE_OPS = {
    "reshape": ((2, 3, 4), lambda x: x.reshape(4, 6)),
    "reshape_infer": ((2, 3, 4), lambda x: x.reshape(-1, 2)),
    "reshape_tuple": ((2, 3, 4), lambda x: x.reshape((3, 8))),
    "reshape_same": ((2, 3), lambda x: x.reshape(2, 3)),
    "reshape_0d": ((), lambda x: x.reshape(1, 1)),
    "reshape_to_0d": ((1,), lambda x: x.reshape(())),
    "view": ((2, 3, 4), lambda x: x.view(6, 4)),
    "transpose": ((2, 3, 4), lambda x: x.transpose(0, 2)),
    "transpose_neg": ((2, 3, 4), lambda x: x.transpose(-1, -2)),
    "permute": ((2, 3, 4), lambda x: x.permute(2, 0, 1)),
    "permute_neg": ((2, 3, 4), lambda x: x.permute(-1, 0, -2)),
    "T": ((3, 5), lambda x: x.T),
    "mT": ((2, 3, 5), lambda x: x.mT),
    "expand": ((3, 1), lambda x: x.expand(2, 3, 4)),
    "expand_neg1": ((3, 1), lambda x: x.expand(-1, 5)),
    "expand_0d": ((), lambda x: x.expand(3, 2)),
    "expand_as": ((1, 4), lambda x: x.expand_as(x.new_zeros(3, 4) if isinstance(x, torch.Tensor)
                                                 else pydl.zeros(3, 4, dtype=x.dtype, device=x.device))),
    "squeeze_all": ((1, 3, 1, 2), lambda x: x.squeeze()),
    "squeeze_dim": ((1, 3, 1, 2), lambda x: x.squeeze(2)),
    "squeeze_neg": ((1, 3, 1, 2), lambda x: x.squeeze(-4)),
    "squeeze_noop": ((1, 3, 1, 2), lambda x: x.squeeze(1)),
    "unsqueeze": ((3, 2), lambda x: x.unsqueeze(1)),
    "unsqueeze_neg": ((3, 2), lambda x: x.unsqueeze(-1)),
    "unsqueeze_front": ((), lambda x: x.unsqueeze(0)),
    "flatten": ((2, 3, 4), lambda x: x.flatten()),
    "flatten_range": ((2, 3, 4, 5), lambda x: x.flatten(1, 2)),
    "flatten_neg": ((2, 3, 4, 5), lambda x: x.flatten(-3, -1)),
    "flatten_0d": ((), lambda x: x.flatten()),
    "contiguous": ((3, 4), lambda x: x.T.contiguous()),
    "clone": ((3, 4), lambda x: x.clone()),
    "view_as": ((3, 4), lambda x: x.view_as(x.T)),
}


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("name", list(SHAPE_OPS))
def test_shape_ops(device, name, dtype):
    shape, fn = SHAPE_OPS[name]
    check_op([shape], fn, fn, dtype, device)


def test_shape_functions(device):
    check_op([(2, 3, 4)], lambda x: torch.reshape(x, (4, -1)), lambda x: pydl.reshape(x, (4, -1)),
             np.float64, device)
    check_op([(2, 3, 4)], lambda x: torch.permute(x, (1, 2, 0)), lambda x: pydl.permute(x, (1, 2, 0)),
             np.float64, device)
    check_op([(2, 3)], lambda x: torch.broadcast_to(x, (4, 2, 3)),
             lambda x: pydl.broadcast_to(x, (4, 2, 3)), np.float64, device)
    check_op([(4, 6)], lambda x: x.reshape(-1) * 2, lambda x: x.reshape(-1) * 2, np.float32, device,
             layout="T")
    check_op([(4, 6)], lambda x: x.flatten(), lambda x: x.flatten(), np.float32, device,
             layout="step")


# ---- indexing ------------------------------------------------------------------------

def _index_cases(device):
    def idx(a):
        return both(pydl.tensor(np.asarray(a), device=device), torch.tensor(np.asarray(a)))

    rep = idx([0, 2, 2, -1, 0, 2])
    arr2 = idx([[1, 0], [3, 3]])
    rows = idx([2, 0, 2])
    mask_np = np.array([[True, False, True, True, False]] * 2 + [[False] * 5, [True] * 5])
    mask = idx(mask_np)
    mask_row = idx(np.array([True, False, True, True]))
    return {
        "int": lambda x: x[1],
        "neg_int": lambda x: x[-1],
        "int_int": lambda x: x[2, -3],
        "slice": lambda x: x[1:3],
        "slice_step": lambda x: x[::2, 1::3],
        "slice_neg": lambda x: x[-3:-1, :-2],
        "none": lambda x: x[None, :, None, 1],
        "ellipsis": lambda x: x[..., -2],
        "ellipsis_none": lambda x: x[1, ..., None],
        "int_array_repeated": lambda x: x[rep(x)],
        "int_array_2d": lambda x: x[arr2(x)],
        "array_and_slice": lambda x: x[rows(x), 1:4],
        "slice_and_array": lambda x: x[:, rep(x)],
        "two_arrays": lambda x: x[rows(x), rows(x)],
        "list": lambda x: x[[0, 3, 3]],
        "bool_mask": lambda x: x[mask(x)],
        "bool_rows": lambda x: x[mask_row(x)],
        "scalar_tensor": lambda x: x[both(pydl.tensor(2, device=device), torch.tensor(2))(x)],
    }


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("case", list(_index_cases("cpu")))
def test_indexing(device, case, dtype):
    fn = _index_cases(device)[case]
    check_op([(4, 5)], fn, fn, dtype, device)


@pytest.mark.parametrize("case", ["slice_step", "int_array_repeated", "bool_mask", "ellipsis"])
def test_indexing_non_contiguous(device, case):
    fn = _index_cases(device)[case]
    check_op([(4, 5)], fn, fn, np.float32, device, layout="T")


def test_repeated_index_accumulates(device):
    x = pydl.zeros(3, device=device, requires_grad=True)
    y = x[pydl.tensor([1, 1, 1, 2], device=device)]
    y.sum().backward()
    np.testing.assert_array_equal(to_numpy(x.grad), [0.0, 3.0, 1.0])


# ---- joining and splitting -----------------------------------------------------------

@pytest.mark.parametrize("dtype", FLOATS)
def test_cat_stack(device, dtype):
    for dim in [0, 1, -1]:
        check_op([(2, 3, 4), (2, 3, 4), (2, 3, 4)], lambda *ts: torch.cat(ts, dim),
                 lambda *ts: pydl.cat(ts, dim), dtype, device)
        check_op([(2, 3), (2, 3)], lambda *ts: torch.stack(ts, dim),
                 lambda *ts: pydl.stack(ts, dim), dtype, device)
    check_op([(1, 3), (4, 3), (2, 3)], lambda *ts: torch.cat(ts), lambda *ts: pydl.cat(ts),
             dtype, device)
    check_op([(3, 1), (3, 5)], lambda *ts: torch.cat(ts, 1), lambda *ts: pydl.concat(ts, 1),
             dtype, device, layout="T")
    check_op([(3,), (3,)], lambda *ts: torch.stack(ts, -1), lambda *ts: pydl.stack(ts, -1),
             dtype, device)
    check_op([(), ()], lambda *ts: torch.stack(ts), lambda *ts: pydl.stack(ts), dtype, device)


def test_cat_promotes_dtypes(device):
    a = pydl.ones(2, dtype=pydl.float32, device=device)
    b = pydl.ones(3, dtype=pydl.float64, device=device)
    assert pydl.cat([a, b]).dtype == pydl.float64
    assert pydl.cat([pydl.ones(2, dtype=pydl.int64, device=device), a]).dtype == pydl.float32


@pytest.mark.parametrize("dtype", FLOATS)
def test_split_chunk(device, dtype):
    for arg, dim in [(2, 0), (3, 1), ([1, 4, 2], 1), (7, -1), (1, 0)]:
        check_op([(5, 7)], lambda x: torch.split(x, arg, dim), lambda x: pydl.split(x, arg, dim),
                 dtype, device)
        check_op([(5, 7)], lambda x: x.split(arg, dim=dim), lambda x: x.split(arg, dim=dim),
                 dtype, device)
    for chunks, dim in [(2, 0), (3, 1), (5, 0), (4, -1), (1, 1)]:
        check_op([(5, 7)], lambda x: torch.chunk(x, chunks, dim), lambda x: pydl.chunk(x, chunks, dim),
                 dtype, device)
    # Only some of the pieces used: the others get zero gradient.
    check_op([(6, 4)], lambda x: x.split(2)[1], lambda x: x.split(2)[1], dtype, device)


@pytest.mark.parametrize("dtype", FLOATS)
def test_masked_fill(device, dtype):
    m = fresh_rng().random((4, 1, 5)) > 0.5
    m[1] = True  # a fully masked row: softmax gives NaN there, masked_fill zeroes it
    mask = both(pydl.tensor(m, device=device), torch.tensor(m))
    check_op([(4, 3, 5)], lambda x: x.masked_fill(mask(x), -1.5), lambda x: x.masked_fill(mask(x), -1.5),
             dtype, device)
    check_op([(4, 3, 5)], lambda x: x.masked_fill(mask(x), float("-inf")).softmax(-1).masked_fill(
        mask(x), 0.0), lambda x: x.masked_fill(mask(x), float("-inf")).softmax(-1).masked_fill(
        mask(x), 0.0), dtype, device)
    row = np.array([True, False, False, True, True])
    rmask = both(pydl.tensor(row, device=device), torch.tensor(row))
    check_op([(3, 5)], lambda x: torch.masked_fill(x, rmask(x), 2.0),
             lambda x: pydl.masked_fill(x, rmask(x), 2.0), dtype, device, layout="step")


def test_masked_positions_block_nan_gradients(device):
    # The gradient at a filled / unselected position is exactly zero, even when the upstream
    # gradient there is NaN or inf (like PyTorch).
    g = np.array([np.nan, 1.0, np.inf, 2.0])
    m = np.array([True, False, True, False])
    x = pydl.tensor([1.0, 2.0, 3.0, 4.0], device=device, requires_grad=True)
    x.masked_fill(pydl.tensor(m, device=device), 0.0).backward(pydl.tensor(g, device=device))
    np.testing.assert_array_equal(to_numpy(x.grad), [0.0, 1.0, 0.0, 2.0])
    a = pydl.tensor([1.0, 2.0, 3.0, 4.0], device=device, requires_grad=True)
    b = pydl.tensor([5.0, 6.0, 7.0, 8.0], device=device, requires_grad=True)
    pydl.where(pydl.tensor(m, device=device), a, b).backward(pydl.tensor(g, device=device))
    np.testing.assert_array_equal(to_numpy(a.grad), [np.nan, 0.0, np.inf, 0.0])
    np.testing.assert_array_equal(to_numpy(b.grad), [0.0, 1.0, 0.0, 2.0])


@pytest.mark.parametrize("dtype", FLOATS)
def test_pad(device, dtype):
    for pad, value in [((1, 2), 0.0), ((0, 0, 2, 1), 1.5), ((1, 1, 0, 3, 2, 0), -2.0), ((0, 3), 0.0)]:
        check_op([(2, 3, 4)], lambda x: TF.pad(x, pad, value=value),
                 lambda x: F.pad(x, pad, value=value), dtype, device)


# ---- type promotion and comparisons ---------------------------------------------------

def _pt(a, dtype, device):
    return pydl.tensor(np.asarray(a), dtype=dtype, device=device)


PROMOTION = [
    # (lhs values/dtype, rhs values/dtype or scalar, op)
    (([1, 2, 3], "int64"), ([0.5, 1.5, 2.5], "float32"), "add"),
    (([1, 2, 3], "int32"), ([0.5, 1.5, 2.5], "float64"), "mul"),
    (([1.0, 2.0], "float32"), ([0.5, 1.5], "float64"), "add"),
    (([1.0, 2.0], "float64"), ([0.5, 1.5], "float32"), "sub"),
    (([1.0, 2.0], "float16"), ([0.5, 1.5], "float32"), "mul"),
    (([1, 2, 3], "int64"), 2.5, "mul"),
    (([1, 2, 3], "int32"), 2, "mul"),
    (([1, 2, 3], "int32"), ([1, 2, 3], "int64"), "add"),
    (([1, 2, 3], "int64"), ([2, 4, 4], "int64"), "div"),
    (([1, 2, 3], "int32"), 2, "div"),
    (([1, 2, 3], "int64"), ([2.0, 4.0, 4.0], "float64"), "div"),
    (([True, False], "bool"), ([2, 3], "int64"), "add"),
    (([True, False], "bool"), 1.5, "mul"),
    (([1.0, 2.0], "float16"), 3.5, "mul"),
    (([1.0, 2.0], "float64"), 3, "add"),
    (([1, 2], "int64"), ([1.0, 2.0], "float16"), "add"),
    (([1, 2, 3], "int64"), 2, "pow"),
    (([1, 2, 3], "int32"), 1.5, "pow"),
    (([True, False], "bool"), 3, "pow"),
    (([1.0, 2.0], "float16"), ([2, 3], "int64"), "pow"),
]


@pytest.mark.parametrize("case", PROMOTION, ids=str)
def test_type_promotion(device, case):
    (a, adt), rhs, op = case
    pa, ta = _pt(a, adt, "cpu").to(device), torch.tensor(np.asarray(a, dtype=adt))
    if isinstance(rhs, tuple):
        pb, tb = _pt(rhs[0], rhs[1], device), torch.tensor(np.asarray(rhs[0], dtype=rhs[1]))
    else:
        pb, tb = rhs, rhs
    fn = PROMOTION_OPS[op]
    for p, t in [(fn(pa, pb), fn(ta, tb)), (fn(pb, pa), fn(tb, ta))]:
        assert to_numpy(p).dtype == t.numpy().dtype, f"{op}: {p.dtype} != {t.dtype}"
        assert_close(p, t, 1e-6, 1e-3, op)


def test_int_true_division_and_bool_sum(device):
    a = pydl.tensor([1, 2, 3], device=device)
    b = pydl.tensor([2, 2, 2], device=device)
    assert (a / b).dtype == pydl.float32
    np.testing.assert_allclose(to_numpy(a / b), [0.5, 1.0, 1.5])
    assert pydl.div(a, b).dtype == pydl.float32
    assert pydl.div(7, b).dtype == pydl.float32
    np.testing.assert_allclose(to_numpy(pydl.div(7, b)), [3.5, 3.5, 3.5])
    s = pydl.tensor([True, False, True, True], device=device).sum()
    assert s.dtype == pydl.int64 and s.item() == 3
    assert pydl.tensor([1, 2], dtype=pydl.int32, device=device).sum().dtype == pydl.int64
    assert pydl.tensor([1.0], dtype=pydl.float16, device=device).sum().dtype == pydl.float16


def test_zero_dim_promotion(device):
    # A 0-d tensor of the same category does not widen a dimensioned tensor (PyTorch's rule);
    # one of a higher category decides the result's dtype.
    x = pydl.ones(3, dtype=pydl.float32, device=device)
    s64 = pydl.tensor(2.0, dtype=pydl.float64, device=device)
    i = pydl.ones(3, dtype=pydl.int32, device=device)
    tx, ts64, ti = torch.ones(3), torch.tensor(2.0, dtype=torch.float64), torch.ones(3, dtype=torch.int32)
    assert to_numpy(x * s64).dtype == (tx * ts64).numpy().dtype
    assert to_numpy(s64 + x).dtype == (ts64 + tx).numpy().dtype
    assert to_numpy(i + s64).dtype == (ti + ts64).numpy().dtype
    assert to_numpy(i + pydl.tensor(5, device=device)).dtype == (ti + torch.tensor(5)).numpy().dtype
    x.requires_grad_()
    (x * s64).sum().backward()
    assert x.grad.dtype == pydl.float32
    np.testing.assert_allclose(to_numpy(x.grad), [2.0, 2.0, 2.0])


@pytest.mark.parametrize("op", ["eq", "ne", "lt", "le", "gt", "ge"])
def test_comparisons(device, op):
    import operator

    f = getattr(operator, op)
    a = np.array([[1.0, 2.0, 3.0], [4.0, 2.0, -1.0]])
    b = np.array([2.0, 2.0, 1.0])
    pa, pb = pydl.tensor(a, device=device), pydl.tensor(b, device=device)
    ta, tb = torch.tensor(a), torch.tensor(b)
    for p, t in [(f(pa, pb), f(ta, tb)), (f(pa, 2.0), f(ta, 2.0)), (getattr(pa, op)(pb), f(ta, tb)),
                 (f(pydl.tensor([1, 2, 3], device=device), pb), f(torch.tensor([1, 2, 3]), tb))]:
        assert p.dtype == pydl.bool
        assert not p.requires_grad
        np.testing.assert_array_equal(to_numpy(p), t.numpy())
    x = pydl.tensor(a, device=device, requires_grad=True)
    assert not (x > 0).requires_grad


def test_logical_ops_on_bool(device):
    a = pydl.tensor([True, False, True], device=device)
    b = pydl.tensor([True, True, False], device=device)
    np.testing.assert_array_equal(to_numpy(a & b), [True, False, False])
    np.testing.assert_array_equal(to_numpy(a | b), [True, True, True])
    np.testing.assert_array_equal(to_numpy(a ^ b), [False, True, True])
    np.testing.assert_array_equal(to_numpy(~a), [False, True, False])


# ---- autograd semantics ----------------------------------------------------------------

def test_gradient_accumulates_across_backward_calls(device):
    x = pydl.tensor([1.0, -2.0, 3.0], device=device, requires_grad=True)
    (x * x).sum().backward()
    (3 * x).sum().backward()
    np.testing.assert_allclose(to_numpy(x.grad), 2 * np.array([1.0, -2.0, 3.0]) + 3)
    x.grad = None
    (x * 2).sum().backward()
    np.testing.assert_allclose(to_numpy(x.grad), [2.0, 2.0, 2.0])


def test_gradient_accumulates_on_zero_dim_leaf(device):
    x = pydl.tensor(2.0, device=device, requires_grad=True)
    (x * x).backward()
    (x * 3).backward()
    assert x.grad.shape == () and x.grad.device == device
    assert x.grad.item() == 7.0
    y = x.exp()
    (y + y).backward()
    assert x.grad.device == device and abs(x.grad.item() - (7.0 + 2 * np.exp(2.0))) < 1e-4


def test_shared_subexpression_and_reuse(device):
    a = rand_array((3, 4))
    p = pydl.tensor(a, device=device, requires_grad=True)
    t = torch.tensor(a, requires_grad=True)
    for x, lib in [(p, pydl), (t, torch)]:
        y = lib.tanh(x)
        z = (y * y + y * x).sum() + (y.exp() * x).mean()
        z.backward()
    assert_close(p.grad, t.grad, 1e-12, 1e-10, "grad")


def test_no_grad_records_nothing(device):
    x = pydl.ones(3, device=device, requires_grad=True)
    with pydl.no_grad():
        y = x * 2 + 1
        z = y.exp().sum()
    assert not y.requires_grad and y.grad_fn is None
    assert not z.requires_grad
    assert pydl.is_grad_enabled()

    @pydl.no_grad()
    def f(v):
        return v * 3

    assert not f(x).requires_grad
    with pydl.no_grad():
        with pydl.enable_grad():
            assert (x * 2).requires_grad
    pydl.set_grad_enabled(False)
    try:
        assert not (x + 1).requires_grad
    finally:
        pydl.set_grad_enabled(True)
    assert (x + 1).requires_grad


def test_retain_graph(device):
    x = pydl.tensor([1.0, 2.0], device=device, requires_grad=True)
    y = (x * x).sum()
    y.backward(retain_graph=True)
    y.backward()
    np.testing.assert_allclose(to_numpy(x.grad), [4.0, 8.0])
    with pytest.raises(RuntimeError, match="retain_graph"):
        y.backward()


def test_second_backward_without_retain_graph_raises(device):
    x = pydl.tensor([1.0, 2.0], device=device, requires_grad=True)
    h = x.exp()
    h.sum().backward()
    with pytest.raises(RuntimeError, match="retain_graph"):
        (h * 2).sum().backward()


def test_backward_with_explicit_gradient(device):
    a = rand_array((2, 3))
    g = rand_array((2, 3))
    p = pydl.tensor(a, device=device, requires_grad=True)
    t = torch.tensor(a, requires_grad=True)
    (p.sigmoid() * 3).backward(pydl.tensor(g, device=device))
    (t.sigmoid() * 3).backward(torch.tensor(g))
    assert_close(p.grad, t.grad, 1e-12, 1e-10, "grad")


def test_detach(device):
    x = pydl.tensor([1.0, 2.0], device=device, requires_grad=True)
    d = (x * 3).detach()
    assert not d.requires_grad and d.grad_fn is None
    y = (x * d).sum()
    y.backward()
    np.testing.assert_allclose(to_numpy(x.grad), [3.0, 6.0])
    assert x.detach().is_leaf


def test_retain_grad_and_is_leaf(device):
    x = pydl.tensor([1.0, 2.0], device=device, requires_grad=True)
    h = x * 2
    assert x.is_leaf and not h.is_leaf
    h.retain_grad()
    (h * h).sum().backward()
    np.testing.assert_allclose(to_numpy(h.grad), [4.0, 8.0])
    np.testing.assert_allclose(to_numpy(x.grad), [8.0, 16.0])


@pytest.mark.parametrize("src,dst", [(np.float32, np.float64), (np.float64, np.float32),
                                     (np.float32, np.float16), (np.float64, np.float64)])
def test_to_dtype_gradient(device, src, dst):
    tdt = {np.float16: torch.float16, np.float32: torch.float32, np.float64: torch.float64}[dst]
    check_op([(3, 4)], lambda x: (x.to(tdt) * 2).float() if dst == np.float16 else x.to(tdt) * 2,
             lambda x: (x.to(np.dtype(dst)) * 2).float() if dst == np.float16 else x.to(np.dtype(dst)) * 2,
             src, device, atol=2e-3 if dst == np.float16 else None,
             rtol=2e-3 if dst == np.float16 else None)


def test_to_int_has_no_gradient(device):
    x = pydl.tensor([1.5, 2.5], device=device, requires_grad=True)
    i = x.long()
    assert i.dtype == pydl.int64 and not i.requires_grad
    np.testing.assert_array_equal(to_numpy(i), [1, 2])
    assert x.double().dtype == pydl.float64 and x.half().dtype == pydl.float16
    assert x.to(pydl.float32) is x


# ---- creation --------------------------------------------------------------------------

def test_creation_shapes_and_dtypes(device):
    cases = [
        (pydl.zeros(2, 3, device=device), torch.zeros(2, 3)),
        (pydl.zeros((2, 3), dtype=pydl.int64, device=device), torch.zeros((2, 3), dtype=torch.int64)),
        (pydl.ones(4, device=device), torch.ones(4)),
        (pydl.ones((), dtype=pydl.float64, device=device), torch.ones((), dtype=torch.float64)),
        (pydl.full((2, 2), 3.5, device=device), torch.full((2, 2), 3.5)),
        (pydl.full((3,), 7, device=device), torch.full((3,), 7)),
        (pydl.full((3,), True, device=device), torch.full((3,), True)),
        (pydl.full(2, 1.0, dtype=pydl.float64, device=device), torch.full((2,), 1.0, dtype=torch.float64)),
        (pydl.arange(5, device=device), torch.arange(5)),
        (pydl.arange(2, 11, 3, device=device), torch.arange(2, 11, 3)),
        (pydl.arange(0, 1, 0.25, device=device), torch.arange(0, 1, 0.25)),
        (pydl.arange(5, dtype=pydl.float64, device=device), torch.arange(5, dtype=torch.float64)),
        (pydl.arange(5, 0, -2, device=device), torch.arange(5, 0, -2)),
        (pydl.linspace(0, 1, 5, device=device), torch.linspace(0, 1, 5)),
        (pydl.linspace(-2, 3, 1, device=device), torch.linspace(-2, 3, 1)),
        (pydl.eye(3, device=device), torch.eye(3)),
        (pydl.eye(2, 4, dtype=pydl.float64, device=device), torch.eye(2, 4, dtype=torch.float64)),
        (pydl.zeros_like(pydl.ones(2, 3, dtype=pydl.float64), device=device),
         torch.zeros_like(torch.ones(2, 3, dtype=torch.float64))),
        (pydl.ones_like(pydl.zeros(2, dtype=pydl.int32), device=device),
         torch.ones_like(torch.zeros(2, dtype=torch.int32))),
        (pydl.full_like(pydl.zeros(2, 2), 4.0, device=device), torch.full_like(torch.zeros(2, 2), 4.0)),
        (pydl.tensor([[1, 2], [3, 4]], device=device), torch.tensor([[1, 2], [3, 4]])),
        (pydl.tensor([1.5, 2], device=device), torch.tensor([1.5, 2])),
        (pydl.tensor(3.0, device=device), torch.tensor(3.0)),
        (pydl.tensor([True, False], device=device), torch.tensor([True, False])),
    ]
    for p, t in cases:
        assert tuple(p.shape) == tuple(t.shape), (p, t)
        assert to_numpy(p).dtype == t.numpy().dtype, (p.dtype, t.dtype)
        np.testing.assert_allclose(to_numpy(p), t.numpy(), rtol=1e-6)
    assert pydl.zeros(2, 3).device == "cpu"
    assert pydl.ones(2, requires_grad=True).requires_grad


@pytest.mark.parametrize("fn", ["rand", "randn"])
def test_random_creation_reproducible(device, fn):
    f = getattr(pydl, fn)
    pydl.manual_seed(123)
    a = f(3, 5, device=device)
    b = f(3, 5, device=device)
    pydl.manual_seed(123)
    a2 = f(3, 5, device=device)
    assert a.shape == (3, 5) and a.dtype == pydl.float32
    np.testing.assert_array_equal(to_numpy(a), to_numpy(a2))
    assert not np.array_equal(to_numpy(a), to_numpy(b))
    assert pydl.initial_seed() == 123
    c = f((2, 2), dtype=pydl.float64, device=device)
    assert c.shape == (2, 2) and c.dtype == pydl.float64
    assert f(4, dtype=pydl.float16, device=device).dtype == pydl.float16
    assert f(2, requires_grad=True, device=device).requires_grad


def test_random_statistics():
    pydl.manual_seed(0)
    u = pydl.rand(20000).numpy()
    assert u.min() >= 0.0 and u.max() < 1.0
    assert abs(u.mean() - 0.5) < 0.02 and abs(u.var() - 1 / 12) < 0.01
    n = pydl.randn(20000).numpy()
    assert abs(n.mean()) < 0.03 and abs(n.std() - 1.0) < 0.03


def test_randint_randperm(device):
    pydl.manual_seed(7)
    r = pydl.randint(3, 9, (4, 5), device=device)
    assert r.shape == (4, 5) and r.dtype == pydl.int64
    v = to_numpy(r)
    assert v.min() >= 3 and v.max() < 9
    assert pydl.randint(10, size=(3,), device=device).shape == (3,)
    assert pydl.randint(0, 4, (2,), dtype=pydl.int32, device=device).dtype == pydl.int32
    pydl.manual_seed(7)
    np.testing.assert_array_equal(to_numpy(pydl.randint(3, 9, (4, 5), device=device)), v)
    p = pydl.randperm(11, device=device)
    assert p.dtype == pydl.int64
    assert sorted(to_numpy(p).tolist()) == list(range(11))
    pydl.manual_seed(5)
    q = to_numpy(pydl.randperm(11))
    pydl.manual_seed(5)
    np.testing.assert_array_equal(to_numpy(pydl.randperm(11)), q)


def test_rng_state_roundtrip():
    pydl.manual_seed(3)
    state = pydl.get_rng_state()
    a = pydl.rand(4).numpy()
    pydl.set_rng_state(state)
    np.testing.assert_array_equal(pydl.rand(4).numpy(), a)


def test_item_tolist_numpy(device):
    t = pydl.tensor([[1.5, 2.0], [3.0, -4.0]], device=device)
    assert t.tolist() == [[1.5, 2.0], [3.0, -4.0]]
    assert t[1, 0].item() == 3.0 and isinstance(t[1, 0].item(), float)
    assert pydl.tensor([7], device=device).item() == 7
    assert isinstance(pydl.tensor(7, device=device).item(), int)
    assert pydl.tensor(True, device=device).item() is True
    assert float(pydl.tensor(2.5, device=device)) == 2.5
    assert int(pydl.tensor(3, device=device)) == 3
    a = t.cpu().numpy()
    assert isinstance(a, np.ndarray) and a.dtype == np.float32
    np.testing.assert_array_equal(a, [[1.5, 2.0], [3.0, -4.0]])
    with pytest.raises(ValueError, match="item"):
        t.item()
    x = pydl.ones(2, requires_grad=True)
    with pytest.raises(RuntimeError, match="detach"):
        x.numpy()
    np.testing.assert_array_equal(x.detach().numpy(), [1.0, 1.0])
    assert pydl.tensor(2.5, dtype=pydl.float64).tolist() == 2.5


def test_from_numpy_shares_memory():
    a = np.arange(6.0).reshape(2, 3)
    t = pydl.from_numpy(a)
    a[0, 0] = 42.0
    assert t[0, 0].item() == 42.0 and t.dtype == pydl.float64


# ---- finite-difference gradient checks (float64) --------------------------------------

GRADCHECK = {
    "add": (lambda a, b: a + b, [(2, 1, 3), (4, 1)], False),
    "sub": (lambda a, b: a - b, [(3,), (2, 3)], False),
    "mul": (lambda a, b: a * b, [(2, 3), (3,)], False),
    "div": (lambda a, b: a / b, [(2, 3), (2, 1)], True),
    "rdiv": (lambda a: 2.0 / a, [(3,)], True),
    "rsub": (lambda a: 1.0 - a, [(3,)], False),
    "pow_scalar": (lambda a: a ** 2.5, [(2, 3)], True),
    "pow_tensor": (lambda a, b: a ** b, [(2, 3), (3,)], True),
    "rpow": (lambda a: 1.7 ** a, [(2, 3)], False),
    "neg": (lambda a: -a, [(3,)], False),
    "exp": (pydl.exp, [(2, 3)], False),
    "log": (pydl.log, [(2, 3)], True),
    "sqrt": (pydl.sqrt, [(2, 3)], True),
    "rsqrt": (pydl.rsqrt, [(2, 3)], True),
    "abs": (pydl.abs, [(2, 3)], False),
    "sin": (pydl.sin, [(4,)], False),
    "cos": (pydl.cos, [(4,)], False),
    "clamp_min": (lambda a: a.clamp(min=-0.3), [(2, 5)], False),
    "clamp_max": (lambda a: a.clamp(max=0.3), [(2, 5)], False),
    "clamp_both": (lambda a: a.clamp(-0.5, 0.5), [(2, 5)], False),
    "tanh": (pydl.tanh, [(2, 3)], False),
    "sigmoid": (pydl.sigmoid, [(2, 3)], False),
    "relu": (pydl.relu, [(2, 3)], False),
    "gelu": (F.gelu, [(2, 3)], False),
    "gelu_tanh": (lambda a: F.gelu(a, approximate="tanh"), [(2, 3)], False),
    "silu": (F.silu, [(2, 3)], False),
    "leaky_relu": (lambda a: F.leaky_relu(a, 0.1), [(2, 3)], False),
    "elu": (lambda a: F.elu(a, 0.8), [(2, 3)], False),
    "softplus": (lambda a: F.softplus(a, beta=1.5, threshold=2.0), [(2, 3)], False),
    "maximum": (pydl.maximum, [(2, 3), (3,)], False),
    "minimum": (pydl.minimum, [(2, 3), (2, 1)], False),
    "where": (lambda a, b: pydl.where(a > 0, a, b), [(2, 3), (3,)], False),
    "sum": (lambda a: a.sum(dim=(0, 2), keepdim=True), [(2, 3, 2)], False),
    "sum_all": (lambda a: a.sum(), [(2, 3)], False),
    "mean": (lambda a: a.mean(dim=-1), [(2, 3)], False),
    "var": (lambda a: a.var(dim=0), [(3, 2)], False),
    "var_all": (lambda a: a.var(correction=0), [(3, 2)], False),
    "std": (lambda a: a.std(dim=1, keepdim=True), [(2, 4)], False),
    "max_all": (lambda a: a.max(), [(2, 3)], False),
    "min_dim": (lambda a: a.min(dim=1)[0], [(3, 4)], False),
    "max_dim_keep": (lambda a: a.max(dim=0, keepdim=True)[0], [(3, 4)], False),
    "logsumexp": (lambda a: pydl.logsumexp(a, (0, 1)), [(2, 3, 2)], False),
    "matmul_vv": (lambda a, b: a @ b, [(3,), (3,)], False),
    "matmul_vm": (lambda a, b: a @ b, [(3,), (3, 2)], False),
    "matmul_mv": (lambda a, b: a @ b, [(2, 3), (3,)], False),
    "matmul_batched": (lambda a, b: a @ b, [(2, 1, 2, 3), (2, 3, 2)], False),
    "reshape": (lambda a: a.reshape(3, 2) * pydl.arange(6.0).reshape(3, 2).double(), [(2, 3)], False),
    "permute": (lambda a: a.permute(2, 0, 1), [(2, 3, 2)], False),
    "transpose": (lambda a: a.transpose(0, 1), [(2, 3)], False),
    "expand": (lambda a: a.expand(2, 3, 2), [(3, 1)], False),
    "squeeze_unsqueeze": (lambda a: a.squeeze(1).unsqueeze(0), [(2, 1, 3)], False),
    "flatten": (lambda a: a.flatten(1), [(2, 2, 2)], False),
    "getitem_basic": (lambda a: a[1:, None, ::2], [(3, 4)], False),
    "getitem_ellipsis": (lambda a: a[..., -1], [(2, 3)], False),
    "getitem_array": (lambda a: a[pydl.tensor([0, 2, 2, -1])], [(3, 2)], False),
    "getitem_mask": (lambda a: a[a > 0], [(3, 3)], False),
    "cat": (lambda a, b: pydl.cat([a, b, a], 1), [(2, 1), (2, 3)], False),
    "stack": (lambda a, b: pydl.stack([a, b], -1), [(2, 3), (2, 3)], False),
    "split": (lambda a: a.split([1, 2], dim=1)[1] * 2, [(2, 3)], False),
    "chunk": (lambda a: pydl.chunk(a, 2, 0)[0], [(3, 2)], False),
    "masked_fill": (lambda a: a.masked_fill(a < 0, 0.5), [(2, 4)], False),
    "pad": (lambda a: F.pad(a, (1, 2, 0, 1), value=0.3), [(2, 3)], False),
    "softmax_method": (lambda a: a.softmax(0), [(3, 2)], False),
    "clone_contiguous": (lambda a: a.T.contiguous().clone(), [(2, 3)], False),
}


@pytest.mark.parametrize("name", list(GRADCHECK))
def test_gradcheck(name):
    fn, shapes, positive = GRADCHECK[name]
    gradcheck(fn, shapes, positive=positive, low=0.3 if positive else -2.0)


# ---- the checkers themselves ---------------------------------------------------------------

class _WrongBackward(pydl.autograd.Function):
    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a)
        return a * a

    @staticmethod
    def backward(ctx, g):
        return g * ctx.saved_tensors[0]  # should be 2 * a * g


def test_gradcheck_catches_a_wrong_backward():
    x = pydl.tensor(rand_array((3,)), requires_grad=True)
    assert not pydl.autograd.gradcheck(_WrongBackward.apply, [x], raise_exception=False)
    with pytest.raises(AssertionError, match="gradcheck"):
        pydl.autograd.gradcheck(_WrongBackward.apply, [x])
    assert pydl.autograd.gradcheck(lambda a: a * a, [x])


def test_check_op_catches_mismatches():
    with pytest.raises(AssertionError):  # forward differs
        check_op([(3,)], torch.exp, pydl.sigmoid, np.float64)
    with pytest.raises(AssertionError):  # backward differs
        check_op([(3,)], lambda a: a * a, _WrongBackward.apply, np.float64)
    with pytest.raises(AssertionError):  # dtype differs
        check_op([(3,)], lambda a: a * 2, lambda a: (a * 2).double(), np.float32)
