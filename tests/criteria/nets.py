"""Tiny nets and calibration data shared by the criteria tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn as nn

import prunekit

ASSET = Path(prunekit.__file__).parent / "data" / "assets" / "fashion_mnist_subset.npz"


def tiny_net() -> nn.Sequential:
    """Conv(1->3, 1x1) -> BN -> ReLU -> Conv(3->2, 1x1), weights set so scores can be hand-computed.

    Group 0 (3 channels) holds 0:out (weight, bias), 1:out (BN) and 3:in.
    """
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 3, 1), nn.BatchNorm2d(3), nn.ReLU(), nn.Conv2d(3, 2, 1))
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor([1.0, -2.0, 0.5]).view(3, 1, 1, 1))
        net[0].bias.copy_(torch.tensor([0.0, 1.0, -1.0]))
        net[1].weight.copy_(torch.tensor([0.5, -3.0, 1.0]))
        net[1].bias.copy_(torch.tensor([0.1, 0.0, -0.2]))
        net[3].weight.copy_(torch.tensor([[1.0, 0.0, 2.0], [-1.0, 1.0, 0.0]]).view(2, 3, 1, 1))
        net[3].bias.zero_()
    return net.eval()


def group0(net: nn.Module) -> prunekit.Group:
    groups = prunekit.DependencyGraph(net, torch.zeros(1, 1, 4, 4)).groups
    return next(g for g in groups if g.size == 3)


def small_cnn() -> nn.Sequential:
    """Conv-BN-ReLU x2 -> global pool -> flatten into Linear (for Fashion-MNIST 28x28)."""
    torch.manual_seed(1)
    return nn.Sequential(
        nn.Conv2d(1, 8, 3, stride=2),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.Conv2d(8, 12, 3, stride=2),
        nn.BatchNorm2d(12),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(12, 10),
    ).eval()


def fashion_batches(n_batches: int = 3, batch_size: int = 32) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """A few (images, labels) batches of the embedded Fashion-MNIST subset; skips if it is missing."""
    if not ASSET.exists():
        pytest.skip(f"Fashion-MNIST subset not found at {ASSET}")
    with np.load(ASSET) as d:
        images, labels = d["train_images"], d["train_labels"]
    n = n_batches * batch_size
    x = torch.from_numpy(images[:n].astype(np.float32) / 255.0).unsqueeze(1)
    y = torch.from_numpy(labels[:n].astype(np.int64))
    return [(x[i : i + batch_size], y[i : i + batch_size]) for i in range(0, n, batch_size)]


def params_of(net: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in net.state_dict().items()}


def assert_unchanged(net: nn.Module, before: dict[str, torch.Tensor]) -> None:
    after = net.state_dict()
    assert before.keys() == after.keys()
    for k, v in before.items():
        assert torch.equal(v, after[k]), k
