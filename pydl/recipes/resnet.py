"""`pydl train resnet`: the small ResNet (3x3 stem, basic blocks with BatchNorm and
projection shortcuts) on scikit-learn's 8x8 digits as images; AdamW with a cosine
learning-rate schedule, and training images shifted at random by up to one pixel."""
from __future__ import annotations

from .cnn import train_classifier

BAR = ("test_accuracy", 0.98, True)  # metric, threshold, higher is better
DEFAULTS = {"layers": [1, 1, 1], "widths": [16, 32, 64], "block": "basic", "lr": 3e-3,
            "weight_decay": 1e-4, "batch_size": 64, "epochs": 20, "shift": 1}


def run(epochs: int | None = None, seed: int = 0, device: str = "cpu", out: str | None = None,
        progress: bool = True, resume: bool = False, batch_size: int | None = None,
        lr: float | None = None, stop_after: int | None = None, data: str | None = None,
        **options) -> dict:
    """Train and evaluate; `options` override DEFAULTS (layers, widths, block, shift, ...);
    `stop_after` ends the run early (as if interrupted) after that many epochs, leaving a
    checkpoint that `resume=True` continues from. data: an .npz of your own labelled images
    instead of the digits (see pydl.data.files)."""
    import pydl
    from pydl.data import load_digits
    from pydl.data.files import load_images
    from pydl.models import resnet_small

    unknown = set(options) - set(DEFAULTS)
    if unknown:
        raise ValueError(f"resnet recipe: unknown options {sorted(unknown)}")
    cfg = dict(DEFAULTS, **options)
    cfg.update(epochs=epochs or cfg["epochs"], batch_size=batch_size or cfg["batch_size"],
               lr=lr or cfg["lr"], seed=seed)
    pydl.manual_seed(seed)
    arrays = load_digits(seed=seed, flatten=False) if data is None else load_images(data, seed=seed)
    if data is not None:
        cfg["data"] = data
    model = resnet_small(int(arrays[1].max()) + 1, arrays[0].shape[1], layers=tuple(cfg["layers"]),
                         widths=tuple(cfg["widths"]), block=cfg["block"]).to(device)
    return train_classifier("resnet", model, cfg, device, out, progress, resume, stop_after,
                            arrays)


QUICK = {"epochs": 2}
