"""Item 1: loading a model folder or a checkpoint is data-only unless the caller opts in.

A downloaded folder whose ``builder`` is ``downloaded_model.helpers.build:net`` used to run its
payload through ``prunekit.load``, ``prunekit eval --model-dir`` and ``prunekit prune
--checkpoint``; ``"builder": "this:x"`` printed the Zen of Python.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import prunekit
from prunekit.cli import main
from prunekit.errors import UntrustedCodeError
from prunekit.models import get_model

PAYLOAD = """
from pathlib import Path
from prunekit.models import get_model

def net(num_classes, in_channels):
    Path({marker!r}).write_text("payload ran")
    return get_model("resnet20", num_classes=num_classes, in_channels=in_channels)
"""


@pytest.fixture
def download(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path, Path]:
    """(model folder, checkpoint, marker): both name a builder whose import writes the marker."""
    marker = tmp_path / "pwned"
    package = tmp_path / "pkgs" / "downloaded_model" / "helpers"
    package.mkdir(parents=True)
    for folder in (package.parent, package):
        (folder / "__init__.py").write_text("")
    (package / "build.py").write_text(PAYLOAD.format(marker=str(marker)))
    monkeypatch.syspath_prepend(str(tmp_path / "pkgs"))
    spec = "downloaded_model.helpers.build:net"
    folder = tmp_path / "model"
    kwargs = {"num_classes": 10, "in_channels": 1}
    prunekit.save(get_model("resnet20", **kwargs), folder, reports=[], builder=spec, builder_kwargs=kwargs)
    checkpoint = tmp_path / "checkpoint.pt"
    source = {"spec": spec, "num_classes": 10, "in_channels": 1, "saved": None}
    torch.save({"version": 1, "source": source, "decisions": [], "model": get_model("resnet20", **kwargs).state_dict()},
               checkpoint)  # fmt: skip
    return folder, checkpoint, marker


def test_load_refuses_an_import_path_builder(download: tuple[Path, Path, Path]) -> None:
    folder, _, marker = download
    with pytest.raises(UntrustedCodeError, match="trust_builder=True"):
        prunekit.load(folder)
    assert not marker.exists()


@pytest.mark.parametrize("command", ["eval-model-dir", "eval-checkpoint", "prune-checkpoint", "finetune-model-dir"])
def test_cli_refuses_the_payload(download, command, tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    folder, checkpoint, marker = download
    argv = {
        "eval-model-dir": ["eval", "--model-dir", str(folder)],
        "eval-checkpoint": ["eval", "--checkpoint", str(checkpoint)],
        "prune-checkpoint": [
            "prune",
            "--checkpoint",
            str(checkpoint),
            "--sparsity",
            "0.3",
            "--out",
            str(tmp_path / "o"),
        ],
        "finetune-model-dir": ["finetune", "--model-dir", str(folder), "--out", str(tmp_path / "o")],
    }[command]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert (
        "--trust-builder" in err and "downloaded_model.helpers.build:net" in err and len(err.strip().splitlines()) == 1
    )
    assert not marker.exists() and not (tmp_path / "o").exists()


def test_this_x_does_not_print_the_zen_of_python(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "m"
    prunekit.save(get_model("resnet20"), folder, reports=[], builder="resnet20")
    spec = json.loads((folder / "prunekit.json").read_text())
    (folder / "prunekit.json").write_text(json.dumps({**spec, "builder": "this:x"}))
    with pytest.raises(UntrustedCodeError):
        prunekit.load(folder)
    assert "Beautiful is better" not in capsys.readouterr().out


def test_opting_in_builds_the_trusted_builder(download: tuple[Path, Path, Path]) -> None:
    folder, _, marker = download
    model = prunekit.load(folder, trust_builder=True)
    assert marker.read_text() == "payload ran" and model.fc.out_features == 10


def test_registry_builders_load_by_default(tmp_path: Path) -> None:
    for spec in ("resnet20", "torchvision:resnet18"):
        folder = tmp_path / spec.replace(":", "_")
        prunekit.save(
            get_model(spec, num_classes=3), folder, reports=[], builder=spec, builder_kwargs={"num_classes": 3}
        )
        assert sum(p.numel() for p in prunekit.load(folder).parameters()) > 0
