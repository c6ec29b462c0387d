"""timm models from the coverage benchmark's issue list, built small, without weights.

Each is a regression test for what the benchmark found: an infinite clamp-bound buffer rejected
as a bad weight (Gemma 4 ViT), channels locked by an RMS norm written out as ops (MobileNetV5).
"""

from __future__ import annotations

import copy

import pytest
import torch

import prunekit
from tests.graph.test_torchvision import randomize

timm = pytest.importorskip("timm")


def test_gemma4_vit_with_infinite_clamp_bounds_prunes_exactly():
    """Its clipped linears hold ``input_min = -inf`` / ``input_max = inf`` buffers."""
    torch.manual_seed(0)
    model = timm.create_model(
        "gemma4_vit_167m", pretrained=False, depth=2, embed_dim=128, num_heads=2, intermediate_size=256, num_classes=10
    )
    model = randomize(model)
    assert not all(bool(torch.isfinite(b).all()) for b in model.buffers())
    x = torch.randn(1, 3, 96, 96)
    original = copy.deepcopy(model)
    report = prunekit.prune_(model, x, sparsity=0.5, exact_only=True)
    assert report.params_after < report.params_before
    res = prunekit.check_equivalence(original, model, x, report)
    assert res.ok and res.scale > 1e-3, res


@pytest.mark.slow
def test_mobilenetv5_rms_norms_are_inexact_not_locked():
    """Its norm (mobilenetv5_300m's, in a small variant) is ``x * rsqrt(mean(x^2, dim=1, keepdim=True) + eps) * weight.reshape(1, -1, 1, 1)``
    (traced by torch.export: the fusion adapter branches on sizes). Everything was locked."""
    torch.manual_seed(0)
    model = timm.create_model("mobilenetv5_base", pretrained=False, channel_multiplier=0.25, num_classes=10).eval()
    x = torch.randn(1, 3, 64, 64)
    graph = prunekit.DependencyGraph(model, x)
    assert not any(g.prunable and g.exact for g in graph.groups)
    inexact = [g for g in graph.groups if g.prunable and not g.exact]
    assert len(inexact) == 33 and all("reduces across channels" in g.reason for g in inexact)
    report = prunekit.prune_(model, x, sparsity=0.5)
    assert report.params_after < 0.5 * report.params_before
    assert model(x).shape == (1, 10)


@pytest.mark.parametrize("name", ["mambaout_tiny", "gmlp_b16_224"])
def test_layernorm_only_models_prune_when_inexact_groups_are_allowed(name):
    """Every prunable group of these is behind a LayerNorm (inexact): nothing under exact_only."""
    torch.manual_seed(0)
    model = randomize(timm.create_model(name, pretrained=False, num_classes=10))
    x = torch.randn(1, 3, 224, 224)
    with pytest.raises(prunekit.errors.NoPrunableGroupError):
        prunekit.prune_(copy.deepcopy(model), x, sparsity=0.5, exact_only=True)
    report = prunekit.prune_(model, x, sparsity=0.5, exact_only=False)
    assert report.params_after < 0.6 * report.params_before
    model.train()
    model(x).pow(2).mean().backward()
