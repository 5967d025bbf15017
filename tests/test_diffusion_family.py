"""Diffusion family (DDPM): schedules, forward noising, the time embedding, the U-Net's
shapes, a few training steps on tiny data, both samplers, the checkpoint round trip, the
PyTorch twin and the recipe's run folder; the quality bar behind `slow`."""
import json
import os

import numpy as np
import pytest

import pydl
from pydl.models.diffusion import DDPM, NoiseSchedule, UNet, timestep_embedding
from tests._twins import load_twin


@pytest.fixture
def one_torch_thread():
    torch = pytest.importorskip("torch")
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.mark.parametrize("kind", ["linear", "cosine"])
def test_schedule(kind):
    s = NoiseSchedule(100, kind)
    assert s.betas.shape == (100,) and (s.betas > 0).all() and (s.betas < 1).all()
    assert (np.diff(s.alpha_bar) < 0).all() and s.alpha_bar[-1] < 0.01 and s.alpha_bar[0] > 0.99
    np.testing.assert_allclose(s.alpha_bar, np.cumprod(1 - s.betas))
    with pytest.raises(ValueError, match="NoiseSchedule"):
        NoiseSchedule(10, "quadratic")


def test_q_sample_matches_closed_form():
    s = NoiseSchedule(50, "linear")
    rng = np.random.default_rng(0)
    x0, eps = rng.standard_normal((3, 1, 4, 4)), rng.standard_normal((3, 1, 4, 4))
    t = np.array([0, 17, 49])
    out = s.q_sample(pydl.tensor(x0), t, pydl.tensor(eps)).numpy()
    ab = s.alpha_bar[t][:, None, None, None]
    np.testing.assert_allclose(out, np.sqrt(ab) * x0 + np.sqrt(1 - ab) * eps, rtol=1e-12)
    with pytest.raises(ValueError, match="q_sample"):
        s.q_sample(pydl.tensor(x0), np.array([0, 1, 50]), pydl.tensor(eps))


def test_timestep_embedding():
    e = timestep_embedding(np.array([0, 5, 99]), 16)
    assert e.shape == (3, 16) and e.dtype == np.float32
    np.testing.assert_allclose(e[0], np.r_[np.zeros(8), np.ones(8)])
    np.testing.assert_allclose(e[1, 0], np.sin(5.0), rtol=1e-6)
    assert not np.allclose(e[1], e[2])


def test_unet_shape_and_gradients():
    pydl.manual_seed(0)
    net = UNet(1, channels=4, tdim=8)
    x = pydl.randn(3, 1, 8, 8, requires_grad=True)
    y = net(x, np.array([1, 2, 3]))
    assert tuple(y.shape) == (3, 1, 8, 8)
    y.sum().backward()
    assert x.grad is not None and all(p.grad is not None for p in net.parameters())


def test_training_steps_lower_the_loss():
    from pydl.data import load_digits

    pydl.manual_seed(1)
    x, _, _, _ = load_digits(flatten=False)
    x0 = pydl.tensor(x[:32] * 2 - 1)
    ddpm = DDPM((1, 8, 8), channels=8, steps=50)
    opt = pydl.optim.Adam(ddpm.parameters(), lr=2e-3)
    rng = np.random.default_rng(0)
    t = rng.integers(0, 50, size=32)
    noise = pydl.randn(32, 1, 8, 8)
    losses = []
    for _ in range(10):
        loss = ddpm.loss(x0, t=t, noise=noise)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.7 * losses[0]


def test_samplers_shapes_and_determinism():
    pydl.manual_seed(2)
    ddpm = DDPM((1, 8, 8), channels=4, steps=10)
    a = ddpm.sample(3, seed=1)
    assert a.shape == (3, 1, 8, 8) and np.isfinite(a).all()
    d1, d2 = ddpm.ddim_sample(3, steps=4, seed=1), ddpm.ddim_sample(3, steps=4, seed=1)
    np.testing.assert_array_equal(d1, d2)
    assert np.abs(d1).max() <= 1.0 + 1e-6  # eta=0 with clipping: the last step returns x0_hat
    assert ddpm.training


def test_checkpoint_round_trip(tmp_path):
    from pydl.serialization import load_checkpoint, save_checkpoint

    pydl.manual_seed(3)
    a, b = DDPM(channels=4, steps=10), DDPM(channels=4, steps=10)
    path = str(tmp_path / "d.safetensors")
    save_checkpoint(path, model=a, step=1)
    load_checkpoint(path, model=b)
    x = pydl.randn(2, 1, 8, 8)
    a.eval()
    b.eval()
    with pydl.no_grad():
        np.testing.assert_array_equal(a(x, np.array([3, 4])).numpy(), b(x, np.array([3, 4])).numpy())


def test_torch_twin_agrees_on_first_20_steps(one_torch_thread):
    twin = load_twin("diffusion")
    for a, b in twin.compare(20, channels=8, batch_size=32):
        assert abs(a - b) / abs(b) < 1e-3, (a, b)


def test_recipe_writes_run_folder(tmp_path):
    from pydl.recipes import diffusion

    out = str(tmp_path / "diff")
    m = diffusion.run(epochs=1, samples=20, ddim_steps=3, out=out, progress=False)
    assert m["epochs"] == 1
    assert {"metrics.json", "loss.png", "samples.png", "checkpoint.safetensors"} <= set(os.listdir(out))
    m = json.load(open(os.path.join(out, "metrics.json")))
    for key in ("classes_covered", "max_class_fraction", "mean_top_prob"):
        assert key in m


@pytest.mark.slow
def test_diffusion_recipe_reaches_the_bar(tmp_path):
    from pydl.cli import passes
    from pydl.recipes import diffusion

    m = diffusion.run(out=str(tmp_path / "diff"), progress=False)
    assert passes(diffusion.BAR, m), m
