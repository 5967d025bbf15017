"""Recipes on the user's own data (pydl.data.files): each format loads, trains a recipe for
a few steps, and a malformed file gets an error naming the loader, the file and the problem."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from pydl.data.files import load_graph, load_images, load_pairs


def _images(path, n=240, channels=1, side=8, classes=3, dtype=np.uint8, seed=0):
    """Class k lights up band k of the image; uint8 or float in [0, 1]."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, n)
    x = rng.random((n, channels, side, side)) * 0.3
    band = side // classes
    for i, k in enumerate(y):
        x[i, :, k * band:(k + 1) * band] += 0.7
    x = np.clip(x, 0, 1)
    x = (x * 255).astype(np.uint8) if dtype == np.uint8 else x.astype(dtype)
    np.savez(path, x=x[:, 0] if channels == 1 else x, y=y)
    return str(path)


def test_load_images_formats_and_split(tmp_path):
    path = _images(tmp_path / "a.npz")
    x, y, xt, yt = load_images(path, seed=1)
    assert x.shape == (192, 1, 8, 8) and xt.shape == (48, 1, 8, 8) and x.dtype == np.float32
    assert 0.0 <= x.min() and x.max() <= 1.0 and y.dtype == np.int64
    flat = load_images(path, seed=1, flatten=True)[0]
    assert flat.shape == (192, 64) and np.array_equal(flat, x.reshape(192, -1))
    np.savez(tmp_path / "b.npz", x=np.zeros((5, 2, 4, 4), np.float32), y=np.arange(5),
             x_test=np.ones((3, 2, 4, 4), np.float32), y_test=np.zeros(3, np.int64))
    x, y, xt, yt = load_images(str(tmp_path / "b.npz"))
    assert len(x) == 5 and len(xt) == 3 and xt.min() == 1.0


@pytest.mark.parametrize("arrays,match", [
    ({"y": np.arange(3)}, "has no array 'x'"),
    ({"x": np.zeros((3, 4, 4), np.float32)}, "has no labels 'y'"),
    ({"x": np.zeros((3, 4, 4), np.float32), "y": np.zeros(2, np.int64)}, r"y must be integer labels of shape \(3,\)"),
    ({"x": np.zeros((3, 4, 4), np.float32), "y": np.zeros(3, np.float32)}, "y must be integer labels"),
    ({"x": np.full((3, 4, 4), 2.0, np.float32), "y": np.zeros(3, np.int64)}, r"must lie in \[0, 1\]"),
    ({"x": np.zeros((3, 4), np.float32), "y": np.zeros(3, np.int64)}, r"must be images"),
    ({"x": np.zeros((3, 4, 4), np.int32), "y": np.zeros(3, np.int64)}, "must be uint8 or float"),
], ids=["no-x", "no-y", "y-length", "y-float", "range", "rank", "int-pixels"])
def test_load_images_rejects_bad_files(tmp_path, arrays, match):
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(ValueError, match="^load_images: .*" + match):
        load_images(str(tmp_path / "bad.npz"))


def test_load_files_reject_unreadable_and_pickles(tmp_path):
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="^load_images: cannot read"):
        load_images(str(tmp_path / "junk.npz"))
    np.savez(tmp_path / "obj.npz", x=np.array([{"a": 1}], dtype=object), y=np.zeros(1, np.int64))
    with pytest.raises(ValueError, match="^load_images: cannot read"):  # never unpickles
        load_images(str(tmp_path / "obj.npz"))
    with pytest.raises(ValueError, match="^load_graph: cannot read"):
        load_graph(str(tmp_path / "missing.npz"))


def _graph(path, n=120, seed=0):
    """Two communities, dense inside, sparse across; features: noisy community indicators."""
    rng = np.random.default_rng(seed)
    y = np.repeat([0, 1], n // 2)
    pairs = [(i, j) for i in range(n) for j in range(i + 1, n)
             if rng.random() < (0.15 if y[i] == y[j] else 0.01)]
    x = np.eye(2)[y] + rng.normal(0, 1.5, (n, 2))
    np.savez(path, edges=np.array(pairs, np.int64), x=x.astype(np.float32), y=y)
    return str(path)


def test_load_graph_symmetrises_and_labels_a_tenth(tmp_path):
    g = load_graph(_graph(tmp_path / "g.npz"))
    ei = g["edge_index"]
    assert ei.shape[0] == 2 and set(map(tuple, ei.T)) == set(map(tuple, ei[::-1].T))
    assert g["num_classes"] == 2 and g["train_mask"].sum() == 12 and not (g["train_mask"] & g["test_mask"]).any()
    np.savez(tmp_path / "bad.npz", edges=np.array([[0, 5]]), x=np.zeros((3, 2), np.float32),
             y=np.zeros(3, np.int64))
    with pytest.raises(ValueError, match="^load_graph: .*edges name nodes outside 0..2"):
        load_graph(str(tmp_path / "bad.npz"))
    np.savez(tmp_path / "bad2.npz", edges=np.array([[0, 1]]), x=np.zeros((3, 2), np.float32))
    with pytest.raises(ValueError, match=r"^load_graph: .*lacks \['y'\]"):
        load_graph(str(tmp_path / "bad2.npz"))


def test_load_pairs_tokenises_characters(tmp_path):
    p = tmp_path / "pairs.txt"
    p.write_text("abc\tcba\nab\tba\n\nxyz\tzyx\nq\tq\n", encoding="utf-8")
    src, tgt, ts, tt, vocab = load_pairs(str(p), test_fraction=0.25, seed=0)
    assert len(src) == 3 and len(ts) == 1 and src.shape[1] == 3 and tgt.shape[1] == 5
    assert vocab[:3] == ["<pad>", "<bos>", "<eos>"] and set(vocab[3:]) == set("abcxyzq")
    row = list(tgt[0])
    assert row[0] == 1 and 2 in row
    p.write_text("abc cba\n", encoding="utf-8")
    with pytest.raises(ValueError, match="^load_pairs: .*line 1: expected 'source<TAB>target'"):
        load_pairs(str(p))


def test_classifier_recipes_train_on_own_images(tmp_path):
    from pydl.recipes import cnn, mlp, resnet

    gray = _images(tmp_path / "gray.npz")
    m = mlp.run(epochs=8, out=None, progress=False, data=gray)
    assert m["test_accuracy"] >= 0.9, m
    assert m["config"]["data"] == gray
    rgb = _images(tmp_path / "rgb.npz", channels=3, dtype=np.float32)
    m = cnn.run(epochs=1, out=str(tmp_path / "cnn"), progress=False, data=rgb)
    assert 0.0 <= m["test_accuracy"] <= 1.0
    assert json.load(open(tmp_path / "cnn" / "metrics.json"))["config"]["data"] == rgb
    m = resnet.run(epochs=1, out=None, progress=False, data=rgb, widths=[8, 8, 8])
    assert 0.0 <= m["test_accuracy"] <= 1.0


def test_generative_recipes_train_on_own_images(tmp_path):
    from pydl.recipes import diffusion, gan

    path = _images(tmp_path / "six.npz", side=6, n=128)
    m = gan.run(epochs=1, samples=20, out=str(tmp_path / "gan"), progress=False, data=path)
    assert np.isfinite(m["d_loss"]) and np.isfinite(m["g_loss"]) and "mean_top_prob" not in m
    assert os.path.exists(tmp_path / "gan" / "samples.png")
    m = diffusion.run(epochs=1, samples=8, ddim_steps=3, out=None, progress=False, data=path)
    assert np.isfinite(m["train_loss"])
    odd = _images(tmp_path / "odd.npz", side=5, n=16)
    with pytest.raises(ValueError, match="diffusion recipe: the U-Net needs an even image side"):
        diffusion.run(epochs=1, out=None, progress=False, data=odd)
    with pytest.raises(ValueError, match="gan recipe: expects one-channel square images"):
        gan.run(epochs=1, out=None, progress=False, data=_images(tmp_path / "c3.npz", channels=3))


def test_gnn_and_transformer_recipes_train_on_own_files(tmp_path):
    from pydl.recipes import gnn, transformer

    m = gnn.run(epochs=60, out=None, progress=False, data=_graph(tmp_path / "g.npz"))
    assert m["own_accuracy"] >= 0.8 and m["min_accuracy"] == m["own_accuracy"], m
    rng = np.random.default_rng(0)
    words = ["".join(rng.choice(list("abcde"), rng.integers(2, 6))) for _ in range(200)]
    (tmp_path / "rev.txt").write_text("".join(f"{w}\t{w[::-1]}\n" for w in words), encoding="utf-8")
    m = transformer.run(epochs=1, out=None, progress=False, data=str(tmp_path / "rev.txt"),
                        eval_size=10, d_model=32, dim_feedforward=64, layers=1)
    assert 0.0 <= m["exact_match"] <= 1.0 and m["config"]["max_len"] == 5


def test_dqn_takes_another_discrete_environment():
    from pydl.recipes import dqn

    m = dqn.run(epochs=1, steps_per_epoch=300, eval_episodes=2, select_episodes=1, out=None,
                progress=False, env="Acrobot-v1", learning_starts=100, hidden=[16])
    assert m["config"]["env"] == "Acrobot-v1" and -500.0 <= m["mean_return"] <= 0.0
    with pytest.raises(ValueError, match="dqn recipe: 'Pendulum-v1' needs Discrete actions"):
        dqn.run(epochs=1, out=None, progress=False, env="Pendulum-v1")
    with pytest.raises(ValueError, match="dqn recipe: cannot make the gymnasium environment"):
        dqn.run(epochs=1, out=None, progress=False, env="NoSuchEnv-v9")


def test_cli_reports_bad_data_without_a_traceback(tmp_path):
    (tmp_path / "bad.npz").write_bytes(b"junk")
    r = subprocess.run([sys.executable, "-m", "pydl", "train", "mlp", "--data",
                        str(tmp_path / "bad.npz"), "--out", ""], capture_output=True, text=True,
                       cwd=os.path.dirname(os.path.dirname(__file__)))
    assert r.returncode != 0 and "pydl train mlp: load_images: cannot read" in r.stderr
    assert "Traceback" not in r.stderr
    r = subprocess.run([sys.executable, "-m", "pydl", "train", "dqn", "--data", "x.npz"],
                       capture_output=True, text=True, cwd=os.path.dirname(os.path.dirname(__file__)))
    assert r.returncode != 0 and "takes --env" in r.stderr
