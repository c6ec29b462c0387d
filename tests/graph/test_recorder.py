"""tracer="record": models with value-dependent Python control flow are analysed from what ran."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn as nn

import prunekit
from prunekit.errors import ExampleInputError, TraceError


class PostProcessed(nn.Module):
    """conv -> bn -> residual conv -> head, then post-processing that branches on the scores
    (like a detection head's filtering): fx and torch.export both fail on the ``if``."""

    def __init__(self) -> None:
        super().__init__()
        self.conv, self.bn = nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8)
        self.conv2, self.head = nn.Conv2d(8, 8, 3, padding=1), nn.Conv2d(8, 4, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        y = torch.relu(self.bn(self.conv(x)))
        y = y + self.conv2(y)
        out = self.head(y)
        scores = out.sigmoid().flatten(2)
        keep = scores.max(1).values > 0.5
        if keep.sum() > 0:
            return out, scores[:, :, keep[0]]
        return out, scores


X = torch.randn(1, 3, 8, 8)


def test_auto_still_refuses_and_points_at_record():
    with pytest.raises(TraceError, match='tracer="record"'):
        prunekit.DependencyGraph(PostProcessed(), X)


def test_record_follows_the_path_taken_and_prunes_equivalently():
    model = PostProcessed().eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    graph = prunekit.DependencyGraph(model, X, tracer="record")
    assert graph.backend == "record"
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # BN stats untouched
    trunk = graph.group_of("conv")
    assert trunk.prunable and {"conv", "bn", "conv2"} <= trunk.modules() and "add" in trunk.couplings
    head = graph.group_of("head")
    assert not head.prunable and "indexing" in head.reason  # post-processing locks, with a reason
    original = copy.deepcopy(model)
    report = prunekit.prune_(model, X, sparsity=0.5, tracer="record")
    assert model.conv.out_channels == 4 and model.conv2.in_channels == 4
    assert prunekit.check_equivalence(original, model, X, report).ok


def test_record_matches_fx_on_a_traceable_model():
    torchvision = pytest.importorskip("torchvision")
    model, x = torchvision.models.resnet18(weights=None).eval(), torch.randn(1, 3, 32, 32)
    fx_graph = prunekit.DependencyGraph(model, x)
    rec_graph = prunekit.DependencyGraph(model, x, tracer="record")
    assert [(g.size, g.prunable) for g in rec_graph.groups] == [(g.size, g.prunable) for g in fx_graph.groups]


def test_yolov8_head_is_followed_and_the_backbone_prunes():
    ultralytics = pytest.importorskip("ultralytics")
    model = ultralytics.YOLO("yolov8n.yaml").model.eval()  # built from its config: no weights
    x = torch.randn(1, 3, 64, 64)
    graph = prunekit.DependencyGraph(model, x, tracer="record")
    assert len(graph.prunable_groups) > 40 and graph.group_of("model.0.conv").prunable
    original = copy.deepcopy(model)
    report = prunekit.prune_(model, x, sparsity=0.3, tracer="record")
    assert sum(p.numel() for p in model.parameters()) < 0.8 * sum(p.numel() for p in original.parameters())
    assert prunekit.check_equivalence(original, model, x, report).ok


def test_a_detection_model_taking_a_list_of_images():
    torchvision = pytest.importorskip("torchvision")
    build = torchvision.models.detection.fasterrcnn_mobilenet_v3_large_320_fpn
    model = build(weights=None, weights_backbone=None).eval()
    images = [torch.rand(3, 96, 96)]
    with pytest.raises(TraceError, match="torch.export cannot either"):  # NMS, data-dependent sizes
        prunekit.DependencyGraph(model, images)
    with pytest.warns(UserWarning, match="does not run in train mode"):  # it needs targets there
        graph = prunekit.DependencyGraph(model, images, tracer="record")
    assert len(graph.prunable_groups) > 25
    assert graph.group_of("backbone.body.1.block.0.0").prunable  # an inverted-residual expansion
    with pytest.raises(ExampleInputError, match="failed on the example inputs"):
        prunekit.DependencyGraph(model, images[0], tracer="record")  # a tensor, not a list of images


class CachesOnSelf(nn.Module):
    """A forward that caches a tensor on its module, as ultralytics' Detect does with anchors."""

    def __init__(self) -> None:
        super().__init__()
        self.conv, self.head = nn.Conv2d(3, 8, 1), nn.Conv2d(8, 2, 1)
        self.grid = torch.empty(0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.grid.shape != x.shape[2:]:
            self.grid = torch.zeros(x.shape[2:])
        return self.head(torch.relu(self.conv(x))) + self.grid


def test_export_leaves_no_fake_tensor_on_the_model():
    model = CachesOnSelf()
    prunekit.DependencyGraph(model, X, tracer="export")
    assert model.grid.shape == (0,) and model(X).shape == (1, 2, 8, 8)
