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


def test_stochastic_depth_is_a_pass_through_leaf_so_efficientnet_is_traced_once() -> None:
    from torchvision.ops import StochasticDepth

    from prunekit.rules import ElementwiseRule, get_rule

    assert isinstance(get_rule(StochasticDepth), ElementwiseRule)
    model = torchvision.models.efficientnet_b0(weights=None)
    assert not may_differ_in_training(model)
    model.train()
    assert "call_module[target=features.2.1.stochastic_depth]" in str(trace(model).graph)


def test_pruning_through_stochastic_depth_matches_the_zeroed_original() -> None:
    import torch
    from torchvision.ops import StochasticDepth

    import prunekit

    class Block(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a, self.b, self.sd = nn.Conv2d(4, 8, 3, padding=1), nn.Conv2d(8, 4, 1), StochasticDepth(0.5, "row")

        def forward(self, x):
            return x + self.sd(self.b(torch.relu(self.a(x))))

    model = Block().eval()
    x = torch.randn(2, 4, 8, 8)
    graph = prunekit.DependencyGraph(model, x)
    hidden = graph.group_of("a")
    assert hidden is not None and hidden.prunable
    pruned, report = prunekit.prune(model, x, sparsity=0.5)
    assert pruned.a.out_channels == 4
    assert isinstance(pruned.sd, StochasticDepth)
    assert prunekit.check_equivalence(model, pruned, x, report).ok


def test_a_rule_registered_by_name_binds_on_first_sight_and_rejects_bad_names() -> None:
    from prunekit.errors import ConfigError
    from prunekit.rules import ElementwiseRule, get_rule, register_rule_by_name, unregister_rule

    class NamedGate(nn.Module):
        def forward(self, x):
            return x * 2

    register_rule_by_name(f"{NamedGate.__module__}.{NamedGate.__qualname__}", ElementwiseRule())
    try:
        assert isinstance(get_rule(NamedGate), ElementwiseRule)
    finally:
        unregister_rule(NamedGate)
    with pytest.raises(ConfigError, match="package.module.ClassName"):
        register_rule_by_name("NoDots", ElementwiseRule())
    with pytest.raises(ConfigError, match="LayerRule instance"):
        register_rule_by_name("a.B", object())  # type: ignore[arg-type]
