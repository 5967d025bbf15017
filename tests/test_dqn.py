"""DQN: replay buffer, epsilon schedule, the (Double-)DQN loss against a float64
reference and PyTorch, and a few updates lowering the loss."""
import copy
import importlib.util
import os

import numpy as np
import pytest

import pydl
from pydl.models.dqn import QNetwork, ReplayBuffer, dqn_loss, linear_epsilon

_TWINS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "benchmarks", "twins")


def _twin(name):
    import sys

    sys.path.insert(0, _TWINS)
    spec = importlib.util.spec_from_file_location(f"twin_{name}", os.path.join(_TWINS, f"{name}.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_replay_buffer_wraps_and_samples():
    buf = ReplayBuffer(5, 3)
    for i in range(7):
        buf.add(np.full(3, i), i % 2, float(i), np.full(3, i + 1), i == 6)
    assert len(buf) == 5 and buf.pos == 2
    assert sorted(buf.reward.tolist()) == [2.0, 3.0, 4.0, 5.0, 6.0]
    obs, act, rew, nxt, term = buf.sample(64, np.random.default_rng(0))
    assert obs.shape == (64, 3) and act.dtype == np.int64
    np.testing.assert_array_equal(nxt[:, 0], obs[:, 0] + 1)
    np.testing.assert_array_equal(term, (rew == 6.0).astype(np.float32))
    state = buf.state()
    other = ReplayBuffer(5, 3)
    other.load(state)
    assert other.size == 5 and np.array_equal(other.obs, buf.obs)
    with pytest.raises(ValueError, match="ReplayBuffer"):
        ReplayBuffer(0, 3)
    with pytest.raises(ValueError, match="empty"):
        ReplayBuffer(2, 3).sample(1, np.random.default_rng(0))


def test_linear_epsilon():
    assert linear_epsilon(0, 1.0, 0.1, 100) == 1.0
    assert linear_epsilon(50, 1.0, 0.1, 100) == pytest.approx(0.55)
    assert linear_epsilon(500, 1.0, 0.1, 100) == pytest.approx(0.1)
    assert linear_epsilon(5, 1.0, 0.1, 0) == 0.1


@pytest.mark.parametrize("double", [False, True])
def test_dqn_loss_matches_numpy_reference(double):
    pydl.manual_seed(3)
    q = QNetwork(5, 3, (7,)).to(pydl.float64)
    target = QNetwork(5, 3, (7,)).to(pydl.float64)
    rng = np.random.default_rng(1)
    b = 13
    batch = (rng.standard_normal((b, 5)), rng.integers(0, 3, b), rng.standard_normal(b),
             rng.standard_normal((b, 5)), (rng.random(b) < 0.3).astype(np.float64))
    loss = dqn_loss(q, target, batch, 0.9, double)

    def fwd(net, x):
        with pydl.no_grad():
            return net(pydl.tensor(x)).numpy()

    qn, tn = fwd(q, batch[3]), fwd(target, batch[3])
    best = (qn if double else tn).argmax(1)
    y = batch[2] + 0.9 * (1 - batch[4]) * tn[np.arange(b), best]
    d = fwd(q, batch[0])[np.arange(b), batch[1]] - y
    ref = np.where(np.abs(d) < 1, 0.5 * d * d, np.abs(d) - 0.5).mean()
    assert loss.item() == pytest.approx(ref, rel=1e-12)
    loss.backward()
    assert all(p.grad is not None for p in q.parameters())
    assert all(p.grad is None for p in target.parameters())


def test_dqn_loss_gradcheck():
    pydl.manual_seed(0)
    q = QNetwork(3, 2, (4,)).to(pydl.float64)
    target = copy.deepcopy(q)
    rng = np.random.default_rng(2)
    batch = (rng.standard_normal((6, 3)), rng.integers(0, 2, 6), rng.standard_normal(6),
             rng.standard_normal((6, 3)), np.zeros(6))
    params = list(q.parameters())
    assert pydl.autograd.gradcheck(lambda *ps: dqn_loss(q, target, batch, 0.9, True), params)


def test_dqn_loss_rejects_bad_actions():
    q = QNetwork(3, 2, (4,))
    batch = (np.zeros((2, 3), np.float32), np.array([0, 2]), np.zeros(2, np.float32),
             np.zeros((2, 3), np.float32), np.zeros(2, np.float32))
    with pytest.raises(IndexError, match="dqn_loss"):
        dqn_loss(q, q, batch, 0.9)


@pytest.mark.parametrize("double", [False, True])
def test_dqn_twin_agrees_for_20_steps(double):
    pytest.importorskip("torch")
    pairs = _twin("dqn").compare(20, double=double)
    for i, (a, b) in enumerate(pairs):
        assert abs(a - b) / abs(b) < 1e-3, (i, a, b)
    assert pairs[-1][0] != pairs[0][0]


def test_dqn_updates_lower_the_td_loss():
    pytest.importorskip("gymnasium")
    buf = _twin("dqn").filled_buffer(1000)
    pydl.manual_seed(0)
    q = QNetwork(4, 2, (64,))
    target = copy.deepcopy(q)
    opt = pydl.optim.Adam(q.parameters(), lr=1e-3)
    rng = np.random.default_rng(0)
    fixed = buf.sample(256, np.random.default_rng(9))
    before = dqn_loss(q, target, fixed, 0.99).item()
    for _ in range(60):
        loss = dqn_loss(q, target, buf.sample(64, rng), 0.99)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert dqn_loss(q, target, fixed, 0.99).item() < 0.5 * before


def test_twins_of_mlp_and_gcn_agree_for_20_steps():
    pytest.importorskip("torch")
    for pairs in (_twin("mlp").compare(20), _twin("gcn").compare(20, graph="karate"),
                  _twin("gcn").compare(20, graph="sbm")):
        for i, (a, b) in enumerate(pairs):
            assert abs(a - b) / abs(b) < 1e-3, (i, a, b)


@pytest.mark.slow
def test_dqn_recipe_reaches_bar():
    from pydl.recipes import dqn

    m = dqn.run(seed=0, progress=False)
    assert m["mean_return"] >= 475.0, m
