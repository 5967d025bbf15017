"""Diffusion family (DDPM): a noise schedule, forward noising q(x_t | x_0), a small U-Net
denoiser with a sinusoidal time embedding, the noise-prediction loss, ancestral sampling
and DDIM sampling with fewer steps. Images are (N, C, H, W) in [-1, 1]."""
from __future__ import annotations

import math

import numpy as np

from .. import nn


class NoiseSchedule:
    """betas (linear or cosine) and the derived alphas, cumulative products and posterior
    coefficients, as float64 NumPy arrays indexed by t = 0..T-1."""

    def __init__(self, steps: int = 200, kind: str = "cosine", beta_start: float = 1e-4,
                 beta_end: float = 0.02):
        if steps < 1:
            raise ValueError(f"NoiseSchedule: steps must be >= 1, got {steps}")
        if kind == "linear":
            betas = np.linspace(beta_start * 1000 / steps, beta_end * 1000 / steps, steps)
        elif kind == "cosine":
            s = 0.008
            f = np.cos((np.arange(steps + 1) / steps + s) / (1 + s) * math.pi / 2) ** 2
            betas = np.clip(1 - f[1:] / f[:-1], 0.0, 0.999)
        else:
            raise ValueError(f"NoiseSchedule: kind must be 'linear' or 'cosine', got {kind!r}")
        self.steps, self.kind = steps, kind
        self.betas = betas
        self.alphas = 1.0 - betas
        self.alpha_bar = np.cumprod(self.alphas)
        self.alpha_bar_prev = np.concatenate([[1.0], self.alpha_bar[:-1]])
        self.posterior_var = betas * (1 - self.alpha_bar_prev) / (1 - self.alpha_bar)

    def _coef(self, values, t, like):
        import pydl

        v = values[np.asarray(t)].astype(np.dtype(str(like.dtype).replace("pydl.", "")))
        return pydl.tensor(v.reshape(-1, *([1] * (like.dim() - 1))), device=like.device)

    def q_sample(self, x0, t, noise):
        """x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) noise, for per-sample steps t."""
        t = np.asarray(t)
        if t.shape != (x0.shape[0],) or (t < 0).any() or (t >= self.steps).any():
            raise ValueError(f"q_sample: t must hold {x0.shape[0]} steps in [0, {self.steps}), "
                             f"got shape {t.shape}")
        return (self._coef(np.sqrt(self.alpha_bar), t, x0) * x0
                + self._coef(np.sqrt(1 - self.alpha_bar), t, x0) * noise)


def timestep_embedding(t, dim: int) -> np.ndarray:
    """Sinusoidal embedding of integer steps t (N,) -> (N, dim) float32: [sin, cos] of t
    times geometric frequencies from 1 down to 1/10000."""
    t = np.asarray(t, dtype=np.float64).reshape(-1)
    half = dim // 2
    freqs = np.exp(-math.log(10000.0) * np.arange(half) / max(half, 1))
    args = t[:, None] * freqs[None]
    emb = np.concatenate([np.sin(args), np.cos(args)], axis=1)
    if dim % 2:
        emb = np.concatenate([emb, np.zeros((len(t), 1))], axis=1)
    return emb.astype(np.float32)


class ResBlock(nn.Module):
    """norm -> SiLU -> conv3x3, plus the projected time embedding, norm -> SiLU -> conv3x3,
    and a (1x1 when the width changes) skip."""

    def __init__(self, cin: int, cout: int, tdim: int):
        super().__init__()
        self.norm1, self.conv1 = nn.BatchNorm2d(cin), nn.Conv2d(cin, cout, 3, padding=1)
        self.temb = nn.Linear(tdim, cout)
        self.norm2, self.conv2 = nn.BatchNorm2d(cout), nn.Conv2d(cout, cout, 3, padding=1)
        self.act = nn.SiLU()
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x, temb):
        h = self.conv1(self.act(self.norm1(x)))
        h = h + self.temb(temb).reshape(h.shape[0], h.shape[1], 1, 1)
        h = self.conv2(self.act(self.norm2(h)))
        return h + self.skip(x)


class UNet(nn.Module):
    """A two-level U-Net for small images (H, W divisible by 2): in-conv, ResBlock at full
    size, stride-2 conv down, ResBlock, middle ResBlock, then up with skip concatenations
    and nearest Upsample + conv, out-conv to the predicted noise."""

    def __init__(self, in_channels: int = 1, channels: int = 32, tdim: int = 64):
        super().__init__()
        c = channels
        self.tdim = tdim
        self.time = nn.Sequential(nn.Linear(tdim, 2 * tdim), nn.SiLU(), nn.Linear(2 * tdim, 2 * tdim))
        t2 = 2 * tdim
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
        import pydl

        emb = pydl.tensor(timestep_embedding(t, self.tdim), device=x.device).to(x.dtype)
        temb = self.time(emb)
        h1 = self.down1(self.inc(x), temb)
        h2 = self.down2(self.downsample(h1), temb)
        m = self.mid(h2, temb)
        u2 = self.up2(pydl.cat([m, h2], dim=1), temb)
        u1 = self.up1(pydl.cat([self.upsample(u2), h1], dim=1), temb)
        return self.out(u1)


class DDPM(nn.Module):
    """The denoiser and its schedule: `loss(x0)` for training, `sample` (ancestral) and
    `ddim_sample` (deterministic with eta=0, fewer steps) for generation."""

    def __init__(self, shape=(1, 8, 8), channels: int = 32, steps: int = 200,
                 schedule: str = "cosine"):
        super().__init__()
        self.shape = tuple(shape)
        self.model = UNet(shape[0], channels)
        self.schedule = NoiseSchedule(steps, schedule)

    def forward(self, x, t):
        return self.model(x, t)

    def loss(self, x0, t=None, noise=None, rng=None):
        """MSE between the true noise and the predicted one at random steps t."""
        import pydl
        import pydl.nn.functional as F

        rng = rng if rng is not None else np.random.default_rng()
        if t is None:
            t = rng.integers(0, self.schedule.steps, size=x0.shape[0])
        if noise is None:
            noise = pydl.randn(*x0.shape, device=x0.device, dtype=x0.dtype)
        return F.mse_loss(self.model(self.schedule.q_sample(x0, t, noise), t), noise)

    def _eps(self, x, t, device):
        import pydl

        xt = pydl.tensor(x.astype(np.float32), device=device)
        return self.model(xt, np.full(len(x), t)).cpu().numpy().astype(np.float64)

    def sample(self, n: int, device="cpu", seed: int = 0, clip: bool = True) -> np.ndarray:
        """Ancestral sampling through all T steps: x_{t-1} ~ q(x_{t-1} | x_t, x0_hat) with
        x0_hat from the predicted noise (clipped to [-1, 1]). Returns (n, *shape) NumPy."""
        import pydl

        s, rng = self.schedule, np.random.default_rng(seed)
        was = self.training
        self.eval()
        x = rng.standard_normal((n, *self.shape))
        with pydl.no_grad():
            for t in range(s.steps - 1, -1, -1):
                eps = self._eps(x, t, device)
                x0 = (x - math.sqrt(1 - s.alpha_bar[t]) * eps) / math.sqrt(s.alpha_bar[t])
                if clip:
                    x0 = np.clip(x0, -1, 1)
                mean = (math.sqrt(s.alpha_bar_prev[t]) * s.betas[t] / (1 - s.alpha_bar[t]) * x0
                        + math.sqrt(s.alphas[t]) * (1 - s.alpha_bar_prev[t]) / (1 - s.alpha_bar[t]) * x)
                x = mean + (math.sqrt(s.posterior_var[t]) * rng.standard_normal(x.shape) if t > 0 else 0)
        self.train(was)
        return x.astype(np.float32)

    def ddim_sample(self, n: int, steps: int = 50, device="cpu", seed: int = 0, eta: float = 0.0,
                    clip: bool = True) -> np.ndarray:
        """DDIM: `steps` evenly spaced steps of the trained schedule; eta=0 is deterministic."""
        import pydl

        s, rng = self.schedule, np.random.default_rng(seed)
        ts = np.unique(np.linspace(0, s.steps - 1, min(steps, s.steps)).round().astype(int))[::-1]
        was = self.training
        self.eval()
        x = rng.standard_normal((n, *self.shape))
        with pydl.no_grad():
            for i, t in enumerate(ts):
                ab = s.alpha_bar[t]
                ab_prev = s.alpha_bar[ts[i + 1]] if i + 1 < len(ts) else 1.0
                eps = self._eps(x, t, device)
                x0 = (x - math.sqrt(1 - ab) * eps) / math.sqrt(ab)
                if clip:
                    x0 = np.clip(x0, -1, 1)
                    eps = (x - math.sqrt(ab) * x0) / math.sqrt(1 - ab)
                sigma = eta * math.sqrt((1 - ab_prev) / (1 - ab) * (1 - ab / ab_prev))
                x = (math.sqrt(ab_prev) * x0 + math.sqrt(max(1 - ab_prev - sigma ** 2, 0.0)) * eps
                     + sigma * rng.standard_normal(x.shape))
        self.train(was)
        return x.astype(np.float32)
