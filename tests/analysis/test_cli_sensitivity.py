"""``prunekit sensitivity``: writes its three files; bad arguments exit 2 with a clear message."""

from __future__ import annotations

import pytest
import torch

from prunekit.cli import main
from prunekit.config import load_config
from prunekit.models import get_model

FAST = ["--max-batches", "1", "--batch-size", "32", "--sparsities", "0,0.5", "--no-progress"]


def test_cli_writes_csv_png_and_a_loadable_schedule(tmp_path, capsys):
    torch.manual_seed(0)
    ckpt = tmp_path / "w.pt"
    torch.save({"model": get_model("resnet20", num_classes=10, in_channels=1).state_dict()}, ckpt)
    out = tmp_path / "out"
    argv = ["sensitivity", "--model", "resnet20", "--checkpoint", str(ckpt), "--out", str(out), "--tolerance", "1"]
    assert main(argv + FAST) == 0
    assert (out / "sensitivity.csv").read_text().startswith("group,layer,modules,sparsity")
    assert (out / "sensitivity.png").read_bytes()[:4] == b"\x89PNG"
    cfg = load_config(out / "schedule.yaml")
    assert cfg.schedule.final == 0.5 and cfg.overrides  # tolerance 1: every layer at the largest sparsity
    assert "suggested sparsities" in capsys.readouterr().out


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--sparsities", "0,1.5"], "--sparsities"),
        (["--tolerance", "0.1", "--target-macs", "0.5"], "not allowed with"),
        (["--target-macs", "2"], "--target-macs"),
    ],
)
def test_bad_arguments_exit_2(tmp_path, capsys, extra, message):
    with pytest.raises(SystemExit) as exc:
        main(["sensitivity", "--model", "resnet20", "--out", str(tmp_path)] + extra)
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--model", "resnet21"], "resnet20"),
        (["--model", "resnet20", "--checkpoint", "missing.pt"], "--checkpoint"),
        (["--model", "resnet20", "--criterion", "l3"], "criterion"),
        (["--model", "resnet20", "--data", "nope"], "nope"),
    ],
)
def test_bad_inputs_exit_2_naming_the_option(tmp_path, capsys, extra, message):
    assert main(["sensitivity", "--out", str(tmp_path)] + extra + FAST) == 2
    assert message in capsys.readouterr().err
