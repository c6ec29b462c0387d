"""The accuracy study end to end with tiny settings, its pluggable methods and the TP bisection."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from accuracy_study import METHODS, Unavailable, _reconstruction, _tp_magnitude

import prunekit
from prunekit.models import get_model

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "accuracy_study.py"


def test_one_command_trains_prunes_finetunes_and_writes_results(tmp_path):
    cmd = [sys.executable, str(SCRIPT), "--dataset", "fashion-mnist-embedded", "--epochs", "1"]
    cmd += ["--max-batches", "2", "--batch-size", "16", "--methods", "l1", "random", "tp-magnitude", "--seeds", "3"]
    cmd += ["--threads", "1", "--out", str(tmp_path), "--cache", str(tmp_path / "cache")]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "baseline epoch 1/1" in done.stdout and "l1 (prunekit): pruned" in done.stdout  # progress
    data = json.loads((tmp_path / "accuracy_study.json").read_text())
    assert "embedded subset" in data["meta"]["dataset"] and data["meta"]["seeds"] == [3]
    rows = {r["method"]: r for r in data["results"]}
    assert set(rows) == {"baseline", "l1", "random", "tp-magnitude"}
    for name in ("l1", "random"):
        r = rows[name]
        assert 0.4 < r["macs_ratio"] <= 0.5 and 0 <= r["acc_pruned"] <= 1 and 0 <= r["acc_finetuned"] <= 1
        assert r["acc_before"] == rows["baseline"]["acc_before"]
    md = (tmp_path / "accuracy_study.md").read_text()
    assert "| l1 | prunekit | " in md
    assert list((tmp_path / "cache").glob("accuracy_resnet20_*_s3.pt"))  # the baseline is cached, not committed
    if "skipped" in rows["tp-magnitude"]:  # the main environment has no torch-pruning
        assert "torch-pruning is not installed" in rows["tp-magnitude"]["skipped"]
        assert "| tp-magnitude | Torch-Pruning | skipped:" in md


def test_every_criterion_method_is_registered():
    assert {"l1", "fpgm", "bn_scale", "taylor", "entropy", "random", "reconstruction", "tp-magnitude"} == set(METHODS)


def test_reconstruction_is_skipped_with_a_reason_when_missing(monkeypatch):
    monkeypatch.setitem(sys.modules, "prunekit.reconstruction", None)  # import now raises ImportError
    model = get_model("resnet20", num_classes=10, in_channels=1)
    with pytest.raises(Unavailable, match="prunekit.reconstruction is not available"):
        _reconstruction(model, torch.randn(1, 1, 28, 28), [], 0, 0.5)


def test_torch_pruning_ratio_is_bisected_to_the_mac_target():
    pytest.importorskip("torch_pruning")
    torch.manual_seed(0)
    model = get_model("resnet20", num_classes=10, in_channels=1).eval()
    x = torch.randn(1, 1, 28, 28)
    before = prunekit.count_macs(model, (x,))
    _tp_magnitude(model, x, [], 0, 0.5)
    ratio = prunekit.count_macs(model, (x,)) / before
    assert 0.45 < ratio <= 0.5
    assert model(x).shape == (1, 10) and all(p.requires_grad for p in model.parameters())
