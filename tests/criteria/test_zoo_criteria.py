"""Every criterion prunes zoo nets (residual add, concat, depthwise, grouped, shuffle, SE, flatten
into Linear) without breaking equivalence; scoring on random calibration data."""

from __future__ import annotations

import copy

import pytest
import torch
from zoo import ZOO

import prunekit
from prunekit.criteria import CRITERIA

NETS = ["ResidualNet", "DenseNet", "GroupedNet", "ShuffleNet", "SENet", "FlattenLinearNet"]


def _loss(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return out.float().pow(2).mean()


def _make(name: str):
    return dict(ZOO)[name]


@pytest.mark.parametrize("criterion", [n for n in CRITERIA.names() if n != "bn_scale"])
@pytest.mark.parametrize("net_name", NETS)
def test_zoo_prune_equivalent(net_name, criterion):
    make = _make(net_name)
    net = make()
    (x,) = net.example_inputs()
    data = [(x, torch.zeros(1)), (x * 0.5, torch.zeros(1))]
    cls = CRITERIA.get(criterion)
    options = {"data": data} if getattr(cls, "needs_data", False) else {}
    if criterion in ("taylor", "accuracy_drop"):
        options["loss_fn"] = _loss
    crit = cls(**options)
    original = copy.deepcopy(net)
    report = prunekit.prune_(net, x, sparsity=0.5, criterion=crit)
    assert report.channels_removed > 0
    assert prunekit.check_equivalence(original, net, x, report).ok
