"""report.md and report.json: measured latency, speed-up per MAC reduction, warnings (no timing:
the simulated backends of tests/latency and a canned measurement)."""

from __future__ import annotations

import copy
import json

import pytest
import torch

import prunekit
import prunekit.reporting.writer as writer
from prunekit.models import get_model
from prunekit.reporting import write_report
from tests.latency import fakes


@pytest.fixture(autouse=True)
def backends(tmp_path, monkeypatch):
    monkeypatch.setenv("PRUNEKIT_CACHE_DIR", str(tmp_path / "cache"))
    fakes.register(), fakes.register_flat()


def pruned_with(**options):
    torch.manual_seed(0)
    before = get_model("resnet20", num_classes=10, in_channels=1).eval()
    after, x = copy.deepcopy(before), torch.randn(2, 1, 28, 28)
    report = prunekit.prune_(after, x, **options)
    return before, after, x, report


def test_a_latency_target_is_reported(tmp_path):
    before, after, x, report = pruned_with(target_latency=0.5, latency_backend="fake", scope="global")
    files = write_report(tmp_path, model_before=before, model_after=after, example_inputs=x, prune_reports=report,
                         latency=False)  # fmt: skip
    data = json.loads(files["json"].read_text())
    assert data["sparsity"]["target_latency"] == 0.5
    assert data["sparsity"]["target_latency_realised"] == pytest.approx(report.config["realised"])
    assert data["prune_steps"][0]["latency"]["backend"] == "fake"
    md = files["markdown"].read_text()
    assert "| target_latency (requested / realised) | 50.0% |" in md
    assert "step 1: fake latency, batch 1, 1 thread(s), round_to 8 (ms)" in md
    assert "of the" in md and "## Warnings" not in md


def test_a_prune_that_is_not_faster_is_warned(tmp_path):
    with pytest.warns(UserWarning):
        before, after, x, report = pruned_with(sparsity=0.5, report_latency=True, latency_backend="flat")
    files = write_report(tmp_path, model_before=before, model_after=after, example_inputs=x, prune_reports=report,
                         latency=False)  # fmt: skip
    md = files["markdown"].read_text()
    assert "## Warnings" in md and "of the MAC reduction" in md


def test_measured_batches_show_the_ratio_and_warn(tmp_path, monkeypatch):
    before, after, x, report = pruned_with(sparsity=0.5)
    canned = {"backend": "torch", "device": "cpu", "threads": 1, "min_run_time": 0.5,
              "batches": {"1": {"before_ms": 2.0, "after_ms": 1.8, "speedup": 2.0 / 1.8}}}  # fmt: skip
    monkeypatch.setattr(writer, "_latency", lambda *a: canned)
    with pytest.warns(UserWarning, match="of the MAC reduction"):
        files = write_report(tmp_path, model_before=before, model_after=after, example_inputs=x, prune_reports=report)
    t = json.loads(files["json"].read_text())["latency"]["batches"]["1"]
    assert t["speedup_per_mac_reduction"] == pytest.approx(t["speedup"] / t["mac_reduction"]) and t["warning"]
    md = files["markdown"].read_text()
    assert "1.11x faster (" in md and "## Warnings" in md
