"""Subclasses of known layers use their base's rule and are tracer leaves (MRO lookup)."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn as nn

import prunekit
from prunekit.rules.base import inherits_rule


class MyConv(nn.Conv2d):
    """A subclass that only renames the layer (like torchvision video's ``Conv3DSimple``)."""


class MyBN(nn.BatchNorm2d):
    pass


class SubclassNet(nn.Module):
    """conv (subclass) -> bn (subclass) -> relu -> conv (subclass)."""

    def __init__(self) -> None:
        super().__init__()
        self.a, self.bn, self.b = MyConv(3, 8, 3, padding=1), MyBN(8), MyConv(8, 4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.b(torch.relu(self.bn(self.a(x))))


def test_a_plain_subclass_inherits_the_rule_and_prunes():
    model, x = SubclassNet().eval(), torch.randn(2, 3, 8, 8)
    assert inherits_rule(MyConv) and inherits_rule(MyBN)
    graph = prunekit.DependencyGraph(model, x)
    assert not graph.notes
    group = graph.group_of("a")
    assert group.prunable and {"a", "bn", "b"} <= group.modules()
    original = copy.deepcopy(model)
    report = prunekit.prune_(model, x, sparsity=0.5)
    assert isinstance(model.a, MyConv) and model.a.out_channels == 4 and model.bn.num_features == 4
    assert prunekit.check_equivalence(original, model, x, report).ok


def test_a_subclass_that_overrides_forward_is_traced_through():
    class Gated(nn.Conv2d):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return super().forward(x) * 2

    assert not inherits_rule(Gated)


def test_torchvision_r3d_18_prunes_with_conv3d_subclasses():
    torchvision = pytest.importorskip("torchvision")
    model = torchvision.models.video.r3d_18(weights=None).eval()
    x = torch.randn(1, 3, 2, 16, 16)
    graph = prunekit.DependencyGraph(model, x)
    assert not graph.notes and graph.group_of("layer1.0.conv1.0").prunable  # Conv3DSimple(nn.Conv3d)
    original = copy.deepcopy(model)
    report = prunekit.prune_(model, x, sparsity=0.3)
    assert model.layer1[0].conv1[0].out_channels < 64
    assert prunekit.check_equivalence(original, model, x, report).ok
