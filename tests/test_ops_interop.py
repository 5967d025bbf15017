"""pydl.ops on other libraries' arrays: same type out, PyTorch's values, zero-copy
conversions, and pydl.ops.torch gradients equal to PyTorch's autograd."""
import numpy as np
import pytest

import pydl
import pydl.ops as ops
from pydl.ops import _interop

torch = pytest.importorskip("torch")
import pydl.ops.torch as pt  # noqa: E402
import torch.nn.functional as TF  # noqa: E402


def _rand(*shape, dtype=torch.float32, device="cpu"):
    return torch.randn(*shape, dtype=dtype, device=device)


def test_conversions_are_zero_copy():
    t = _rand(5, 7)
    a, lib = _interop.to_backend(t, "op", "x")
    assert lib == "torch" and np.shares_memory(a, t.numpy())
    back = _interop.from_backend(a, "torch")
    assert back.data_ptr() == t.data_ptr()
    tt = t.T  # strided views cross without a copy too
    a2, _ = _interop.to_backend(tt, "op", "x")
    assert np.shares_memory(a2, t.numpy()) and a2.strides == (4, 28)


def test_bfloat16_crosses_as_bits():
    t = _rand(3, 4, dtype=torch.bfloat16)
    a, _ = _interop.to_backend(t, "op", "x")
    assert a.dtype == pydl.bfloat16
    np.testing.assert_array_equal(a.astype(np.float32), t.float().numpy())
    back = _interop.from_backend(a, "torch")
    assert back.dtype == torch.bfloat16 and torch.equal(back, t)


@pytest.mark.parametrize("make", [lambda x: x, lambda x: x.numpy()], ids=["torch", "numpy"])
def test_row_ops_return_callers_type_and_match_torch(make):
    x = _rand(6, 33)
    tgt = torch.randint(0, 33, (6,))
    w, b = _rand(33), _rand(33)
    cases = [
        (ops.softmax(make(x), dim=-1), torch.softmax(x, -1)),
        (ops.softmax(make(x), dim=0), torch.softmax(x, 0)),
        (ops.log_softmax(make(x)), torch.log_softmax(x, -1)),
        (ops.layer_norm(make(x), (33,), make(w), make(b)), TF.layer_norm(x, (33,), w, b)),
        (ops.rms_norm(make(x), (33,), make(w), eps=1e-6), TF.rms_norm(x, (33,), w, eps=1e-6)),
        (ops.cross_entropy(make(x), make(tgt), label_smoothing=0.1),
         TF.cross_entropy(x, tgt, label_smoothing=0.1)),
        (ops.matmul(make(x), make(x.T.contiguous()), activation="relu"), torch.relu(x @ x.T)),
    ]
    for got, want in cases:
        assert type(got) is type(make(x))
        np.testing.assert_allclose(np.asarray(got), want.numpy(), rtol=1e-5, atol=1e-5)


def test_softmax_and_layer_norm_backward_functions():
    x = _rand(4, 9).requires_grad_(True)
    dy = _rand(4, 9)
    y = torch.softmax(x, -1)
    (gx,) = torch.autograd.grad(y, x, dy)
    np.testing.assert_allclose(ops.softmax_backward(y.detach(), dy).numpy(), gx.numpy(), rtol=1e-5,
                               atol=1e-6)
    w = _rand(9)
    yl, mean, rstd = ops.layer_norm_forward(x.detach(), w, None)
    dx, dw, db = ops.layer_norm_backward(x.detach(), w, mean, rstd, dy)
    wt = w.clone().requires_grad_(True)
    ref = TF.layer_norm(x, (9,), wt)
    gx2, gw2 = torch.autograd.grad(ref, (x, wt), dy)
    np.testing.assert_allclose(yl.numpy(), ref.detach().numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(dx.numpy(), gx2.numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(dw.numpy(), gw2.numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(db.numpy(), dy.sum(0).numpy(), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", ["softmax", "log_softmax", "layer_norm", "rms_norm", "cross_entropy"])
def test_torch_functions_gradients_match_autograd(name):
    torch.manual_seed(0)
    x = _rand(5, 3, 8, dtype=torch.float64).requires_grad_(True)
    w = _rand(8, dtype=torch.float64).requires_grad_(True)
    b = _rand(8, dtype=torch.float64).requires_grad_(True)
    tgt = torch.randint(0, 5, (3, 8))  # class dim 1 of (5, 3, 8) moved: use (N, C, d) below
    fns = {
        "softmax": (lambda: pt.softmax(x, 1), lambda: torch.softmax(x, 1), (x,)),
        "log_softmax": (lambda: pt.log_softmax(x, -1), lambda: torch.log_softmax(x, -1), (x,)),
        "layer_norm": (lambda: pt.layer_norm(x, (8,), w, b), lambda: TF.layer_norm(x, (8,), w, b),
                       (x, w, b)),
        "rms_norm": (lambda: pt.rms_norm(x, (8,), w, eps=1e-6),
                     lambda: TF.rms_norm(x, (8,), w, eps=1e-6), (x, w)),
        "cross_entropy": (lambda: pt.cross_entropy(x.permute(1, 0, 2), tgt, ignore_index=2,
                                                   label_smoothing=0.2),
                          lambda: TF.cross_entropy(x.permute(1, 0, 2), tgt, ignore_index=2,
                                                   label_smoothing=0.2), (x,)),
    }
    mine, ref, inputs = fns[name]
    out, want = mine(), ref()
    np.testing.assert_allclose(out.detach().numpy(), want.detach().numpy(), rtol=1e-10, atol=1e-12)
    g = torch.randn_like(want)
    got = torch.autograd.grad(out, inputs, g)
    exp = torch.autograd.grad(want, inputs, g)
    for a, e in zip(got, exp):
        np.testing.assert_allclose(a.numpy(), e.numpy(), rtol=1e-9, atol=1e-11)


def test_torch_layer_norm_trains_inside_a_torch_model():
    torch.manual_seed(0)
    lin = torch.nn.Linear(16, 16)
    ln_w = torch.nn.Parameter(torch.ones(16))
    ln_b = torch.nn.Parameter(torch.zeros(16))
    opt = torch.optim.SGD([*lin.parameters(), ln_w, ln_b], lr=0.1)
    x, y = torch.randn(64, 16), torch.randint(0, 16, (64,))
    losses = []
    for _ in range(20):
        loss = pt.cross_entropy(pt.layer_norm(lin(x), (16,), ln_w, ln_b), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.7 * losses[0]


def test_bad_inputs_name_the_op():
    with pytest.raises(TypeError, match="expected an array"):
        ops.softmax([1.0, 2.0])
    with pytest.raises(ValueError, match="layer_norm"):
        ops.layer_norm(np.ones((3, 4), np.float32), (5,))
    with pytest.raises(TypeError, match="cross_entropy"):
        ops.cross_entropy(np.ones((3, 4), np.float32), np.ones(3, np.float32))
    with pytest.raises(ValueError, match="matmul"):
        ops.matmul(np.ones((3, 4), np.float32), np.ones((5, 2), np.float32))
    with pytest.raises(ValueError, match="activation"):
        ops.matmul(np.ones((3, 4), np.float32), np.ones((4, 2), np.float32), activation="tanh")


cuda = pytest.mark.skipif(not pydl.cuda.is_available() or not torch.cuda.is_available(),
                          reason="needs a GPU")


@pytest.mark.cuda
@cuda
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_torch_cuda_tensors_on_a_side_stream(dtype):
    s = torch.cuda.Stream()
    with torch.cuda.stream(s):
        x = _rand(65, 1000, dtype=dtype, device="cuda")
        w, b = _rand(1000, dtype=dtype, device="cuda"), _rand(1000, dtype=dtype, device="cuda")
        y = ops.layer_norm(x, (1000,), w, b)
        p = ops.softmax(x)
        ref_y = TF.layer_norm(x.float(), (1000,), w.float(), b.float())
        ref_p = torch.softmax(x.float(), -1)
    s.synchronize()
    assert y.device.type == "cuda" and y.dtype == dtype
    tol = 1e-4 if dtype == torch.float32 else 3e-2
    assert torch.allclose(y.float(), ref_y, atol=tol, rtol=tol)
    assert torch.allclose(p.float(), ref_p, atol=tol, rtol=tol)


@pytest.mark.cuda
@cuda
def test_cupy_arrays_in_and_out():
    import cupy

    x = cupy.random.standard_normal((17, 300)).astype(cupy.float32)
    y = ops.log_softmax(x)
    assert isinstance(y, cupy.ndarray)
    ref = torch.log_softmax(torch.from_dlpack(x), -1)
    assert cupy.allclose(y, cupy.from_dlpack(ref), atol=1e-5)
