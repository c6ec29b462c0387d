"""get_model spec resolution: built-ins, torchvision:, timm:, module:function, and errors."""

from __future__ import annotations

import sys
import textwrap

import pytest
import torch
from torch import nn

from prunekit.errors import ConfigError, UnknownNameError
from prunekit.models import MODELS, get_model, list_models, register_model
from prunekit.models.registry import _replace_stem

BUILTINS = ["resnet20", "resnet32", "resnet44", "resnet56", "resnet110", "vgg11_bn", "vgg16_bn", "vgg19_bn"]


def test_list_models() -> None:
    models = list_models()
    assert sorted(models) == sorted(BUILTINS)
    assert all(description and "\n" not in description for description in models.values())
    assert sorted(list_models("vgg*")) == ["vgg11_bn", "vgg16_bn", "vgg19_bn"]


@pytest.mark.parametrize("name", BUILTINS)
def test_builtins_resolve(name: str) -> None:
    model = get_model(name, num_classes=5, in_channels=1).eval()
    assert model(torch.randn(1, 1, 28, 28)).shape == (1, 5)


def test_unknown_builtin_suggests() -> None:
    with pytest.raises(UnknownNameError, match="did you mean 'resnet56'") as info:
        get_model("resnet65")
    assert "vgg16_bn" in str(info.value)  # the choices are listed


def test_torchvision_resnet18_grey() -> None:
    model = get_model("torchvision:resnet18", num_classes=10, in_channels=1).eval()
    assert model.conv1.in_channels == 1 and model.conv1.kernel_size == (7, 7) and model.conv1.stride == (2, 2)
    assert model.fc.out_features == 10
    assert model(torch.randn(1, 1, 32, 32)).shape == (1, 10)


def test_torchvision_rgb_keeps_stem() -> None:
    model = get_model("torchvision:mobilenet_v3_small", num_classes=3)
    assert model.features[0][0].in_channels == 3
    assert model.eval()(torch.randn(1, 3, 32, 32)).shape == (1, 3)


def test_torchvision_unknown_name() -> None:
    with pytest.raises(UnknownNameError, match="did you mean 'torchvision:resnet18'"):
        get_model("torchvision:resnet81")


def test_no_obvious_stem() -> None:
    class NoStem(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(3, 2)

    with pytest.raises(ConfigError, match="no obvious stem conv.*'fc' \\(Linear\\)"):
        _replace_stem(NoStem(), 1, spec="torchvision:nostem")
    depthwise = nn.Sequential(nn.Conv2d(3, 3, 3, groups=3))
    with pytest.raises(ConfigError, match="groups=1"):
        _replace_stem(depthwise, 1, spec="x")


def test_module_function(tmp_path, monkeypatch) -> None:
    (tmp_path / "my_nets.py").write_text(
        textwrap.dedent(
            """
            from torch import nn

            def tiny(*, num_classes, in_channels):
                return nn.Sequential(nn.Conv2d(in_channels, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                                     nn.Linear(4, num_classes))

            def not_a_model(*, num_classes, in_channels):
                return 42
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    model = get_model("my_nets:tiny", num_classes=6, in_channels=2)
    assert model(torch.randn(1, 2, 8, 8)).shape == (1, 6)
    with pytest.raises(ConfigError, match="must return an nn.Module, but got int"):
        get_model("my_nets:not_a_model")
    with pytest.raises(ConfigError, match="has no callable 'missing'"):
        get_model("my_nets:missing")
    with pytest.raises(ConfigError, match="cannot import 'no_such_module_xyz'"):
        get_model("no_such_module_xyz:f")
    with pytest.raises(ConfigError, match="package.module:function"):
        get_model(":f")


def test_timm_missing(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "timm", None)  # makes `import timm` raise ImportError
    with pytest.raises(ConfigError, match="pip install timm"):
        get_model("timm:resnet18")


@pytest.mark.parametrize(
    ("kwargs", "message"), [({"num_classes": 0}, "num_classes"), ({"in_channels": True}, "in_channels")]
)
def test_bad_sizes(kwargs, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        get_model("resnet20", **kwargs)
    with pytest.raises(ConfigError, match="non-empty string"):
        get_model("")


def test_register_model(monkeypatch) -> None:
    monkeypatch.setattr(MODELS, "_items", dict(MODELS._items))
    monkeypatch.setattr(MODELS, "_help", dict(MODELS._help))

    @register_model("linear", description="one Linear layer")
    def linear(*, num_classes: int, in_channels: int) -> nn.Module:
        return nn.Sequential(nn.Flatten(), nn.LazyLinear(num_classes))

    assert list_models("lin*") == {"linear": "one Linear layer"}
    assert get_model("linear", num_classes=3)(torch.randn(2, 1, 4, 4)).shape == (2, 3)
