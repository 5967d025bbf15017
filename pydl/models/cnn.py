"""CNN family: a LeNet-style network, convolution + ReLU + max-pooling stages followed by a
dense classifier. The defaults fit 1x8x8 digits: two 3x3 'same' stages take 8x8 to 2x2."""
from __future__ import annotations

from .. import nn


class LeNet(nn.Module):
    """`channels` gives one conv stage each (3x3 conv, padding 1, ReLU, 2x2 max-pool, which
    halves the image); `hidden` the widths of the dense layers before the classifier."""

    def __init__(self, in_channels: int = 1, num_classes: int = 10, image_size: int = 8,
                 channels: tuple = (32, 64), hidden: tuple = (128,), dropout: float = 0.0):
        super().__init__()
        if image_size % (2 ** len(channels)):
            raise ValueError(f"LeNet: image_size {image_size} must be divisible by "
                             f"2**len(channels) = {2 ** len(channels)}")
        layers, c = [], in_channels
        for width in channels:
            layers += [nn.Conv2d(c, width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)]
            c = width
        self.features = nn.Sequential(*layers)
        side = image_size // 2 ** len(channels)
        dense, width = [nn.Flatten()], c * side * side
        for h in hidden:
            dense += [nn.Linear(width, h), nn.ReLU()]
            if dropout > 0:
                dense.append(nn.Dropout(dropout))
            width = h
        dense.append(nn.Linear(width, num_classes))
        self.classifier = nn.Sequential(*dense)

    def forward(self, x):
        return self.classifier(self.features(x))
