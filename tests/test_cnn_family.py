"""CNN family: LeNet builds and learns on tiny data, a checkpoint round-trips, the recipe
resumes, the PyTorch twin agrees over the first 20 steps, and (slow) the recipe reaches
its bar."""
import numpy as np
import pytest

import pydl
import pydl.nn.functional as F
from pydl.data import load_digits
from pydl.models import LeNet
from pydl.recipes.cnn import shift_images

import helpers  # noqa: F401  (one torch thread for the oracle)
from _twins import load_twin, one_blas_thread

_blas = pytest.fixture(autouse=True)(one_blas_thread)


def test_lenet_shapes_and_bad_image_size():
    pydl.manual_seed(0)
    m = LeNet(3, 7, image_size=12, channels=(4, 6), hidden=(9, 5), dropout=0.2)
    out = m(pydl.randn(2, 3, 12, 12))
    assert tuple(out.shape) == (2, 7)
    assert tuple(m.classifier[1].weight.shape) == (9, 6 * 3 * 3)
    with pytest.raises(ValueError, match="LeNet"):
        LeNet(1, 10, image_size=10, channels=(4, 4))


def test_lenet_learns_tiny_digits():
    pydl.manual_seed(0)
    x, y, _, _ = load_digits(flatten=False)
    x, y = x[:64], y[:64]
    m = LeNet(channels=(8, 16), hidden=(32,))
    opt = pydl.optim.Adam(m.parameters(), lr=1e-2)
    losses = []
    for _ in range(25):
        loss = F.cross_entropy(m(pydl.tensor(x)), pydl.tensor(y))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0], losses


def test_shift_images_moves_each_image_by_at_most_one_pixel():
    x = np.zeros((50, 1, 5, 5), np.float32)
    x[:, 0, 2, 2] = 1.0
    s = shift_images(x, 1, seed=0, epoch=0)
    pos = np.argwhere(s[:, 0] == 1.0)
    assert len(pos) == 50 and np.abs(pos[:, 1:] - 2).max() == 1
    assert s.sum() == 50 and len({tuple(p) for p in pos[:, 1:]}) > 4
    np.testing.assert_array_equal(s, shift_images(x, 1, seed=0, epoch=0))
    assert shift_images(x, 0, 0, 0) is x


def test_checkpoint_round_trip(tmp_path):
    from pydl.serialization import load_checkpoint, save_checkpoint

    pydl.manual_seed(0)
    m = LeNet(channels=(4, 8), hidden=(16,))
    x = pydl.randn(3, 1, 8, 8)
    save_checkpoint(str(tmp_path / "c.safetensors"), model=m, step=1)
    pydl.manual_seed(1)
    m2 = LeNet(channels=(4, 8), hidden=(16,))
    with pydl.no_grad():
        assert not np.allclose(m2(x).numpy(), m(x).numpy())
        load_checkpoint(str(tmp_path / "c.safetensors"), m2)
        np.testing.assert_array_equal(m2(x).numpy(), m(x).numpy())


def test_recipe_resume_equals_uninterrupted(tmp_path):
    from pydl.recipes import cnn

    kw = dict(epochs=2, progress=False, channels=[4, 8], hidden=[16], batch_size=256)
    whole = cnn.run(out=str(tmp_path / "w"), **kw)
    cnn.run(out=str(tmp_path / "p"), stop_after=1, **kw)
    resumed = cnn.run(out=str(tmp_path / "p"), resume=True, **kw)
    # equal up to rounding: threaded reductions may sum in a different order run to run
    np.testing.assert_allclose([h["train_loss"] for h in resumed["history"]],
                               [h["train_loss"] for h in whole["history"]], rtol=1e-5)
    assert len(resumed["history"]) == 2
    assert abs(resumed["test_accuracy"] - whole["test_accuracy"]) <= 1 / 359
    assert sorted(p.name for p in (tmp_path / "w").iterdir()) == [
        "checkpoint.safetensors", "loss.png", "metrics.json"]
    with pytest.raises(ValueError, match="cnn recipe"):
        cnn.run(epochs=1, progress=False, widths=[3])


def test_twin_agrees_for_20_steps():
    pairs = load_twin("cnn").compare(steps=20, batch_size=32)
    ours, theirs = np.array(pairs).T
    assert len(ours) == 20 and ours[-5:].mean() < ours[:5].mean()
    assert float((np.abs(ours - theirs) / np.abs(theirs)).max()) < 1e-3


@pytest.mark.slow
def test_recipe_reaches_its_bar(tmp_path):
    import json

    from pydl.recipes import cnn

    m = cnn.run(out=str(tmp_path), progress=False)
    assert m["test_accuracy"] >= cnn.BAR[1], m
    assert json.loads((tmp_path / "metrics.json").read_text())["family"] == "cnn"
