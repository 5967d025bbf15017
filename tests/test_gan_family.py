"""GAN family: both generator/discriminator pairs build, a few alternating updates on tiny
data move the losses, the checkpoint round-trips, the PyTorch twin agrees, the judge and
the recipe's run folder; the quality bar behind `slow`."""
import json
import os

import numpy as np
import pytest

import pydl
from pydl.models.gan import GAN, build, discriminator_loss, generator_loss
from tests._twins import load_twin


@pytest.fixture
def one_torch_thread():
    torch = pytest.importorskip("torch")
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.mark.parametrize("arch", ["mlp", "dcgan"])
def test_pair_shapes(arch):
    pydl.manual_seed(0)
    g, d = build(arch, latent=8, width=16)
    x = g(pydl.randn(5, 8))
    assert tuple(x.shape) == (5, 1, 8, 8)
    v = x.detach().numpy()
    assert (v >= -1).all() and (v <= 1).all()
    assert tuple(d(x).shape) == (5, 1)


def test_bad_arch_names_the_family():
    with pytest.raises(ValueError, match="gan: arch"):
        build("vae")


@pytest.mark.parametrize("arch", ["mlp", "dcgan"])
def test_discriminator_learns_on_tiny_data(arch):
    """With the generator frozen, a few discriminator steps lower its loss; a few generator
    steps against the frozen discriminator lower the generator's."""
    from pydl.data import load_digits

    pydl.manual_seed(1)
    x, _, _, _ = load_digits(flatten=False)
    real = pydl.tensor(x[:32] * 2 - 1)
    gan = GAN(arch, latent=8, width=16)
    z = pydl.randn(32, 8)
    opt_d = pydl.optim.Adam(gan.discriminator.parameters(), lr=1e-2)
    d_losses = []
    for _ in range(8):
        loss = discriminator_loss(gan.discriminator, real, gan.generator(z))
        opt_d.zero_grad()
        loss.backward()
        opt_d.step()
        d_losses.append(loss.item())
    assert d_losses[-1] < d_losses[0]
    opt_g = pydl.optim.Adam(gan.generator.parameters(), lr=1e-2)
    g_losses = []
    for _ in range(8):
        loss = generator_loss(gan.discriminator, gan.generator(z))
        opt_g.zero_grad()
        loss.backward()
        opt_g.step()
        g_losses.append(loss.item())
    assert g_losses[-1] < g_losses[0]


def test_generator_loss_is_non_saturating():
    """-log D(G(z)): BCE of the fake logits against 1, gradient flows to the generator."""
    pydl.manual_seed(2)
    gan = GAN("mlp", latent=4, width=8)
    fake = gan.generator(pydl.randn(6, 4))
    logits = gan.discriminator(fake).detach().numpy()
    expected = np.mean(np.log1p(np.exp(-logits)))
    loss = generator_loss(gan.discriminator, fake)
    np.testing.assert_allclose(loss.item(), expected, rtol=1e-5)
    loss.backward()
    assert gan.generator.net[0].weight.grad is not None


def test_checkpoint_round_trip(tmp_path):
    from pydl.serialization import load_checkpoint, save_checkpoint

    pydl.manual_seed(3)
    a, b = GAN("dcgan", latent=8, width=8), GAN("dcgan", latent=8, width=8)
    path = str(tmp_path / "g.safetensors")
    save_checkpoint(path, model=a, step=1)
    load_checkpoint(path, model=b)
    for (k, v), (_, w) in zip(a.state_dict().items(), b.state_dict().items()):
        np.testing.assert_array_equal(v.numpy(), w.numpy(), err_msg=k)


@pytest.mark.parametrize("arch,width", [("mlp", None), ("dcgan", 16)])
def test_torch_twin_agrees_on_first_20_steps(arch, width, one_torch_thread):
    twin = load_twin("gan")
    for (d, g), (td, tg) in twin.compare(20, arch=arch, width=width):
        assert abs(d - td) / abs(td) < 1e-3 and abs(g - tg) / abs(tg) < 1e-3, (d, td, g, tg)


def test_judge_scores_real_digits():
    """The classifier judge on held-out real digits: all classes, none dominant, confident."""
    from pydl.data import load_digits
    from pydl.recipes.judge import judge

    _, _, x_test, _ = load_digits()
    s = judge(x_test)
    assert s["judge_accuracy"] >= 0.97
    assert s["classes_covered"] == 10 and s["max_class_fraction"] < 0.15
    assert s["mean_top_prob"] > 0.9
    flat = judge(np.zeros((20, 64)))
    assert flat["classes_covered"] == 1 and flat["max_class_fraction"] == 1.0
    with pytest.raises(ValueError, match="judge"):
        judge(np.zeros((3, 50)))


def test_recipe_writes_run_folder_and_resumes(tmp_path):
    from pydl.recipes import gan

    out = str(tmp_path / "gan")
    m = gan.run(epochs=2, samples=40, out=out, progress=False, stop_after=1)
    assert m["epochs"] == 1
    resumed = gan.run(epochs=2, samples=40, out=out, progress=False, resume=True)
    assert resumed["epochs"] == 2
    assert {"metrics.json", "loss.png", "samples.png", "checkpoint.safetensors"} <= set(os.listdir(out))
    m = json.load(open(os.path.join(out, "metrics.json")))
    for key in ("classes_covered", "max_class_fraction", "mean_top_prob"):
        assert key in m
    with open(os.path.join(out, "samples.png"), "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"



@pytest.mark.slow
def test_gan_recipe_reaches_the_bar(tmp_path):
    from pydl.cli import passes
    from pydl.recipes import gan

    m = gan.run(out=str(tmp_path / "gan"), progress=False)
    assert passes(gan.BAR, m), m
