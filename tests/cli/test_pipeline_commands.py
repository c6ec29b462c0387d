"""``prunekit train``, ``prune``, ``finetune`` and ``eval`` on the embedded data with a few batches,
and the exit code 2 with the option named for bad arguments."""

from __future__ import annotations

import json

import pytest
import torch

import prunekit
from prunekit.cli import main
from prunekit.pipeline import load_checkpoint, read_history

FAST = ["--batch-size", "16", "--max-batches", "2", "--eval-batches", "1", "--no-progress", "-q"]
SCHEDULE = (
    "version: 1\ncriterion: l2\nmode: masked\nschedule: {kind: agp, initial: 0.1, final: 0.4, start: 0, end: 1}\n"
)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):  # type: ignore[no-untyped-def]
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("cli") / "train"
    assert main(["train", "--epochs", "1", "--out", str(out), *FAST]) == 0
    return out


def test_train_writes_checkpoint_history_config_and_model(trained, capsys):  # type: ignore[no-untyped-def]
    assert [r["phase"] for r in read_history(trained / "history.csv")] == ["train"]
    config = json.loads((trained / "config.json").read_text())
    assert config["command"] == "train" and config["model"] == "resnet20" and config["epochs"] == 1
    assert load_checkpoint(trained)["position"] == {"phase": 0, "epoch": 1, "step": 2}
    # resuming a finished run does no more epochs and leaves the weights alone
    before = load_checkpoint(trained)["model"]
    assert main(["train", "--epochs", "1", "--out", str(trained), "--resume", *FAST]) == 0
    after = prunekit.load(trained / "model").state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_prune_with_schedule_then_eval_and_finetune(trained, tmp_path, capsys):  # type: ignore[no-untyped-def]
    schedule = tmp_path / "s.yaml"
    schedule.write_text(SCHEDULE)
    out = tmp_path / "prune"
    args = ["prune", "--checkpoint", str(trained), "--schedule", str(schedule), "--finetune-epochs", "1"]
    assert main([*args, "--distill", "--out", str(out), *FAST]) == 0
    printed = capsys.readouterr().out
    assert "after_finetune" in printed and f"model: {out / 'model'}" in printed
    rows = read_history(out / "history.csv")
    assert [r["phase"] for r in rows] == ["prune", "prune", "finetune"]  # AGP over epochs 0..1 trains between
    report = json.loads((out / "report" / "report.json").read_text())
    assert report["summary"]["params_after"] < report["summary"]["params_before"]

    assert main(["eval", "--model-dir", str(out / "model"), "--batch-size", "64", "--eval-batches", "2", "--json"]) == 0
    figures = json.loads(capsys.readouterr().out)
    assert figures["samples"] == 128 and figures["params"] == report["summary"]["params_after"]

    tuned = tmp_path / "tuned"
    assert (
        main(["finetune", "--model-dir", str(out / "model"), "--distill", "--epochs", "1", "--out", str(tuned), *FAST])
        == 0
    )
    m = prunekit.load(tuned / "model")  # the composed cut of the prune run is kept
    assert prunekit.count_params(m) == report["summary"]["params_after"]


def test_prune_with_options_from_a_model_spec(tmp_path):  # type: ignore[no-untyped-def]
    out = tmp_path / "p"
    args = ["prune", "--model", "resnet20", "--target-macs", "0.6", "--finetune-epochs", "0", "--no-report"]
    assert main([*args, "--out", str(out), *FAST]) == 0
    spec = json.loads((out / "model" / "prunekit.json").read_text())
    assert spec["extra"]["config"]["recipe"]["target_macs"] == 0.6
    assert spec["extra"]["input_shape"] == [1, 1, 28, 28]


@pytest.mark.parametrize(
    "argv, needle",
    [
        (["prune", "--model", "resnet20", "--sparsity", "1.5"], "--sparsity: must be in [0, 1)"),
        (["prune", "--model", "resnet20", "--target-macs", "2"], "--target-macs: must be a fraction"),
        (
            ["prune", "--model", "resnet20", "--sparsity", "0.3", "--criterion", "l11"],
            "--criterion: unknown criterion 'l11'; did you mean 'l1'",
        ),
        (["prune", "--model", "resnet20", "--schedule", "/no/such.yaml"], "cannot read the schedule"),
        (["train", "--data", "cifar11"], "--data: unknown dataset 'cifar11'; did you mean 'cifar10'"),
        (["train", "--lr", "-1"], "--lr: must be in (0.0, inf)"),
        (["train", "--model", "resnet21"], "unknown model 'resnet21'"),
        (["train", "--batch-size", "0"], "--batch-size must be a positive int"),
        (["finetune", "--model-dir", "/no/such/dir"], "prunekit.json not found"),
        (["eval", "--checkpoint", "/no/such.pt"], "checkpoint '/no/such.pt' not found"),
    ],
)
def test_bad_values_exit_2_naming_the_option(argv, needle, tmp_path, capsys):  # type: ignore[no-untyped-def]
    assert main([*argv, "--out", str(tmp_path / "o")] if argv[0] != "eval" else argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("prunekit: error: ") and needle in err


@pytest.mark.parametrize(
    "argv, needle",
    [
        (["prune", "--model", "resnet20", "--out", "o"], "one of the arguments --schedule --sparsity"),
        (["prune", "--sparsity", "0.3", "--out", "o"], "one of the arguments --model --checkpoint --model-dir"),
        (["prune", "--model", "r", "--sparsity", "0.3", "--schedule", "s.yaml", "--out", "o"], "not allowed with"),
        (["train", "--epochs", "two", "--out", "o"], "--epochs: invalid int value"),
        (["train"], "the following arguments are required: --out"),
    ],
)
def test_argparse_errors_exit_2(argv, needle, capsys):  # type: ignore[no-untyped-def]
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2 and needle in capsys.readouterr().err


@pytest.mark.parametrize("command", ["train", "prune", "finetune", "eval"])
def test_help(command, capsys):  # type: ignore[no-untyped-def]
    with pytest.raises(SystemExit) as info:
        main([command, "--help"])
    assert info.value.code == 0 and f"usage: prunekit {command}" in capsys.readouterr().out
