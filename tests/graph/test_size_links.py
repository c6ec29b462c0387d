"""Reshape sizes computed from channel counts: locked before surgery when they would break."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn as nn

import prunekit


class HeadsFromWidth(nn.Module):
    """Attention as in timm's CaiT / DaViT: ``qkv(x).reshape(B, N, 3, heads, C // heads)`` with
    ``C`` read from ``x``, and ``(attn @ v).transpose(1, 2).reshape(B, N, C)``. Pruning the
    residual width C would change both sizes while qkv's outputs stay, so the surgery's check
    forward failed with "shape '[...]' is invalid"; the width must be locked instead."""

    def __init__(self, dim: int = 16, heads: int = 2) -> None:
        super().__init__()
        self.heads = heads
        self.embed = nn.Linear(8, dim)
        self.qkv, self.proj, self.mlp = nn.Linear(dim, 3 * dim), nn.Linear(dim, dim), nn.Linear(dim, 32)
        self.out = nn.Linear(32, 4)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        x = self.embed(tokens)
        B, N, C = x.shape
        qkv = self.qkv(x).reshape(B, N, 3, self.heads, C // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        attn = (q @ k.transpose(-2, -1)).softmax(-1)
        x = x + self.proj((attn @ v).transpose(1, 2).reshape(B, N, C))
        return self.out(torch.relu(self.mlp(x)))


class SqueezeExcite(nn.Module):
    """``y.view(b, c, 1, 1)`` with ``c`` read from ``x``, and y later multiplies x: the size and
    the channels it lands on are the same channels, so everything stays prunable."""

    def __init__(self) -> None:
        super().__init__()
        self.conv, self.fc1, self.fc2 = nn.Conv2d(3, 8, 3, padding=1), nn.Linear(8, 4), nn.Linear(4, 8)
        self.head = nn.Conv2d(8, 2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        b, c = x.shape[:2]
        y = torch.sigmoid(self.fc2(torch.relu(self.fc1(x.mean((2, 3)))))).view(b, c, 1, 1)
        return self.head(x * y)


def test_a_width_used_as_a_reshape_size_is_locked_with_the_op_named():
    model, x = HeadsFromWidth().eval(), torch.randn(2, 5, 8)
    graph = prunekit.DependencyGraph(model, x)
    width = graph.group_of("embed")
    assert not width.prunable and "reshape" in width.reason and "channel count" in width.reason
    assert graph.group_of("mlp").prunable  # the MLP's hidden channels do not enter any size
    original = copy.deepcopy(model)
    report = prunekit.prune_(model, x, sparsity=0.5)
    assert model.mlp.out_features == 16 and model.embed.out_features == 16
    assert prunekit.check_equivalence(original, model, x, report).ok


def test_a_size_from_the_same_channels_stays_prunable():
    model, x = SqueezeExcite().eval(), torch.randn(2, 3, 6, 6)
    graph = prunekit.DependencyGraph(model, x)
    assert graph.group_of("conv").prunable and graph.group_of("fc1").prunable
    original = copy.deepcopy(model)
    report = prunekit.prune_(model, x, sparsity=0.5)
    assert model.conv.out_channels == 4
    assert prunekit.check_equivalence(original, model, x, report).ok


class SizeFromAttribute(nn.Module):
    """Linear -> ``x.view(-1, <size>, 4, 4)`` -> ConvTranspose2d x2 -> flatten -> Linear, as in
    Torch-Pruning's reshape test. ``size`` is "attr" (``self.up1.in_channels``, which the surgery
    updates), "literal" (16), or "other" (``self.other.in_channels``: a layer whose channels
    are not the reshaped ones, with the same value)."""

    def __init__(self, size: str) -> None:
        super().__init__()
        self.size = size
        self.fc = nn.Linear(32, 256)
        self.up1 = nn.ConvTranspose2d(16, 8, kernel_size=4, stride=2, padding=1)
        self.up2 = nn.ConvTranspose2d(8, 4, kernel_size=4, stride=2, padding=1)
        self.other = nn.Conv2d(16, 4, 1)
        self.final = nn.Linear(4 * 16 * 16, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = {"attr": self.up1.in_channels, "literal": 16, "other": self.other.in_channels}[self.size]
        y = torch.relu(self.fc(x)).view(-1, c, 4, 4)
        y = torch.relu(self.up2(torch.relu(self.up1(y))))
        z = self.other(torch.ones(1, 16, 1, 1))  # keeps 'other' in the graph
        return self.final(torch.flatten(y, 1)) + z.sum()


def test_a_size_read_from_the_attribute_the_surgery_updates_is_prunable():
    model = SizeFromAttribute("attr").eval()
    x = torch.randn(2, 32)
    group = prunekit.DependencyGraph(model, x).group_of("fc")
    assert group.prunable and group.exact and group.size == 16, group.reason
    original = copy.deepcopy(model)
    report = prunekit.prune_(model, x, sparsity=0.5, exact_only=True)
    assert model.up1.in_channels == 8 and model.fc.out_features == 128
    assert prunekit.check_equivalence(original, model, x, report).ok


@pytest.mark.parametrize(("size", "reason"), [("literal", "hard-codes"), ("other", "other.in_channels")])
def test_a_literal_or_another_layers_attribute_stays_locked(size, reason):
    graph = prunekit.DependencyGraph(SizeFromAttribute(size).eval(), torch.randn(2, 32))
    group = graph.group_of("fc")
    assert not group.prunable and reason in group.reason, group.reason


def test_tracing_and_probing_leave_the_model_as_it_was():
    """Probing changes attributes and retraces; fx stores tensor constants on the model."""
    model = SizeFromAttribute("attr").eval()
    attrs = dict(vars(model))
    prunekit.DependencyGraph(model, torch.randn(2, 32))
    assert vars(model).keys() == attrs.keys() and model.up1.in_channels == 16 and model.other.in_channels == 16
