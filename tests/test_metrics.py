"""Model size: parameter counts."""

from __future__ import annotations

import torch.nn as nn
import torchvision

import prunekit


def test_count_params_counts_a_shared_parameter_once_as_parameters_does() -> None:
    model = torchvision.models.resnet18(weights=None)
    tied = nn.Linear(8, 8)
    model.extra = nn.Sequential(tied, nn.ReLU(), tied)  # one module under two names
    model.other = nn.Linear(8, 8)
    model.other.weight = tied.weight  # one parameter in two modules
    assert prunekit.count_params(model) == sum(p.numel() for p in model.parameters())
