"""Statistics across channels (RMS norm written out as ops, F.normalize): inexact, not locked.

Removing a channel changes a statistic over all channels, while the zeroed-channel original
(zeroed where the channel is consumed) computes it as before: the group is "inexact", like
LayerNorm. It prunes by default and is left whole under ``exact_only=True``.
"""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import prunekit
from prunekit.errors import NoPrunableGroupError


class RmsNorm2dNet(nn.Module):
    """conv -> RMS norm over channels as timm's ``rms_norm2d`` writes it (``mean(x^2, dim=1,
    keepdim=True)``, then ``x * weight.reshape(1, -1, 1, 1)``) -> ReLU -> conv.

    Groups: a (8: a out, norm weight, b in; inexact); b (4: b out; output).
    """

    def __init__(self, literal_view: bool = False) -> None:
        super().__init__()
        self.a, self.b = nn.Conv2d(3, 8, 3, padding=1), nn.Conv2d(8, 4, 1)
        self.weight = nn.Parameter(torch.rand(8) + 0.5)
        self.literal_view = literal_view

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.a(x)
        y = y * torch.rsqrt(y.pow(2).mean(dim=1, keepdim=True) + 1e-6)
        scale = self.weight.view(1, 8, 1, 1) if self.literal_view else self.weight.reshape(1, -1, 1, 1)
        return self.b(torch.relu(y * scale))


class NormalizeNet(nn.Module):
    """conv -> ``F.normalize`` over ``dim`` (channels: SSD's L2Norm; or width) -> conv."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.a, self.b, self.dim = nn.Conv2d(3, 8, 3, padding=1), nn.Conv2d(8, 4, 1), dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.b(F.normalize(self.a(x), dim=self.dim))


class ReduceNet(nn.Module):
    """conv -> a reduction ``op`` over channels, broadcast back over the conv's output -> conv."""

    def __init__(self, op: str) -> None:
        super().__init__()
        self.a, self.b, self.op = nn.Conv2d(3, 8, 3, padding=1), nn.Conv2d(8, 4, 1), op

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.a(x)
        if self.op == "var":
            stat = y.var(dim=1, keepdim=True)
        elif self.op == "var-width":  # var(x, dim, unbiased, keepdim): per channel, exact
            stat = y.var(3, True, True)
        elif self.op == "norm-width":  # norm(x, p, dim, keepdim)
            stat = torch.norm(y, 2, 3, True)
        elif self.op == "sum-unsqueeze":
            stat = y.sum(1).unsqueeze(1)
        elif self.op == "argmax":
            stat = y.argmax(dim=1, keepdim=True).float()
        elif self.op == "amax":
            stat = y.amax(dim=1, keepdim=True)
        elif self.op == "max":  # values and indices: the indices would name other channels after pruning
            stat = y.max(dim=1, keepdim=True).values
        else:  # "grouped": a statistic over half of the channels' dims (GroupNorm by hand)
            stat = y.view(y.shape[0], 2, -1, y.shape[2], y.shape[3]).mean(dim=2).repeat_interleave(4, dim=1)
        return self.b(y - stat)


X = torch.randn(2, 3, 6, 6)


@pytest.mark.parametrize("tracer", ["fx", "export"])
def test_rms_norm_over_channels_is_inexact_and_prunes(tracer):
    model = RmsNorm2dNet().eval()
    graph = prunekit.DependencyGraph(model, X, tracer=tracer)
    group = graph.group_of("a")
    assert group.prunable and not group.exact and "reduces across channels" in group.reason
    assert any(m.module == "" and m.role == "param" for m in group.members)  # the norm's weight
    with pytest.raises(NoPrunableGroupError):
        prunekit.prune_(copy.deepcopy(model), X, sparsity=0.5, exact_only=True, tracer=tracer)
    prunekit.prune_(model, X, sparsity=0.5, tracer=tracer)
    assert model.a.out_channels == 4 and model.weight.shape == (4,) and model(X).shape == (2, 4, 6, 6)


def test_a_literal_size_in_a_parameter_view_locks():
    """``weight.view(1, 8, 1, 1)`` would not follow a pruned weight."""
    graph = prunekit.DependencyGraph(RmsNorm2dNet(literal_view=True).eval(), X)
    assert not graph.group_of("a").prunable


@pytest.mark.parametrize(("dim", "exact"), [(1, False), (3, True)])
def test_normalize_is_inexact_only_across_channels(dim, exact):
    model = NormalizeNet(dim).eval()
    for tracer in ("fx", "record"):  # (torch.export decomposes it; its expand_as of the norm locks)
        group = prunekit.DependencyGraph(model, X, tracer=tracer).group_of("a")
        assert group.prunable and group.exact == exact, (tracer, group.reason)
    original = copy.deepcopy(model)
    report = prunekit.prune_(model, X, sparsity=0.5, exact_only=exact)
    assert model.a.out_channels == 4
    assert prunekit.check_equivalence(original, model, X, report).ok == exact


@pytest.mark.parametrize(
    ("op", "prunable"),
    [("var", True), ("sum-unsqueeze", True), ("amax", True), ("max", False), ("argmax", False), ("grouped", False)],
)
def test_reductions_over_all_channels_are_inexact_others_lock(op, prunable):
    group = prunekit.DependencyGraph(ReduceNet(op).eval(), X).group_of("a")
    assert group.prunable == prunable, group.reason
    assert "reduces across channels" in group.reason
    if prunable:
        assert not group.exact
        model = ReduceNet(op).eval()
        prunekit.prune_(model, X, sparsity=0.5)
        assert model.a.out_channels == 4 and model(X).shape == (2, 4, 6, 6)


@pytest.mark.parametrize("op", ["var-width", "norm-width"])
def test_reductions_over_other_dims_keep_channels_exactly(op):
    """``keepdim`` is read where each signature has it (4th for var and norm)."""
    model = ReduceNet(op).eval()
    assert prunekit.DependencyGraph(model, X).group_of("a").exact
    original = copy.deepcopy(model)
    report = prunekit.prune_(model, X, sparsity=0.5, exact_only=True)
    assert model.a.out_channels == 4
    assert prunekit.check_equivalence(original, model, X, report).ok


class RMSNormNet(nn.Module):
    """Linear -> ``nn.RMSNorm`` or ``F.rms_norm`` (with the module's normalized_shape, which the
    surgery updates) over the features -> Linear.

    Groups: a (8: a out, norm weight, b in; inexact); b (4: b out; output).
    """

    def __init__(self, functional: bool) -> None:
        super().__init__()
        self.a, self.b, self.functional = nn.Linear(6, 8), nn.Linear(8, 4), functional
        self.norm = nn.RMSNorm(8)
        with torch.no_grad():
            self.norm.weight.uniform_(0.5, 1.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.a(x)
        y = F.rms_norm(y, self.norm.normalized_shape, self.norm.weight) if self.functional else self.norm(y)
        return self.b(y)


@pytest.mark.parametrize("tracer", ["fx", "export"])
@pytest.mark.parametrize("functional", [False, True], ids=["module", "functional"])
def test_rms_norm_layer_is_inexact_and_prunes(functional, tracer):
    model, x = RMSNormNet(functional).eval(), torch.randn(2, 5, 6)
    group = prunekit.DependencyGraph(model, x, tracer=tracer).group_of("a")
    assert group.prunable and not group.exact and "root mean square" in group.reason, group.reason
    prunekit.prune_(model, x, sparsity=0.5, tracer=tracer)
    assert model.a.out_features == 4 and model.norm.weight.shape == (4,) and model(x).shape == (2, 5, 4)
