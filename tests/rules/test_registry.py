"""The layer-rule table: registering rules for user layers, leaves, opaque layers, Embedding."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import prunekit
from prunekit.errors import ConfigError
from prunekit.rules import ConvRule, OpaqueRule


class PaddedConv(nn.Conv2d):
    """A user conv whose forward pads first (like timm's Conv2dSame)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(F.pad(x, (1, 1, 1, 1)), self.weight, self.bias)


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = PaddedConv(3, 8, 3)
        self.b = nn.Conv2d(8, 4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.b(torch.relu(self.a(x)))


@pytest.fixture
def padded_conv_rule():
    prunekit.register_rule(PaddedConv, ConvRule())
    yield
    prunekit.unregister_rule(PaddedConv)


def test_registered_rule_makes_a_leaf_and_prunes(padded_conv_rule):
    model, x = Net(), torch.randn(1, 3, 8, 8)
    graph = prunekit.DependencyGraph(model, x)
    assert graph.group_of("a").prunable
    original = copy.deepcopy(model)
    report = prunekit.prune_(model, x, sparsity=0.5)
    assert model.a.out_channels == 4 and model.b.in_channels == 4
    assert prunekit.check_equivalence(original, model, x, report).ok


def test_without_a_rule_the_functional_conv_is_kept_and_reported():
    model = Net()
    graph = prunekit.DependencyGraph(model, torch.randn(1, 3, 8, 8))
    assert graph.group_of("a") is None and graph.group_of("b", "in") is None  # never guessed
    assert any("'conv2d'" in n and "a.weight" in n for n in graph.notes)
    assert "not analysed" in str(graph) and "register a rule" in str(graph)


def test_duplicate_rule_is_an_error(padded_conv_rule):
    with pytest.raises(ConfigError, match="already registered"):
        prunekit.register_rule(PaddedConv, ConvRule())
    prunekit.register_rule(PaddedConv, ConvRule(), replace=True)


def test_rule_must_be_a_layer_rule():
    with pytest.raises(ConfigError, match="LayerRule"):
        prunekit.register_rule(PaddedConv, object())  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="nn.Module subclass"):
        prunekit.register_rule(int, ConvRule())  # type: ignore[arg-type]


def test_opaque_rule_keeps_channels_of_a_custom_layer():
    class Mixer(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w = nn.Parameter(torch.randn(8, 8))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.einsum("nchw,dc->ndhw", x, self.w)

    class M(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a, self.mix, self.b = nn.Conv2d(3, 8, 1), Mixer(), nn.Conv2d(8, 4, 1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.b(self.mix(self.a(x)))

    prunekit.register_rule(Mixer, OpaqueRule("mixes channels with einsum"))
    try:
        graph = prunekit.DependencyGraph(M(), torch.randn(1, 3, 4, 4))
        assert "mixes channels with einsum" in graph.group_of("a").reason
        assert not graph.group_of("a").prunable
    finally:
        prunekit.unregister_rule(Mixer)


def test_embedding_dim_is_a_prunable_group():
    class TokenNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.emb = nn.Embedding(20, 16)
            self.fc1 = nn.Linear(16, 12)
            self.fc2 = nn.Linear(12, 3)

        def forward(self, ids: torch.Tensor) -> torch.Tensor:
            return self.fc2(torch.relu(self.fc1(self.emb(ids))).mean(1))

    model, ids = TokenNet(), torch.randint(0, 20, (2, 5))
    original = copy.deepcopy(model)
    report = prunekit.prune_(model, ids, sparsity=0.5)
    assert model.emb.embedding_dim == 8 and model.fc1.in_features == 8 and model.fc1.out_features == 6
    assert prunekit.check_equivalence(original, model, ids, report).ok
