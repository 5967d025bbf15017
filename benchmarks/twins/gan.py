"""PyTorch twin of the GAN recipe: the same generator/discriminator (MLP or DCGAN pair) with
the initial weights copied from pydl's state dict, the same batches and latent draws, the
same alternating Adam updates. `python benchmarks/twins/gan.py [mlp|dcgan]` prints the losses."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(1, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from _load import rel  # noqa: E402

nn = torch.nn


def torch_pair(arch, latent, width):
    """Torch modules whose state-dict names match pydl.models.gan's."""
    if arch == "mlp":
        class G(nn.Module):
            def __init__(self):
                super().__init__()
                self.net = nn.Sequential(nn.Linear(latent, width), nn.LeakyReLU(0.2), nn.Linear(width, width),
                                         nn.LeakyReLU(0.2), nn.Linear(width, 64), nn.Tanh())

            def forward(self, z):
                return self.net(z).reshape(z.shape[0], 1, 8, 8)

        class D(nn.Module):
            def __init__(self):
                super().__init__()
                self.net = nn.Sequential(nn.Linear(64, width), nn.LeakyReLU(0.2), nn.Linear(width, width),
                                         nn.LeakyReLU(0.2), nn.Linear(width, 1))

            def forward(self, x):
                return self.net(x.reshape(x.shape[0], -1))
    else:
        c = width

        class G(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = nn.Linear(latent, 4 * c * 4)
                self.net = nn.Sequential(nn.BatchNorm2d(4 * c), nn.ReLU(),
                                         nn.ConvTranspose2d(4 * c, 2 * c, 4, 2, 1), nn.BatchNorm2d(2 * c),
                                         nn.ReLU(), nn.ConvTranspose2d(2 * c, 1, 4, 2, 1), nn.Tanh())

            def forward(self, z):
                return self.net(self.fc(z).reshape(z.shape[0], 4 * c, 2, 2))

        class D(nn.Module):
            def __init__(self):
                super().__init__()
                self.net = nn.Sequential(nn.Conv2d(1, c, 4, 2, 1), nn.LeakyReLU(0.2),
                                         nn.Conv2d(c, 2 * c, 4, 2, 1), nn.BatchNorm2d(2 * c),
                                         nn.LeakyReLU(0.2), nn.Flatten(), nn.Linear(2 * c * 4, 1))

            def forward(self, x):
                return self.net(x)

    class Pair(nn.Module):
        def __init__(self):
            super().__init__()
            self.generator, self.discriminator = G(), D()

    return Pair()


def copy_state(pydl_module, torch_module):
    """Load pydl's state dict into the torch module of the same names (float32)."""
    state = {k: torch.from_numpy(np.array(v.detach().cpu().numpy())) for k, v in pydl_module.state_dict().items()}
    missing, unexpected = torch_module.load_state_dict(state, strict=False)
    assert not unexpected and all(k.endswith("num_batches_tracked") for k in missing), (missing, unexpected)
    return torch_module


def compare(steps: int = 20, seed: int = 0, arch: str = "mlp", width: int | None = None):
    """[((pydl_d, pydl_g), (torch_d, torch_g))] for the first `steps` alternating updates."""
    import pydl
    from pydl.data import load_digits
    from pydl.models.gan import GAN
    from pydl.recipes._common import batches
    from pydl.recipes.gan import DEFAULTS as cfg
    from pydl.recipes.gan import train_step

    width = width or (cfg["width"] if arch == "mlp" else 32)
    pydl.manual_seed(seed)
    x, _, _, _ = load_digits(seed=seed, flatten=False)
    x = x * 2.0 - 1.0
    gan = GAN(arch, cfg["latent"], width)
    twin = copy_state(gan, torch_pair(arch, cfg["latent"], width))
    betas = tuple(cfg["betas"])
    opt_g = pydl.optim.Adam(gan.generator.parameters(), lr=cfg["lr"], betas=betas)
    opt_d = pydl.optim.Adam(gan.discriminator.parameters(), lr=cfg["lr"], betas=betas)
    topt_g = torch.optim.Adam(twin.generator.parameters(), lr=cfg["lr"], betas=betas)
    topt_d = torch.optim.Adam(twin.discriminator.parameters(), lr=cfg["lr"], betas=betas)
    bce = torch.nn.functional.binary_cross_entropy_with_logits
    rng = np.random.default_rng(seed)
    out, epoch = [], 0
    while len(out) < steps:
        for idx in batches(len(x), cfg["batch_size"], seed, epoch):
            if len(out) == steps:
                break
            z = rng.standard_normal((len(idx), cfg["latent"])).astype(np.float32)
            ours = train_step(gan, opt_d, opt_g, pydl.tensor(x[idx]), "cpu", z=pydl.tensor(z))
            real, fake = torch.from_numpy(x[idx]), twin.generator(torch.from_numpy(z))
            lr_, lf = twin.discriminator(real), twin.discriminator(fake.detach())
            d_loss = bce(lr_, torch.ones_like(lr_)) + bce(lf, torch.zeros_like(lf))
            topt_d.zero_grad()
            d_loss.backward()
            topt_d.step()
            lf = twin.discriminator(fake)
            g_loss = bce(lf, torch.ones_like(lf))
            topt_g.zero_grad()
            g_loss.backward()
            topt_g.step()
            out.append((ours, (d_loss.item(), g_loss.item())))
        epoch += 1
    return out


if __name__ == "__main__":
    for i, ((d, g), (td, tg)) in enumerate(compare(40, arch=sys.argv[1] if len(sys.argv) > 1 else "mlp")):
        print(f"step {i:3d}  d {d:.6f}/{td:.6f} ({rel(d, td):.1e})  g {g:.6f}/{tg:.6f} ({rel(g, tg):.1e})")
