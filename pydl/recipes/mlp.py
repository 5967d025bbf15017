"""`pydl train mlp`: an MLP on scikit-learn's digits; AdamW with weight decay, dropout
and a cosine learning-rate schedule."""
from __future__ import annotations

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
        lr: float | None = None, stop_after: int | None = None, data: str | None = None) -> dict:
    """Train and evaluate; `stop_after` ends the run early (as if interrupted) after that
    many epochs, leaving a checkpoint that `resume=True` continues from. data: an .npz of
    your own labelled images instead of the digits (see pydl.data.files)."""
    import pydl
    from pydl.data import load_digits
    from pydl.data.files import load_images
    from pydl.models import MLP

    cfg = dict(DEFAULTS, epochs=epochs or DEFAULTS["epochs"], batch_size=batch_size or DEFAULTS["batch_size"],
               lr=lr or DEFAULTS["lr"], seed=seed)
    pydl.manual_seed(seed)
    from .cnn import train_classifier  # shared with the image recipes (cnn imports evaluate from here)

    arrays = load_digits(seed=seed) if data is None else load_images(data, seed=seed, flatten=True)
    if data is not None:
        cfg["data"] = data
    model = MLP(arrays[0].shape[1], tuple(cfg["hidden"]), int(arrays[1].max()) + 1,
                dropout=cfg["dropout"]).to(device)
    return train_classifier("mlp", model, dict(cfg, shift=0), device, out, progress, resume,
                            stop_after, arrays)


QUICK = {"epochs": 2}
