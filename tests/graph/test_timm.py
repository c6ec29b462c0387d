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
