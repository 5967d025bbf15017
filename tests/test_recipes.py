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
        metric, threshold, higher = recipe.BAR
        assert isinstance(metric, str) and isinstance(threshold, float) and isinstance(higher, bool)


def test_train_writes_metrics_png_and_checkpoint(tmp_path, capsys):
    out = str(tmp_path / "run")
    assert cli.main(["train", "mlp", "--epochs", "1", "--out", out]) == 0
    assert sorted(os.listdir(out)) == ["checkpoint.safetensors", "loss.png", "metrics.json"]
    m = json.load(open(os.path.join(out, "metrics.json")))
    assert m["family"] == "mlp" and m["epochs"] == 1 and 0.0 <= m["test_accuracy"] <= 1.0
    with open(os.path.join(out, "loss.png"), "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    assert "test_accuracy" in capsys.readouterr().out
    # --resume with more epochs than the checkpoint's configuration is refused...
    from pydl.serialization import CheckpointError

    with pytest.raises(CheckpointError):
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


def test_zoo_unknown_family():
    with pytest.raises(SystemExit, match="unknown family"):
        cli.zoo(["nope"], quick=True)
