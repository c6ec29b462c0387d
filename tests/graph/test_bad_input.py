"""Bad inputs: each raises the right error, names the culprit, and leaves the model untouched.
Plus the edge values that are not errors: the fewest channels a group may keep."""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
import torch
from torch import Tensor, nn
from zoo import ZOO

import prunekit
from prunekit.errors import (
    ConfigError,
    ExampleInputError,
    NoPrunableGroupError,
    PrunekitError,
    TraceError,
    UnknownNameError,
    UnsupportedLayerError,
)

MAKERS = dict(ZOO)


class DataDependentGate(nn.Module):
    """Python control flow on a tensor value: no tracer can follow it."""

    def forward(self, x: Tensor) -> Tensor:
        if x.sum() > 0:
            return x
        return -x


class MyScale(nn.Module):
    """A custom layer with a per-channel parameter; prunekit has no rule for it."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.linspace(0.5, 1.5, channels))

    def forward(self, x: Tensor) -> Tensor:
        return x * self.scale.view(1, -1, 1, 1)


class Sandwich(nn.Module):
    """conv -> ``middle`` -> conv, so ``middle`` sits on a prunable group."""

    def __init__(self, middle: nn.Module) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.middle = middle
        self.head = nn.Conv2d(4, 2, 1)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.middle(self.conv(x)))


def resnet() -> nn.Module:
    return MAKERS["ResidualNet"]()  # modules stem.0, layer1.0.conv1, layer1.0.conv2, head...


def rgb(model: nn.Module) -> Tensor:
    return torch.randn(2, 3, 8, 8)


def own_inputs(model: nn.Module) -> tuple[Tensor, ...]:
    return model.example_inputs()


@dataclass(frozen=True)
class Bad:
    """A bad call: ``names`` is a list of alternatives; the message holds one of each."""

    make: Callable[[], nn.Module]
    error: type[PrunekitError]
    names: tuple[tuple[str, ...], ...] = ()
    inputs: Callable[[nn.Module], Any] = own_inputs
    options: dict[str, Any] = field(default_factory=dict)
    graph_too: bool = False  # DependencyGraph raises it too (it is about the model, not options)


BAD = {
    "sparsity-negative": Bad(resnet, ConfigError, (("sparsity",), ("-0.1",)), options={"sparsity": -0.1}),
    "sparsity-one": Bad(resnet, ConfigError, (("sparsity",), ("1.0",)), options={"sparsity": 1.0}),
    "ignore-prefix": Bad(
        resnet,
        UnknownNameError,
        (("layer1.0.conv",), ("layer1.0.conv1", "layer1.0.conv2")),  # conv1 and conv2 tie
        options={"ignore": ["layer1.0.conv"]},
    ),
    "ignore-typo": Bad(
        resnet, UnknownNameError, (("layr1.0.conv1",), ("layer1.0.conv1",)), options={"ignore": ["layr1.0.conv1"]}
    ),
    "criterion": Bad(resnet, UnknownNameError, (("l3",), ("l1",)), options={"criterion": "l3"}),
    "scope": Bad(resnet, ConfigError, (("scope",), ("glob",)), options={"scope": "glob"}),
    "round_to": Bad(resnet, ConfigError, (("round_to",),), options={"round_to": 0}),
    "inputs-channels": Bad(
        resnet,
        ExampleInputError,
        (("stem.0", "example_inputs"),),
        inputs=lambda m: torch.randn(2, 4, 8, 8),
        graph_too=True,
    ),
    "inputs-list": Bad(
        resnet, ExampleInputError, (("example_inputs",), ("list",)), inputs=lambda m: [1, 2, 3], graph_too=True
    ),
    "inputs-numpy": Bad(
        resnet,
        ExampleInputError,
        (("example_inputs",), ("ndarray", "numpy")),
        inputs=lambda m: np.zeros((2, 3, 8, 8), np.float32),
        graph_too=True,
    ),
    "control-flow": Bad(
        lambda: Sandwich(DataDependentGate()),
        TraceError,
        (("middle", "DataDependentGate"), ("mark_leaf", "register_rule")),
        inputs=rgb,
        graph_too=True,
    ),
    "nothing-prunable": Bad(lambda: nn.Sequential(nn.Conv2d(3, 4, 3)), NoPrunableGroupError, inputs=rgb),
}
ENTRY_POINTS = ("prune_", "prune", "graph")


def call(entry: str, model: nn.Module, inputs: Any, options: dict[str, Any]) -> Any:
    if entry == "graph":
        return prunekit.DependencyGraph(model, inputs)
    prune = prunekit.prune_ if entry == "prune_" else prunekit.prune
    return prune(model, inputs, **{"sparsity": 0.5, **options})


def snapshot(model: nn.Module) -> dict[str, Tensor]:
    return {key: tensor.detach().clone() for key, tensor in model.state_dict().items()}


def assert_unchanged(model: nn.Module, before: dict[str, Tensor]) -> None:
    after = model.state_dict()
    assert {k: v.shape for k, v in after.items()} == {k: v.shape for k, v in before.items()}
    for key, tensor in before.items():
        assert torch.equal(after[key], tensor), f"{key} changed"


def assert_names(error: BaseException, names: tuple[tuple[str, ...], ...]) -> None:
    message = str(error)
    for alternatives in names:
        assert any(name in message for name in alternatives), f"none of {alternatives} in: {message}"


@pytest.mark.parametrize(
    ("case", "entry"),
    [
        pytest.param(case, entry, id=f"{case_id}-{entry}")
        for case_id, case in BAD.items()
        for entry in ENTRY_POINTS
        if entry != "graph" or case.graph_too
    ],
)
def test_bad_input_raises_and_leaves_the_model_alone(case: Bad, entry: str) -> None:
    model = case.make()
    before = snapshot(model)
    with pytest.raises(case.error) as caught:
        call(entry, model, case.inputs(model), case.options)
    assert_names(caught.value, case.names)
    assert caught.value.module is None or isinstance(caught.value.module, str)
    assert_unchanged(model, before)


@pytest.mark.parametrize("entry", ENTRY_POINTS)
def test_leaf_without_rule_is_unsupported(entry: str) -> None:
    model = Sandwich(MyScale(4))
    before = snapshot(model)
    prunekit.mark_leaf(MyScale)
    try:
        with pytest.raises(UnsupportedLayerError) as caught:
            call(entry, model, rgb(model), {})
    finally:
        prunekit.unmark_leaf(MyScale)
    assert_names(caught.value, (("middle",), ("MyScale",), ("register_rule",)))
    assert_unchanged(model, before)


def test_config_errors_are_value_errors() -> None:
    with pytest.raises(ValueError):
        prunekit.prune_(resnet(), torch.randn(2, 3, 8, 8), sparsity=1.5)


# ------------------------------------------------------------------------ edge values (no error)
def bottleneck(width: int) -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(), nn.Conv2d(width, 2, 1))


@pytest.mark.parametrize(
    ("width", "sparsity", "round_to", "kept"),
    [
        (2, 0.99, 1, 1),  # floor(1.98) = 1 removed
        (5, 0.5, 1, 3),  # floor(2.5) = 2 removed
        (8, 0.9, 4, 4),  # 1 kept, rounded up to round_to
        (6, 0.5, 4, 4),  # 3 kept, rounded up to 4
        (8, 0.5, 3, 6),  # 4 kept, rounded up to 6
        (6, 0.1, 4, 6),  # nothing removed; 8 would be over the group size
        (16, 0.5, 8, 8),
    ],
)
def test_fewest_channels_kept(width: int, sparsity: float, round_to: int, kept: int) -> None:
    model = bottleneck(width).eval()
    inputs = torch.randn(2, 3, 8, 8)
    original = copy.deepcopy(model)
    report = prunekit.prune_(model, inputs, sparsity=sparsity, round_to=round_to)
    assert (model[0].out_channels, model[1].num_features, model[3].in_channels) == (kept, kept, kept)
    assert prunekit.check_equivalence(original, model, (inputs,), report).ok


class ConcatIntoResidual(nn.Module):
    """cat([a, b]) added to one conv's output: that conv ties a and b into one group of 4."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Conv2d(3, 2, 3, padding=1)
        self.b = nn.Conv2d(3, 2, 3, padding=1)
        self.mid = nn.Conv2d(4, 2, 3, padding=1)
        self.res = nn.Conv2d(2, 4, 3, padding=1)
        self.head = nn.Conv2d(4, 3, 1)

    def forward(self, x: Tensor) -> Tensor:
        c = torch.cat([self.a(x), self.b(x)], dim=1)
        return self.head(c + self.res(torch.relu(self.mid(c))))


def test_no_layer_loses_all_its_channels() -> None:
    """The 2 channels removed from the a+b group must not both be a's, even when a is weakest."""
    torch.manual_seed(0)
    model = ConcatIntoResidual()
    with torch.no_grad():
        model.a.weight.mul_(1e-3)
        model.a.bias.zero_()
    inputs = torch.randn(2, 3, 8, 8)
    original = copy.deepcopy(model)
    report = prunekit.prune_(model, inputs, sparsity=0.5)
    assert (model.a.out_channels, model.b.out_channels, model.res.out_channels) == (1, 1, 2)
    assert prunekit.check_equivalence(original, model, (inputs,), report).ok
