"""prune_ options beyond a single ratio: global scope, per-layer overrides, MAC and param targets."""

from __future__ import annotations

import copy

import pytest
import torch
import torchvision

import prunekit
from prunekit.errors import ConfigError, UnknownNameError
from prunekit.prune import resolve_sparsity


def resnet():
    torch.manual_seed(0)
    return torchvision.models.resnet18(num_classes=10).eval(), torch.randn(2, 3, 32, 32)


def test_override_precedence():
    overrides = {"layer1.0.conv1": 0.1, "re:layer1\\..*": 0.7, "re:.*conv1": None}
    assert resolve_sparsity("layer1.0.conv1", 0.5, overrides) == 0.1  # exact name first
    assert resolve_sparsity("layer1.1.conv1", 0.5, overrides) == 0.7  # then the first regex
    assert resolve_sparsity("layer2.0.conv1", 0.5, overrides) is None  # None: keep
    assert resolve_sparsity("layer2.0.conv2", 0.5, overrides) == 0.5  # then the default


def test_overrides_apply_per_group():
    model, x = resnet()
    original = copy.deepcopy(model)
    report = prunekit.prune_(
        model, x, sparsity=0.5, overrides={"layer1.0.conv1": 0.25, "re:layer2\\.\\d\\.conv1": None}
    )
    assert model.layer1[0].conv1.out_channels == 48  # 64 * (1 - 0.25)
    assert model.layer1[1].conv1.out_channels == 32  # the default
    assert model.layer2[0].conv1.out_channels == 128 and model.layer2[1].conv1.out_channels == 128
    assert prunekit.check_equivalence(original, model, x, report).ok


@pytest.mark.parametrize(
    "bad, error, match",
    [
        ({"layer9": 0.5}, UnknownNameError, "layer9"),
        ({"re:(": 0.5}, ConfigError, "invalid regex"),
        ({"re:nothing.*": 0.5}, UnknownNameError, "matches no module"),
        ({"layer1": 1.5}, ConfigError, r"overrides\['layer1'\] must be a number in \[0, 1\)"),
    ],
)
def test_bad_overrides(bad, error, match):
    model, x = resnet()
    with pytest.raises(error, match=match):
        prunekit.prune_(model, x, sparsity=0.5, overrides=bad)


@pytest.mark.parametrize("key", ["target_macs", "target_params"])
def test_targets_are_reached(key):
    model, x = resnet()
    report = prunekit.prune_(model, x, scope="global", **{key: 0.5})
    realised = report.macs_ratio if key == "target_macs" else report.params_ratio
    assert 0.4 < realised <= 0.5
    assert report.config[key] == 0.5 and report.config["realised"] == realised


def test_exactly_one_of_sparsity_or_target():
    model, x = resnet()
    with pytest.raises(ConfigError, match="exactly one"):
        prunekit.prune_(model, x)
    with pytest.raises(ConfigError, match="exactly one"):
        prunekit.prune_(model, x, sparsity=0.5, target_macs=0.5)
    with pytest.raises(ConfigError, match="target_macs must be a fraction"):
        prunekit.prune_(model, x, target_macs=0)


def test_global_scope_caps_each_group():
    model, x = resnet()
    original = copy.deepcopy(model)
    before = {n: m.out_channels for n, m in model.named_modules() if isinstance(m, torch.nn.Conv2d)}
    report = prunekit.prune_(model, x, sparsity=0.6, scope="global", max_group_sparsity=0.8)
    for name, m in model.named_modules():
        if isinstance(m, torch.nn.Conv2d):
            assert m.out_channels >= before[name] * 0.2, name  # no group loses more than 80%
    assert prunekit.check_equivalence(original, model, x, report).ok


@pytest.mark.parametrize("scope", ["local", "global"])
def test_round_to_holds_in_both_scopes(scope):
    model, x = resnet()
    original = copy.deepcopy(model)
    report = prunekit.prune_(model, x, sparsity=0.45, scope=scope, round_to=8)
    for name, m in model.named_modules():
        if isinstance(m, torch.nn.Conv2d):
            assert m.out_channels % 8 == 0, (name, m.out_channels)
    assert report.channels_removed > 0
    assert prunekit.check_equivalence(original, model, x, report).ok
