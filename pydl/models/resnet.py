"""ResNet family: basic (two 3x3) and bottleneck (1x1, 3x3, 1x1) residual blocks with
BatchNorm and 1x1 projection shortcuts where the shape changes. The layouts and parameter
names follow torchvision's (conv1, bn1, layer1..layer4, fc; stride on the 3x3 conv of a
bottleneck), so resnet18/34/50 hold 11,689,512 / 21,797,672 / 25,557,032 parameters for
1000 classes. `small=True` swaps the 7x7/2 stem and its max-pool for one 3x3/1 conv, for
images of 8x8 to 32x32."""
from __future__ import annotations

from .. import nn


def conv3x3(in_planes: int, out_planes: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_planes, out_planes, 3, stride=stride, padding=1, bias=False)


def conv1x1(in_planes: int, out_planes: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_planes, out_planes, 1, stride=stride, bias=False)


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample=None):
        super().__init__()
        self.conv1 = conv3x3(inplanes, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU()
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample=None):
        super().__init__()
        self.conv1 = conv1x1(inplanes, planes)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = conv3x3(planes, planes, stride)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = conv1x1(planes, planes * self.expansion)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU()
        self.downsample = downsample

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


_BLOCKS = {"basic": BasicBlock, "bottleneck": Bottleneck}


class ResNet(nn.Module):
    """`layers[i]` blocks in stage i (named layer1, layer2, ...) of width `widths[i]`;
    every stage after the first halves the image. `zero_init_residual` starts each block
    as the identity (its last BatchNorm scale at 0)."""

    def __init__(self, block, layers, num_classes: int = 1000, in_channels: int = 3,
                 widths=(64, 128, 256, 512), small: bool = False,
                 zero_init_residual: bool = False):
        super().__init__()
        block = _BLOCKS.get(block, block)
        if block not in (BasicBlock, Bottleneck):
            raise ValueError(f"ResNet: block must be 'basic', 'bottleneck', BasicBlock or "
                             f"Bottleneck, got {block!r}")
        if len(layers) != len(widths) or not layers or min(layers) < 1:
            raise ValueError(f"ResNet: layers {list(layers)} and widths {list(widths)} must be "
                             f"non-empty, of the same length, with at least one block per stage")
        self.inplanes = widths[0]
        if small:
            self.conv1 = conv3x3(in_channels, self.inplanes)
        else:
            self.conv1 = nn.Conv2d(in_channels, self.inplanes, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(self.inplanes)
        self.relu = nn.ReLU()
        self.maxpool = nn.Identity() if small else nn.MaxPool2d(3, stride=2, padding=1)
        for i, (n, width) in enumerate(zip(layers, widths)):
            setattr(self, f"layer{i + 1}", self._make_layer(block, width, n, 1 if i == 0 else 2))
        self.num_stages = len(layers)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(widths[-1] * block.expansion, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        if zero_init_residual:
            for m in self.modules():
                if isinstance(m, Bottleneck):
                    nn.init.zeros_(m.bn3.weight)
                elif isinstance(m, BasicBlock):
                    nn.init.zeros_(m.bn2.weight)

    def _make_layer(self, block, planes: int, blocks: int, stride: int) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(conv1x1(self.inplanes, planes * block.expansion, stride),
                                       nn.BatchNorm2d(planes * block.expansion))
        layers = [block(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes * block.expansion
        layers += [block(self.inplanes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        for i in range(self.num_stages):
            x = getattr(self, f"layer{i + 1}")(x)
        return self.fc(self.avgpool(x).flatten(1))


def resnet18(num_classes: int = 1000, in_channels: int = 3, **kwargs) -> ResNet:
    return ResNet(BasicBlock, [2, 2, 2, 2], num_classes, in_channels, **kwargs)


def resnet34(num_classes: int = 1000, in_channels: int = 3, **kwargs) -> ResNet:
    return ResNet(BasicBlock, [3, 4, 6, 3], num_classes, in_channels, **kwargs)


def resnet50(num_classes: int = 1000, in_channels: int = 3, **kwargs) -> ResNet:
    return ResNet(Bottleneck, [3, 4, 6, 3], num_classes, in_channels, **kwargs)


def resnet_small(num_classes: int = 10, in_channels: int = 1, layers=(1, 1, 1),
                 widths=(16, 32, 64), block="basic", **kwargs) -> ResNet:
    """A ResNet for small images (the 3x3 stem, no max-pool): by default three stages of one
    basic block each, 16/32/64 wide, which takes 8x8 digits to 2x2 before the pooling."""
    return ResNet(block, list(layers), num_classes, in_channels, widths=tuple(widths), small=True,
                  **kwargs)
