"""The engine's report helpers."""

from __future__ import annotations

import torch.nn as nn
import torchvision

from prunekit.engine.report import layer_params, own_params


def test_layer_params_counts_each_modules_own_parameters_once() -> None:
    model = torchvision.models.resnet18(weights=None)
    shared = nn.Linear(4, 4)
    shared.extra = shared.weight  # one parameter under two names: counted once, as parameters() does
    model.head = shared
    expected = {n: sum(p.numel() for p in m.parameters(recurse=False)) for n, m in model.named_modules()}
    assert layer_params(model) == expected
    assert layer_params(model)["head"] == 20 and layer_params(model)[""] == 0
    assert own_params(model.head) == 20 and own_params(model) == 0
