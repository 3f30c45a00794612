"""Architectures for tests, demos and benchmarks: torchvision-equivalent VGG16 and ResNet18, a small audio net.

``vgg16()`` and ``resnet18()`` rebuild torchvision's definitions (same module names, same forward, same
initialisation scheme, random weights; 138,357,544 and 11,689,512 parameters) because torchvision cannot
be installed beside the project's CPU torch. ``AudioNet`` is a small audio model in the CPC layout:
2-D convolutions on (B, C, F, T) maps (frequency kept, time dropped), then 1-D convolutions on (B, C, T).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from .defaults import ZOO_INPUT_SHAPES

_VGG16_CONFIG = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M")


class VGG(nn.Module):
    """torchvision's ``VGG``: ``features`` (conv/ReLU/max-pool), 7x7 adaptive pool, ``classifier``."""

    def __init__(self, config: tuple = _VGG16_CONFIG, num_classes: int = 1000, dropout: float = 0.5):
        super().__init__()
        layers: list[nn.Module] = []
        channels = 3
        for item in config:
            if item == "M":
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            else:
                layers += [nn.Conv2d(channels, item, kernel_size=3, padding=1), nn.ReLU(inplace=True)]
                channels = item
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d((7, 7))
        self.classifier = nn.Sequential(
            nn.Linear(512 * 7 * 7, 4096), nn.ReLU(True), nn.Dropout(p=dropout),
            nn.Linear(4096, 4096), nn.ReLU(True), nn.Dropout(p=dropout),
            nn.Linear(4096, num_classes),
        )
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                nn.init.constant_(m.bias, 0)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.constant_(m.bias, 0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)
        x = self.avgpool(x)
        x = torch.flatten(x, 1)
        return self.classifier(x)


class BasicBlock(nn.Module):
    """torchvision's ResNet ``BasicBlock``: two 3x3 convs, identity or 1x1 projection shortcut."""

    expansion = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.downsample is not None:
            identity = self.downsample(x)
        out += identity
        return self.relu(out)


class ResNet(nn.Module):
    """torchvision's ``ResNet`` with ``BasicBlock``s."""

    def __init__(self, layers: tuple[int, ...] = (2, 2, 2, 2), num_classes: int = 1000):
        super().__init__()
        self.inplanes = 64
        self.conv1 = nn.Conv2d(3, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(64, layers[0])
        self.layer2 = self._make_layer(128, layers[1], stride=2)
        self.layer3 = self._make_layer(256, layers[2], stride=2)
        self.layer4 = self._make_layer(512, layers[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(512, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)

    def _make_layer(self, planes: int, blocks: int, stride: int = 1) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes:
            downsample = nn.Sequential(nn.Conv2d(self.inplanes, planes, 1, stride=stride, bias=False),
                                       nn.BatchNorm2d(planes))
        layers = [BasicBlock(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes
        layers += [BasicBlock(planes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        x = torch.flatten(self.avgpool(x), 1)
        return self.fc(x)


class AudioNet(nn.Module):
    """Small audio model: (B, 2, F, T) scaleogram-like input -> 2-D conv blocks (frequency kept, time dropped)
    with a residual block and pooling, frequency folded into channels, 1-D conv blocks on (B, C, T)."""

    def __init__(self, n_bins: int = 32, channels: int = 8, features: int = 16):
        super().__init__()
        self.conv1 = nn.Conv2d(2, channels, kernel_size=3, padding=1)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(channels, channels, kernel_size=3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.relu2 = nn.ReLU()
        self.pool = nn.MaxPool2d(kernel_size=(2, 1))
        self.conv3 = nn.Conv2d(channels, 2 * channels, kernel_size=(5, 3), stride=(2, 1), padding=(2, 1),
                               groups=2)
        self.relu3 = nn.ReLU()
        folded = 2 * channels * (n_bins // 4)
        self.ar1 = nn.Conv1d(folded, features, kernel_size=3, padding=2, dilation=2)
        self.relu4 = nn.Tanh()
        self.ar2 = nn.Conv1d(features, features, kernel_size=1)
        self.relu5 = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.relu1(self.conv1(x))
        b = self.relu2(self.bn2(self.conv2(a)) + a)
        c = self.relu3(self.conv3(self.pool(b)))
        z = c.flatten(1, 2)
        h = self.relu4(self.ar1(z))
        return self.relu5(self.ar2(h) + h)


def vgg16(num_classes: int = 1000) -> VGG:
    """VGG16 (configuration "D") as torchvision builds it, random weights."""
    return VGG(_VGG16_CONFIG, num_classes)


def resnet18(num_classes: int = 1000) -> ResNet:
    """ResNet18 as torchvision builds it, random weights."""
    return ResNet((2, 2, 2, 2), num_classes)


def audio_net(n_bins: int = 32) -> AudioNet:
    """The small audio model for inputs of shape (B, 2, n_bins, T)."""
    return AudioNet(n_bins=n_bins)


@dataclass(frozen=True)
class ZooEntry:
    """A zoo model: how to build it for an input shape, and the shape of its default example input."""

    factory: Callable[[tuple[int, ...]], nn.Module]
    input_shape: tuple[int, ...]


_FACTORIES: dict[str, Callable[[tuple[int, ...]], nn.Module]] = {
    "vgg16": lambda shape: vgg16(),
    "resnet18": lambda shape: resnet18(),
    "audio": lambda shape: audio_net(n_bins=shape[2]),
}
# Names and default inputs come from ``defaults`` (torch-free, for the command line's help): a model missing
# from either table is a KeyError here, at import.
MODELS: dict[str, ZooEntry] = {name: ZooEntry(_FACTORIES[name], shape) for name, shape in ZOO_INPUT_SHAPES.items()}


def build(name: str, *, input_shape: tuple[int, ...] | None = None, seed: int = 0) -> tuple[nn.Module, torch.Tensor]:
    """A zoo model in eval mode (weights from ``seed``) and a random example input of ``input_shape``."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; the zoo has {sorted(MODELS)}")
    entry = MODELS[name]
    shape = tuple(input_shape) if input_shape is not None else entry.input_shape
    if len(shape) != len(entry.input_shape):
        raise ValueError(f"input_shape for {name!r} must have {len(entry.input_shape)} dims like "
                         f"{entry.input_shape}, got {shape}")
    generator = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = entry.factory(shape).eval()
    return model, torch.randn(shape, generator=generator)
