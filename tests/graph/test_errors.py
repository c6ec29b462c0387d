"""Bad input: the right error, a message that names the culprit, and the model left untouched."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn as nn

import prunekit
from prunekit.errors import (
    ConfigError,
    ExampleInputError,
    NoPrunableGroupError,
    TraceError,
    UnknownNameError,
    UnsupportedLayerError,
)


class Small(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8)
        self.conv2 = nn.Conv2d(8, 2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv2(torch.relu(self.bn1(self.conv1(x))))


def snapshot(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.state_dict().items()}


def assert_unchanged(model: nn.Module, before: dict[str, torch.Tensor]) -> None:
    after = model.state_dict()
    assert after.keys() == before.keys()
    for k, v in before.items():
        assert after[k].shape == v.shape and torch.equal(after[k], v), k


X = torch.randn(2, 3, 8, 8)


@pytest.mark.parametrize("bad", [-0.1, 1.0, 1.2, "0.5", True])
def test_sparsity_outside_range(bad):
    model = Small()
    before = snapshot(model)
    with pytest.raises(ConfigError, match=r"sparsity must be a number in \[0, 1\)") as info:
        prunekit.prune_(model, X, sparsity=bad)
    assert repr(bad) in str(info.value) and info.value.module == "sparsity"
    assert_unchanged(model, before)


def test_ignore_names_a_module_that_does_not_exist():
    model = Small()
    before = snapshot(model)
    with pytest.raises(UnknownNameError, match="'conv' is not a module") as info:
        prunekit.prune_(model, X, sparsity=0.5, ignore=["conv"])
    assert "did you mean 'conv" in str(info.value) and info.value.module == "conv"
    assert_unchanged(model, before)


@pytest.mark.parametrize(
    "inputs, culprit",
    [
        (torch.randn(2, 5, 8, 8), "conv1"),  # wrong channel count
        ([1, 2, 3], "list"),
        (np.zeros((2, 3, 8, 8), dtype=np.float32), "ndarray"),
    ],
)
def test_bad_example_inputs(inputs, culprit):
    model = Small()
    before = snapshot(model)
    with pytest.raises(ExampleInputError, match=culprit):
        prunekit.prune_(model, inputs, sparsity=0.5)
    assert_unchanged(model, before)


def test_untraceable_model_names_the_construct_and_the_way_out():
    class Branchy(Small):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = self.conv1(x)
            if y.mean() > 0:  # depends on tensor values
                y = -y
            return self.conv2(y)

    model = Branchy()
    before = snapshot(model)
    with pytest.raises(TraceError) as info:
        prunekit.prune_(model, X, sparsity=0.5)
    msg = str(info.value)
    assert "Branchy" in msg and "mark_leaf" in msg and "register_rule" in msg
    assert_unchanged(model, before)


def test_leaf_with_parameters_and_no_rule():
    class Scale(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.gain = nn.Parameter(torch.ones(8))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x * self.gain.view(1, -1, 1, 1)

    class WithScale(Small):
        def __init__(self) -> None:
            super().__init__()
            self.scale = Scale()

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.conv2(self.scale(self.conv1(x)))

    model = WithScale()
    before = snapshot(model)
    prunekit.mark_leaf(Scale)
    try:
        with pytest.raises(UnsupportedLayerError) as info:
            prunekit.prune_(model, X, sparsity=0.5)
    finally:
        prunekit.unmark_leaf(Scale)
    msg = str(info.value)
    assert "'scale'" in msg and "Scale" in msg and "register_rule" in msg and info.value.module == "scale"
    assert_unchanged(model, before)


def test_model_with_no_prunable_group():
    model = nn.Sequential(nn.Conv2d(3, 4, 3))
    before = snapshot(model)
    with pytest.raises(NoPrunableGroupError, match="no channel group that can be pruned"):
        prunekit.prune_(model, X, sparsity=0.5)
    assert_unchanged(model, before)


def test_unknown_criterion_and_scope():
    model = Small()
    with pytest.raises(UnknownNameError, match="did you mean 'l1'"):
        prunekit.prune_(model, X, sparsity=0.5, criterion="l11")
    with pytest.raises(ConfigError, match="scope must be 'local' or 'global', but got 'globl'"):
        prunekit.prune_(model, X, sparsity=0.5, scope="globl")
    with pytest.raises(ConfigError, match="round_to must be an int >= 1, but got 0"):
        prunekit.prune_(model, X, sparsity=0.5, round_to=0)


def test_a_group_never_loses_all_its_channels():
    model = nn.Sequential(nn.Conv2d(3, 2, 1), nn.ReLU(), nn.Conv2d(2, 2, 1))
    prunekit.prune_(model, X, sparsity=0.99)
    assert model[0].out_channels == 1 and model[2].in_channels == 1


def test_a_failed_cut_restores_the_model(monkeypatch):
    """A rule that breaks mid-surgery: SurgeryError, and every tensor is put back."""
    from prunekit.errors import SurgeryError
    from prunekit.rules.norm import PerChannelRule

    model = Small()
    before = snapshot(model)
    shapes = {n: (m.in_channels, m.out_channels) for n, m in model.named_modules() if isinstance(m, nn.Conv2d)}

    original_slice = PerChannelRule.slice_tensors

    def broken(self, module, tensors, keep):  # forgets to slice the running mean
        out = original_slice(self, module, tensors, keep)
        out["running_mean"] = tensors["running_mean"]
        return out

    monkeypatch.setattr(PerChannelRule, "slice_tensors", broken)
    with pytest.raises(SurgeryError, match="restored"):
        prunekit.prune_(model, X, sparsity=0.5)
    assert_unchanged(model, before)
    assert {n: (m.in_channels, m.out_channels) for n, m in model.named_modules() if isinstance(m, nn.Conv2d)} == shapes
    assert model.bn1.num_features == 8


def test_masked_mode_checks_its_options_like_prune():
    model = Small()
    before = snapshot(model)
    with pytest.raises(ConfigError, match="scope must be 'local' or 'global', but got 'globl'"):
        prunekit.mask_(model, X, sparsity=0.5, scope="globl")
    with pytest.raises(ConfigError, match="round_to must be an int >= 1, but got 0"):
        prunekit.mask_(model, X, sparsity=0.5, round_to=0)
    assert_unchanged(model, before)
