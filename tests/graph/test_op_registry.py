"""The op-rule table: a user rule for a functional op, duplicates, unregistering, ATen targets."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.fx
import torch.nn as nn

import prunekit
from prunekit.channels import Axis
from prunekit.errors import ConfigError
from prunekit.graph.ops import get_op_rule, register_op_rule, registered_op_rules, unregister_op_rule


@torch.fx.wrap
def channel_gate(x: torch.Tensor) -> torch.Tensor:
    """A user op, opaque to fx: scales every channel by the sigmoid of its spatial mean."""
    return x * torch.sigmoid(x.mean(dim=(2, 3), keepdim=True))


class GatedNet(nn.Module):
    """conv -> user op -> conv: the middle channels are prunable only with a rule for the op."""

    def __init__(self) -> None:
        super().__init__()
        self.a, self.b = nn.Conv2d(3, 8, 3, padding=1), nn.Conv2d(8, 4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.b(channel_gate(self.a(x)))


def per_channel(ctx, node, args, kwargs, anns, kwanns, result):
    """The gate acts on each channel alone: the output carries the input's channels."""
    return anns[0] if isinstance(anns[0], Axis) else None


@pytest.fixture
def gate_rule():
    register_op_rule(channel_gate, per_channel)
    yield
    unregister_op_rule(channel_gate)


def test_without_a_rule_the_user_op_locks_its_channels():
    graph = prunekit.DependencyGraph(GatedNet(), torch.randn(1, 3, 8, 8))
    group = graph.group_of("a")
    assert not group.prunable and "channel_gate" in group.reason and "no op rule" in group.reason


def test_a_registered_op_rule_makes_the_channels_prunable(gate_rule):
    model, x = GatedNet(), torch.randn(1, 3, 8, 8)
    graph = prunekit.DependencyGraph(model, x)
    assert graph.group_of("a").prunable and graph.group_of("a") is graph.group_of("b", "in")
    original = copy.deepcopy(model)
    report = prunekit.prune_(model, x, sparsity=0.5)
    assert model.a.out_channels == 4 and model.b.in_channels == 4
    assert prunekit.check_equivalence(original, model, x, report).ok


def test_duplicate_and_replace(gate_rule):
    with pytest.raises(ConfigError, match="already registered"):
        register_op_rule(channel_gate, per_channel)
    with pytest.raises(ConfigError, match="already registered"):
        register_op_rule(torch.add, per_channel)  # built-in rules are protected too
    register_op_rule(channel_gate, per_channel, replace=True)
    assert get_op_rule(channel_gate) is per_channel


def test_bad_arguments_are_config_errors():
    with pytest.raises(ConfigError, match="target"):
        register_op_rule(3, per_channel)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="callable"):
        register_op_rule("my_method", "not a function")  # type: ignore[arg-type]


def test_unregister_restores_the_lock(gate_rule):
    unregister_op_rule(channel_gate)
    assert get_op_rule(channel_gate) is None
    graph = prunekit.DependencyGraph(GatedNet(), torch.randn(1, 3, 8, 8))
    assert not graph.group_of("a").prunable
    register_op_rule(channel_gate, per_channel)  # for the fixture's teardown


def test_the_table_lists_functions_methods_and_is_a_copy():
    table = registered_op_rules()
    assert torch.cat in table and "view" in table and "chunk" in table
    table.clear()
    assert get_op_rule(torch.cat) is not None


def test_a_rule_for_an_aten_packet_overrides_the_builtin_table():
    calls = []

    def spy(ctx, node, args, kwargs, anns, kwanns, result):
        calls.append(str(node.target))
        return anns[0]

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a, self.b = nn.Conv2d(3, 8, 1), nn.Conv2d(8, 4, 1)

        def forward(self, x):
            return self.b(torch.relu(self.a(x)))

    register_op_rule(torch.ops.aten.relu, spy)
    try:
        graph = prunekit.DependencyGraph(Net(), torch.randn(1, 3, 4, 4), tracer="export")
    finally:
        unregister_op_rule(torch.ops.aten.relu)
    assert calls and graph.group_of("a").prunable
