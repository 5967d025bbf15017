"""`pydl train mlp`: an MLP on scikit-learn's digits; AdamW with weight decay, dropout
and a cosine learning-rate schedule."""
from __future__ import annotations

import numpy as np

from ._common import Run, batches

BAR = ("test_accuracy", 0.97, True)  # metric, threshold, higher is better
DEFAULTS = {"hidden": [256, 128], "dropout": 0.1, "lr": 2e-3, "weight_decay": 1e-4,
            "batch_size": 64, "epochs": 40}


def evaluate(model, x, y, device, batch_size=512) -> float:
    import pydl

    model.eval()
    correct = 0
    with pydl.no_grad():
        for i in range(0, len(x), batch_size):
            logits = model(pydl.tensor(x[i:i + batch_size], device=device))
            correct += int((logits.argmax(dim=1).numpy() == y[i:i + batch_size]).sum())
    model.train()
    return correct / len(x)


def run(epochs: int | None = None, seed: int = 0, device: str = "cpu", out: str | None = None,
        progress: bool = True, resume: bool = False, batch_size: int | None = None,
        lr: float | None = None, stop_after: int | None = None) -> dict:
    """Train and evaluate; `stop_after` ends the run early (as if interrupted) after that
    many epochs, leaving a checkpoint that `resume=True` continues from."""
    import pydl
    import pydl.nn.functional as F
    from pydl.data import load_digits
    from pydl.models import MLP

    cfg = dict(DEFAULTS, epochs=epochs or DEFAULTS["epochs"], batch_size=batch_size or DEFAULTS["batch_size"],
               lr=lr or DEFAULTS["lr"], seed=seed)
    pydl.manual_seed(seed)
    x_train, y_train, x_test, y_test = load_digits(seed=seed)
    model = MLP(64, tuple(cfg["hidden"]), 10, dropout=cfg["dropout"]).to(device)
    opt = pydl.optim.AdamW(model.parameters(), lr=cfg["lr"], weight_decay=cfg["weight_decay"])
    sched = pydl.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg["epochs"])
    run_ = Run("mlp", out, progress, total=cfg["epochs"])
    start = run_.resume(model, opt, sched, cfg) if resume else 0
    end = cfg["epochs"] if stop_after is None else min(cfg["epochs"], stop_after)
    with run_:
        for epoch in range(start, end):
            total, count = 0.0, 0
            for idx in batches(len(x_train), cfg["batch_size"], seed, epoch):
                xb = pydl.tensor(x_train[idx], device=device)
                yb = pydl.tensor(y_train[idx], device=device)
                loss = F.cross_entropy(model(xb), yb)
                opt.zero_grad()
                loss.backward()
                opt.step()
                value = loss.item()
                run_.log_loss(value)
                total += value * len(idx)
                count += len(idx)
            sched.step()
            acc = evaluate(model, x_test, y_test, device)
            run_.end_epoch(epoch + 1, model=model, optimizer=opt, scheduler=sched, config=cfg,
                           train_loss=total / count, test_accuracy=acc)
    acc = evaluate(model, x_test, y_test, device)
    return run_.finish({"device": device, "epochs": run_.history[-1]["epoch"] if run_.history else 0,
                        "test_accuracy": acc, "config": cfg})
QUICK = {"epochs": 2}
