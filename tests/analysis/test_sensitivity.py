"""Sensitivity analysis on a small trained net: curves, CSV, PNG, and a schedule that runs."""

from __future__ import annotations

import copy
import csv
import io

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import prunekit
from prunekit.analysis import (
    plot_sensitivity,
    prune_options,
    schedule_config,
    sensitivity_analysis,
    suggest_for_macs,
    suggest_sparsities,
    write_schedule,
)
from prunekit.config import load_config
from prunekit.data import get_dataset, make_loader
from prunekit.errors import ConfigError


class SmallNet(nn.Module):
    """conv-bn-relu x3 with a residual add around the last two, avgpool, Linear: a stream group
    and two plain groups."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(1, 12, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(12)
        self.conv2, self.bn2 = nn.Conv2d(12, 16, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(16)
        self.conv3, self.bn3 = nn.Conv2d(16, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16)
        self.fc = nn.Linear(16, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn1(self.conv1(x)))
        y = F.relu(self.bn2(self.conv2(x)))
        y = F.relu(self.bn3(self.conv3(y)) + y)
        return self.fc(F.adaptive_avg_pool2d(y, 1).flatten(1))


@pytest.fixture(scope="module")
def trained():
    torch.manual_seed(0)
    model = SmallNet()
    train = make_loader(get_dataset("fashion-mnist-embedded", train=True), batch_size=64, shuffle=True, seed=0)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(2):
        for x, y in train:
            opt.zero_grad()
            F.cross_entropy(model(x), y).backward()
            opt.step()
    model.eval()
    val = make_loader(get_dataset("fashion-mnist-embedded", train=False), batch_size=250)
    val_batches = [b for _, b in zip(range(2), val)]
    result = sensitivity_analysis(model, torch.randn(1, 1, 28, 28), val_batches, progress=False)
    return model, val_batches, result


def test_curves_start_at_the_baseline_and_fall(trained):
    model, _, result = trained
    assert result.baseline[0] > 0.5  # it learned something
    assert set(result.modules) and all(result.labels[g] in result.modules[g] for g in result.modules)
    for gid in result.modules:
        s, top1 = result.curve(gid)
        assert list(s) == [round(0.1 * i, 1) for i in range(10)]
        assert top1[0] == pytest.approx(result.baseline[0])
        assert top1[-1] < top1[0]  # 90% of a group's channels hurts
        assert all(b <= a + 0.05 for a, b in zip(top1, top1[1:])), (gid, top1.tolist(), result.baseline)  # monotone-ish
    assert model.conv1.weight.abs().min() > 0  # every weight restored


def test_csv_and_png(trained, tmp_path):
    _, _, result = trained
    text = result.to_csv(tmp_path / "s.csv")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == 10 * len(result.modules)
    assert {"group", "layer", "sparsity", "top1", "top5", "loss"} <= set(rows[0])
    assert (tmp_path / "s.csv").read_text() == text
    png = plot_sensitivity(result, tmp_path / "s.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ConfigError, match="metric"):
        plot_sensitivity(result, tmp_path / "x.png", metric="acc")


def test_suggested_schedule_loads_and_runs(trained, tmp_path):
    model, val, result = trained
    loose = suggest_sparsities(result, tolerance=0.05)
    tight = suggest_sparsities(result, tolerance=0.0)
    assert all(loose[g] >= tight[g] for g in loose) and any(loose.values())
    cfg = schedule_config(result, loose)
    path = write_schedule(cfg, tmp_path / "schedule.yaml")
    loaded = load_config(path)
    assert loaded == cfg
    pruned = copy.deepcopy(model)
    report = prunekit.prune_(pruned, torch.randn(1, 1, 28, 28), **prune_options(loaded))
    assert report.macs_ratio < 1.0
    for gid, s in loose.items():
        conv = pruned.get_submodule(result.labels[gid])
        orig = model.get_submodule(result.labels[gid])
        assert conv.weight.shape[0] == orig.weight.shape[0] - int(s * orig.weight.shape[0] + 1e-6)
    assert pruned(val[0][0]).shape == (250, 10)


def test_macs_target_suggestion(trained):
    model, _, result = trained
    sparsities, ratio = suggest_for_macs(result, model, torch.randn(1, 1, 28, 28), target_macs=0.7)
    assert ratio <= 0.7
    _, report = prunekit.prune(model, torch.randn(1, 1, 28, 28), **prune_options(schedule_config(result, sparsities)))
    assert report.macs_ratio == pytest.approx(ratio)
    with pytest.raises(ConfigError, match="target_macs"):
        suggest_for_macs(result, model, torch.randn(1, 1, 28, 28), target_macs=1.5)
    with pytest.raises(ConfigError, match="tolerance"):
        suggest_sparsities(result, tolerance=-1)
