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


ATTN_CASES = {
    "plain": dict(shape=(2, 3, 17, 16), S=23),
    "causal": dict(shape=(1, 2, 31, 32), S=31, is_causal=True),
    "bool-mask": dict(shape=(2, 2, 9, 16), S=40, mask="bool"),
    "float-mask": dict(shape=(3, 7, 64), S=5, mask="float"),
}


def _attn_inputs(case, dtype=torch.float64):
    c = ATTN_CASES[case]
    L, E = c["shape"][-2], c["shape"][-1]
    q = _rand(*c["shape"], dtype=dtype)
    k = _rand(*c["shape"][:-2], c["S"], E, dtype=dtype)
    v = _rand(*c["shape"][:-2], c["S"], E // 2 + 1, dtype=dtype)
    mask = None
    if c.get("mask") == "bool":
        mask = torch.rand(L, c["S"]) > 0.4
        mask[:, 0] = True
    elif c.get("mask") == "float":
        mask = _rand(L, c["S"], dtype=dtype)
    return q, k, v, dict(attn_mask=mask, is_causal=c.get("is_causal", False))


@pytest.mark.parametrize("case", list(ATTN_CASES))
@pytest.mark.parametrize("lib", ["torch", "numpy"])
def test_attention_forward_backward_functions_match_torch(case, lib):
    q, k, v, kw = _attn_inputs(case)
    conv = (lambda t: t) if lib == "torch" else (lambda t: None if t is None else t.numpy())
    qs, ks, vs, mask = conv(q), conv(k), conv(v), conv(kw["attn_mask"])
    out, lse = ops.attention_forward(qs, ks, vs, mask, kw["is_causal"])
    assert type(out) is type(qs) and tuple(lse.shape) == tuple(q.shape[:-1])
    qq, kk, vv = (t.clone().requires_grad_() for t in (q, k, v))
    ref = TF.scaled_dot_product_attention(qq, kk, vv, **kw)
    np.testing.assert_allclose(np.asarray(out), ref.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(np.asarray(ops.attention(qs, ks, vs, mask, kw["is_causal"])),
                               ref.detach().numpy(), rtol=1e-10, atol=1e-12)
    g = _rand(*ref.shape, dtype=torch.float64)
    grads = ops.attention_backward(qs, ks, vs, out, lse, conv(g), mask, kw["is_causal"])
    exp = torch.autograd.grad(ref, (qq, kk, vv), g)
    for a, e in zip(grads, exp):
        assert type(a) is type(qs)
        np.testing.assert_allclose(np.asarray(a), e.numpy(), rtol=1e-9, atol=1e-11)


@pytest.mark.parametrize("case", list(ATTN_CASES))
def test_torch_attention_gradients_match_autograd(case):
    q, k, v, kw = _attn_inputs(case)
    leaves = [t.requires_grad_() for t in (q, k, v)]
    if case == "float-mask":  # a float mask gets its gradient too
        leaves.append(kw["attn_mask"].requires_grad_())
    out = pt.attention(q, k, v, **kw)
    ref = TF.scaled_dot_product_attention(q, k, v, **kw)
    g = torch.randn_like(ref)
    for a, e in zip(torch.autograd.grad(out, leaves, g), torch.autograd.grad(ref, leaves, g)):
        np.testing.assert_allclose(a.numpy(), e.numpy(), rtol=1e-9, atol=1e-11)


def test_torch_attention_bfloat16_and_scale():
    q, k, v, kw = _attn_inputs("bool-mask", torch.bfloat16)
    out = pt.attention(q, k, v, scale=0.3, **kw)
    ref = TF.scaled_dot_product_attention(q.double(), k.double(), v.double(), scale=0.3, **kw)
    assert out.dtype == torch.bfloat16
    assert torch.allclose(out.double(), ref, atol=3e-2, rtol=3e-2)


CONV_CASES = {
    "3x3-pad1": dict(x=(2, 4, 9, 11), w=(6, 4, 3, 3), padding=1),
    "stride2-groups2": dict(x=(1, 4, 10, 7), w=(6, 2, 3, 3), stride=2, padding=1, groups=2),
    "depthwise-dilated": dict(x=(2, 3, 12, 12), w=(3, 1, 3, 3), dilation=2, groups=3),
    "5x5-same": dict(x=(1, 2, 7, 7), w=(4, 2, 5, 5), padding="same"),
    "1x1": dict(x=(3, 8, 5, 5), w=(4, 8, 1, 1)),
}


@pytest.mark.parametrize("case", list(CONV_CASES))
@pytest.mark.parametrize("lib", ["torch", "numpy"])
def test_conv2d_forward_and_backward_functions_match_torch(case, lib):
    c = dict(CONV_CASES[case])
    x, w = _rand(*c.pop("x"), dtype=torch.float64), _rand(*c.pop("w"), dtype=torch.float64)
    b = _rand(w.shape[0], dtype=torch.float64)
    conv = (lambda t: t) if lib == "torch" else (lambda t: t.numpy())
    xx, ww, bb = (t.clone().requires_grad_() for t in (x, w, b))
    ref = TF.conv2d(xx, ww, bb, **c)
    y = ops.conv2d(conv(x), conv(w), conv(b), **c)
    assert type(y) is type(conv(x))
    np.testing.assert_allclose(np.asarray(y), ref.detach().numpy(), rtol=1e-10, atol=1e-11)
    g = torch.randn_like(ref)
    dx, dw, db = ops.conv2d_backward(conv(g), conv(x), conv(w), **c)
    for a, e in zip((dx, dw, db), torch.autograd.grad(ref, (xx, ww, bb), g)):
        np.testing.assert_allclose(np.asarray(a), e.numpy(), rtol=1e-9, atol=1e-10)
    none_dx = ops.conv2d_backward(conv(g), conv(x), conv(w), needs=(False, True, False), **c)
    assert none_dx[0] is None and none_dx[2] is None


def test_torch_conv2d_gradcheck_and_training():
    x = _rand(2, 3, 6, 6, dtype=torch.float64).requires_grad_()
    w = _rand(4, 3, 3, 3, dtype=torch.float64).requires_grad_()
    b = _rand(4, dtype=torch.float64).requires_grad_()
    assert torch.autograd.gradcheck(lambda x, w, b: pt.conv2d(x, w, b, stride=2, padding=1),
                                    (x, w, b))

    def train(conv2d):
        torch.manual_seed(0)
        conv, head = torch.nn.Conv2d(1, 8, 3, padding=1), torch.nn.Linear(8, 2)
        opt = torch.optim.Adam([*conv.parameters(), *head.parameters()], lr=1e-2)
        data = torch.randn(32, 1, 8, 8)
        labels = (data.mean((1, 2, 3)) > 0).long()
        losses = []
        for _ in range(30):
            h = torch.relu(conv2d(data, conv.weight, conv.bias, padding=1)).mean((2, 3))
            loss = TF.cross_entropy(head(h), labels)
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
        return np.array(losses)

    mine = train(pt.conv2d)
    assert mine[-1] < 0.7 * mine[0]
    np.testing.assert_allclose(mine, train(TF.conv2d), rtol=1e-4)


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
    q = np.ones((2, 5, 8), np.float32)
    with pytest.raises(ValueError, match="^attention: query and key head dims"):
        ops.attention(q, np.ones((2, 5, 4), np.float32), q)
    with pytest.raises(ValueError, match="^attention: attn_mask of shape"):
        ops.attention(q, q, q, attn_mask=np.ones((3, 5), bool))
    with pytest.raises(TypeError, match="^attention: query and key and value|^attention: query"):
        ops.attention(q, q.astype(np.float64), q)
    with pytest.raises(ValueError, match="^attention_backward: lse has shape"):
        ops.attention_backward(q, q, q, q, np.ones((2, 4), np.float32), q)
    x, w = np.ones((1, 3, 5, 5), np.float32), np.ones((4, 2, 3, 3), np.float32)
    with pytest.raises(ValueError, match="^conv2d: weight of shape"):
        ops.conv2d(x, w)
    with pytest.raises(ValueError, match="^conv2d_backward: grad_out has shape"):
        ops.conv2d_backward(np.ones((1, 4, 5, 5), np.float32), x, w[:, :1].repeat(3, 1))
    with pytest.raises(TypeError, match="^conv2d: weight has dtype"):
        pt.conv2d(torch.ones(1, 3, 5, 5), torch.ones(4, 3, 3, 3, dtype=torch.float64))


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


@pytest.mark.cuda
@cuda
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_attention_and_conv2d_on_cuda_tensors_on_a_side_stream(dtype):
    s = torch.cuda.Stream()
    tol = 2e-4 if dtype == torch.float32 else 3e-2
    with torch.cuda.stream(s):
        q, k, v = (_rand(2, 4, 300, 64, dtype=dtype, device="cuda") for _ in range(3))
        q, k, v = (t.requires_grad_() for t in (q, k, v))
        out = pt.attention(q, k, v, is_causal=True)
        g = torch.randn_like(out)
        got = torch.autograd.grad(out, (q, k, v), g)
        ref = TF.scaled_dot_product_attention(q.float(), k.float(), v.float(), is_causal=True)
        exp = torch.autograd.grad(ref, (q, k, v), g.float())
        x = _rand(4, 16, 15, 15, dtype=dtype, device="cuda")
        w = _rand(32, 16, 3, 3, dtype=dtype, device="cuda")
        y = ops.conv2d(x, w, stride=2, padding=1)
        ref_y = TF.conv2d(x.float(), w.float(), stride=2, padding=1)
    s.synchronize()
    assert out.dtype == dtype and y.dtype == dtype and y.device.type == "cuda"
    assert torch.allclose(out.float(), ref, atol=tol, rtol=tol)
    for a, e in zip(got, exp):
        assert torch.allclose(a.float(), e.float(), atol=5 * tol, rtol=5 * tol)
    assert torch.allclose(y.float(), ref_y, atol=5 * tol, rtol=tol)


@pytest.mark.cuda
@cuda
def test_torch_transformer_block_trains_the_same_with_pydl_ops():
    """50 steps of a pre-norm attention block: pydl's attention and layer_norm inside a PyTorch
    model give the losses PyTorch's own ops give."""
    def run(attn, norm):
        torch.manual_seed(0)
        d, h = 64, 4
        qkv, proj = torch.nn.Linear(d, 3 * d).cuda(), torch.nn.Linear(d, d).cuda()
        ln_w, ln_b = torch.nn.Parameter(torch.ones(d, device="cuda")), \
            torch.nn.Parameter(torch.zeros(d, device="cuda"))
        head = torch.nn.Linear(d, 10).cuda()
        params = [*qkv.parameters(), *proj.parameters(), ln_w, ln_b, *head.parameters()]
        opt = torch.optim.Adam(params, lr=1e-3)
        x = torch.randn(8, 32, d, device="cuda")
        y = torch.randint(0, 10, (8,), device="cuda")
        losses = []
        for _ in range(50):
            n = norm(x, (d,), ln_w, ln_b)
            q, k, v = qkv(n).view(8, 32, 3, h, d // h).permute(2, 0, 3, 1, 4)
            a = attn(q.contiguous(), k.contiguous(), v.contiguous(), is_causal=True)
            z = x + proj(a.transpose(1, 2).reshape(8, 32, d))
            loss = TF.cross_entropy(head(z.mean(1)), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
        return np.array(losses)

    mine = run(pt.attention, pt.layer_norm)
    theirs = run(TF.scaled_dot_product_attention, TF.layer_norm)
    np.testing.assert_allclose(mine, theirs, rtol=2e-3)
