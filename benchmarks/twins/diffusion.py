"""PyTorch twin of the diffusion recipe: the same U-Net denoiser (names match pydl's, so the
initial weights load from pydl's state dict), the same batches, steps t and noise, the same
Adam + cosine schedule. `python benchmarks/twins/diffusion.py` prints the losses."""
import math
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(1, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from _load import rel  # noqa: E402
from gan import copy_state  # noqa: E402

nn = torch.nn


def timestep_embedding(t, dim):
    half = dim // 2
    t = torch.as_tensor(t, dtype=torch.float64)
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float64, device=t.device) / half)
    args = t[:, None] * freqs[None]
    return torch.cat([torch.sin(args), torch.cos(args)], dim=1).float()


class ResBlock(nn.Module):
    def __init__(self, cin, cout, tdim):
        super().__init__()
        self.norm1, self.conv1 = nn.BatchNorm2d(cin), nn.Conv2d(cin, cout, 3, padding=1)
        self.temb = nn.Linear(tdim, cout)
        self.norm2, self.conv2 = nn.BatchNorm2d(cout), nn.Conv2d(cout, cout, 3, padding=1)
        self.act = nn.SiLU()
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x, temb):
        h = self.conv1(self.act(self.norm1(x)))
        h = h + self.temb(temb)[:, :, None, None]
        h = self.conv2(self.act(self.norm2(h)))
        return h + self.skip(x)


class UNet(nn.Module):
    def __init__(self, in_channels=1, channels=32, tdim=64):
        super().__init__()
        c, t2 = channels, 2 * tdim
        self.tdim = tdim
        self.time = nn.Sequential(nn.Linear(tdim, t2), nn.SiLU(), nn.Linear(t2, t2))
        self.inc = nn.Conv2d(in_channels, c, 3, padding=1)
        self.down1 = ResBlock(c, c, t2)
        self.downsample = nn.Conv2d(c, c, 3, stride=2, padding=1)
        self.down2 = ResBlock(c, 2 * c, t2)
        self.mid = ResBlock(2 * c, 2 * c, t2)
        self.up2 = ResBlock(4 * c, 2 * c, t2)
        self.upsample = nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"),
                                      nn.Conv2d(2 * c, c, 3, padding=1))
        self.up1 = ResBlock(2 * c, c, t2)
        self.out = nn.Sequential(nn.BatchNorm2d(c), nn.SiLU(), nn.Conv2d(c, in_channels, 3, padding=1))

    def forward(self, x, t):
        temb = self.time(timestep_embedding(t, self.tdim).to(x.device))
        h1 = self.down1(self.inc(x), temb)
        h2 = self.down2(self.downsample(h1), temb)
        m = self.mid(h2, temb)
        u2 = self.up2(torch.cat([m, h2], 1), temb)
        return self.out(self.up1(torch.cat([self.upsample(u2), h1], 1), temb))


class Twin(nn.Module):
    def __init__(self, channels):
        super().__init__()
        self.model = UNet(1, channels)


def compare(steps: int = 20, seed: int = 0, channels: int | None = None, batch_size: int | None = None):
    """[(pydl_loss, torch_loss)] for the first `steps` training steps."""
    import pydl
    from pydl.data import load_digits
    from pydl.models.diffusion import DDPM
    from pydl.recipes._common import batches
    from pydl.recipes.diffusion import DEFAULTS as cfg

    channels = channels or cfg["channels"]
    pydl.manual_seed(seed)
    x, _, _, _ = load_digits(seed=seed, flatten=False)
    x = x * 2.0 - 1.0
    ddpm = DDPM((1, 8, 8), channels, cfg["steps"], cfg["schedule"])
    twin = copy_state(ddpm, Twin(channels))
    opt = pydl.optim.Adam(ddpm.parameters(), lr=cfg["lr"])
    topt = torch.optim.Adam(twin.parameters(), lr=cfg["lr"])
    sched = pydl.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=4)
    tsched = torch.optim.lr_scheduler.CosineAnnealingLR(topt, T_max=4)
    ab = ddpm.schedule.alpha_bar
    rng = np.random.default_rng(seed)
    out, epoch = [], 0
    while len(out) < steps:
        for idx in batches(len(x), batch_size or cfg["batch_size"], seed, epoch):
            if len(out) == steps:
                break
            t = rng.integers(0, cfg["steps"], size=len(idx))
            noise = rng.standard_normal(x[idx].shape).astype(np.float32)
            loss = ddpm.loss(pydl.tensor(x[idx]), t=t, noise=pydl.tensor(noise))
            opt.zero_grad()
            loss.backward()
            opt.step()
            a = torch.from_numpy(np.sqrt(ab[t]).astype(np.float32))[:, None, None, None]
            b = torch.from_numpy(np.sqrt(1 - ab[t]).astype(np.float32))[:, None, None, None]
            tn = torch.from_numpy(noise)
            tloss = torch.nn.functional.mse_loss(twin.model(a * torch.from_numpy(x[idx]) + b * tn, t), tn)
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
