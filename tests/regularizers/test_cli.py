"""``--regularizer`` on ``prunekit train`` and ``prune``, and ``prunekit list regularizers``."""

from __future__ import annotations

import json

import pytest
import torch

from prunekit.cli import main
from prunekit.pipeline import load_checkpoint, read_history

FAST = ["--batch-size", "16", "--max-batches", "2", "--eval-batches", "1", "--no-progress", "-q"]


def test_train_then_sparsify_with_group_lasso(tmp_path):  # type: ignore[no-untyped-def]
    torch.set_num_threads(1)
    out = tmp_path / "t"
    argv = ["train", "--epochs", "1", "--regularizer", "group_lasso", "--reg-strength", "1e-3", "--reg-epochs", "1"]
    assert main([*argv, "--out", str(out), *FAST]) == 0
    rows = read_history(out / "history.csv")
    assert [r["phase"] for r in rows] == ["train", "sparsify"]
    assert rows[0]["penalty"] == "" and float(rows[1]["penalty"]) > 0
    assert json.loads((out / "config.json").read_text())["regularizer"] == "group_lasso"


def test_prune_with_greg_pushes_the_prunes_own_target(tmp_path):  # type: ignore[no-untyped-def]
    torch.set_num_threads(1)
    out = tmp_path / "p"
    argv = ["prune", "--model", "resnet20", "--sparsity", "0.3", "--finetune-epochs", "0", "--no-report",
            "--regularizer", "greg", "--reg-option", "delta=0.1", "--reg-option", "interval=1"]  # fmt: skip
    assert main([*argv, "--out", str(out), *FAST]) == 0
    assert [r["phase"] for r in read_history(out / "history.csv")] == ["sparsify", "prune"]
    assert load_checkpoint(out)["regularizers"]["0"]["sparsity"] == 0.3


@pytest.mark.parametrize(
    "argv, needle",
    [
        (
            ["--regularizer", "group_laso"],
            "--regularizer: unknown regularizer 'group_laso'; did you mean 'group_lasso'",
        ),
        (["--regularizer", "group_lasso", "--reg-strength", "-1"], "--reg-strength: must be a number >= 0"),
        (["--regularizer", "group_lasso", "--reg-option", "delta"], "--reg-option: expected KEY=VALUE"),
        (["--regularizer", "group_lasso", "--reg-option", "colour=1"], "--reg-option:"),
        (["--regularizer", "group_lasso", "--reg-epochs", "0"], "--reg-epochs: must be an int >= 1"),
    ],
)
def test_bad_regularizer_options_exit_2_naming_the_flag(argv, needle, tmp_path, capsys):  # type: ignore[no-untyped-def]
    assert main(["train", *argv, "--out", str(tmp_path / "o"), *FAST]) == 2
    err = capsys.readouterr().err
    assert err.startswith("prunekit: error: ") and needle in err


def test_list_regularizers(capsys):  # type: ignore[no-untyped-def]
    assert main(["list", "regularizers"]) == 0
    out = capsys.readouterr().out
    assert "group_lasso" in out and "slimming" in out and "greg" in out
