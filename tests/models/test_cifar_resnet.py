"""CIFAR ResNets: sizes, names (Distiller's), shapes, fx tracing."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from prunekit.errors import ConfigError
from prunekit.models import CifarResNet, resnet20, resnet32, resnet44, resnet56, resnet110

BUILDERS = [resnet20, resnet32, resnet44, resnet56, resnet110]


def _params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize(
    ("builder", "low", "high"),
    [(resnet20, 0.26e6, 0.28e6), (resnet32, 0.46e6, 0.48e6), (resnet56, 0.84e6, 0.87e6), (resnet110, 1.7e6, 1.75e6)],
)
def test_parameter_counts(builder, low: float, high: float) -> None:
    # He et al. 2016 table 6: 0.27M, 0.46M, 0.85M, 1.7M (option A); option B adds ~2.8k.
    assert low <= _params(builder()) <= high


def test_depth_sets_blocks_per_stage() -> None:
    model = resnet56()
    assert [len(model.layer1), len(model.layer2), len(model.layer3)] == [9, 9, 9]
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3)]
    assert len(convs) + 1 == 56  # 6n + 1 convs and the fc


def test_module_names() -> None:
    names = dict(resnet20().named_modules())
    for name in ("conv1", "bn1", "relu", "layer1.0.conv1", "layer1.0.bn1", "layer1.0.conv2", "layer1.0.bn2",
                 "layer2.0.downsample.0", "layer2.0.downsample.1", "layer3.2.conv2", "avgpool", "fc"):  # fmt: skip
        assert name in names, name
    assert "layer1.0.downsample.0" not in names  # identity shortcut when the shape is kept
    shortcut = names["layer3.0.downsample.0"]
    assert isinstance(shortcut, nn.Conv2d) and shortcut.kernel_size == (1, 1) and shortcut.stride == (2, 2)
    assert isinstance(names["layer3.0.downsample.1"], nn.BatchNorm2d)
    assert [names[f"layer{i}.0.conv2"].out_channels for i in (1, 2, 3)] == [16, 32, 64]


@pytest.mark.parametrize("builder", [resnet20, resnet56])
@pytest.mark.parametrize(("in_channels", "size"), [(1, 28), (3, 32), (1, 32), (3, 28)])
def test_forward_shapes(builder, in_channels: int, size: int) -> None:
    model = builder(num_classes=7, in_channels=in_channels).eval()
    assert model(torch.randn(2, in_channels, size, size)).shape == (2, 7)


@pytest.mark.parametrize("builder", BUILDERS)
def test_fx_trace_matches(builder) -> None:
    model = builder(in_channels=1).eval()
    traced = torch.fx.symbolic_trace(model)
    x = torch.randn(2, 1, 28, 28)
    torch.testing.assert_close(traced(x), model(x))


def test_kaiming_init() -> None:
    model = resnet20()
    conv = model.layer2[0].conv1
    expected = (2.0 / (conv.out_channels * 9)) ** 0.5  # fan_out std
    assert abs(conv.weight.std().item() - expected) / expected < 0.1
    assert torch.all(model.bn1.weight == 1) and torch.all(model.bn1.bias == 0)


@pytest.mark.parametrize("depth", [18, 7, 2, "20"])
def test_bad_depth(depth) -> None:
    with pytest.raises(ConfigError, match="6n \\+ 2"):
        CifarResNet(depth)


def test_bad_sizes() -> None:
    with pytest.raises(ConfigError, match="num_classes must be a positive int, but got 0"):
        resnet20(num_classes=0)
    with pytest.raises(TypeError):
        resnet20(10)  # options are keyword-only
