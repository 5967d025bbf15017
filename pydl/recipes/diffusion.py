"""`pydl train diffusion`: a DDPM on scikit-learn's digits (1x8x8 scaled to [-1, 1]): a
small U-Net predicts the noise (MSE), samples come from DDIM (fewer steps) or ancestral
sampling. The DNN family's digits classifier judges them (pydl.recipes.judge);
samples.png shows a grid."""
from __future__ import annotations

import os

import numpy as np

from ._common import Run, batches, own_images

# The judge (the DNN recipe's digits classifier) must see all ten classes, none in more than
# a quarter of the samples, and be confident: (metric, threshold, higher is better).
BAR = (("classes_covered", 10.0, True), ("max_class_fraction", 0.25, False),
       ("mean_top_prob", 0.8, True))
DEFAULTS = {"channels": 16, "steps": 200, "schedule": "cosine", "lr": 2e-3, "batch_size": 128,
            "epochs": 20, "samples": 500, "sampler": "ddim", "ddim_steps": 25}
QUICK = {"epochs": 1, "samples": 50, "ddim_steps": 5}


def run(epochs: int | None = None, seed: int = 0, device: str = "cpu", out: str | None = None,
        progress: bool = True, resume: bool = False, samples: int | None = None,
        sampler: str | None = None, ddim_steps: int | None = None,
        stop_after: int | None = None, data: str | None = None) -> dict:
    """data: an .npz of your own one-channel square images, side divisible by 2 (see
    pydl.data.files), instead of the digits; the digits judge does not apply to them, so
    the run reports its loss."""
    import pydl
    from pydl.data import load_digits
    from pydl.models.diffusion import DDPM

    from .judge import judge, save_grid

    cfg = dict(DEFAULTS, epochs=epochs or DEFAULTS["epochs"], samples=samples or DEFAULTS["samples"],
               sampler=sampler or DEFAULTS["sampler"], ddim_steps=ddim_steps or DEFAULTS["ddim_steps"],
               seed=seed)
    if cfg["sampler"] not in ("ddim", "ancestral"):
        raise ValueError(f"diffusion: sampler must be 'ddim' or 'ancestral', got {cfg['sampler']!r}")
    pydl.manual_seed(seed)
    x_train = own_images("diffusion", data, seed) if data else load_digits(seed=seed, flatten=False)[0]
    if data:
        cfg["data"] = data
        if x_train.shape[-1] % 2:
            raise ValueError(f"diffusion recipe: the U-Net needs an even image side, got "
                             f"{x_train.shape[-1]}")
    x_train = x_train * 2.0 - 1.0
    ddpm = DDPM(x_train.shape[1:], cfg["channels"], cfg["steps"], cfg["schedule"]).to(device)
    opt = pydl.optim.Adam(ddpm.parameters(), lr=cfg["lr"])
    sched = pydl.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg["epochs"])
    run_ = Run("diffusion", out, progress, total=cfg["epochs"])
    start = run_.resume(ddpm, opt, sched, cfg) if resume else 0
    end = cfg["epochs"] if stop_after is None else min(cfg["epochs"], stop_after)
    with run_:
        for epoch in range(start, end):
            rng = np.random.default_rng([seed, epoch, 1])
            total, count = 0.0, 0
            for idx in batches(len(x_train), cfg["batch_size"], seed, epoch):
                loss = ddpm.loss(pydl.tensor(x_train[idx], device=device), rng=rng)
                opt.zero_grad()
                loss.backward()
                opt.step()
                value = loss.item()
                run_.log_loss(value)
                total, count = total + value * len(idx), count + len(idx)
            sched.step()
            run_.end_epoch(epoch + 1, model=ddpm, optimizer=opt, scheduler=sched, config=cfg,
                           train_loss=total / count)
    if cfg["sampler"] == "ddim":
        x = ddpm.ddim_sample(cfg["samples"], cfg["ddim_steps"], device=device, seed=seed)
    else:
        x = ddpm.sample(cfg["samples"], device=device, seed=seed)
    x = (x + 1.0) / 2.0
    scores = judge(x, device, out) if not data else \
        {"train_loss": run_.history[-1]["train_loss"] for _ in run_.history[-1:]}
    if out:
        save_grid(x[:100], os.path.join(out, "samples.png"), f"pydl train diffusion: {cfg['sampler']} samples")
    return run_.finish({"device": device, "epochs": run_.history[-1]["epoch"] if run_.history else 0,
                        **scores, "config": cfg})
