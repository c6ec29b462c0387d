"""The demo's plumbing on a few batches (the accuracy check itself needs the full run: make demo)."""

from __future__ import annotations

import prunekit
from prunekit.cli import main as cli_main
from prunekit.cli.demo import main


def test_demo_runs_end_to_end_and_prints_the_comparison(tmp_path, capsys):  # type: ignore[no-untyped-def]
    argv = ["--epochs", "1", "--finetune-epochs", "1", "--max-batches", "2", "--eval-batches", "1"]
    code = main([*argv, "--no-latency", "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert code in (0, 1)  # PASS or FAIL, said honestly
    assert ("PASS" in out) == (code == 0) and ("FAIL" in out) == (code == 1)
    for needle in ("top-1 accuracy", "parameters", "MACs / image", "saved pruned model", str(tmp_path / "model")):
        assert needle in out
    model = prunekit.load(tmp_path / "model")
    assert (tmp_path / "report" / "channels.png").is_file()
    assert prunekit.count_params(model) < prunekit.count_params(prunekit.load(tmp_path / "original"))


def test_engine_only_demo_through_the_cli(capsys):  # type: ignore[no-untyped-def]
    assert cli_main(["demo", "--engine-only", "--model", "resnet18", "--size", "32", "--no-latency"]) == 0
    assert "equivalent to the zeroed-channel original: True" in capsys.readouterr().out
