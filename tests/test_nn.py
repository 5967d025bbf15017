"""pydl.nn against PyTorch: every module's forward and backward (outputs, input
gradients, every parameter gradient by name), the Module machinery (registration,
state_dict, load_state_dict, train/eval, to), the containers and pydl.nn.init."""
import copy
import inspect
import math
import warnings
from collections import OrderedDict

import numpy as np
import pytest
import scipy.stats
import torch

import pydl
import pydl.nn as nn
from conftest import tol
from pydl.nn import init

DTYPES = [np.float32, np.float64]
TORCH_DTYPE = {np.float32: torch.float32, np.float64: torch.float64}


# ---- helpers -----------------------------------------------------------------------

def _np(t) -> np.ndarray:
    if isinstance(t, torch.Tensor):
        return t.detach().numpy()
    return t.detach().cpu().numpy()


def assert_close(a, b, dtype, what=""):
    atol, rtol = tol(dtype)
    a, b = _np(a), _np(b)
    assert a.shape == b.shape, f"{what}: shape {a.shape} != {b.shape}"
    assert not np.isnan(a).any() or np.isnan(b).any(), f"{what}: NaN in pydl's result"
    np.testing.assert_allclose(a, b, atol=atol, rtol=rtol, err_msg=what)


def randomize(pmod, rng):
    """Random values in every parameter, so that ones/zeros defaults hide nothing."""
    with pydl.no_grad():
        for p in pmod.parameters():
            p.copy_(rng.standard_normal(tuple(p.shape)))


def sync_to_torch(pmod, tmod):
    """Copy pydl's parameters and buffers into the PyTorch twin; strict, so the
    state_dict names must be the same."""
    tmod.load_state_dict({k: torch.from_numpy(_np(v).copy()) for k, v in pmod.state_dict().items()})


def run_both(pmod, tmod, inputs, dtype, device, rng, grad=None):
    """Forward both modules on the same inputs, backward a random upstream gradient,
    and compare outputs, input gradients and parameter gradients by name.
    Floating inputs get gradients unless `grad` (one flag per input) says otherwise."""
    grad = grad or [np.issubdtype(x.dtype, np.floating) for x in inputs]
    pxs = [pydl.tensor(x, device=device, requires_grad=g) for x, g in zip(inputs, grad)]
    txs = [torch.tensor(x, requires_grad=g) for x, g in zip(inputs, grad)]
    py, ty = pmod(*pxs), tmod(*txs)
    assert py.dtype == np.dtype(dtype)
    assert_close(py, ty, dtype, "output")
    g = np.asarray(rng.standard_normal(tuple(py.shape)), dtype=dtype)
    py.backward(pydl.tensor(g, device=device))
    ty.backward(torch.from_numpy(g))
    for i, (px, tx) in enumerate(zip(pxs, txs)):
        if tx.requires_grad:
            assert_close(px.grad, tx.grad, dtype, f"grad of input {i}")
    pparams, tparams = dict(pmod.named_parameters()), dict(tmod.named_parameters())
    assert list(pparams) == list(tparams)
    for name, tp in tparams.items():
        if tp.grad is None:
            assert pparams[name].grad is None, name
        else:
            assert_close(pparams[name].grad, tp.grad, dtype, f"grad of {name}")
    return py, ty


def check_module(pmod, tmod, inputs, dtype, device, rng, grad=None, randomize_params=True):
    if randomize_params:
        randomize(pmod, rng)
    pmod.to(device, dtype)
    tmod.to(TORCH_DTYPE[dtype])
    sync_to_torch(pmod, tmod)
    return run_both(pmod, tmod, inputs, dtype, device, rng, grad)


def normal(rng, shape, dtype, scale=1.0):
    return (rng.standard_normal(shape) * scale).astype(dtype)


# ---- layers ------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n_in,n_out,bias,x_shape", [
    (1, 1, True, (1, 1)), (13, 7, True, (5, 13)), (11, 3, False, (2, 3, 11)), (17, 1, True, (17,)),
])
def test_linear_parity(n_in, n_out, bias, x_shape, dtype, device, rng):
    check_module(nn.Linear(n_in, n_out, bias=bias), torch.nn.Linear(n_in, n_out, bias=bias),
                 [normal(rng, x_shape, dtype)], dtype, device, rng)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("num,dim,padding_idx,idx_shape", [
    (11, 5, None, (3, 7)), (7, 4, 2, (13,)), (5, 3, -1, (1, 1)),
])
def test_embedding_parity(num, dim, padding_idx, idx_shape, dtype, device, rng):
    pmod = nn.Embedding(num, dim, padding_idx=padding_idx)
    if padding_idx is not None:
        assert pmod.padding_idx == padding_idx % num
        assert not pmod.weight.detach().numpy()[padding_idx].any()
    idx = rng.integers(0, num, size=idx_shape)
    if padding_idx is not None:
        idx.reshape(-1)[0] = padding_idx % num
    check_module(pmod, torch.nn.Embedding(num, dim, padding_idx=padding_idx), [idx], dtype, device,
                 rng)
    if padding_idx is not None:
        assert not pmod.weight.grad.numpy()[padding_idx].any()


def test_embedding_from_pretrained():
    w = pydl.randn(6, 3)
    emb = nn.Embedding.from_pretrained(w)
    assert not emb.weight.requires_grad
    with pydl.no_grad():
        w[0, 0] = 42.0
    assert emb.weight[0, 0].item() == 42.0  # shares memory, like PyTorch
    assert nn.Embedding.from_pretrained(w, freeze=False).weight.requires_grad
    with pytest.raises(ValueError):
        nn.Embedding(5, 3, padding_idx=5)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,x_shape,kwargs", [
    (5, (1, 5), {}),
    ((4, 7), (3, 4, 7), {}),
    (7, (2, 3, 7), {"elementwise_affine": False}),
    ([6], (4, 6), {"bias": False, "eps": 1e-3}),
])
def test_layer_norm_parity(shape, x_shape, kwargs, dtype, device, rng):
    check_module(nn.LayerNorm(shape, **kwargs), torch.nn.LayerNorm(shape, **kwargs),
                 [normal(rng, x_shape, dtype, 3.0)], dtype, device, rng)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,x_shape,kwargs", [
    (5, (1, 5), {}),
    ((3, 7), (2, 3, 7), {"eps": 1e-6}),
    (4, (3, 4), {"elementwise_affine": False}),
])
def test_rms_norm_parity(shape, x_shape, kwargs, dtype, device, rng):
    check_module(nn.RMSNorm(shape, **kwargs), torch.nn.RMSNorm(shape, **kwargs),
                 [normal(rng, x_shape, dtype, 2.0)], dtype, device, rng)


def _batch_norm_steps(pmod, tmod, x_shape, dtype, device, rng, steps=3):
    """Several training steps (outputs, gradients, running statistics) then eval."""
    randomize(pmod, rng)
    pmod.to(device, dtype)
    tmod.to(TORCH_DTYPE[dtype])
    sync_to_torch(pmod, tmod)
    for step in range(steps + 1):
        training = step < steps
        pmod.train(training)
        tmod.train(training)
        x = normal(rng, x_shape, dtype, 2.0) + 0.5
        pmod.zero_grad()
        tmod.zero_grad()
        run_both(pmod, tmod, [x], dtype, device, rng)
        pbuf, tbuf = dict(pmod.named_buffers()), dict(tmod.named_buffers())
        assert list(pbuf) == list(tbuf)
        for name, tb in tbuf.items():
            if name == "num_batches_tracked":
                assert pbuf[name].item() == tb.item()
                assert pbuf[name].dtype == pydl.int64
            else:
                assert_close(pbuf[name], tb, dtype, f"{name} after step {step}")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("x_shape", [(7, 5), (3, 5, 11), (1, 5, 4)])
@pytest.mark.parametrize("kwargs", [
    {}, {"momentum": None}, {"momentum": 0.3, "eps": 1e-3}, {"affine": False},
    {"track_running_stats": False}, {"bias": False},
])
def test_batch_norm1d_parity(x_shape, kwargs, dtype, device, rng):
    if "bias" in kwargs and "bias" not in inspect.signature(torch.nn.BatchNorm1d).parameters:
        pytest.skip("this PyTorch's BatchNorm1d has no bias argument to compare with")
    _batch_norm_steps(nn.BatchNorm1d(5, **kwargs), torch.nn.BatchNorm1d(5, **kwargs), x_shape,
                      dtype, device, rng)


@pytest.mark.parametrize("dtype", DTYPES)
def test_batch_norm2d_parity(dtype, device, rng):
    _batch_norm_steps(nn.BatchNorm2d(3), torch.nn.BatchNorm2d(3), (2, 3, 5, 4), dtype, device, rng)


def test_batch_norm_errors():
    with pytest.raises(ValueError, match="2D or 3D"):
        nn.BatchNorm1d(3)(pydl.randn(2, 3, 4, 5))
    with pytest.raises(ValueError, match="4D"):
        nn.BatchNorm2d(3)(pydl.randn(2, 3))
    with pytest.raises(ValueError, match="more than 1 value"):
        nn.BatchNorm1d(3)(pydl.randn(1, 3))
    nn.BatchNorm1d(3).eval()(pydl.randn(1, 3))  # one sample is fine in eval


@pytest.mark.parametrize("dtype", DTYPES)
def test_dropout_train_statistics(dtype, device):
    p = 0.3
    drop = nn.Dropout(p)
    x = pydl.ones(400, 500, dtype=dtype, device=device, requires_grad=True)
    y = drop(x)
    out = y.detach().cpu().numpy()
    zero_fraction = (out == 0).mean()
    assert abs(zero_fraction - p) < 0.005  # 200000 draws: the std of the fraction is 0.001
    np.testing.assert_allclose(out[out != 0], 1 / (1 - p), rtol=1e-6)
    y.sum().backward()
    np.testing.assert_allclose(x.grad.cpu().numpy(), out, rtol=1e-6)
    assert not np.array_equal(drop(x).detach().cpu().numpy(), out)  # a fresh mask each call


@pytest.mark.parametrize("dtype", DTYPES)
def test_dropout_eval_and_edge_cases(dtype, device, rng):
    x = pydl.tensor(normal(rng, (3, 7), dtype), device=device, requires_grad=True)
    drop = nn.Dropout(0.5).eval()
    y = drop(x)
    np.testing.assert_array_equal(y.detach().cpu().numpy(), x.detach().cpu().numpy())
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.cpu().numpy(), np.ones((3, 7), dtype))
    assert nn.Dropout(0.0)(x).detach().cpu().numpy().tolist() == x.detach().cpu().numpy().tolist()
    assert not nn.Dropout(1.0)(x).detach().cpu().numpy().any()
    for bad in (-0.1, 1.5):
        with pytest.raises(ValueError):
            nn.Dropout(bad)


ACTIVATIONS = [
    ("ReLU", lambda: nn.ReLU(), lambda: torch.nn.ReLU()),
    ("GELU", lambda: nn.GELU(), lambda: torch.nn.GELU()),
    ("GELU-tanh", lambda: nn.GELU("tanh"), lambda: torch.nn.GELU("tanh")),
    ("SiLU", lambda: nn.SiLU(), lambda: torch.nn.SiLU()),
    ("Tanh", lambda: nn.Tanh(), lambda: torch.nn.Tanh()),
    ("Sigmoid", lambda: nn.Sigmoid(), lambda: torch.nn.Sigmoid()),
    ("LeakyReLU", lambda: nn.LeakyReLU(0.2), lambda: torch.nn.LeakyReLU(0.2)),
    ("ELU", lambda: nn.ELU(alpha=0.7), lambda: torch.nn.ELU(alpha=0.7)),
    ("Softplus", lambda: nn.Softplus(beta=2.0, threshold=5.0),
     lambda: torch.nn.Softplus(beta=2.0, threshold=5.0)),
    ("Softmax", lambda: nn.Softmax(dim=1), lambda: torch.nn.Softmax(dim=1)),
    ("LogSoftmax", lambda: nn.LogSoftmax(dim=-1), lambda: torch.nn.LogSoftmax(dim=-1)),
    ("Identity", lambda: nn.Identity(3, key=1), lambda: torch.nn.Identity(3, key=1)),
    ("Flatten", lambda: nn.Flatten(), lambda: torch.nn.Flatten()),
    ("Flatten-0-1", lambda: nn.Flatten(0, 1), lambda: torch.nn.Flatten(0, 1)),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("x_shape", [(3, 5, 7), (1, 2)])
@pytest.mark.parametrize("name,pfactory,tfactory", ACTIVATIONS, ids=[a[0] for a in ACTIVATIONS])
def test_activation_parity(name, pfactory, tfactory, x_shape, dtype, device, rng):
    pmod, tmod = pfactory(), tfactory()
    assert repr(pmod) == repr(tmod)
    check_module(pmod, tmod, [normal(rng, x_shape, dtype, 3.0)], dtype, device, rng)


def test_softmax_implicit_dim(rng):
    x = normal(rng, (3, 4), np.float64)
    with pytest.warns(UserWarning, match="Implicit dimension"):
        y = nn.Softmax()(pydl.tensor(x))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = torch.nn.Softmax()(torch.tensor(x))
    assert_close(y, ref, np.float64)


PW = np.array([0.5, 2.0, 1.0, 3.0, 0.25, 1.5, 0.75])
EW = np.linspace(0.1, 2.0, 7)

LOSSES = [
    ("ce-mean", lambda: nn.CrossEntropyLoss(), lambda: torch.nn.CrossEntropyLoss(),
     (5, 7), ("class", 7, (5,))),
    ("ce-sum-smooth-4d", lambda: nn.CrossEntropyLoss(reduction="sum", label_smoothing=0.1),
     lambda: torch.nn.CrossEntropyLoss(reduction="sum", label_smoothing=0.1),
     (3, 4, 2, 5), ("class", 4, (3, 2, 5))),
    ("ce-none-ignore", lambda: nn.CrossEntropyLoss(reduction="none", ignore_index=2),
     lambda: torch.nn.CrossEntropyLoss(reduction="none", ignore_index=2), (11, 3), ("class", 3, (11,))),
    ("ce-mean-ignore-smooth", lambda: nn.CrossEntropyLoss(ignore_index=0, label_smoothing=0.2),
     lambda: torch.nn.CrossEntropyLoss(ignore_index=0, label_smoothing=0.2), (1, 3, 5),
     ("class", 3, (1, 5))),
    ("nll-mean", lambda: nn.NLLLoss(), lambda: torch.nn.NLLLoss(), (5, 7), ("class", 7, (5,))),
    ("nll-none-ignore-3d", lambda: nn.NLLLoss(reduction="none", ignore_index=1),
     lambda: torch.nn.NLLLoss(reduction="none", ignore_index=1), (4, 3, 6), ("class", 3, (4, 6))),
    ("mse", lambda: nn.MSELoss(), lambda: torch.nn.MSELoss(), (3, 5, 7), ("real",)),
    ("mse-sum", lambda: nn.MSELoss("sum"), lambda: torch.nn.MSELoss(reduction="sum"), (1,), ("real",)),
    ("l1-none", lambda: nn.L1Loss("none"), lambda: torch.nn.L1Loss(reduction="none"), (2, 13),
     ("real",)),
    ("smooth-l1", lambda: nn.SmoothL1Loss(beta=0.5), lambda: torch.nn.SmoothL1Loss(beta=0.5),
     (3, 5, 7), ("real",)),
    ("smooth-l1-sum", lambda: nn.SmoothL1Loss("sum"), lambda: torch.nn.SmoothL1Loss(reduction="sum"),
     (17,), ("real",)),
    ("huber", lambda: nn.HuberLoss(delta=0.7), lambda: torch.nn.HuberLoss(delta=0.7), (3, 5, 7),
     ("real",)),
    ("huber-none", lambda: nn.HuberLoss("none", 2.0),
     lambda: torch.nn.HuberLoss(reduction="none", delta=2.0), (4, 3), ("real",)),
    ("bce", lambda: nn.BCEWithLogitsLoss(), lambda: torch.nn.BCEWithLogitsLoss(), (3, 5, 7),
     ("prob",)),
    ("bce-pos-weight", lambda: nn.BCEWithLogitsLoss(pos_weight=pydl.tensor(PW)),
     lambda: torch.nn.BCEWithLogitsLoss(pos_weight=torch.tensor(PW)), (2, 3, 7), ("prob",)),
    ("bce-weight-sum", lambda: nn.BCEWithLogitsLoss(pydl.tensor(EW), reduction="sum"),
     lambda: torch.nn.BCEWithLogitsLoss(torch.tensor(EW), reduction="sum"), (5, 7), ("prob",)),
    ("bce-none", lambda: nn.BCEWithLogitsLoss(reduction="none", pos_weight=pydl.tensor(PW)),
     lambda: torch.nn.BCEWithLogitsLoss(reduction="none", pos_weight=torch.tensor(PW)), (1, 7),
     ("prob",)),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name,pfactory,tfactory,x_shape,target", LOSSES, ids=[c[0] for c in LOSSES])
def test_loss_parity(name, pfactory, tfactory, x_shape, target, dtype, device, rng):
    x = normal(rng, x_shape, dtype, 2.0)
    if target[0] == "class":
        y = rng.integers(0, target[1], size=target[2])
    elif target[0] == "prob":
        y = rng.random(x_shape).astype(dtype)
    else:
        y = normal(rng, x_shape, dtype, 2.0)
    check_module(pfactory(), tfactory(), [x, y], dtype, device, rng, grad=[True, False])


def test_loss_arguments():
    with pytest.raises(ValueError):
        nn.MSELoss(reduction="average")
    with pytest.raises(NotImplementedError):
        nn.CrossEntropyLoss(weight=pydl.ones(3))
    assert list(nn.BCEWithLogitsLoss(pos_weight=pydl.ones(3)).state_dict()) == ["pos_weight"]
    assert list(nn.BCEWithLogitsLoss().state_dict()) == []


# ---- a nested model and its PyTorch twin ------------------------------------------

def make_net(lib):
    """The same model written against pydl.nn or torch.nn."""

    class Net(lib.Module):
        def __init__(self):
            super().__init__()
            self.layers = lib.ModuleList([lib.Linear(6, 5), lib.Linear(5, 4)])
            self.head = lib.Sequential(lib.Linear(4, 3), lib.Tanh(), lib.LayerNorm(3))
            self.bn = lib.BatchNorm1d(3)
            self.extra = lib.ModuleDict({"emb": lib.Embedding(4, 3),
                                         "proj": lib.Linear(3, 2, bias=False)})
            self.drop = lib.Dropout(0.5)

        def forward(self, x, idx):
            for layer in self.layers:
                x = lib.functional.relu(layer(x))
            x = self.drop(self.bn(self.head(x)))
            return self.extra["proj"](x + self.extra["emb"](idx))

    return Net()


def test_nested_names_match_torch():
    pnet, tnet = make_net(nn), make_net(torch.nn)
    assert list(pnet.state_dict()) == list(tnet.state_dict())
    assert "layers.1.bias" in pnet.state_dict() and "head.0.weight" in pnet.state_dict()
    assert [n for n, _ in pnet.named_parameters()] == [n for n, _ in tnet.named_parameters()]
    assert [n for n, _ in pnet.named_buffers()] == [n for n, _ in tnet.named_buffers()]
    assert [n for n, _ in pnet.named_modules()] == [n for n, _ in tnet.named_modules()]
    assert [n for n, _ in pnet.named_children()] == [n for n, _ in tnet.named_children()]
    assert [type(m).__name__ for m in pnet.modules()] == [type(m).__name__ for m in tnet.modules()]
    assert repr(pnet) == repr(tnet)


@pytest.mark.parametrize("dtype", DTYPES)
def test_nested_model_parity(dtype, device, rng):
    pnet, tnet = make_net(nn), make_net(torch.nn)
    pnet.eval()
    tnet.eval()
    inputs = [normal(rng, (5, 6), dtype), rng.integers(0, 4, size=(5,))]
    check_module(pnet, tnet, inputs, dtype, device, rng)
    # The other way round: PyTorch's state_dict loads straight into pydl.
    pnet2 = make_net(nn).eval().to(device, dtype)
    pnet2.load_state_dict(tnet.state_dict())
    x = pydl.tensor(inputs[0], device=device)
    assert_close(pnet2(x, pydl.tensor(inputs[1], device=device)),
                 tnet(torch.tensor(inputs[0]), torch.tensor(inputs[1])), dtype)


def test_shared_modules_and_parameters_match_torch():
    def build(lib):
        lin = lib.Linear(3, 3)
        seq = lib.Sequential(lin, lib.ReLU(), lin, lib.Linear(3, 3))
        seq[3].weight = seq[0].weight  # tied weights
        return seq

    pseq, tseq = build(nn), build(torch.nn)
    assert len(list(pseq.parameters())) == len(list(tseq.parameters())) == 3
    assert [n for n, _ in pseq.named_parameters()] == [n for n, _ in tseq.named_parameters()]
    assert ([n for n, _ in pseq.named_parameters(remove_duplicate=False)]
            == [n for n, _ in tseq.named_parameters(remove_duplicate=False)])
    assert list(pseq.state_dict()) == list(tseq.state_dict())
    assert [n for n, _ in pseq.named_modules()] == [n for n, _ in tseq.named_modules()]
    x = pydl.randn(2, 3)
    pseq(x).sum().backward()
    assert pseq[0].weight.grad is pseq[3].weight.grad  # one tensor, gradients accumulated


# ---- state_dict / load_state_dict -------------------------------------------------

def test_state_dict_detached_and_shared():
    net = make_net(nn)
    sd = net.state_dict()
    assert isinstance(sd, OrderedDict)
    assert all(not v.requires_grad and not isinstance(v, nn.Parameter) for v in sd.values())
    with pydl.no_grad():
        net.head[0].weight.fill_(3.0)
    assert (sd["head.0.weight"].numpy() == 3.0).all()  # shares memory, like PyTorch
    assert net.state_dict(keep_vars=True)["head.0.weight"] is net.head[0].weight
    assert list(net.state_dict(prefix="model.")) == ["model." + k for k in sd]


def test_load_state_dict_round_trip(rng):
    pydl.manual_seed(1)
    a = make_net(nn).eval()
    pydl.manual_seed(2)
    b = make_net(nn).eval()
    before = {n: id(p) for n, p in b.named_parameters()}
    snapshot = {k: v.clone() for k, v in a.state_dict().items()}
    result = b.load_state_dict(snapshot)
    assert result.missing_keys == [] and result.unexpected_keys == []
    assert {n: id(p) for n, p in b.named_parameters()} == before  # copied in place
    for k, v in b.state_dict().items():
        np.testing.assert_array_equal(v.numpy(), snapshot[k].numpy())
    x, idx = pydl.randn(4, 6), pydl.tensor([0, 3, 1, 2])
    np.testing.assert_array_equal(a(x, idx).detach().numpy(), b(x, idx).detach().numpy())
    assert not b.layers[0].weight.grad and b.layers[0].weight.requires_grad


def test_load_state_dict_strict_errors():
    net = make_net(nn)
    good = {k: v.clone() for k, v in net.state_dict().items()}
    original = net.layers[0].weight.detach().numpy().copy()

    missing = dict(good)
    del missing["head.2.bias"]
    with pytest.raises(RuntimeError, match=r'Missing key\(s\) in state_dict: "head.2.bias"'):
        net.load_state_dict(missing)

    unexpected = dict(good, **{"head.9.weight": pydl.zeros(2)})
    with pytest.raises(RuntimeError, match=r'Unexpected key\(s\) in state_dict: "head.9.weight"'):
        net.load_state_dict(unexpected)

    wrong = dict(good, **{"layers.0.weight": pydl.zeros(5, 7)})
    wrong["layers.0.weight"] = pydl.zeros(5, 7)
    with pytest.raises(RuntimeError, match=r"size mismatch for layers\.0\.weight.*\(5, 7\).*\(5, 6\)"):
        net.load_state_dict(wrong)
    # Shape mismatches raise even when strict=False.
    with pytest.raises(RuntimeError, match="size mismatch"):
        net.load_state_dict(wrong, strict=False)

    # All problems in one message, and nothing copied when any check fails.
    both = {k: pydl.zeros(*v.shape, dtype=v.dtype) for k, v in missing.items()}
    both["bogus"] = pydl.zeros(1)
    with pytest.raises(RuntimeError) as err:
        net.load_state_dict(both)
    assert "Missing" in str(err.value) and "Unexpected" in str(err.value)
    np.testing.assert_array_equal(net.layers[0].weight.detach().numpy(), original)

    result = net.load_state_dict(both, strict=False)
    assert result.missing_keys == ["head.2.bias"] and result.unexpected_keys == ["bogus"]
    assert not net.layers[0].weight.detach().numpy().any()


def test_load_state_dict_casts_dtype():
    net = nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2))
    values = {k: np.arange(v.numel(), dtype=np.float64).reshape(tuple(v.shape)) + 0.1
              for k, v in net.state_dict().items() if k != "1.num_batches_tracked"}
    values["1.num_batches_tracked"] = np.array(7)
    net.load_state_dict(values)  # NumPy arrays are accepted, like tensors
    for k, v in net.state_dict().items():
        assert v.dtype == (pydl.int64 if k.endswith("num_batches_tracked") else pydl.float32)
        np.testing.assert_allclose(v.numpy(), values[k].astype(v.dtype))


def test_load_state_dict_on_device(device):
    src = nn.Linear(4, 3)
    dst = nn.Linear(4, 3).to(device)
    dst.load_state_dict(src.state_dict())
    assert dst.weight.device == device
    np.testing.assert_array_equal(dst.weight.detach().cpu().numpy(), src.weight.detach().numpy())


def test_non_persistent_buffer():
    m = nn.Module()
    m.register_buffer("kept", pydl.ones(2))
    m.register_buffer("scratch", pydl.zeros(3), persistent=False)
    assert [n for n, _ in m.named_buffers()] == ["kept", "scratch"]
    assert list(m.state_dict()) == ["kept"]
    m.load_state_dict({"kept": pydl.full((2,), 5.0)})
    assert m.kept.tolist() == [5.0, 5.0]
    m.register_buffer("scratch", pydl.zeros(3))  # re-registering as persistent
    assert list(m.state_dict()) == ["kept", "scratch"]


# ---- Module machinery -------------------------------------------------------------

def test_parameter():
    t = pydl.randn(3, 2)
    p = nn.Parameter(t)
    assert isinstance(p, pydl.Tensor) and p.is_leaf and p.requires_grad
    with pydl.no_grad():
        p.fill_(1.0)
    assert (t.numpy() == 1.0).all()  # shares the tensor's memory
    assert repr(p).startswith("Parameter containing:\ntensor(")
    y = p * 2
    assert type(y) is pydl.Tensor and y.grad_fn is not None
    assert not nn.Parameter(pydl.tensor([1, 2]), requires_grad=False).requires_grad
    with pytest.raises(RuntimeError):
        nn.Parameter(pydl.tensor([1, 2]))
    assert nn.Parameter().numel() == 0


def test_registration_rules():
    m = nn.Module()
    m.w = nn.Parameter(pydl.ones(2))
    m.sub = nn.Linear(2, 2)
    m.register_buffer("stat", pydl.zeros(2))
    m.plain = pydl.ones(1)  # a plain tensor attribute is not registered
    assert [n for n, _ in m.named_parameters()] == ["w", "sub.weight", "sub.bias"]
    assert [n for n, _ in m.named_parameters(recurse=False)] == ["w"]
    assert [n for n, _ in m.named_buffers()] == ["stat"]
    # Own parameters, own buffers, then each submodule's: PyTorch's order.
    assert list(m.state_dict()) == ["w", "stat", "sub.weight", "sub.bias"]
    t = torch.nn.Module()
    t.w = torch.nn.Parameter(torch.ones(2))
    t.sub = torch.nn.Linear(2, 2)
    t.register_buffer("stat", torch.zeros(2))
    assert list(t.state_dict()) == list(m.state_dict())
    with pytest.raises(TypeError, match="Parameter or None"):
        m.w = pydl.ones(2)
    m.w = None
    assert m.w is None and [n for n, _ in m.named_parameters()] == ["sub.weight", "sub.bias"]
    with pytest.raises(TypeError):
        m.stat = 3.0
    m.stat = pydl.ones(4)
    assert m.stat.shape == (4,)
    with pytest.raises(KeyError):
        m.register_buffer("a.b", pydl.zeros(1))
    with pytest.raises(KeyError):
        m.register_buffer("plain", pydl.zeros(1))
    with pytest.raises(TypeError):
        m.register_parameter("q", pydl.zeros(1))
    with pytest.raises(TypeError):
        m.add_module("x", 3)
    del m.sub
    assert [n for n, _ in m.named_parameters()] == []
    with pytest.raises(AttributeError):
        m.sub  # noqa: B018

    class Early(nn.Module):
        def __init__(self):
            self.w = nn.Parameter(pydl.ones(1))

    with pytest.raises(AttributeError, match="before Module.__init__"):
        Early()
    with pytest.raises(NotImplementedError):
        nn.Module()(1)


def test_train_eval_propagate():
    net = make_net(nn)
    assert all(m.training for m in net.modules())
    assert net.eval() is net
    assert not any(m.training for m in net.modules())
    x, idx = pydl.randn(3, 6), pydl.tensor([0, 1, 2])
    np.testing.assert_array_equal(net(x, idx).detach().numpy(), net(x, idx).detach().numpy())
    net.train()
    assert all(m.training for m in net.modules())
    net.head.train(False)
    assert not net.head[2].training and net.bn.training
    with pytest.raises(ValueError):
        net.train("no")


def test_zero_grad_and_requires_grad():
    net = nn.Sequential(nn.Linear(4, 3), nn.Tanh(), nn.Linear(3, 1))
    net(pydl.randn(5, 4)).sum().backward()
    grads = [p.grad for p in net.parameters()]
    assert all(g is not None for g in grads)
    net.zero_grad(set_to_none=False)
    assert all(p.grad is g and not g.numpy().any() for p, g in zip(net.parameters(), grads))
    net.zero_grad()
    assert all(p.grad is None for p in net.parameters())
    assert net.requires_grad_(False) is net
    assert not any(p.requires_grad for p in net.parameters())
    assert not net(pydl.randn(2, 4)).requires_grad
    net.requires_grad_()
    assert all(p.requires_grad for p in net.parameters())


def test_apply_order_matches_torch():
    pnet, tnet = make_net(nn), make_net(torch.nn)
    pseen, tseen = [], []
    assert pnet.apply(lambda m: pseen.append(type(m).__name__)) is pnet
    tnet.apply(lambda m: tseen.append(type(m).__name__))
    assert pseen == tseen

    def reinit(m):
        if isinstance(m, nn.Linear):
            init.zeros_(m.weight)

    pnet.apply(reinit)
    assert not any(m.weight.detach().numpy().any() for m in pnet.modules() if isinstance(m, nn.Linear))


def test_to_dtype_converts_in_place():
    net = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 2))
    net(pydl.randn(5, 3)).sum().backward()
    params = list(net.parameters())
    assert net.to(pydl.float64) is net
    assert [id(p) for p in net.parameters()] == [id(p) for p in params]  # same objects
    assert all(p.dtype == pydl.float64 and p.grad.dtype == pydl.float64 for p in params)
    assert all(p.requires_grad and p.is_leaf for p in params)
    assert net[1].running_mean.dtype == pydl.float64
    assert net[1].num_batches_tracked.dtype == pydl.int64  # integers are left alone
    y = net(pydl.randn(5, 3, dtype=pydl.float64))
    assert y.dtype == pydl.float64
    y.sum().backward()
    assert net.float()[0].weight.dtype == pydl.float32
    assert net.half()[0].bias.dtype == pydl.float16
    assert net.to(dtype="float64")[0].weight.dtype == pydl.float64
    with pytest.raises(TypeError):
        net.to(pydl.int64)


def test_constructor_dtype():
    assert nn.Linear(3, 2, dtype=pydl.float64).weight.dtype == pydl.float64
    assert nn.LayerNorm(3, dtype=pydl.float64).bias.dtype == pydl.float64
    bn = nn.BatchNorm1d(3, dtype=pydl.float64)
    assert bn.running_var.dtype == pydl.float64 and bn.num_batches_tracked.dtype == pydl.int64


def test_to_device(device):
    net = make_net(nn)
    assert net.to(device) is net
    assert all(t.device == device for t in list(net.parameters()) + list(net.buffers()))
    out = net(pydl.randn(3, 6, device=device), pydl.tensor([0, 1, 3], device=device))
    assert out.device == device
    net.cpu()
    assert all(p.device == "cpu" for p in net.parameters())


def test_deepcopy_is_independent():
    net = make_net(nn)
    twin = copy.deepcopy(net)
    for (n1, p1), (n2, p2) in zip(net.named_parameters(), twin.named_parameters()):
        assert n1 == n2 and p1 is not p2 and isinstance(p2, nn.Parameter) and p2.requires_grad
        np.testing.assert_array_equal(p1.detach().numpy(), p2.detach().numpy())
    with pydl.no_grad():
        twin.layers[0].weight.fill_(0.0)
    assert net.layers[0].weight.detach().numpy().any()


# ---- containers -------------------------------------------------------------------

def test_sequential_api(rng):
    a, b, c = nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2)
    seq = nn.Sequential(a, b, c)
    assert len(seq) == 3 and list(seq) == [a, b, c]
    assert seq[0] is a and seq[-1] is c
    part = seq[1:]
    assert isinstance(part, nn.Sequential) and list(part) == [b, c]
    assert [n for n, _ in part.named_children()] == ["1", "2"]  # names kept, like PyTorch
    x = pydl.tensor(normal(rng, (5, 3), np.float32))
    np.testing.assert_array_equal(seq(x).detach().numpy(), c(b(a(x))).detach().numpy())
    with pytest.raises(IndexError):
        seq[3]  # noqa: B018
    d = nn.Tanh()
    seq.append(d)
    assert seq[3] is d and len(seq) == 4
    seq.insert(1, nn.Identity())
    assert [type(m).__name__ for m in seq] == ["Linear", "Identity", "ReLU", "Linear", "Tanh"]
    del seq[1]
    assert [n for n, _ in seq.named_children()] == ["0", "1", "2", "3"]
    seq[1] = nn.GELU()
    assert isinstance(seq[1], nn.GELU)
    named = nn.Sequential(OrderedDict([("fc", nn.Linear(2, 2)), ("act", nn.ReLU())]))
    assert list(named.state_dict()) == ["fc.weight", "fc.bias"] and named.fc is named[0]


def test_module_list_api():
    layers = nn.ModuleList([nn.Linear(2, 2) for _ in range(3)])
    assert len(layers) == 3 and len(list(layers.parameters())) == 6
    extra = nn.Linear(2, 2)
    layers.append(extra)
    assert layers[-1] is extra and layers[3] is extra
    layers.extend([nn.ReLU(), nn.Tanh()])
    layers.insert(0, nn.Identity())
    assert [type(m).__name__ for m in layers] == ["Identity", "Linear", "Linear", "Linear", "Linear",
                                                  "ReLU", "Tanh"]
    assert [n for n, _ in layers.named_children()] == [str(i) for i in range(7)]
    del layers[0]
    assert isinstance(layers[0], nn.Linear) and len(layers) == 6
    assert layers.pop() .__class__ is nn.Tanh and len(layers) == 5
    assert isinstance(layers[1:3], nn.ModuleList) and len(layers[1:3]) == 2
    layers += [nn.Sigmoid()]
    assert isinstance(layers[-1], nn.Sigmoid)
    layers[0] = nn.ELU()
    assert isinstance(layers[0], nn.ELU)
    with pytest.raises(IndexError):
        layers[10]  # noqa: B018
    with pytest.raises(TypeError):
        layers.append(3)
    holder = nn.Module()
    holder.blocks = nn.ModuleList([nn.Linear(2, 3), nn.Linear(3, 1)])
    assert list(holder.state_dict()) == ["blocks.0.weight", "blocks.0.bias", "blocks.1.weight",
                                         "blocks.1.bias"]


def test_module_dict_api():
    d = nn.ModuleDict({"enc": nn.Linear(3, 2), "act": nn.ReLU()})
    assert len(d) == 2 and list(d) == ["enc", "act"] and "enc" in d and "dec" not in d
    d["dec"] = nn.Linear(2, 3)
    assert list(d.keys()) == ["enc", "act", "dec"]
    assert [type(m).__name__ for m in d.values()] == ["Linear", "ReLU", "Linear"]
    assert [k for k, _ in d.items()] == ["enc", "act", "dec"]
    assert list(d.state_dict()) == ["enc.weight", "enc.bias", "dec.weight", "dec.bias"]
    d.update([("norm", nn.LayerNorm(3))])
    assert isinstance(d.pop("act"), nn.ReLU) and "act" not in d
    del d["norm"]
    assert list(d) == ["enc", "dec"]
    with pytest.raises(TypeError):
        d[1] = nn.ReLU()
    d.clear()
    assert len(d) == 0 and list(d.parameters()) == []


# ---- init -------------------------------------------------------------------------

def test_calculate_gain_matches_torch():
    for name in ("linear", "conv2d", "sigmoid", "tanh", "relu", "leaky_relu", "selu"):
        assert init.calculate_gain(name) == pytest.approx(torch.nn.init.calculate_gain(name))
    assert init.calculate_gain("leaky_relu", 0.2) == pytest.approx(
        torch.nn.init.calculate_gain("leaky_relu", 0.2))
    assert init.calculate_gain("leaky_relu", math.sqrt(5)) == pytest.approx(math.sqrt(1 / 3))
    with pytest.raises(ValueError):
        init.calculate_gain("swish")
    with pytest.raises(ValueError):
        init.calculate_gain("leaky_relu", "steep")


@pytest.mark.parametrize("shape", [(5, 7), (6, 3, 5, 5), (4, 3, 2), (1, 1)])
def test_fan_in_fan_out_matches_torch(shape):
    assert (init._calculate_fan_in_and_fan_out(pydl.empty(*shape))
            == torch.nn.init._calculate_fan_in_and_fan_out(torch.empty(*shape)))


def test_fan_needs_two_dims():
    with pytest.raises(ValueError, match="fewer than 2"):
        init.kaiming_uniform_(pydl.empty(5))
    with pytest.raises(ValueError):
        init.kaiming_normal_(pydl.empty(3, 4), mode="fan_avg")


def _std_close(values, expected, rel=0.02):
    # Over 1e5+ draws the sample std is within ~0.3% of the true one; 2% is far outside noise.
    assert abs(values.std() - expected) < rel * expected
    assert abs(values.mean()) < 0.02 * expected


@pytest.mark.parametrize("shape", [(600, 500), (64, 32, 3, 3)])
def test_kaiming_xavier_statistics(shape):
    w = pydl.empty(*shape)
    fan_in = shape[1] * int(np.prod(shape[2:]))
    fan_out = shape[0] * int(np.prod(shape[2:]))

    init.kaiming_uniform_(w)  # a=0, leaky_relu: gain sqrt(2)
    bound = math.sqrt(2.0) * math.sqrt(3.0 / fan_in)
    v = w.numpy()
    assert np.abs(v).max() <= bound and np.abs(v).max() > 0.99 * bound
    _std_close(v, bound / math.sqrt(3))

    init.kaiming_normal_(w, mode="fan_out", nonlinearity="relu")
    _std_close(w.numpy(), math.sqrt(2.0 / fan_out))

    init.kaiming_uniform_(w, a=0.3, mode="fan_out")
    bound = math.sqrt(2.0 / (1 + 0.3 ** 2)) * math.sqrt(3.0 / fan_out)
    assert np.abs(w.numpy()).max() <= bound

    init.xavier_uniform_(w, gain=2.0)
    bound = 2.0 * math.sqrt(6.0 / (fan_in + fan_out))
    v = w.numpy()
    assert np.abs(v).max() <= bound and np.abs(v).max() > 0.99 * bound
    _std_close(v, bound / math.sqrt(3))

    init.xavier_normal_(w)
    _std_close(w.numpy(), math.sqrt(2.0 / (fan_in + fan_out)))


def test_basic_fills(device):
    w = nn.Parameter(pydl.empty(300, 400, device=device))  # requires grad: init runs under no_grad
    assert init.uniform_(w, -2.0, 3.0) is w
    v = w.detach().cpu().numpy()
    assert v.min() >= -2.0 and v.max() < 3.0 and abs(v.mean() - 0.5) < 0.02
    init.normal_(w, mean=1.0, std=0.5)
    v = w.detach().cpu().numpy()
    assert abs(v.mean() - 1.0) < 0.005 and abs(v.std() - 0.5) < 0.01
    init.constant_(w, 0.25)
    assert (w.detach().cpu().numpy() == 0.25).all()
    init.ones_(w)
    assert (w.detach().cpu().numpy() == 1).all()
    init.zeros_(w)
    assert not w.detach().cpu().numpy().any()
    assert w.device == device and w.requires_grad and pydl.is_grad_enabled()


@pytest.mark.parametrize("mean,std,a,b", [(0.0, 1.0, -2.0, 2.0), (1.0, 2.0, 0.0, 3.0)])
def test_trunc_normal(mean, std, a, b):
    w = init.trunc_normal_(pydl.empty(400, 500, dtype=pydl.float64), mean, std, a, b)
    v = w.numpy()
    assert v.min() >= a and v.max() <= b
    ref = scipy.stats.truncnorm((a - mean) / std, (b - mean) / std, loc=mean, scale=std)
    assert abs(v.mean() - ref.mean()) < 0.01 * ref.std()
    assert abs(v.std() - ref.std()) < 0.01 * ref.std()


@pytest.mark.parametrize("shape", [(7, 5), (3, 8), (4, 2, 3, 3)])
def test_orthogonal(shape):
    w = init.orthogonal_(pydl.empty(*shape, dtype=pydl.float64), gain=1.5)
    m = w.numpy().reshape(shape[0], -1)
    gram = m.T @ m if m.shape[0] >= m.shape[1] else m @ m.T
    np.testing.assert_allclose(gram, 1.5 ** 2 * np.eye(gram.shape[0]), atol=1e-10)


def test_init_is_seeded():
    pydl.manual_seed(3)
    w1 = nn.Linear(20, 10).weight.detach().numpy().copy()
    pydl.manual_seed(3)
    w2 = nn.Linear(20, 10).weight.detach().numpy().copy()
    pydl.manual_seed(4)
    w3 = nn.Linear(20, 10).weight.detach().numpy().copy()
    np.testing.assert_array_equal(w1, w2)
    assert not np.array_equal(w1, w3)
    g1 = init.normal_(pydl.empty(5), generator=np.random.default_rng(9)).numpy()
    g2 = init.normal_(pydl.empty(5), generator=np.random.default_rng(9)).numpy()
    np.testing.assert_array_equal(g1, g2)


def test_default_initialisation():
    lin = nn.Linear(400, 300)
    bound = 1 / math.sqrt(400)
    w, b = lin.weight.detach().numpy(), lin.bias.detach().numpy()
    assert np.abs(w).max() <= bound and np.abs(b).max() <= bound
    _std_close(w, bound / math.sqrt(3), rel=0.03)
    emb = nn.Embedding(1000, 64, padding_idx=3).weight.detach().numpy()
    assert not emb[3].any()
    _std_close(np.delete(emb, 3, axis=0), 1.0)
    ln = nn.LayerNorm((2, 3))
    assert (ln.weight.detach().numpy() == 1).all() and not ln.bias.detach().numpy().any()
    assert nn.RMSNorm(4).weight.detach().numpy().tolist() == [1.0] * 4
    bn = nn.BatchNorm1d(3)
    assert (bn.weight.detach().numpy() == 1).all() and not bn.bias.detach().numpy().any()
    assert (bn.running_var.numpy() == 1).all() and not bn.running_mean.numpy().any()
    assert bn.num_batches_tracked.item() == 0
