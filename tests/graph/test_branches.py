"""Removable branches: which groups may lose all their channels, and that removing them is exact
(the pruned model computes what the original computes with those channels zeroed)."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import torch.nn as nn
import torchvision

from prunekit.equivalence import check_equivalence
from prunekit.errors import SurgeryError
from prunekit.graph.branches import branch_blocker, consumers, keeps_data_path, removable_branches, together
from prunekit.graph.dependency import DependencyGraph
from prunekit.models import get_model
from prunekit.report import PruneReport
from prunekit.surgery import apply_plan, make_plan
from prunekit.surgery.standins import ConstantOutput, Emptied


def _randomise_norms(model: nn.Module) -> nn.Module:
    """Batch-norm statistics and shifts away from the identity, so a constant branch is not 0."""
    g = torch.Generator().manual_seed(0)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.rand(m.num_features, generator=g) - 0.5)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.bias.data.copy_(torch.rand(m.num_features, generator=g) - 0.5)
    return model.eval()


def remove(model: nn.Module, x: torch.Tensor, gids: list[int] | None = None, graph=None):
    """Removes the given removable groups whole (default: all that can go together); returns the
    pruned copy, the report of kept indices and the group ids removed."""
    graph = graph or DependencyGraph(model, x)
    cuts = removable_branches(graph, model, graph.groups)
    gids = together(graph, sorted(cuts) if gids is None else gids, cuts)
    plan = make_plan(graph, {g: np.arange(graph.groups[g].size) for g in gids}, emptied=gids)
    pruned = copy.deepcopy(model)
    apply_plan(pruned, plan)
    kept = {n: {r: idx.tolist() for r, idx in roles.items()} for n, roles in plan.module_keep.items()}
    return pruned, PruneReport(kept=kept), gids


def test_a_cifar_resnet_loses_whole_branches_exactly():
    torch.manual_seed(0)
    model = _randomise_norms(get_model("resnet20", num_classes=10, in_channels=3))
    x = torch.randn(2, 3, 32, 32)
    graph = DependencyGraph(model, x)
    cuts = removable_branches(graph, model, graph.groups)
    # one inner group per block (conv1 -> bn1 -> conv2), read by the block's conv2
    assert sorted(c for cut in cuts.values() for c in cut) == sorted(
        f"layer{s}.{b}.conv2" for s in (1, 2, 3) for b in range(3)
    )
    pruned, report, gids = remove(model, x)
    assert len(gids) == 9
    block = pruned.layer2[1]
    assert isinstance(block.conv1, Emptied) and isinstance(block.bn1, Emptied)
    assert isinstance(block.conv2, ConstantOutput) and isinstance(block.bn2, nn.BatchNorm2d)
    result = check_equivalence(model, pruned, x, report)
    assert result.ok, result
    assert not torch.allclose(pruned(x), model(x))  # the branches did compute something


def test_stream_and_chain_groups_are_not_removable():
    torch.manual_seed(0)
    model = get_model("resnet20", num_classes=10, in_channels=3).eval()
    graph = DependencyGraph(model, torch.randn(1, 3, 32, 32))
    stream = graph.group_of("layer1.0.bn2")
    assert "coupled (add" in branch_blocker(model, stream)

    chain = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU(), nn.Conv2d(8, 4, 3)).eval()
    graph = DependencyGraph(chain, torch.randn(1, 3, 9, 9))
    inner = graph.group_of("0")
    assert branch_blocker(chain, inner) is None  # structurally fine, but the output would be constant
    assert not keeps_data_path(graph, consumers(chain, inner))
    assert removable_branches(graph, chain, graph.groups) == {}


class TwoWays(nn.Module):
    """``f(x) + g(x)``: either branch may go, not both."""

    def __init__(self) -> None:
        super().__init__()
        self.f1, self.f2 = nn.Conv2d(4, 6, 3, padding=1), nn.Conv2d(6, 4, 3, padding=1)
        self.g1, self.g2 = nn.Conv2d(4, 6, 1), nn.Conv2d(6, 4, 1)

    def forward(self, x):
        return self.f2(torch.relu(self.f1(x))) + self.g2(torch.relu(self.g1(x)))


def test_two_branches_that_are_each_others_way_around_cannot_both_go():
    torch.manual_seed(0)
    model, x = TwoWays().eval(), torch.randn(2, 4, 6, 6)
    graph = DependencyGraph(model, x)
    cuts = removable_branches(graph, model, graph.groups)
    assert sorted(c for cut in cuts.values() for c in cut) == ["f2", "g2"]
    assert len(together(graph, sorted(cuts), cuts)) == 1
    pruned, report, gids = remove(model, x)
    assert check_equivalence(model, pruned, x, report).ok
    with pytest.raises(SurgeryError, match="would lose all"):  # not declared removable: refused
        make_plan(graph, {g.id: np.arange(g.size) for g in graph.groups if g.id not in gids and g.prunable})


class Blocked(nn.Module):
    """Residual branches that must not go whole: grouped conv, a gate, a hook."""

    def __init__(self) -> None:
        super().__init__()
        self.grouped = nn.Sequential(nn.Conv2d(8, 8, 1), nn.Conv2d(8, 8, 3, padding=1, groups=2), nn.Conv2d(8, 8, 1))
        self.a, self.gate, self.b = nn.Conv2d(8, 8, 1), nn.Conv2d(8, 8, 1), nn.Conv2d(8, 8, 1)
        self.hooked1, self.hooked2 = nn.Conv2d(8, 8, 1), nn.Conv2d(8, 8, 1)
        self.hooked2.register_forward_hook(lambda m, i, o: o)

    def forward(self, x):
        x = x + self.grouped(x)
        h = self.a(x)
        x = x + self.b(h * torch.sigmoid(self.gate(h)))
        return x + self.hooked2(torch.relu(self.hooked1(x)))


def test_grouped_gated_and_hooked_branches_are_kept():
    model, x = Blocked().eval(), torch.randn(1, 8, 5, 5)
    graph = DependencyGraph(model, x)
    reasons = {g.id: branch_blocker(model, g) for g in graph.groups if g.prunable}
    assert removable_branches(graph, model, graph.groups) == {}
    text = " ".join(r for r in reasons.values() if r)
    assert "grouped" in text or "balanced" in text
    assert "coupled" in text and "hooks" in text


@pytest.mark.parametrize(
    "name",
    # squeeze-excite gates (a constant gate), ConvNeXt's linear layers and layer scale, a dense
    # layer's concatenated output, an Inception branch, a shuffle unit's branch
    ["resnet18", "resnet50", "mobilenet_v2", "regnet_y_400mf", "convnext_tiny", "densenet121", "googlenet",
     "shufflenet_v2_x1_0"],
)  # fmt: skip
def test_torchvision_models_lose_whole_branches_exactly(name):
    torch.manual_seed(0)
    extra = {"aux_logits": False, "init_weights": True} if name == "googlenet" else {}
    model = _randomise_norms(getattr(torchvision.models, name)(weights=None, **extra))
    x = torch.randn(1, 3, 64, 64)
    graph = DependencyGraph(model, x)
    cuts = removable_branches(graph, model, graph.groups)
    assert cuts
    pruned, report, gids = remove(model, x, graph=graph)
    assert gids and check_equivalence(model, pruned, x, report).ok
    if name == "mobilenet_v2":
        # a block without a residual (stride 2 or a width change) is the only way through
        assert not any(c.startswith("features.2.") for cut in cuts.values() for c in cut)
        assert any(c.startswith("features.3.") for cut in cuts.values() for c in cut)
    if name == "resnet50":  # both inner groups of a bottleneck: the whole branch goes
        block = pruned.layer1[1]
        assert isinstance(block.conv1, Emptied) and isinstance(block.conv2, Emptied)
        assert isinstance(block.conv3, ConstantOutput)


def test_the_export_tracer_finds_the_same_branches():
    torch.manual_seed(0)
    model = _randomise_norms(get_model("resnet20", num_classes=10, in_channels=3))
    x = torch.randn(2, 3, 32, 32)
    found = {}
    for tracer in ("fx", "export"):
        graph = DependencyGraph(model, x, tracer=tracer)
        found[tracer] = sorted(c for cut in removable_branches(graph, model, graph.groups).values() for c in cut)
        pruned, report, gids = remove(model, x, graph=graph)
        assert len(gids) == 9 and check_equivalence(model, pruned, x, report).ok
    assert found["fx"] == found["export"]


def test_a_failed_cut_puts_the_replaced_layers_back():
    """The stand-ins are swapped in like any tensor: when the check forward fails, the model's
    own layers come back, unchanged."""
    torch.manual_seed(0)
    model, x = _randomise_norms(get_model("resnet20", num_classes=10, in_channels=3)), torch.randn(1, 3, 32, 32)
    graph = DependencyGraph(model, x)
    cuts = removable_branches(graph, model, graph.groups)
    gid = sorted(cuts)[0]
    plan = make_plan(graph, {gid: np.arange(graph.groups[gid].size)}, emptied=[gid])
    before = {n: type(m) for n, m in model.named_modules()}
    state = {k: v.clone() for k, v in model.state_dict().items()}

    def fail():
        raise RuntimeError("check forward failed")

    with pytest.raises(SurgeryError, match="restored unchanged"):
        apply_plan(model, plan, verify=fail)
    assert {n: type(m) for n, m in model.named_modules()} == before
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())
