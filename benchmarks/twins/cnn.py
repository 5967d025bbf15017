"""PyTorch twin of the CNN recipe: the same LeNet (weights copied from pydl's state dict),
the same shifted batches, the same AdamW + cosine schedule; dropout off so both sides
compute the same function. `python benchmarks/twins/cnn.py` prints the losses."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(1, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from _load import rel  # noqa: E402


class TorchLeNet(torch.nn.Module):
    """pydl.models.LeNet's layout with the same module names (features.*, classifier.*)."""

    def __init__(self, in_channels=1, num_classes=10, image_size=8, channels=(32, 64),
                 hidden=(128,)):
        super().__init__()
        nn = torch.nn
        layers, c = [], in_channels
        for width in channels:
            layers += [nn.Conv2d(c, width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)]
            c = width
        self.features = nn.Sequential(*layers)
        side = image_size // 2 ** len(channels)
        dense, width = [nn.Flatten()], c * side * side
        for h in hidden:
            dense += [nn.Linear(width, h), nn.ReLU()]
            width = h
        dense.append(nn.Linear(width, num_classes))
        self.classifier = nn.Sequential(*dense)

    def forward(self, x):
        return self.classifier(self.features(x))


def load_from(twin: torch.nn.Module, model) -> torch.nn.Module:
    """Copy every parameter and buffer of the pydl `model` into `twin` (same names)."""
    state = {k: torch.from_numpy(np.ascontiguousarray(v.detach().cpu().numpy()))
             for k, v in model.state_dict().items()}
    twin.load_state_dict(state, strict=True)
    return twin


def compare_training(model, twin, cfg: dict, steps: int = 20, seed: int = 0, batch_size=None):
    """[(pydl_loss, torch_loss)] over the first `steps` steps of the recipes' training loop
    (shifted digits, AdamW, cosine schedule stepped per epoch) on both models."""
    import pydl
    import pydl.nn.functional as F
    from pydl.data import load_digits
    from pydl.recipes._common import batches
    from pydl.recipes.cnn import shift_images

    x, y, _, _ = load_digits(seed=seed, flatten=False)
    batch_size = batch_size or cfg["batch_size"]
    opt = pydl.optim.AdamW(model.parameters(), lr=cfg["lr"], weight_decay=cfg["weight_decay"])
    topt = torch.optim.AdamW(twin.parameters(), lr=cfg["lr"], weight_decay=cfg["weight_decay"])
    sched = pydl.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=4)
    tsched = torch.optim.lr_scheduler.CosineAnnealingLR(topt, T_max=4)
    model.train()
    twin.train()
    out, epoch = [], 0
    while len(out) < steps:
        xs = shift_images(x, cfg["shift"], seed, epoch)
        for idx in batches(len(xs), batch_size, seed, epoch):
            if len(out) == steps:
                break
            loss = F.cross_entropy(model(pydl.tensor(xs[idx])), pydl.tensor(y[idx]))
            opt.zero_grad()
            loss.backward()
            opt.step()
            tloss = torch.nn.functional.cross_entropy(twin(torch.from_numpy(xs[idx])),
                                                      torch.from_numpy(y[idx]))
            topt.zero_grad()
            tloss.backward()
            topt.step()
            out.append((loss.item(), tloss.item()))
        sched.step()
        tsched.step()
        epoch += 1
    return out


def compare(steps: int = 20, seed: int = 0, batch_size=None, **arch):
    """The CNN recipe's model (dropout off) against its twin."""
    import pydl
    from pydl.models import LeNet
    from pydl.recipes.cnn import DEFAULTS as cfg

    pydl.manual_seed(seed)
    arch = dict({"channels": tuple(cfg["channels"]), "hidden": tuple(cfg["hidden"])}, **arch)
    model = LeNet(1, 10, 8, **arch)
    twin = load_from(TorchLeNet(1, 10, 8, **arch), model)
    return compare_training(model, twin, cfg, steps, seed, batch_size)


if __name__ == "__main__":
    for i, (a, b) in enumerate(compare(40)):
        print(f"step {i:3d}  pydl {a:.6f}  torch {b:.6f}  rel {rel(a, b):.2e}")
