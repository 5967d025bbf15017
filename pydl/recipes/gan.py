"""`pydl train gan`: a GAN on scikit-learn's digits scaled to [-1, 1]; non-saturating loss
(BCE with logits), alternating discriminator/generator Adam updates. The DNN family's
digits classifier judges the samples (pydl.recipes.judge); samples.png shows a grid."""
from __future__ import annotations

import os


from ._common import Run, batches, own_images

# The judge (the DNN recipe's digits classifier) must see all ten classes, none in more than
# a quarter of the samples, and be confident: (metric, threshold, higher is better).
BAR = (("classes_covered", 10.0, True), ("max_class_fraction", 0.25, False),
       ("mean_top_prob", 0.7, True))
DEFAULTS = {"arch": "mlp", "latent": 32, "width": 256, "lr": 2e-4, "betas": [0.5, 0.999],
            "batch_size": 64, "epochs": 150, "samples": 1000}
QUICK = {"epochs": 2, "samples": 100}


def train_step(gan, opt_d, opt_g, real, device, z=None):
    """One alternating update (discriminator, then generator on the same fakes); returns
    (d_loss, g_loss) as floats. `z`: the latent batch (default: drawn from pydl.randn)."""
    import pydl
    from pydl.models.gan import discriminator_loss, generator_loss

    if z is None:
        z = pydl.randn(real.shape[0], gan.latent, device=device)
    fake = gan.generator(z)
    d_loss = discriminator_loss(gan.discriminator, real, fake)
    opt_d.zero_grad()
    d_loss.backward()
    opt_d.step()
    g_loss = generator_loss(gan.discriminator, fake)
    opt_g.zero_grad()
    g_loss.backward()
    opt_g.step()
    return d_loss.item(), g_loss.item()


def run(epochs: int | None = None, seed: int = 0, device: str = "cpu", out: str | None = None,
        progress: bool = True, resume: bool = False, arch: str | None = None,
        samples: int | None = None, stop_after: int | None = None, data: str | None = None) -> dict:
    """data: an .npz of your own one-channel square images (see pydl.data.files) instead of
    the digits; the digits judge does not apply to them, so the run reports its losses."""
    import pydl
    from pydl.data import load_digits
    from pydl.models.gan import GAN

    from .judge import judge, save_grid

    cfg = dict(DEFAULTS, epochs=epochs or DEFAULTS["epochs"], arch=arch or DEFAULTS["arch"],
               samples=samples or DEFAULTS["samples"], seed=seed)
    pydl.manual_seed(seed)
    x_train = own_images("gan", data, seed) if data else load_digits(seed=seed, flatten=False)[0]
    if data:
        cfg["data"] = data
    x_train = x_train * 2.0 - 1.0
    gan = GAN(cfg["arch"], cfg["latent"], cfg["width"], x_train.shape[-1]).to(device)
    opt_g = pydl.optim.Adam(gan.generator.parameters(), lr=cfg["lr"], betas=tuple(cfg["betas"]))
    opt_d = pydl.optim.Adam(gan.discriminator.parameters(), lr=cfg["lr"], betas=tuple(cfg["betas"]))
    run_ = Run("gan", out, progress, total=cfg["epochs"])
    start = run_.resume(gan, opt_g, None, cfg) if resume else 0
    if start and "opt_d" in run_.recipe_state:
        opt_d.load_state_dict(run_.recipe_state["opt_d"])
    end = cfg["epochs"] if stop_after is None else min(cfg["epochs"], stop_after)
    with run_:
        for epoch in range(start, end):
            dl = gl = 0.0
            idxs = [i for i in batches(len(x_train), cfg["batch_size"], seed, epoch)
                    if len(i) == cfg["batch_size"]]
            for idx in idxs:
                d, g = train_step(gan, opt_d, opt_g, pydl.tensor(x_train[idx], device=device), device)
                run_.log_loss(g)
                dl, gl = dl + d, gl + g
            run_.end_epoch(epoch + 1, model=gan, optimizer=opt_g, config=cfg,
                           extra={"opt_d": opt_d.state_dict()},
                           d_loss=dl / len(idxs), g_loss=gl / len(idxs))
    gan.eval()
    x = (gan.sample(cfg["samples"], device).cpu().numpy() + 1.0) / 2.0
    gan.train()
    scores = judge(x, device, out) if not data else \
        {k: run_.history[-1][k] for k in ("d_loss", "g_loss") if run_.history}
    if out:
        save_grid(x[:100], os.path.join(out, "samples.png"), "pydl train gan: samples")
    return run_.finish({"device": device, "epochs": run_.history[-1]["epoch"] if run_.history else 0,
                        **scores, "config": cfg})
