"""PyTorch twin of the MLP recipe: same architecture and initial weights (copied from
pydl's state dict), same batches, same AdamW + cosine schedule; dropout off so both
sides compute the same function. `python benchmarks/twins/mlp.py` prints the losses."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(1, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from _load import mlp_from, rel  # noqa: E402


def compare(steps: int = 20, seed: int = 0):
    """[(pydl_loss, torch_loss)] for the first `steps` training steps."""
    import pydl
    import pydl.nn.functional as F
    from pydl.data import load_digits
    from pydl.models import MLP
    from pydl.recipes._common import batches
    from pydl.recipes.mlp import DEFAULTS as cfg

    pydl.manual_seed(seed)
    x, y, _, _ = load_digits(seed=seed)
    model = MLP(64, tuple(cfg["hidden"]), 10)
    twin = mlp_from(model)
    opt = pydl.optim.AdamW(model.parameters(), lr=cfg["lr"], weight_decay=cfg["weight_decay"])
    topt = torch.optim.AdamW(twin.parameters(), lr=cfg["lr"], weight_decay=cfg["weight_decay"])
    sched = pydl.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=4)
    tsched = torch.optim.lr_scheduler.CosineAnnealingLR(topt, T_max=4)
    out, epoch = [], 0
    while len(out) < steps:
        for idx in batches(len(x), cfg["batch_size"], seed, epoch):
            if len(out) == steps:
                break
            loss = F.cross_entropy(model(pydl.tensor(x[idx])), pydl.tensor(y[idx]))
            opt.zero_grad()
            loss.backward()
            opt.step()
            tloss = torch.nn.functional.cross_entropy(twin(torch.from_numpy(x[idx])), torch.from_numpy(y[idx]))
            topt.zero_grad()
            tloss.backward()
            topt.step()
            out.append((loss.item(), tloss.item()))
        sched.step()
        tsched.step()
        epoch += 1
    return out


if __name__ == "__main__":
    for i, (a, b) in enumerate(compare(40)):
        print(f"step {i:3d}  pydl {a:.6f}  torch {b:.6f}  rel {rel(a, b):.2e}")
