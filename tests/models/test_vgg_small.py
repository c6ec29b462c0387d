"""Small-image VGG-BN: names, shapes, fx tracing."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from prunekit.errors import ConfigError
from prunekit.models import SmallVGG, vgg11_bn, vgg16_bn, vgg19_bn


@pytest.mark.parametrize(("builder", "convs"), [(vgg11_bn, 8), (vgg16_bn, 13), (vgg19_bn, 16)])
def test_structure(builder, convs: int) -> None:
    model = builder(num_classes=100)
    assert sum(isinstance(m, nn.Conv2d) for m in model.features) == convs
    assert sum(isinstance(m, nn.MaxPool2d) for m in model.features) == 4
    names = dict(model.named_modules())
    assert isinstance(names["features.0"], nn.Conv2d) and isinstance(names["features.1"], nn.BatchNorm2d)
    assert isinstance(names["classifier"], nn.Linear) and names["classifier"].in_features == 512
    assert names["classifier"].out_features == 100


@pytest.mark.parametrize("builder", [vgg11_bn, vgg16_bn, vgg19_bn])
@pytest.mark.parametrize(("in_channels", "size"), [(1, 28), (3, 32)])
def test_forward_and_trace(builder, in_channels: int, size: int) -> None:
    model = builder(in_channels=in_channels).eval()
    x = torch.randn(2, in_channels, size, size)
    out = model(x)
    assert out.shape == (2, 10)
    torch.testing.assert_close(torch.fx.symbolic_trace(model)(x), out)


def test_bad_config() -> None:
    with pytest.raises(ConfigError, match="positive ints or 'M'"):
        SmallVGG((64, "X"))
    with pytest.raises(ConfigError, match="at least one conv"):
        SmallVGG(("M",))
    with pytest.raises(ConfigError, match="in_channels"):
        vgg11_bn(in_channels=0)
