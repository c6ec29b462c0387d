"""The torch.export fallback: models fx cannot trace are analysed from their exported graph."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import prunekit
from prunekit.errors import TraceError
from tests.graph.test_torchvision import build


class ShapeBranchNet(nn.Module):
    """Python control flow on a shape (fx fails, export specialises it), a residual add, a cat
    followed by a literal channel slice (locks the first 8 channels), and a mean-pooled head."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.bn = nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8)
        self.conv2 = nn.Conv2d(8, 8, 3, padding=1)
        self.conv3 = nn.Conv2d(8, 6, 1)
        self.fc = nn.Linear(6, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.bn(self.conv1(x)))
        if y.shape[-1] > 4:
            y = F.max_pool2d(y, 2)
        y = y + self.conv2(y)
        z = torch.cat([y, self.conv3(y)], 1)[:, 8:]
        return self.fc(z.mean((2, 3)))


def test_fx_fails_and_export_takes_over():
    model = ShapeBranchNet().eval()
    x = torch.randn(2, 3, 8, 8)
    with pytest.raises(TraceError):
        prunekit.DependencyGraph(model, x, tracer="fx")
    graph = prunekit.DependencyGraph(model, x)
    assert graph.backend == "export"
    stream = graph.group_of("conv1")
    assert not stream.prunable and "fixed channel positions" in stream.reason
    assert graph.group_of("conv3").prunable
    original = copy.deepcopy(model)
    report = prunekit.prune_(model, x, sparsity=0.5)
    assert model.conv3.out_channels == 3 and model.fc.in_features == 3
    assert prunekit.check_equivalence(original, model, x, report).ok


@pytest.mark.parametrize("name", ["resnet18", "googlenet", "mobilenet_v2"])
def test_export_backend_matches_fx_on_real_models(name):
    model, x = build(name)
    fx_graph = prunekit.DependencyGraph(model, x)
    ex_graph = prunekit.DependencyGraph(model, x, tracer="export")
    assert ex_graph.backend == "export"
    assert [(g.size, g.prunable) for g in ex_graph.groups] == [(g.size, g.prunable) for g in fx_graph.groups]
    original = copy.deepcopy(model)
    report = prunekit.prune_(model, x, sparsity=0.5, tracer="export")
    assert prunekit.check_equivalence(original, model, x, report).ok


def test_neither_tracer_can_trace_value_dependent_control_flow():
    class ValueBranch(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            if x.sum() > 0:
                return self.conv(x)
            return self.conv(-x)

    model = ValueBranch()
    with pytest.raises(TraceError, match="torch.export cannot either") as info:
        prunekit.DependencyGraph(model, torch.randn(1, 3, 8, 8))
    assert "mark_leaf" in str(info.value) and info.value.module == "ValueBranch"
