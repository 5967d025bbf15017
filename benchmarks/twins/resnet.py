"""PyTorch twin of the ResNet family: the same blocks and layout, written here with
torch.nn and the same parameter names (torchvision's), weights and BatchNorm buffers
copied from pydl's state dict, trained on the same shifted batches with the same AdamW +
cosine schedule. `python benchmarks/twins/resnet.py` prints the losses."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(1, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

import torch  # noqa: E402
from _load import rel  # noqa: E402
from cnn import compare_training, load_from  # noqa: E402

nn = torch.nn


def _conv3x3(i, o, stride=1):
    return nn.Conv2d(i, o, 3, stride=stride, padding=1, bias=False)


def _conv1x1(i, o, stride=1):
    return nn.Conv2d(i, o, 1, stride=stride, bias=False)


class TorchBasicBlock(nn.Module):
    expansion = 1

    def __init__(self, inplanes, planes, stride=1, downsample=None):
        super().__init__()
        self.conv1, self.bn1 = _conv3x3(inplanes, planes, stride), nn.BatchNorm2d(planes)
        self.relu = nn.ReLU()
        self.conv2, self.bn2 = _conv3x3(planes, planes), nn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x)))))
        return self.relu(out + identity)


class TorchBottleneck(nn.Module):
    expansion = 4

    def __init__(self, inplanes, planes, stride=1, downsample=None):
        super().__init__()
        self.conv1, self.bn1 = _conv1x1(inplanes, planes), nn.BatchNorm2d(planes)
        self.conv2, self.bn2 = _conv3x3(planes, planes, stride), nn.BatchNorm2d(planes)
        self.conv3, self.bn3 = _conv1x1(planes, planes * 4), nn.BatchNorm2d(planes * 4)
        self.relu = nn.ReLU()
        self.downsample = downsample

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        return self.relu(self.bn3(self.conv3(out)) + identity)


class TorchResNet(nn.Module):
    def __init__(self, block, layers, num_classes=1000, in_channels=3, widths=(64, 128, 256, 512),
                 small=False):
        super().__init__()
        block = {"basic": TorchBasicBlock, "bottleneck": TorchBottleneck}.get(block, block)
        self.inplanes = widths[0]
        self.conv1 = (_conv3x3(in_channels, widths[0]) if small else
                      nn.Conv2d(in_channels, widths[0], 7, stride=2, padding=3, bias=False))
        self.bn1 = nn.BatchNorm2d(widths[0])
        self.relu = nn.ReLU()
        self.maxpool = nn.Identity() if small else nn.MaxPool2d(3, stride=2, padding=1)
        self.stages = len(layers)
        for i, (n, w) in enumerate(zip(layers, widths)):
            stride = 1 if i == 0 else 2
            down = None
            if stride != 1 or self.inplanes != w * block.expansion:
                down = nn.Sequential(_conv1x1(self.inplanes, w * block.expansion, stride),
                                     nn.BatchNorm2d(w * block.expansion))
            blocks = [block(self.inplanes, w, stride, down)]
            self.inplanes = w * block.expansion
            blocks += [block(self.inplanes, w) for _ in range(1, n)]
            setattr(self, f"layer{i + 1}", nn.Sequential(*blocks))
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(widths[-1] * block.expansion, num_classes)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        for i in range(self.stages):
            x = getattr(self, f"layer{i + 1}")(x)
        return self.fc(torch.flatten(self.avgpool(x), 1))


def compare(steps: int = 20, seed: int = 0, batch_size=None, layers=None, widths=None, block=None):
    """The ResNet recipe's model against its twin (recipe DEFAULTS unless overridden)."""
    import pydl
    from pydl.models import resnet_small
    from pydl.recipes.resnet import DEFAULTS as cfg

    pydl.manual_seed(seed)
    layers = tuple(layers or cfg["layers"])
    widths = tuple(widths or cfg["widths"])
    block = block or cfg["block"]
    model = resnet_small(10, 1, layers=layers, widths=widths, block=block)
    twin = load_from(TorchResNet(block, layers, 10, 1, widths, small=True), model)
    return compare_training(model, twin, cfg, steps, seed, batch_size)


if __name__ == "__main__":
    for i, (a, b) in enumerate(compare(40)):
        print(f"step {i:3d}  pydl {a:.6f}  torch {b:.6f}  rel {rel(a, b):.2e}")
