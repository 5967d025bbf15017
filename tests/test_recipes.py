"""The recipe framework and the command line: `pydl train` writes its run folder and
resumes, `pydl zoo` runs the registry and prints its table."""
import json
import os

import pytest

import pydl  # noqa: F401
from pydl import cli


def test_registry_modules_expose_run_and_bar():
    import importlib
    import inspect

    for family, module in cli.RECIPES.items():
        recipe = importlib.import_module(module)
        params = inspect.signature(recipe.run).parameters
        for name in ("epochs", "seed", "device", "out", "progress", "resume"):
            assert name in params, (family, name)
        assert cli.bars(recipe.BAR), family
        for metric, threshold, higher in cli.bars(recipe.BAR):
            assert isinstance(metric, str) and isinstance(threshold, float) and isinstance(higher, bool)
    assert len(cli.bars(importlib.import_module(cli.RECIPES["lstm"]).BAR)) == 2


def test_passes_needs_every_bar():
    one = ("acc", 0.9, True)
    two = (("acc", 0.9, True), ("loss", 0.5, False))
    assert cli.passes(one, 0.9) and not cli.passes(one, 0.89) and cli.passes(one, {"acc": 0.95})
    assert cli.passes(("loss", 0.5, False), 0.4) and not cli.passes(("loss", 0.5, False), 0.6)
    assert cli.passes(two, {"acc": 0.95, "loss": 0.4})
    assert not cli.passes(two, {"acc": 0.95, "loss": 0.6})
    assert not cli.passes(two, {"acc": 0.85, "loss": 0.4})
    assert not cli.passes(two, {"acc": 0.95})  # a metric not reported does not pass


def test_train_writes_metrics_png_and_checkpoint(tmp_path, capsys):
    out = str(tmp_path / "run")
    assert cli.main(["train", "mlp", "--epochs", "1", "--out", out]) == 0
    assert sorted(os.listdir(out)) == ["checkpoint.safetensors", "loss.png", "metrics.json"]
    m = json.load(open(os.path.join(out, "metrics.json")))
    assert m["family"] == "mlp" and m["epochs"] == 1 and 0.0 <= m["test_accuracy"] <= 1.0
    with open(os.path.join(out, "loss.png"), "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    assert "test_accuracy" in capsys.readouterr().out
    # --resume with more epochs than the checkpoint's configuration is refused, as a message
    # (the checkpoint's error) rather than a traceback
    with pytest.raises(SystemExit, match="^pydl train mlp: .*checkpoint"):
        cli.main(["train", "mlp", "--epochs", "2", "--out", out, "--resume"])


def test_resume_of_a_finished_run_trains_no_further(tmp_path):
    from pydl.recipes import gnn

    out = str(tmp_path / "g")
    first = gnn.run(epochs=3, out=out, progress=False)
    again = gnn.run(epochs=3, out=out, progress=False, resume=True)
    assert [h["train_loss"] for h in again["history"]] == [h["train_loss"] for h in first["history"]]
    assert again["min_accuracy"] == first["min_accuracy"]


def test_gnn_resume_equals_uninterrupted(tmp_path):
    from pydl.recipes import gnn

    whole = gnn.run(epochs=4, out=str(tmp_path / "w"), progress=False)
    gnn.run(epochs=4, out=str(tmp_path / "p"), progress=False, stop_after=2)
    resumed = gnn.run(epochs=4, out=str(tmp_path / "p"), progress=False, resume=True)
    assert [h["train_loss"] for h in resumed["history"]] == [h["train_loss"] for h in whole["history"]]


def test_zoo_quick_prints_one_table(capsys):
    from rich.console import Console

    console = Console(width=120, force_terminal=False)
    rows = cli.zoo(["mlp", "gnn", "dqn"], quick=True, console=console)
    assert [r[0] for r in rows] == ["mlp", "gnn", "dqn"]
    text = capsys.readouterr().out
    for word in ("family", "metric", "value", "bar", "pass", "mlp", "gnn", "dqn", "mean_return"):
        assert word in text


def test_word2vec_resume_equals_uninterrupted(tmp_path):
    import numpy as np

    from pydl.recipes import word2vec

    whole = word2vec.run(epochs=2, out=str(tmp_path / "w"), progress=False, dim=8)
    word2vec.run(epochs=2, out=str(tmp_path / "p"), progress=False, dim=8, stop_after=1)
    assert json.load(open(tmp_path / "p" / "metrics.json"))["epochs"] == 1
    resumed = word2vec.run(epochs=2, out=str(tmp_path / "p"), progress=False, dim=8, resume=True)
    assert resumed["epochs"] == 2 and resumed["history"] == whole["history"]
    assert resumed["cluster_purity"] == whole["cluster_purity"]
    from pydl.models.word2vec import load_word2vec_text

    assert np.array_equal(load_word2vec_text(str(tmp_path / "w" / "vectors.txt"))[1],
                          load_word2vec_text(str(tmp_path / "p" / "vectors.txt"))[1])
    with open(tmp_path / "p" / "loss.png", "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"


def test_lstm_resume_equals_uninterrupted(tmp_path):
    from pydl.recipes import lstm

    tiny = dict(lstm.QUICK, epochs=2, cls_steps=4)
    whole = lstm.run(out=str(tmp_path / "w"), progress=False, **tiny)
    lstm.run(out=str(tmp_path / "p"), progress=False, stop_after=1, **tiny)
    resumed = lstm.run(out=str(tmp_path / "p"), progress=False, resume=True, **tiny)
    assert len(whole["history"]) == 2 and resumed["history"] == whole["history"]
    assert resumed["lm_reduction_vs_unigram"] == whole["lm_reduction_vs_unigram"]
    with pytest.raises(TypeError, match="lstm.run"):
        lstm.run(epochs=1, progress=False, hiden_size=3)


def test_zoo_quick_checks_every_bar_of_lstm_and_word2vec(tmp_path, capsys):
    from rich.console import Console

    console = Console(width=120, force_terminal=False)
    rows = cli.zoo(["lstm", "word2vec"], quick=True, console=console, out=str(tmp_path))
    assert [r[0] for r in rows] == ["lstm", "word2vec"]
    assert rows[0][1] == ("lm_reduction_vs_unigram", "classifier_accuracy") and len(rows[0][2]) == 2
    assert rows[1][1] == "cluster_purity" and 0.0 <= rows[1][2] <= 1.0
    assert rows[0][5] == cli.passes(cli._recipe("lstm").BAR, dict(zip(rows[0][1], rows[0][2])))
    text = capsys.readouterr().out
    for word in ("lstm", "word2vec", "lm_reduction_vs_unigram", "classifier_accuracy", "cluster_purity"):
        assert word in text
    for family in ("lstm", "word2vec"):
        assert {"checkpoint.safetensors", "loss.png", "metrics.json"} <= set(os.listdir(tmp_path / family))


def test_train_word2vec_reports_its_bar(tmp_path, capsys):
    assert cli.main(["train", "word2vec", "--epochs", "1", "--out", str(tmp_path / "w")]) == 0
    assert "cluster_purity" in capsys.readouterr().out


def test_zoo_unknown_family():
    with pytest.raises(SystemExit, match="unknown family"):
        cli.zoo(["nope"], quick=True)
