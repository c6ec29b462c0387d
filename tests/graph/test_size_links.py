"""Reshape sizes computed from channel counts: locked before surgery when they would break."""

from __future__ import annotations

import copy

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
