"""``prunekit report``: a report regenerated from a saved folder, a checkpoint or a model spec."""

from __future__ import annotations

import json

import pytest
import torch

import prunekit
from prunekit.cli import main

from .conftest import KWARGS, write_history


@pytest.fixture(scope="module")
def saved(pruned, tmp_path_factory):
    """The pruned model saved with its input shape and config, and the unpruned one saved too."""
    root = tmp_path_factory.mktemp("saved")
    extra = {"input_shape": [1, 1, 28, 28], "config": {"model": "resnet20"}}
    prunekit.save(
        pruned.after, root / "after", reports=pruned.reports, builder="resnet20", builder_kwargs=KWARGS, extra=extra
    )
    prunekit.save(pruned.before, root / "before", reports=[], builder="resnet20", builder_kwargs=KWARGS)
    torch.save({"version": 1, "model": pruned.before.state_dict()}, root / "checkpoint.pt")
    return root


@pytest.mark.parametrize("before", ["before", "checkpoint.pt", "resnet20"])
def test_report_from_files(saved, pruned, tmp_path, before):
    metrics = tmp_path / "metrics.json"
    metrics.write_text(json.dumps({"accuracy": {"before": 0.9, "after_finetune": 0.89}}))
    history = write_history(tmp_path / "h.csv", "epoch,phase,val_top1,macs", ["1,train,0.8,100", "2,finetune,0.85,50"])
    source = before if before == "resnet20" else str(saved / before)
    argv = ["report", "--before", source, "--after", str(saved / "after"), "--out", str(tmp_path / "r"), "--no-latency"]
    assert main(argv + ["--metrics", str(metrics), "--history", str(history)]) == 0
    data = json.loads((tmp_path / "r" / "report.json").read_text())
    assert data["summary"]["params_after"] == prunekit.count_params(pruned.after)
    assert data["summary"]["params_before"] == prunekit.count_params(pruned.before)
    assert data["accuracy"] == {"before": 0.9, "after_finetune": 0.89} and data["config"] == {"model": "resnet20"}
    assert (tmp_path / "r" / "report.md").is_file()


@pytest.mark.parametrize(
    ("flag", "value", "message"),
    [
        ("--after", "nothere", "--after: 'nothere' is not a folder"),
        ("--before", "nothere.pt", "--before: 'nothere.pt' does not exist"),
        ("--before", "resnet21", "resnet21"),
        ("--metrics", "nothere.json", "--metrics: 'nothere.json' does not exist"),
        ("--history", "nothere.csv", "nothere.csv"),
        ("--input-shape", "1,a", "--input-shape must be positive integers"),
    ],
)
def test_bad_paths_exit_2_with_a_clear_message(saved, tmp_path, capsys, flag, value, message):
    args = {"--before": "resnet20", "--after": str(saved / "after"), "--out": str(tmp_path / "r"), flag: value}
    argv = ["report", "--no-latency"] + [a for kv in args.items() for a in kv]
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_input_shape_is_required_when_not_saved(pruned, tmp_path, capsys):
    prunekit.save(pruned.after, tmp_path / "m", reports=pruned.reports, builder="resnet20", builder_kwargs=KWARGS)
    assert main(["report", "--before", "resnet20", "--after", str(tmp_path / "m"), "--out", str(tmp_path / "r")]) == 2
    assert "--input-shape is required" in capsys.readouterr().err
