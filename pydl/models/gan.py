"""GAN family: generator/discriminator pairs for 8x8 images in [-1, 1] (an MLP pair and a
DCGAN-style convolutional pair) and the non-saturating losses of one alternating update."""
from __future__ import annotations

from .. import nn


class MLPGenerator(nn.Module):
    """z (N, latent) -> images (N, 1, side, side) in [-1, 1] (tanh)."""

    def __init__(self, latent: int = 32, hidden: tuple = (256, 256), side: int = 8):
        super().__init__()
        layers, width = [], latent
        for h in hidden:
            layers += [nn.Linear(width, h), nn.LeakyReLU(0.2)]
            width = h
        layers += [nn.Linear(width, side * side), nn.Tanh()]
        self.net = nn.Sequential(*layers)
        self.latent, self.side = latent, side

    def forward(self, z):
        return self.net(z).reshape(z.shape[0], 1, self.side, self.side)


class MLPDiscriminator(nn.Module):
    """images (N, 1, side, side) -> one logit per image (N, 1)."""

    def __init__(self, hidden: tuple = (256, 256), side: int = 8):
        super().__init__()
        layers, width = [], side * side
        for h in hidden:
            layers += [nn.Linear(width, h), nn.LeakyReLU(0.2)]
            width = h
        layers.append(nn.Linear(width, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, x):
        return self.net(x.reshape(x.shape[0], -1))


class DCGenerator(nn.Module):
    """z -> Linear -> (4c, 2, 2) -> ConvTranspose2d x2 (stride 2) -> (1, 8, 8), BatchNorm and
    ReLU between, tanh at the end."""

    def __init__(self, latent: int = 32, channels: int = 32):
        super().__init__()
        c = channels
        self.latent, self.c = latent, c
        self.fc = nn.Linear(latent, 4 * c * 2 * 2)
        self.net = nn.Sequential(
            nn.BatchNorm2d(4 * c), nn.ReLU(),
            nn.ConvTranspose2d(4 * c, 2 * c, 4, stride=2, padding=1),  # 4x4
            nn.BatchNorm2d(2 * c), nn.ReLU(),
            nn.ConvTranspose2d(2 * c, 1, 4, stride=2, padding=1),      # 8x8
            nn.Tanh())

    def forward(self, z):
        return self.net(self.fc(z).reshape(z.shape[0], 4 * self.c, 2, 2))


class DCDiscriminator(nn.Module):
    """(1, 8, 8) -> Conv2d x2 (stride 2, LeakyReLU, BatchNorm on the second) -> Linear -> logit."""

    def __init__(self, channels: int = 32):
        super().__init__()
        c = channels
        self.net = nn.Sequential(
            nn.Conv2d(1, c, 4, stride=2, padding=1), nn.LeakyReLU(0.2),          # 4x4
            nn.Conv2d(c, 2 * c, 4, stride=2, padding=1), nn.BatchNorm2d(2 * c),  # 2x2
            nn.LeakyReLU(0.2), nn.Flatten(), nn.Linear(2 * c * 2 * 2, 1))

    def forward(self, x):
        return self.net(x)


def build(arch: str = "mlp", latent: int = 32, width: int = 256, side: int = 8):
    """(generator, discriminator) for arch 'mlp' (hidden width `width`, side x side images)
    or 'dcgan' (base channels `width`, 8x8 images)."""
    if arch == "mlp":
        return MLPGenerator(latent, (width, width), side), MLPDiscriminator((width, width), side)
    if arch == "dcgan":
        if side != 8:
            raise ValueError(f"gan: the 'dcgan' pair makes 8x8 images, not {side}x{side}")
        return DCGenerator(latent, width), DCDiscriminator(width)
    raise ValueError(f"gan: arch must be 'mlp' or 'dcgan', got {arch!r}")


def discriminator_loss(d, real, fake):
    """BCE with logits: real images -> 1, generated (detached) -> 0."""
    import pydl
    import pydl.nn.functional as F

    lr, lf = d(real), d(fake.detach())
    return (F.binary_cross_entropy_with_logits(lr, pydl.ones_like(lr))
            + F.binary_cross_entropy_with_logits(lf, pydl.zeros_like(lf)))


def generator_loss(d, fake):
    """The non-saturating generator loss: -log D(G(z)), i.e. BCE of D(fake) against 1."""
    import pydl
    import pydl.nn.functional as F

    lf = d(fake)
    return F.binary_cross_entropy_with_logits(lf, pydl.ones_like(lf))


class GAN(nn.Module):
    """Holds the pair so one state dict / checkpoint carries both."""

    def __init__(self, arch: str = "mlp", latent: int = 32, width: int = 256, side: int = 8):
        super().__init__()
        self.arch, self.latent = arch, latent
        self.generator, self.discriminator = build(arch, latent, width, side)

    def sample(self, n: int, device="cpu"):
        import pydl

        with pydl.no_grad():
            return self.generator(pydl.randn(n, self.latent, device=device))
