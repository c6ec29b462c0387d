"""Items 3 and 4: non-finite outputs never pass a check, and every module keeps its own
train/eval flag through MACs counting, pruning, equivalence checks, export and latency, also
when a prune fails."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch
from torch import nn

import prunekit
from prunekit.equivalence import check_equivalence
from prunekit.errors import EquivalenceError, NonFiniteError, SurgeryError
from prunekit.export import export_program, verify_export
from prunekit.latency import measure_latency
from prunekit.metrics import count_macs

from .helpers import assert_unchanged, snapshot
from .test_api_table import Net, X


def test_a_nan_output_fails_the_equivalence_check() -> None:
    original = Net().eval()
    pruned = copy.deepcopy(original)
    report = prunekit.prune_(pruned, X, sparsity=0.5)
    assert check_equivalence(original, pruned, X, report).ok
    with torch.no_grad():
        pruned.fc.bias[0] = float("nan")
    result = check_equivalence(original, pruned, X, report)
    assert not result.ok and result.max_error != result.max_error  # NaN, not 0.0
    with pytest.raises(EquivalenceError, match="NaN or inf"):
        prunekit.assert_equivalent(original, pruned, X, report)


def test_verify_export_fails_on_nan(tmp_path: Path) -> None:
    model = nn.Sequential(nn.Linear(4, 3)).eval()
    x = torch.randn(2, 4)
    path = export_program(model, x, tmp_path / "m.pt2")
    with torch.no_grad():
        model[0].bias[0] = float("nan")
    with pytest.raises(EquivalenceError, match="NaN or inf"):
        verify_export(model, x, program=path, batch_sizes=())


def test_a_nan_weight_is_reported_before_pruning() -> None:
    model = Net()
    with torch.no_grad():
        model.bn1.weight[3] = float("inf")
    before = snapshot(model)
    with pytest.raises(NonFiniteError, match=r"bn1.weight .*channel\(s\) 3 of layer 'bn1'"):
        prunekit.prune_(model, X, sparsity=0.5)
    assert_unchanged(model, before)


def _flags(model: nn.Module) -> dict[str, bool]:
    return {name: m.training for name, m in model.named_modules()}


@pytest.mark.parametrize(
    "call",
    [
        lambda m: count_macs(m, X),
        lambda m: check_equivalence(copy.deepcopy(m), m, X, prunekit.PruneReport()),
        lambda m: measure_latency(m, (X,), min_run_time=0.01),
        lambda m: prunekit.DependencyGraph(m, X),
    ],
    ids=["count_macs", "check_equivalence", "measure_latency", "trace"],
)
def test_frozen_batchnorm_stays_frozen(call) -> None:  # type: ignore[no-untyped-def]
    model = Net()
    before = snapshot(model)
    call(model)
    assert_unchanged(model, before)
    assert model.training and not model.bn2.training


def test_prune_keeps_each_modules_flag() -> None:
    model = Net()
    prunekit.prune_(model, X, sparsity=0.5)
    assert _flags(model) == {"": True, "conv1": True, "bn1": True, "conv2": True, "bn2": False, "fc": True}


def test_export_keeps_each_modules_flag(tmp_path: Path) -> None:
    model = Net()
    export_program(model, X, tmp_path / "m.pt2")
    assert model.training and not model.bn2.training and model.bn1.training


class WeightNormNet(nn.Module):
    """A weight-norm conv (a parametrization prunekit cannot slice) beside a frozen BatchNorm."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.utils.parametrizations.weight_norm(nn.Conv2d(3, 8, 3, padding=1))
        self.bn = nn.BatchNorm2d(8)
        self.conv2 = nn.Conv2d(8, 4, 3, padding=1)
        self.train()
        self.bn.eval()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv2(torch.relu(self.bn(self.conv1(x))))


def test_a_failed_prune_leaves_every_tensor_flag_and_parametrization() -> None:
    model = WeightNormNet()
    before = snapshot(model)
    assert any("parametrizations" in k for k in before[0])  # the originals are compared too
    with pytest.raises(SurgeryError):
        prunekit.prune_(model, X, sparsity=0.5)
    assert_unchanged(model, before)
    assert model.training and not model.bn.training


def test_unmet_round_to_and_target_warn_and_are_recorded() -> None:
    with pytest.warns(UserWarning, match="round_to=1000"):
        report = prunekit.prune_(Net(), X, sparsity=0.5, round_to=1000)
    assert report.channels_removed == 0 and "round_to=1000" in report.config["warnings"][0]
    with pytest.warns(UserWarning, match="target_macs=0.001 was not reached"):
        report = prunekit.prune_(Net(), X, target_macs=0.001)
    assert report.config["warnings"]


def test_a_cut_that_breaks_midway_restores_every_flag(monkeypatch: pytest.MonkeyPatch) -> None:
    """A layer rule that fails mid-surgery (the restore path of apply_plan), with a frozen BN."""
    from prunekit.rules.norm import PerChannelRule

    original_slice = PerChannelRule.slice_tensors

    def broken(self, module, tensors, keep):  # type: ignore[no-untyped-def]
        out = original_slice(self, module, tensors, keep)
        out["running_mean"] = tensors["running_mean"]  # forgets to slice one buffer
        return out

    monkeypatch.setattr(PerChannelRule, "slice_tensors", broken)
    model = Net()
    before = snapshot(model)
    with pytest.raises(SurgeryError):
        prunekit.prune_(model, X, sparsity=0.5)
    assert_unchanged(model, before)


def test_the_finiteness_screen_has_no_false_alarm_when_a_sum_overflows() -> None:
    from prunekit.checks import nonfinite_tensors

    layer = nn.Linear(64, 64)
    with torch.no_grad():
        layer.weight.fill_(3e38)  # every value finite, their float32 sum is inf
    assert nonfinite_tensors(layer) == {}
    with torch.no_grad():
        layer.weight[7, 3] = float("-inf")
        layer.bias[2] = float("nan")
    assert nonfinite_tensors(layer) == {"weight": [7], "bias": [2]}
    assert nonfinite_tensors(nn.Linear(4000, 4000).half()) == {}  # half sums accumulate in float32
