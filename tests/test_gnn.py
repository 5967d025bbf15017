"""GCN: sparse aggregation against a dense float64 reference, gradients, errors, data,
and training on the bundled graphs."""
import numpy as np
import pytest

import pydl
from pydl.autograd import gradcheck
from pydl.models.gcn import GCN, GCNConv, Graph, normalized_adjacency, propagate


def _random_graph(n, e, rng):
    a = rng.integers(0, n, size=(2, e))
    return np.concatenate([a, a[::-1]], axis=1)  # undirected, with duplicates and self loops


def _dense_a_hat(edge_index, n):
    a = np.zeros((n, n))
    for s, d in edge_index.T:
        if s != d:
            a[d, s] += 1.0
    a += np.eye(n)
    deg = a.sum(axis=1)
    return a / np.sqrt(np.outer(deg, deg))


@pytest.mark.parametrize("n,e,f", [(1, 0, 3), (7, 5, 1), (37, 61, 13)])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_propagate_matches_dense_reference(n, e, f, dtype, device):
    rng = np.random.default_rng(n + e)
    ei = _random_graph(n, e, rng)
    x = rng.standard_normal((n, f))
    g = Graph(ei, n, device=device)
    xt = pydl.tensor(x.astype(dtype), device=device, requires_grad=True)
    y = propagate(xt, g)
    dy = rng.standard_normal((n, f))
    y.backward(pydl.tensor(dy.astype(dtype), device=device))
    a = _dense_a_hat(ei, n)
    tol = 1e-12 if dtype == "float64" else 1e-5
    np.testing.assert_allclose(y.detach().cpu().numpy(), a @ x, atol=tol, rtol=tol * 10)
    np.testing.assert_allclose(xt.grad.cpu().numpy(), a.T @ dy, atol=tol, rtol=tol * 10)


def test_gcn_conv_gradcheck():
    rng = np.random.default_rng(5)
    n = 6
    g = Graph(_random_graph(n, 7, rng), n)
    conv = GCNConv(3, 2).to(pydl.float64)
    x = pydl.tensor(rng.standard_normal((n, 3)), requires_grad=True)
    w, b = conv.linear.weight, conv.bias
    assert gradcheck(lambda x, w, b: conv(x, g), [x, w, b])


def test_gcn_conv_matches_torch_dense():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(2)
    n = 11
    ei = _random_graph(n, 17, rng)
    conv = GCNConv(4, 3).to(pydl.float64)
    x = rng.standard_normal((n, 4))
    out = conv(pydl.tensor(x, requires_grad=True), Graph(ei, n))
    out.sum().backward()
    a = torch.from_numpy(_dense_a_hat(ei, n))
    w = torch.from_numpy(conv.linear.weight.detach().numpy()).requires_grad_()
    b = torch.from_numpy(conv.bias.detach().numpy()).requires_grad_()
    ref = a @ (torch.from_numpy(x) @ w.T) + b
    ref.sum().backward()
    np.testing.assert_allclose(out.detach().numpy(), ref.detach().numpy(), atol=1e-12)
    np.testing.assert_allclose(conv.linear.weight.grad.numpy(), w.grad.numpy(), atol=1e-12)
    np.testing.assert_allclose(conv.bias.grad.numpy(), b.grad.numpy(), atol=1e-12)


def test_normalized_adjacency_counts_self_loops_once():
    src, dst, w = normalized_adjacency(np.array([[0, 0, 1], [0, 1, 0]]), 2)
    a = np.zeros((2, 2))
    np.add.at(a, (dst, src), w)
    np.testing.assert_allclose(a, np.full((2, 2), 0.5))


def test_bad_input_names_the_op():
    with pytest.raises(ValueError, match="normalized_adjacency"):
        normalized_adjacency(np.zeros((3, 2), np.int64), 4)
    with pytest.raises(IndexError, match="normalized_adjacency"):
        normalized_adjacency(np.array([[0], [4]]), 4)
    with pytest.raises(TypeError, match="normalized_adjacency"):
        normalized_adjacency(np.array([[0.0], [1.0]]), 4)
    g = Graph(np.array([[0], [1]]), 3)
    with pytest.raises(ValueError, match="gcn propagate"):
        propagate(pydl.randn(4, 2), g)
    with pytest.raises(TypeError, match="gcn propagate"):
        propagate(pydl.zeros(3, 2, dtype=pydl.int64), g)


def test_graph_data():
    from pydl.data.graphs import karate_club, stochastic_block_model

    k = karate_club()
    assert k["x"].shape == (34, 34) and k["edge_index"].shape == (2, 156)
    assert k["train_mask"].sum() == 2 and set(k["y"][k["train_mask"]]) == {0, 1}
    s = stochastic_block_model(num_blocks=3, block_size=40, seed=1)
    assert s["x"].shape == (120, 16) and s["train_mask"].sum() == 60
    assert (s["edge_index"] < 120).all()


def test_gcn_training_lowers_loss():
    from pydl.data.graphs import karate_club

    import pydl.nn.functional as F

    pydl.manual_seed(0)
    d = karate_club()
    g = Graph(d["edge_index"], 34)
    model = GCN(34, (16,), 2, dropout=0.0)
    opt = pydl.optim.Adam(model.parameters(), lr=0.01)
    x, idx = pydl.tensor(d["x"]), np.flatnonzero(d["train_mask"])
    y = pydl.tensor(d["y"][idx])
    losses = []
    for _ in range(20):
        loss = F.cross_entropy(model(x, g)[pydl.tensor(idx)], y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.75 * losses[0]


@pytest.mark.slow
def test_gnn_recipe_reaches_bar():
    from pydl.recipes import gnn

    m = gnn.run(seed=0, progress=False)
    assert m["karate_accuracy"] >= 0.90 and m["sbm_accuracy"] >= 0.90, m
