"""The coverage benchmark's own machinery: MAC counting, detector thresholds, merging, report."""

import copy
import importlib.util
from pathlib import Path

import pytest
import torch
from torch import nn

# Loaded by path under another name: ``import coverage`` would be coverage.py (pytest-cov) if installed.
_spec = importlib.util.spec_from_file_location(
    "coverage_benchmark", Path(__file__).resolve().parents[2] / "benchmarks" / "coverage.py"
)
cov = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(cov)
FIXED_COUNT, count_macs, fixed_detections, macs_kept = (
    cov.FIXED_COUNT,
    cov.count_macs,
    cov.fixed_detections,
    cov.macs_kept,
)
merge, missing, render, totals = cov.merge, cov.missing, cov.render, cov.totals


def _convs(mid: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(3, mid, 3), nn.ReLU(), nn.Conv2d(mid, 4, 1)).eval()


def test_macs_are_counted_on_the_same_input_for_both_models():
    x = torch.randn(1, 3, 10, 10)
    macs, shapes, fixed = count_macs(_convs(8), x)
    assert macs == 8 * 8 * (8 * 3 * 9 + 4 * 8) and shapes == [(1, 4, 8, 8)] and not fixed
    row: dict = {}
    macs_kept(_convs(8), _convs(4), x, row)
    assert row["macs_kept"] == pytest.approx((4 * 3 * 9 + 4 * 4) / (8 * 3 * 9 + 4 * 8))


class _Detector(nn.Module):
    """Keeps the boxes whose score passes ``score_thresh``, as a detector's post-processing does."""

    def __init__(self, conv: nn.Module):
        super().__init__()
        self.conv, self.score_thresh, self.nms_thresh = conv, 0.5, 0.5

    def forward(self, x):
        scores = self.conv(x).flatten()
        return scores[scores > self.score_thresh]


def test_detectors_are_counted_with_every_box_kept_and_their_thresholds_restored():
    det = _Detector(nn.Conv2d(3, 2, 1))
    with fixed_detections(det) as fixed:
        assert fixed and det.score_thresh == FIXED_COUNT["score_thresh"] and det.nms_thresh == 1.0
    assert (det.score_thresh, det.nms_thresh) == (0.5, 0.5)
    x = torch.randn(1, 3, 4, 4)
    assert count_macs(det, x)[1] == [(2 * 16,)]  # every score, whatever the threshold
    row: dict = {}
    macs_kept(det, copy.deepcopy(det), x, row)
    assert row["macs_kept"] == 1.0


def test_merge_replaces_rows_per_family_model_and_tool_and_lists_what_is_missing():
    order = [("other", "a"), ("torchvision", "b"), ("timm", "b")]  # timm and torchvision share names
    kept = [
        {"family": "timm", "model": "b", "tool": "prunekit", "v": 1},
        {"family": "torchvision", "model": "b", "tool": "prunekit", "v": 1},
        {"family": "other", "model": "a", "tool": "prunekit", "v": 1},
    ]
    new = [
        {"family": "other", "model": "a", "tool": "torch-pruning", "v": 2},
        {"family": "timm", "model": "b", "tool": "prunekit", "v": 2},
    ]
    rows = merge(kept, new, order)
    assert [(r["family"], r["model"], r["tool"], r["v"]) for r in rows] == [
        ("other", "a", "prunekit", 1),
        ("other", "a", "torch-pruning", 2),
        ("torchvision", "b", "prunekit", 1),
        ("timm", "b", "prunekit", 2),
    ]
    assert missing(rows, order, ["prunekit", "torch-pruning"]) == {"prunekit": [], "torch-pruning": ["b", "b (timm)"]}


def test_report_counts_and_renders_every_kind_of_row():
    rows = [
        {"model": "a", "family": "other", "tool": "prunekit", "finished": True, "groups": 3, "prunable": 2}
        | {"macs_kept": 0.5, "equivalent": True, "max_error": 1e-7, "scale": 1.0, "time_s": 1.0},
        {"model": "a", "family": "other", "tool": "torch-pruning", "finished": False, "raw": True}
        | {"error": "RuntimeError: x | y", "time_s": 0.5},
        {"model": "b", "family": "timm", "tool": "prunekit", "finished": True, "macs_reported": 0.7}
        | {"equivalent": None, "reason": "oracle: unknown"},
        {"model": "b", "family": "timm", "tool": "torch-pruning", "finished": False, "error": "timed out after 9 s"},
    ]
    t = totals(rows, "torch-pruning")
    assert t == {"models": 2, "finished": 0, "equivalent": 0, "raw_exceptions": 1, "timeouts": 1}
    data = {"command": "c", "machine": {"torch": "2"}, "rows": rows, "partial": True, "wall_s": 3.0}
    data |= {"totals": {"prunekit": totals(rows, "prunekit"), "torch-pruning": t}, "missing": {"prunekit": ["z"]}}
    md = render(data)
    assert "**Partial run.**" in md and "Not run for prunekit (1): z." in md
    assert "| other | a | prunekit | ok | 2/3 | 0.500 | 1.0e-07 / 1.0e+00 |" in md
    assert "RAW RuntimeError: x / y" in md and "0.700†" in md


def test_torch_pruning_leaves_the_layers_that_produce_outputs():
    pytest.importorskip("torch_pruning")
    from _tp import tp_prune_

    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU(), nn.Conv2d(8, 5, 1)).eval()
    x = torch.randn(1, 3, 8, 8)
    info = tp_prune_(model, x, ratio=0.5, ignore_outputs=True)
    assert model[0].out_channels == 4 and model[3].out_channels == 5  # the output keeps its shape
    assert info["groups"] == 2 and info["pruned_groups"] == 1
