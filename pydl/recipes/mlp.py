"""`pydl train mlp`: an MLP on scikit-learn's digits, minibatch Adam."""
from __future__ import annotations

import json
import os
import time

import numpy as np


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


def run(epochs: int = 20, batch_size: int = 64, lr: float = 1e-3, seed: int = 0, device: str = "cpu",
        out: str | None = None, progress: bool = True) -> dict:
    import pydl
    import pydl.nn.functional as F
    from pydl.data import load_digits
    from pydl.models import MLP

    pydl.manual_seed(seed)
    x_train, y_train, x_test, y_test = load_digits(seed=seed)
    model = MLP(64, (128, 64), 10).to(device)
    opt = pydl.optim.Adam(model.parameters(), lr=lr)
    rng = np.random.default_rng(seed)
    history = []
    start = time.perf_counter()
    from rich.progress import Progress

    with Progress(disable=not progress, transient=True) as bar:
        task = bar.add_task("mlp", total=epochs)
        for epoch in range(epochs):
            order = rng.permutation(len(x_train))
            total, count = 0.0, 0
            for i in range(0, len(order), batch_size):
                idx = order[i:i + batch_size]
                xb = pydl.tensor(x_train[idx], device=device)
                yb = pydl.tensor(y_train[idx], device=device)
                loss = F.cross_entropy(model(xb), yb)
                opt.zero_grad()
                loss.backward()
                opt.step()
                total += loss.item() * len(idx)
                count += len(idx)
            acc = evaluate(model, x_test, y_test, device)
            history.append({"epoch": epoch + 1, "train_loss": total / count, "test_accuracy": acc})
            bar.update(task, advance=1, description=f"mlp epoch {epoch + 1} loss {total / count:.3f} "
                                                    f"acc {acc:.3f}")
    metrics = {"family": "mlp", "device": device, "epochs": epochs, "seconds": time.perf_counter() - start,
               "test_accuracy": history[-1]["test_accuracy"], "history": history}
    if out:
        os.makedirs(out, exist_ok=True)
        with open(os.path.join(out, "metrics.json"), "w") as f:
            json.dump(metrics, f, indent=2)
    return metrics
