"""VGG with batch norm for small images (32x32 CIFAR, 28x28 Fashion-MNIST): vgg11/16/19_bn.

Simonyan & Zisserman 2015, "Very Deep Convolutional Networks for Large-Scale Image
Recognition" (configurations A, D, E), in the small-image form used by the channel-pruning
literature (Liu et al. 2017, "Learning Efficient Convolutional Networks through Network
Slimming"; Li et al. 2017, "Pruning Filters for Efficient ConvNets").

Layout: ``features`` is a Sequential of ``Conv2d(3x3, bias=False)``, ``BatchNorm2d``, ``ReLU``
triples and ``MaxPool2d(2)``; then ``avgpool`` (adaptive, to 1x1) and ``classifier``, a single
``Linear(512, num_classes)``. Names are ``features.N``, ``avgpool``, ``classifier``.

Note:
    Deviations from the paper: batch norm after every conv; the fifth max-pool is dropped (four
    pools take 32x32 to 2x2 and 28x28 to 1x1, five would shrink 28x28 to nothing) and global
    average pooling replaces it; the three fully connected layers become one.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from prunekit.errors import ConfigError

__all__ = ["VGG_CONFIGS", "SmallVGG", "vgg11_bn", "vgg16_bn", "vgg19_bn"]

# Channels of each conv; "M" is a 2x2 max-pool.
VGG_CONFIGS: dict[str, tuple[int | str, ...]] = {
    "vgg11": (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512),
    "vgg16": (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512),
    "vgg19": (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512),
}


class SmallVGG(nn.Module):
    """A VGG-BN for small images built from a channel list (see the module docstring).

    Args:
        config: conv widths and ``"M"`` pools, e.g. ``VGG_CONFIGS["vgg16"]``.
        num_classes: outputs of ``classifier``.
        in_channels: input channels (3 for CIFAR, 1 for Fashion-MNIST).

    Raises:
        ConfigError: the config has an entry that is neither a positive int nor ``"M"``, or no conv.
    """

    def __init__(self, config: tuple[int | str, ...], *, num_classes: int = 10, in_channels: int = 3) -> None:
        super().__init__()
        for arg, value in (("num_classes", num_classes), ("in_channels", in_channels)):
            if not isinstance(value, int) or value <= 0:
                raise ConfigError(f"{arg} must be a positive int, but got {value!r}", module=arg)
        layers: list[nn.Module] = []
        channels = in_channels
        for entry in config:
            if entry == "M":
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            elif isinstance(entry, int) and entry > 0:
                layers += [
                    nn.Conv2d(channels, entry, kernel_size=3, padding=1, bias=False),
                    nn.BatchNorm2d(entry),
                    nn.ReLU(),
                ]
                channels = entry
            else:
                raise ConfigError(f"config entries must be positive ints or 'M', but got {entry!r}", module="config")
        if not any(isinstance(m, nn.Conv2d) for m in layers):
            raise ConfigError("config must contain at least one conv width", module="config")
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(channels, num_classes)
        self._init_weights()

    def _init_weights(self) -> None:
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
            elif isinstance(module, nn.Linear):
                nn.init.normal_(module.weight, 0.0, 0.01)
                nn.init.zeros_(module.bias)

    def forward(self, x: Tensor) -> Tensor:
        x = self.avgpool(self.features(x))
        return self.classifier(torch.flatten(x, 1))


def vgg11_bn(*, num_classes: int = 10, in_channels: int = 3) -> SmallVGG:
    """VGG-11 with batch norm for small images (8 convs, about 9.2M parameters)."""
    return SmallVGG(VGG_CONFIGS["vgg11"], num_classes=num_classes, in_channels=in_channels)


def vgg16_bn(*, num_classes: int = 10, in_channels: int = 3) -> SmallVGG:
    """VGG-16 with batch norm for small images (13 convs, about 14.7M parameters)."""
    return SmallVGG(VGG_CONFIGS["vgg16"], num_classes=num_classes, in_channels=in_channels)


def vgg19_bn(*, num_classes: int = 10, in_channels: int = 3) -> SmallVGG:
    """VGG-19 with batch norm for small images (16 convs, about 20.0M parameters)."""
    return SmallVGG(VGG_CONFIGS["vgg19"], num_classes=num_classes, in_channels=in_channels)
