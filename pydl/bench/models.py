"""`pydl bench models`: the training step (forward, backward, optimizer step) and the
inference forward of each model family against its PyTorch twin, at a small and a large
batch. Before anything is timed, both compute the loss on the same batch from the same
weights; a family whose losses differ by more than MODEL_TOLERANCE (relative) is reported
as wrong and not timed.

The twins live in benchmarks/twins/ of a source checkout, outside the package."""
from __future__ import annotations

import importlib.util
import os
import sys
import time

from . import timing
from .families import BATCHES, FAMILIES

MODEL_TOLERANCE = 1e-3
TWINS = ("_load", "cnn", "resnet", "lstm", "word2vec", "transformer", "gan", "diffusion", "gcn")


class TwinsNotFound(RuntimeError):
    pass


def default_twins_dir() -> str:
    """benchmarks/twins beside this package (a checkout, or an editable install), else under
    the current folder (an installed pydl run from a checkout's root)."""
    beside = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                          "benchmarks", "twins")
    here = os.path.join(os.getcwd(), "benchmarks", "twins")
    return beside if os.path.isdir(beside) or not os.path.isdir(here) else here


def load_twins(folder: str | None = None) -> dict:
    """{name: module} of the PyTorch twins, loaded by path (benchmarks/ is not a package)."""
    folder = folder or default_twins_dir()
    if not os.path.isfile(os.path.join(folder, "_load.py")):
        raise TwinsNotFound(
            f"pydl bench models needs the PyTorch twins of the models (benchmarks/twins/ of a pydl "
            f"source checkout), and {folder} has none. Run it from a checkout of the repository "
            "(an installed wheel does not ship them), or pass --twins DIR.")
    twins = {}
    for name in TWINS:
        spec = importlib.util.spec_from_file_location(f"pydl_twin_{name}", os.path.join(folder, f"{name}.py"))
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        twins[name] = module
    return twins


def _failure(e: Exception) -> dict:
    """A model the backend cannot run (a missing kernel) is unsupported; anything else an error."""
    text = f"{type(e).__name__}: {e}"
    missing = isinstance(e, NotImplementedError) or (isinstance(e, AttributeError) and "backend" in str(e))
    return {"status": "unsupported" if missing else "error", "reason": text}


def _rates(tp: dict, tt: dict, samples: int) -> dict:
    return {"pydl_ms": tp["median_ms"], "pydl_p90_ms": tp["p90_ms"], "torch_ms": tt["median_ms"],
            "torch_p90_ms": tt["p90_ms"], "ratio": tp["median_ms"] / tt["median_ms"],
            "unit": "samples/s", "pydl_rate": samples / (tp["median_ms"] * 1e-3),
            "torch_rate": samples / (tt["median_ms"] * 1e-3), "fraction_of_ceiling": None}


def _infer(pair, sync, reps):
    """Stats of pydl's and torch's inference forward, in eval mode under no_grad."""
    import torch

    import pydl

    def mine():
        with pydl.no_grad():
            pair.pydl_infer()

    def theirs():
        with torch.no_grad():
            pair.torch_infer()

    pair.pydl_model.eval()
    pair.torch_model.eval()
    try:
        return timing.time_pair(mine, theirs, sync, **reps)
    finally:
        pair.pydl_model.train()
        pair.torch_model.train()


def batches(family: str, device: str, quick: bool):
    sizes = BATCHES[family]
    if quick:
        return (sizes["quick"],) if device == "cpu" else sizes[device][:1]
    return sizes[device]


def run_models(device: str = "cuda", families=None, quick: bool = False, progress: bool = True,
               command: str | None = None, twins_dir: str | None = None) -> dict:
    import torch

    import pydl

    twins = load_twins(twins_dir)
    families = families or list(FAMILIES)
    unknown = [f for f in families if f not in FAMILIES]
    if unknown:
        raise ValueError(f"pydl bench models: unknown families {unknown}; known: {', '.join(FAMILIES)}")
    if device == "cpu":
        torch.set_num_threads(os.cpu_count() or 1)
        sync = None
    else:
        def sync():
            pydl.cuda.synchronize()
            torch.cuda.synchronize()
    reps = ({"warmup": 1, "reps": 3} if quick else {"warmup": 2, "reps": 10, "max_seconds": 10.0}) \
        if device == "cpu" else {"warmup": 3, "reps": 10 if quick else 30, "max_seconds": 10.0}
    rows = []
    from rich.progress import Progress

    with Progress(disable=not progress, transient=True) as bar:
        task = bar.add_task("bench", total=None)
        for family in families:
            for batch in batches(family, device, quick):
                bar.update(task, description=f"models {family} batch {batch}")
                rows += _family_rows(family, device, batch, twins, sync, reps)
    return {"kind": "models", "device_type": device, "dtypes": ["float32"], "quick": quick,
            "command": command or " ".join(sys.argv), "time": time.strftime("%Y-%m-%d %H:%M:%S"),
            "environment": timing.environment(device), "ceilings": {}, "rows": rows}


def _family_rows(family, device, batch, twins, sync, reps) -> list:
    """The train row and (where the family has one) the inference row of one batch."""
    import pydl

    def row(pass_):
        return {"suite": "models", "op": f"{family} {pass_}", "dtype": "float32",
                "shape": f"batch {batch}", "family": family, "pass": pass_, "batch": batch}

    train = row("train")
    try:
        pydl.manual_seed(0)
        pair = FAMILIES[family](device, batch, twins)
        ours, theirs = float(pair.pydl_loss().item()), float(pair.torch_loss().item())
    except Exception as e:  # a model the backend cannot run: report it, go on with the rest
        train.update(_failure(e))
        return [train]
    train["rel_error"] = abs(ours - theirs) / max(abs(theirs), 1e-12)
    train["losses"] = {"pydl": ours, "torch": theirs}
    rows = [train]
    infer = row("infer") if pair.pydl_infer is not None else None
    if infer is not None:
        rows.append(infer)
        infer["rel_error"] = train["rel_error"]
    if not train["rel_error"] <= MODEL_TOLERANCE:
        for r in rows:
            r["status"] = "wrong"
        return rows
    try:
        tp, tt = timing.time_pair(*pair.steps(), sync, **reps)
        train.update(status="ok", **_rates(tp, tt, pair.samples))
        if infer is not None:
            tp, tt = _infer(pair, sync, reps)
            infer.update(status="ok", **_rates(tp, tt, pair.samples))
    except Exception as e:
        for r in rows:
            if "status" not in r:
                r.update(_failure(e))
    return rows
