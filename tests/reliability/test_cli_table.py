"""The bad-input table through the command line (issue 15): exit code 2, one line on stderr
naming the flag or file, no traceback, and every file under the working folder unchanged."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import torch

import prunekit
from prunekit.cli import main
from prunekit.models import get_model

from .helpers import assert_one_line, snapshot_files
from .test_api_table import alias_bomb, bad_image_folder, crafted_checkpoint

FAST = ["--batch-size", "8", "--max-batches", "1", "--eval-batches", "1", "--no-progress", "-q"]


def saved_model(tmp: Path, name: str = "m", *, num_classes: int = 10, in_channels: int = 1, **spec: object) -> str:
    folder = tmp / name
    prunekit.save(get_model("resnet20", num_classes=num_classes, in_channels=in_channels), folder, reports=[],
                  builder="resnet20", builder_kwargs={"num_classes": num_classes, "in_channels": in_channels})  # fmt: skip
    if spec:
        data = json.loads((folder / "prunekit.json").read_text())
        data.update(spec)
        (folder / "prunekit.json").write_text(json.dumps(data))
    return str(folder)


def edited(tmp: Path, file: str, data: bytes | None) -> str:
    folder = Path(saved_model(tmp))
    if data is None:
        (folder / file).unlink()
    else:
        (folder / file).write_bytes(data)
    return str(folder)


def write(tmp: Path, name: str, data: bytes | str) -> str:
    (tmp / name).write_bytes(data if isinstance(data, bytes) else data.encode())
    return name


def schedule(data: bytes | str) -> Callable[[Path], list[str]]:
    return lambda t: ["prune", "--model", "resnet20", "--schedule", write(t, "s.yaml", data), "--out", "o", *FAST]


@dataclass
class Case:
    id: str
    argv: Callable[[Path], list[str]]  # writes the case's files into the folder, returns the arguments
    culprits: tuple[str, ...]
    marks: list[pytest.MarkDecorator] = field(default_factory=list)


NO_CUDA = pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on a machine without CUDA")

CASES = [
    Case("eval-untrusted-builder", lambda t: ["eval", "--model-dir", saved_model(t, builder="this:x")], ("this:x",)),
    Case("eval-spec-not-json", lambda t: ["eval", "--model-dir", edited(t, "prunekit.json", b"{nope")], ("prunekit.json",)),
    Case("eval-weights-truncated", lambda t: ["eval", "--model-dir", edited(t, "weights.pt", b"PK\x03\x04")], ("weights.pt",)),
    Case("eval-weights-missing", lambda t: ["eval", "--model-dir", edited(t, "weights.pt", None)], ("weights.pt",)),
    Case("eval-absurd-size", lambda t: ["eval", "--model-dir", saved_model(t, builder_kwargs={"num_classes": 10**12})], ("num_classes",)),
    Case("eval-wrong-kwargs", lambda t: ["eval", "--model-dir", saved_model(t, builder_kwargs={"width": 2})], ("width",)),
    Case("eval-crafted-checkpoint", lambda t: ["eval", "--checkpoint", str(crafted_checkpoint(t))], ("this:x",)),
    Case("prune-crafted-checkpoint", lambda t: ["prune", "--checkpoint", str(crafted_checkpoint(t)), "--sparsity", "0.3", "--out", "o", *FAST], ("this:x",)),
    Case("export-untrusted-builder", lambda t: ["export", "--model-dir", saved_model(t, builder="this:x"), "--out", "m.onnx", "--input-shape", "1,1,28,28"], ("this:x",)),
    Case("train-device-tpu", lambda t: ["train", "--out", "o", "--device", "tpu", *FAST], ("--device",)),
    Case("train-device-cuda", lambda t: ["train", "--out", "o", "--device", "cuda", *FAST], ("--device",), [NO_CUDA]),
    Case("train-lr-nan", lambda t: ["train", "--out", "o", "--lr", "nan", *FAST], ("--lr",)),
    Case("train-lr-inf", lambda t: ["train", "--out", "o", "--lr", "inf", *FAST], ("--lr",)),
    Case("train-weight-decay-nan", lambda t: ["train", "--out", "o", "--weight-decay", "nan", *FAST], ("--weight-decay",)),
    Case("prune-temperature-inf", lambda t: ["prune", "--model", "resnet20", "--sparsity", "0.3", "--distill-temperature", "inf", "--out", "o", *FAST], ("--distill-temperature",)),
    Case("train-out-is-a-file", lambda t: ["train", "--out", write(t, "notes.txt", "mine"), *FAST], ("--out",)),
    Case("train-out-under-a-file", lambda t: ["train", "--out", write(t, "notes.txt", "mine") + "/run", *FAST], ("notes.txt",)),
    Case("train-out-not-empty", lambda t: ["train", "--out", str(Path(write(t, "notes.txt", "mine")).parent), *FAST], ("--out",)),
    Case("train-resume-nothing", lambda t: ["train", "--out", "o", "--resume", *FAST], ("--resume",)),
    Case("schedule-empty", schedule(""), ("empty",)),
    Case("schedule-nul", schedule(b"scope: lo\x00cal\n"), ("s.yaml",)),
    Case("schedule-not-utf8", schedule(b"scope: \xff\xfe\n"), ("s.yaml",)),
    Case("schedule-list-key", schedule("? [a, b]\n: 1\n"), ("key",)),
    Case("schedule-5000-deep", schedule("a: " + "[" * 5000 + "]" * 5000), ("s.yaml",)),
    Case("schedule-alias-bomb", schedule(alias_bomb()), ("aliases",)),
    Case("schedule-huge-end", schedule(f"schedule: {{kind: agp, end: {10**30}}}\n"), ("schedule.end",)),
    Case("sensitivity-unknown-data", lambda t: ["sensitivity", "--model", "resnet20", "--data", "nope", "--out", "o"], ("--data",)),
    Case("eval-corrupt-image-in-a-worker", lambda t: ["eval", "--model-dir", saved_model(t, num_classes=2, in_channels=3), "--data", str(bad_image_folder(t)), "--workers", "1"], ("broken.png",)),
    Case("eval-corrupt-image", lambda t: ["eval", "--model-dir", saved_model(t, num_classes=2, in_channels=3), "--data", str(bad_image_folder(t))], ("broken.png",)),
]  # fmt: skip


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id, marks=c.marks) for c in CASES])
def test_bad_input_exits_2_with_one_line(case: Case, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    monkeypatch.chdir(tmp_path)
    argv = case.argv(tmp_path)
    files = snapshot_files(tmp_path)
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("prunekit: error: "), err
    assert_one_line(err, *case.culprits)
    assert snapshot_files(tmp_path) == files


def test_the_tables_hold_at_least_40_cases() -> None:
    from .test_api_table import CASES as API

    assert len(CASES) >= 20 and len(CASES) + len(API) >= 40
