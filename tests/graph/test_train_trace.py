"""The train-mode trace is skipped only when it would equal the eval-mode one."""

from __future__ import annotations

import warnings

import pytest
import torch.nn as nn
import torchvision
from zoo import ZOO

from prunekit.graph.tracer import may_differ_in_training, trace

TORCHVISION = ["resnet18", "mobilenet_v2", "mobilenet_v3_small", "googlenet", "efficientnet_b0", "densenet121"]


def _codes(model: nn.Module) -> tuple[str, str]:
    model.eval()
    eval_code = str(trace(model).graph)
    model.train()
    return eval_code, str(trace(model).graph)


@pytest.mark.parametrize("name", [n for n, _ in ZOO] + TORCHVISION)
def test_skipped_only_when_the_graphs_are_equal(name: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = dict(ZOO)[name]() if name in dict(ZOO) else getattr(torchvision.models, name)(weights=None)
    eval_code, train_code = _codes(model)
    if not may_differ_in_training(model):
        assert eval_code == train_code


def test_a_training_branch_is_seen_in_a_helper_function() -> None:
    def head(module: nn.Module, x):
        return module.aux(x) if module.training else x

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv, self.aux = nn.Conv2d(3, 3, 1), nn.Conv2d(3, 3, 1)

        def forward(self, x):
            return _helper(self, self.conv(x))

    global _helper
    _helper = head
    assert may_differ_in_training(Net())
    assert not may_differ_in_training(nn.Sequential(nn.Conv2d(3, 3, 1), nn.BatchNorm2d(3), nn.Dropout()))
