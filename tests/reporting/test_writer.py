"""write_report: the files exist and parse, the figures agree with the models, optional inputs."""

from __future__ import annotations

import json

import pytest
import torch.nn as nn

import prunekit
from prunekit.errors import ConfigError
from prunekit.reporting import write_report

from .conftest import PNG_SIGNATURE, write_history

METRICS = {"accuracy": {"before": 0.91, "after_prune": 0.42, "after_finetune": 0.905}, "loss": {"before": 0.3}}


def test_full_report(pruned, tmp_path):
    pytest.importorskip("matplotlib", reason="plots need matplotlib (pip install 'prunekit[report]')")
    history = write_history(
        tmp_path / "history.csv",
        "epoch,phase,lr,train_loss,train_acc,val_loss,val_top1,val_top5,params,macs,sparsity,seconds",
        [
            "1,train,0.1,1.2,0.6,1.0,0.7,0.95,272186,31021952,0,3.1",
            "2,train,0.05,0.8,0.75,0.7,0.8,0.97,272186,31021952,0,3.0",
            "3,finetune,0.01,0.9,0.7,0.8,0.78,0.96,140000,15000000,0.45,1.9",
        ],
    )
    files = write_report(
        tmp_path / "out",
        model_before=pruned.before,
        model_after=pruned.after,
        example_inputs=pruned.x,
        prune_reports=pruned.reports,
        metrics=METRICS,
        history_csv=history,
        config={"model": "resnet20", "schedule": {"sparsity": 0.3}},
        latency=True,
        latency_batch=4,
        latency_min_run_time=0.01,
    )
    assert set(files) == {"json", "markdown", "channels", "training_curves", "accuracy_vs_macs"}
    for key in ("channels", "training_curves", "accuracy_vs_macs"):
        assert files[key].read_bytes().startswith(PNG_SIGNATURE)
    data = json.loads(files["json"].read_text())
    s = data["summary"]
    assert s["params_before"] == prunekit.count_params(pruned.before)
    assert s["params_after"] == prunekit.count_params(pruned.after)
    assert s["macs_after"] == prunekit.count_macs(pruned.after, (pruned.x[:1],)) < s["macs_before"]
    assert sum(layer["params_after"] for layer in data["layers"]) == s["params_after"]
    assert data["accuracy"] == METRICS["accuracy"] and data["metrics"] == METRICS
    assert data["sparsity"]["channels_requested"] == pytest.approx(1 - 0.7 * 0.75)
    assert 0 < data["sparsity"]["channels_realised"] < data["sparsity"]["channels_requested"]
    assert set(data["latency"]["batches"]) == {"1", "4"}
    assert all(t["before_ms"] > 0 and t["after_ms"] > 0 for t in data["latency"]["batches"].values())
    assert data["history"]["rows"] == 3 and data["config"]["model"] == "resnet20"
    assert data["versions"]["torch"] and len(data["prune_steps"]) == 2
    md = files["markdown"].read_text()
    assert f"| parameters | {s['params_before']:,} | {s['params_after']:,} |" in md
    assert "-0.50 points" in md and "![Channels per layer](channels.png)" in md
    assert "| layer1.0.conv1 | Conv2d |" in md


def test_optional_inputs_may_be_missing(pruned, tmp_path):
    files = write_report(
        tmp_path, model_before=pruned.before, model_after=pruned.after, example_inputs=pruned.x, latency=False
    )
    assert "training_curves" not in files and "accuracy_vs_macs" not in files
    data = json.loads(files["json"].read_text())
    assert data["accuracy"] == {} and data["latency"] is None and data["history"] is None and data["config"] is None
    assert data["sparsity"]["channels_requested"] is None
    assert all(layer["sparsity_requested"] is None for layer in data["layers"])
    assert "accuracy" not in files["markdown"].read_text()


def test_history_with_few_columns(pruned, tmp_path):
    pytest.importorskip("matplotlib", reason="plots need matplotlib (pip install 'prunekit[report]')")
    history = write_history(tmp_path / "h.csv", "epoch,val_top1", ["1,0.5", "2,0.6"])
    files = write_report(
        tmp_path,
        model_before=pruned.before,
        model_after=pruned.after,
        example_inputs=pruned.x,
        history_csv=history,
        latency=False,
    )
    assert files["training_curves"].read_bytes().startswith(PNG_SIGNATURE)
    assert "accuracy_vs_macs" not in files  # no macs column and no metrics: no points


def test_bad_inputs_are_clear_errors(pruned, tmp_path):
    with pytest.raises(ConfigError, match="missing.csv"):
        write_report(
            tmp_path,
            model_before=pruned.before,
            model_after=pruned.after,
            example_inputs=pruned.x,
            history_csv=tmp_path / "missing.csv",
        )
    with pytest.raises(ConfigError, match="pruned model is not in the model before"):
        write_report(tmp_path, model_before=nn.Linear(3, 3), model_after=pruned.after, example_inputs=pruned.x)
    with pytest.raises(ConfigError, match="latency_batch"):
        write_report(
            tmp_path, model_before=pruned.before, model_after=pruned.after, example_inputs=pruned.x, latency_batch=0
        )
    assert not list(tmp_path.iterdir())  # nothing written
    (tmp_path / "file").write_text("")
    with pytest.raises(ConfigError, match="is a file"):
        write_report(tmp_path / "file", model_before=pruned.before, model_after=pruned.after, example_inputs=pruned.x)
