"""What every recipe shares: the progress bar with the live loss, the run folder
(metrics.json, loss-curve PNG, safetensors checkpoint) and resuming from it.

A recipe's `run(epochs=None, seed=0, device="cpu", out=..., progress=True,
resume=False) -> metrics` builds its model and optimizer, then:

    run = Run("mlp", out, progress, total=epochs)
    start = run.resume(model, opt, sched, config) if resume else 0   # epochs already done
    with run:
        for epoch in range(start, epochs):
            ...; run.log_loss(loss)            # one point of the loss curve, bar updated
            run.end_epoch(epoch + 1, model=model, optimizer=opt, scheduler=sched, config=config,
                          **epoch_metrics)     # history entry and checkpoint
    return run.finish(metrics)                  # metrics.json and loss.png
"""
from __future__ import annotations

import json
import os
import time

CHECKPOINT = "checkpoint.safetensors"


def cpu_threads(threads, device: str):
    """A context that limits BLAS and OpenMP to `threads` on the CPU (None: leave the
    libraries' defaults). Recipes of small matrices run on one thread: on two busy cores
    threaded BLAS and OpenMP teams made their steps several times slower, and a fixed
    thread count keeps a recipe's rounding, and so its result, the same on every machine."""
    from contextlib import nullcontext

    if threads is None or device != "cpu":
        return nullcontext()
    from threadpoolctl import threadpool_limits

    return threadpool_limits(threads)


class Run:
    def __init__(self, family: str, out: str | None, progress: bool = True, total: int = 1,
                 unit: str = "epoch"):
        self.family, self.out, self.total, self.unit = family, out or None, total, unit
        self.losses: list[float] = []  # every logged loss, for the curve
        self.history: list[dict] = []  # one entry per epoch (or evaluation point)
        self.seconds_before = 0.0      # time spent in earlier, interrupted runs
        self.recipe_state: dict = {}   # what a recipe passed as `extra` at its last checkpoint
        self._start = time.perf_counter()
        self._done = 0
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        self._progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(),
                                  TextColumn("{task.completed}/{task.total} " + unit),
                                  TextColumn("{task.fields[status]}"), TimeElapsedColumn(),
                                  disable=not progress, transient=True)
        self._task = None
        if self.out:
            os.makedirs(self.out, exist_ok=True)

    # ---- progress ----------------------------------------------------------------------
    def __enter__(self):
        self._progress.__enter__()
        self._task = self._progress.add_task(self.family, total=self.total, completed=self._done,
                                             status="")
        return self

    def __exit__(self, *exc):
        return self._progress.__exit__(*exc)

    def status(self, text: str):
        if self._task is not None:
            self._progress.update(self._task, status=text)

    def log_loss(self, loss: float, every: int = 1):
        self.losses.append(float(loss))
        if len(self.losses) % every == 0:
            self.status(f"loss {loss:.4f}")

    # ---- checkpoints -------------------------------------------------------------------
    @property
    def checkpoint_path(self) -> str | None:
        return os.path.join(self.out, CHECKPOINT) if self.out else None

    def end_epoch(self, done: int, model=None, optimizer=None, scheduler=None, config=None,
                  extra=None, **metrics):
        """Record one finished epoch (metrics into the history), advance the bar, and save
        a checkpoint from which `resume` continues at epoch `done`."""
        self._done = done
        self.history.append({self.unit: done, **metrics})
        shown = " ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}"
                         for k, v in metrics.items())
        if self._task is not None:
            self._progress.update(self._task, completed=done, status=shown)
        if self.out and model is not None:
            from ..serialization import save_checkpoint

            save_checkpoint(self.checkpoint_path, model=model, optimizer=optimizer,
                            scheduler=scheduler, step=done, config=config or {},
                            extra={"losses": self.losses, "history": self.history,
                                   "seconds": self.elapsed(), "recipe": extra or {}})

    def resume(self, model, optimizer=None, scheduler=None, config=None) -> int:
        """Load the checkpoint in `out` (if any) and return the number of epochs it holds;
        0 when there is none. Loss curve, history and RNG state continue where they were."""
        if not self.out or not os.path.exists(self.checkpoint_path):
            return 0
        from ..serialization import load_checkpoint

        info = load_checkpoint(self.checkpoint_path, model, optimizer, scheduler,
                               strict_config=config or {})
        extra = info["extra"] or {}
        self.losses = list(extra.get("losses", []))
        self.history = list(extra.get("history", []))
        self.seconds_before = float(extra.get("seconds", 0.0))
        self.recipe_state = extra.get("recipe", {})
        self._done = int(info["step"])
        return self._done

    # ---- results -----------------------------------------------------------------------
    def elapsed(self) -> float:
        return self.seconds_before + time.perf_counter() - self._start

    def finish(self, metrics: dict) -> dict:
        """Add family, seconds and history; write metrics.json and loss.png into `out`."""
        metrics = {"family": self.family, **metrics, "seconds": self.elapsed(),
                   "history": self.history}
        if self.out:
            with open(os.path.join(self.out, "metrics.json"), "w") as f:
                json.dump(metrics, f, indent=2)
            if self.losses:
                plot_losses(self.losses, os.path.join(self.out, "loss.png"), self.family)
        return metrics


def plot_losses(losses, path: str, title: str):
    """A PNG of the training loss (raw and smoothed), drawn without a display."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    y = np.asarray(losses, dtype=np.float64)
    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=100)
    ax.plot(y, lw=0.6, alpha=0.4, label="loss")
    if len(y) >= 10:
        k = max(len(y) // 50, 2)
        ax.plot(np.arange(k - 1, len(y)), np.convolve(y, np.ones(k) / k, mode="valid"), lw=1.5,
                label=f"mean of {k}")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_title(f"pydl train {title}")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


class JointOptimizer:
    """Several optimizers (one per model of a recipe) whose state rides in the checkpoint's
    `extra`: pass `extra={"opt": joint.state()}` to `end_epoch`, then after `resume`
    call `joint.load(run.recipe_state.get("opt"))`."""

    def __init__(self, opts: dict):
        self.opts = opts

    def state(self):
        return {name: o.state_dict() for name, o in self.opts.items()}

    def load(self, state):
        if state:
            for name, o in self.opts.items():
                sd = state[name]
                sd["state"] = {int(k): v for k, v in sd["state"].items()}  # JSON made them strings
                o.load_state_dict(sd)


def own_images(family: str, path: str, seed: int):
    """The training images of an .npz (pydl.data.files.load_images, labels not needed) for
    the generative recipes, which draw one-channel square images."""
    from ..data.files import load_images

    x = load_images(path, test_fraction=0.0, seed=seed, labels=False)[0]
    if x.shape[1] != 1 or x.shape[2] != x.shape[3]:
        raise ValueError(f"{family} recipe: expects one-channel square images, got "
                         f"{x.shape[1:]} in {path!r}")
    return x


def epoch_rng(seed: int, epoch: int, stream: int = 0):
    """A NumPy generator for one epoch of one random stream; it depends only on
    (seed, epoch, stream), so a resumed run draws what an uninterrupted one does."""
    import numpy as np

    return np.random.default_rng([seed, epoch, stream])


def batches(n: int, batch_size: int, seed: int, epoch: int):
    """Index batches of one shuffled epoch; the order depends only on (seed, epoch), so a
    resumed run sees the same batches as an uninterrupted one."""
    import numpy as np

    order = np.random.default_rng([seed, epoch]).permutation(n)
    return [order[i:i + batch_size] for i in range(0, n, batch_size)]
