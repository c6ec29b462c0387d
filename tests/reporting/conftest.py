"""A CIFAR ResNet-20 on 1x28x28 inputs, pruned in two steps, shared by the report tests."""

from __future__ import annotations

import copy
from dataclasses import dataclass

import pytest
import torch
import torch.nn as nn

import prunekit
from prunekit.models import get_model

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
KWARGS = {"num_classes": 10, "in_channels": 1}


@dataclass
class Pruned:
    before: nn.Module
    after: nn.Module
    x: torch.Tensor
    reports: list[prunekit.PruneReport]


@pytest.fixture(scope="session")
def pruned() -> Pruned:
    """ResNet-20 cut by 30% (layer1.0.conv1 and its BN asked for 50%), then 25% more."""
    torch.manual_seed(0)
    before = get_model("resnet20", **KWARGS).eval()
    after = copy.deepcopy(before)
    x = torch.randn(2, 1, 28, 28)
    overrides = {"layer1.0.conv1": 0.5, "layer1.0.bn1": 0.5}
    r1 = prunekit.prune_(after, x, sparsity=0.3, overrides=overrides)
    r2 = prunekit.prune_(after, x, sparsity=0.25)
    return Pruned(before, after.eval(), x, [r1, r2])


def write_history(path, header: str, rows: list[str]):
    path.write_text(header + "\n" + "\n".join(rows) + "\n")
    return path
