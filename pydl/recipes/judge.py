"""The judge of the generative families: the DNN family's digits classifier (the MLP
recipe's model and settings, seed 0, >= 97% test accuracy) scores generated samples.

    scores = judge(samples01, device, out)   # samples in the [0, 1] pixel range
    -> {"classes_covered", "max_class_fraction", "mean_top_prob", "judge_accuracy"}

The classifier is trained once per process and device (seconds) and cached in `out` as
judge.safetensors, which later runs in that folder load instead of training."""
from __future__ import annotations

import os

import numpy as np

_CACHE: dict = {}
FILE = "judge.safetensors"


def classifier(device: str = "cpu", out: str | None = None, seed: int = 0):
    """(model, test_accuracy): the MLP recipe's model trained with its defaults."""
    import pydl
    import pydl.nn.functional as F
    from pydl.data import load_digits
    from pydl.models import MLP

    from . import mlp
    from ._common import batches

    if device in _CACHE:
        return _CACHE[device]
    cfg = mlp.DEFAULTS
    x_train, y_train, x_test, y_test = load_digits(seed=seed)
    model = MLP(64, tuple(cfg["hidden"]), 10, dropout=cfg["dropout"]).to(device)
    path = os.path.join(out, FILE) if out else None
    if path and os.path.exists(path):
        model.load_state_dict(pydl.load(path, device=device))
    else:
        state = pydl.get_rng_state()
        pydl.manual_seed(seed)
        opt = pydl.optim.AdamW(model.parameters(), lr=cfg["lr"], weight_decay=cfg["weight_decay"])
        sched = pydl.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg["epochs"])
        for epoch in range(cfg["epochs"]):
            for idx in batches(len(x_train), cfg["batch_size"], seed, epoch):
                loss = F.cross_entropy(model(pydl.tensor(x_train[idx], device=device)),
                                       pydl.tensor(y_train[idx], device=device))
                opt.zero_grad()
                loss.backward()
                opt.step()
            sched.step()
        pydl.set_rng_state(state)
        if path:
            pydl.save(model.state_dict(), path)
    model.eval()
    acc = mlp.evaluate(model, x_test, y_test, device)
    model.eval()
    _CACHE[device] = (model, acc)
    return model, acc


def judge(samples01, device: str = "cpu", out: str | None = None) -> dict:
    """Classify samples (N, 64) or (N, 1, 8, 8) in [0, 1]: how many classes appear, the
    largest class's share and the mean top-class probability."""
    import pydl

    x = np.clip(np.asarray(samples01, dtype=np.float32).reshape(len(samples01), -1), 0.0, 1.0)
    if x.shape[1] != 64:
        raise ValueError(f"judge: expected 8x8 samples (64 pixels), got {x.shape[1]}")
    model, acc = classifier(device, out)
    with pydl.no_grad():
        p = pydl.nn.functional.softmax(model(pydl.tensor(x, device=device)), dim=1).cpu().numpy()
    counts = np.bincount(p.argmax(axis=1), minlength=10)
    return {"classes_covered": int((counts > 0).sum()),
            "max_class_fraction": float(counts.max() / len(x)),
            "mean_top_prob": float(p.max(axis=1).mean()),
            "class_counts": counts.tolist(), "judge_accuracy": float(acc)}


def save_grid(images01, path: str, title: str, cols: int = 10):
    """A PNG grid of (N, 1, H, W) or (N, H*W) square images in [0, 1] (matplotlib, Agg)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = np.asarray(images01, dtype=np.float32)
    side = int(round(np.sqrt(x[0].size)))
    x = x.reshape(len(x), side, side)
    rows = (len(x) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 0.8, rows * 0.8), dpi=100, squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < len(x):
            ax.imshow(x[i], cmap="gray_r", vmin=0, vmax=1)
    fig.suptitle(title, fontsize=9)
    fig.savefig(path)
    plt.close(fig)
