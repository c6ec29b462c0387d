"""Reading the pipeline's CSV log, tolerant of missing columns and cells."""

from __future__ import annotations

import pytest

from prunekit.errors import ConfigError
from prunekit.reporting import accuracy_points, read_history

from .conftest import write_history


def test_read_history_columns(tmp_path):
    path = write_history(
        tmp_path / "log.csv",
        "epoch,phase,lr,train_loss,val_top1,macs",
        ["1,train,0.1,2.0,0.5,100", "2,prune,0.05,,nan,50", "3,finetune,0.01,1.0,0.7,50"],
    )
    h = read_history(path)
    assert h["phase"] == ["train", "prune", "finetune"]
    assert h["epoch"] == [1.0, 2.0, 3.0]
    assert h["train_loss"] == [2.0, None, 1.0] and h["val_top1"] == [0.5, None, 0.7]


def test_missing_or_empty_history_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="nothere.csv"):
        read_history(tmp_path / "nothere.csv")
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(ConfigError, match="header"):
        read_history(tmp_path / "empty.csv")


def test_accuracy_points_from_metrics_and_history(tmp_path):
    metrics = {"accuracy": {"before": 0.9, "after_prune": 0.4, "after_finetune": 0.88}, "macs": {"after": 40}}
    history = read_history(
        write_history(tmp_path / "log.csv", "epoch,phase,val_top1,macs", ["1,train,0.8,100", "2,finetune,0.85,"])
    )
    points = accuracy_points(metrics, history, macs_before=100, macs_after=50)
    assert [(p["label"], p["macs"], p["accuracy"]) for p in points] == [
        ("before", 100, 0.9),
        ("after_prune", 40, 0.4),
        ("after_finetune", 40, 0.88),
        ("epoch (train)", 100, 0.8),
    ]
    assert accuracy_points(None, None, macs_before=1, macs_after=1) == []


def test_reads_the_pipeline_log(tmp_path):
    """The CSV the training pipeline writes, with an epoch counter that restarts per phase."""
    pipeline_history = pytest.importorskip("prunekit.pipeline.history")
    rows = [
        {"epoch": 1, "phase": "train", "lr": 0.1, "train_loss": 1.5, "val_top1": 0.6, "macs": 4.0e7},
        {"epoch": 2, "phase": "train", "lr": 0.05, "train_loss": 1.1, "val_top1": 0.7, "macs": 4.0e7},
        {"epoch": 1, "phase": "finetune", "lr": 0.01, "train_loss": 1.2, "val_top1": 0.68, "macs": 2.0e7},
    ]
    path = pipeline_history.write_history(tmp_path / "history.csv", rows)
    h = read_history(path)
    assert set(pipeline_history.HISTORY_COLUMNS) <= set(h)
    assert h["val_top1"] == [0.6, 0.7, 0.68] and h["val_top5"] == [None, None, None]
    points = accuracy_points(None, h, macs_before=1, macs_after=1)
    assert [p["label"] for p in points] == ["epoch (train)", "epoch (train)", "epoch (finetune)"]
