"""A rule that raises never reaches the user raw: a TraceError names the op, node and module."""

from __future__ import annotations

import pytest
import torch
import torch.fx
import torch.nn as nn

import prunekit
from prunekit.errors import TraceError
from prunekit.graph.ops import register_op_rule, unregister_op_rule
from prunekit.rules import LayerRule


@torch.fx.wrap
def wobble(x: torch.Tensor) -> torch.Tensor:
    return x * 1.5


class Block(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return wobble(self.conv(x))


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.block, self.head = Block(), nn.Conv2d(8, 2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.block(x))


def broken(ctx, node, args, kwargs, anns, kwanns, result):
    raise IndexError("index 3 is out of bounds")


def test_a_failing_op_rule_becomes_a_trace_error_naming_op_node_and_module():
    register_op_rule(wobble, broken)
    try:
        with pytest.raises(TraceError) as info:
            prunekit.DependencyGraph(Net(), torch.randn(1, 3, 4, 4))
    finally:
        unregister_op_rule(wobble)
    message = str(info.value)
    assert "'wobble'" in message and "graph node 'wobble'" in message and "'block'" in message
    assert "IndexError: index 3 is out of bounds" in message
    assert isinstance(info.value.__cause__, IndexError) and info.value.module == "block"


class Odd(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


class BrokenRule(LayerRule):
    roles = ()

    def propagate(self, ctx, name, module, args, axes, output):
        raise KeyError("oops")


def test_a_failing_layer_rule_names_the_layer():
    prunekit.register_rule(Odd, BrokenRule())
    try:
        model = nn.Sequential(nn.Conv2d(3, 4, 1), Odd(), nn.Conv2d(4, 2, 1))
        with pytest.raises(TraceError, match=r"op 'Odd' in module '1'.*layer rule raised KeyError") as info:
            prunekit.DependencyGraph(model, torch.randn(1, 3, 4, 4))
    finally:
        prunekit.unregister_rule(Odd)
    assert isinstance(info.value.__cause__, KeyError)
