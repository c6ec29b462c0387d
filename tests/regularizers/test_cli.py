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


def test_a_schedule_files_sparsify_section_runs_before_the_prune(tmp_path):  # type: ignore[no-untyped-def]
    torch.set_num_threads(1)
    schedule = tmp_path / "s.yaml"
    schedule.write_text(
        "version: 1\ncriterion: l1\nmode: physical\ntarget_macs: 0.6\n"
        "sparsify: {regularizer: greg, strength: 0.5, epochs: 2, options: {delta: 0.1, interval: 1}}\n"
    )
    out = tmp_path / "p"
    argv = ["prune", "--model", "resnet20", "--schedule", str(schedule), "--finetune-epochs", "0", "--no-report"]
    assert main([*argv, "--out", str(out), *FAST]) == 0
    assert [r["phase"] for r in read_history(out / "history.csv")] == ["sparsify", "sparsify", "prune"]
    assert 0 < load_checkpoint(out)["regularizers"]["0"]["sparsity"] < 1  # found for target_macs 0.6


@pytest.mark.parametrize(
    "section, needle",
    [
        ("{regularizer: lasso}", "sparsify.regularizer: unknown regularizer 'lasso'"),
        ("{regularizer: group_lasso, epochs: 0}", "sparsify.epochs: must be an int >= 1"),
        ("{regularizer: group_lasso, strenght: 1}", "sparsify.strenght: unknown key; did you mean 'strength'"),
        ("{regularizer: group_lasso, options: {delta: 1}}", "sparsify.options:"),
    ],
)
def test_bad_sparsify_sections_name_the_yaml_path(section, needle):  # type: ignore[no-untyped-def]
    from prunekit.config import load_config
    from prunekit.errors import ConfigError

    with pytest.raises(ConfigError) as info:
        load_config({"sparsify": __import__("yaml").safe_load(section)})
    assert needle in str(info.value)


def test_the_sparsify_section_round_trips():  # type: ignore[no-untyped-def]
    from prunekit.config import config_to_dict, load_config

    cfg = load_config({"sparsify": {"regularizer": "slimming", "strength": 1e-4, "epochs": 2}})
    assert load_config(config_to_dict(cfg)) == cfg
    assert "sparsify" not in config_to_dict(load_config({}))
