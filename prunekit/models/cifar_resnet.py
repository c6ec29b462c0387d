"""CIFAR-style ResNets: resnet20/32/44/56/110.

He, Zhang, Ren & Sun 2016, "Deep Residual Learning for Image Recognition", sec. 4.2: a 3x3 conv
with 16 channels, then three stages of ``n = (depth - 2) / 6`` BasicBlocks with 16, 32 and 64
channels (stride 2 at the first block of stages 2 and 3), global average pooling and a linear
classifier; ``depth = 6n + 2`` weighted layers.

Module names follow Distiller's ``resnet_cifar`` (so its pruning schedules apply verbatim):
``conv1``, ``bn1``, ``relu``, ``layer{1,2,3}.{i}.conv1/bn1/relu1/conv2/bn2/relu2``,
``layer{2,3}.0.downsample.0`` (1x1 conv) / ``.1`` (BN), ``avgpool``, ``fc``.

Note:
    Deviations from the paper: the shortcut that changes shape is a 1x1 conv + BN (the paper's
    option B) instead of option A's zero padding, so every residual add has a prunable
    projection, as in Distiller; with it resnet20 has 0.272M parameters instead of 0.27M.
    The pooling is adaptive, so 28x28 inputs (Fashion-MNIST) work as well as 32x32.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from prunekit.errors import ConfigError

__all__ = ["BasicBlock", "CifarResNet", "cifar_resnet", "resnet20", "resnet32", "resnet44", "resnet56", "resnet110"]


def _conv3x3(in_planes: int, out_planes: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_planes, out_planes, kernel_size=3, stride=stride, padding=1, bias=False)


class BasicBlock(nn.Module):
    """Two 3x3 conv-BN layers and a shortcut: ``relu2(bn2(conv2(relu1(bn1(conv1(x))))) + shortcut(x))``.

    The shortcut is the identity, or ``downsample`` (1x1 conv with ``stride`` + BN) when the
    stride or the channel count changes.
    """

    expansion = 1

    def __init__(self, in_planes: int, planes: int, *, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = _conv3x3(in_planes, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu1 = nn.ReLU(inplace=False)  # not in place: pruning tools may hook activations
        self.conv2 = _conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.relu2 = nn.ReLU(inplace=False)
        self.downsample: nn.Sequential | None = None
        if stride != 1 or in_planes != planes:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_planes, planes, kernel_size=1, stride=stride, bias=False),
                nn.BatchNorm2d(planes),
            )

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu1(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu2(out + identity)


class CifarResNet(nn.Module):
    """A CIFAR ResNet of depth ``6n + 2`` (see the module docstring).

    Args:
        depth: 20, 32, 44, 56, 110, or any ``6n + 2`` with ``n >= 1``.
        num_classes: outputs of ``fc``.
        in_channels: input channels (3 for CIFAR, 1 for Fashion-MNIST).
        width: channels of the first stage (16 in the paper; the stages have width, 2x, 4x).

    Raises:
        ConfigError: ``depth`` is not ``6n + 2`` or a size is not positive.
    """

    def __init__(self, depth: int, *, num_classes: int = 10, in_channels: int = 3, width: int = 16) -> None:
        super().__init__()
        if not isinstance(depth, int) or depth < 8 or (depth - 2) % 6 != 0:
            raise ConfigError(
                f"depth must be 6n + 2 with n >= 1 (20, 32, 44, 56, 110...), but got {depth!r}", module="depth"
            )
        for arg, value in (("num_classes", num_classes), ("in_channels", in_channels), ("width", width)):
            if not isinstance(value, int) or value <= 0:
                raise ConfigError(f"{arg} must be a positive int, but got {value!r}", module=arg)
        blocks = (depth - 2) // 6
        self.depth = depth
        self.conv1 = _conv3x3(in_channels, width)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=False)
        self.layer1 = self._make_layer(width, width, blocks, stride=1)
        self.layer2 = self._make_layer(width, 2 * width, blocks, stride=2)
        self.layer3 = self._make_layer(2 * width, 4 * width, blocks, stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(4 * width, num_classes)
        self._init_weights()

    @staticmethod
    def _make_layer(in_planes: int, planes: int, blocks: int, *, stride: int) -> nn.Sequential:
        layers = [BasicBlock(in_planes, planes, stride=stride)]
        layers += [BasicBlock(planes, planes) for _ in range(blocks - 1)]
        return nn.Sequential(*layers)

    def _init_weights(self) -> None:
        # He et al. 2015 ("Delving Deep into Rectifiers") init, as the paper uses.
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
            elif isinstance(module, nn.Linear):
                nn.init.kaiming_normal_(module.weight)
                nn.init.zeros_(module.bias)

    def forward(self, x: Tensor) -> Tensor:
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        x = self.avgpool(x)
        return self.fc(torch.flatten(x, 1))


def cifar_resnet(depth: int, *, num_classes: int = 10, in_channels: int = 3) -> CifarResNet:
    """A CIFAR ResNet of the given depth (``6n + 2``)."""
    return CifarResNet(depth, num_classes=num_classes, in_channels=in_channels)


def resnet20(*, num_classes: int = 10, in_channels: int = 3) -> CifarResNet:
    """ResNet-20 (3 blocks per stage, about 0.27M parameters)."""
    return CifarResNet(20, num_classes=num_classes, in_channels=in_channels)


def resnet32(*, num_classes: int = 10, in_channels: int = 3) -> CifarResNet:
    """ResNet-32 (5 blocks per stage, about 0.47M parameters)."""
    return CifarResNet(32, num_classes=num_classes, in_channels=in_channels)


def resnet44(*, num_classes: int = 10, in_channels: int = 3) -> CifarResNet:
    """ResNet-44 (7 blocks per stage, about 0.66M parameters)."""
    return CifarResNet(44, num_classes=num_classes, in_channels=in_channels)


def resnet56(*, num_classes: int = 10, in_channels: int = 3) -> CifarResNet:
    """ResNet-56 (9 blocks per stage, about 0.86M parameters)."""
    return CifarResNet(56, num_classes=num_classes, in_channels=in_channels)


def resnet110(*, num_classes: int = 10, in_channels: int = 3) -> CifarResNet:
    """ResNet-110 (18 blocks per stage, about 1.7M parameters)."""
    return CifarResNet(110, num_classes=num_classes, in_channels=in_channels)
