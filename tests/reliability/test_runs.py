"""Items 5, 6, 7, 9, 11 and the CLI's last line of defence: output folders are never clobbered,
a leftover ``model.old`` is recovered, a diverging run stops with its last good checkpoint,
``--resume`` with other options is refused, outputs get umask permissions, and Ctrl-C / a full
disk are one line."""

from __future__ import annotations

import errno
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import prunekit
from prunekit.cli import main
from prunekit.data import make_loaders
from prunekit.errors import ConfigError, NonFiniteError
from prunekit.models import get_model
from prunekit.pipeline import ModelSource, Phase, TrainOptions, load_checkpoint, run
from prunekit.pipeline.outputs import LOCK_FILE

from .helpers import snapshot_files

OPTS = TrainOptions(epochs=1, lr=0.01, max_batches=1, eval_batches=1)


@pytest.fixture(scope="module")
def loaders():  # type: ignore[no-untyped-def]
    return make_loaders(batch_size=8, seed=0)


def _run(out: Path, loaders, *, opts: TrainOptions = OPTS, **kw):  # type: ignore[no-untyped-def]
    train, test = loaders
    source = ModelSource("resnet20", num_classes=10, in_channels=1)
    kw.setdefault("report", False)
    return run(source, [Phase("train", opts)], train_loader=train, val_loader=test, out_dir=out, progress=False, **kw)


@pytest.fixture(scope="module")
def finished(tmp_path_factory, loaders):  # type: ignore[no-untyped-def]
    """A finished one-epoch run, copied by each test that changes it."""
    out = tmp_path_factory.mktemp("runs") / "done"
    _run(out, loaders)
    return out


def test_a_non_empty_out_is_refused_and_left_alone(finished, loaders, tmp_path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "o"
    shutil.copytree(finished, out)
    (out / "model" / "notes.txt").write_text("mine")
    files = snapshot_files(out)
    with pytest.raises(ConfigError, match="not empty.*--resume.*--overwrite"):
        _run(out, loaders)
    assert snapshot_files(out) == files
    _run(out, loaders, overwrite=True)  # the explicit choice replaces prunekit's files
    assert not (out / LOCK_FILE).exists()


def test_a_second_run_on_a_busy_out_is_refused(loaders, tmp_path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "o"
    out.mkdir()
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (out / LOCK_FILE).write_text(f"{other.pid}\n")
        with pytest.raises(ConfigError, match=f"another run \\(process {other.pid}\\)"):
            _run(out, loaders, overwrite=True)
    finally:
        other.kill()
        other.wait()
    _run(out, loaders, overwrite=True)  # the lock of a dead process is taken over
    assert (out / "checkpoint.pt").is_file() and not (out / LOCK_FILE).exists()


def test_a_stale_model_old_is_recovered(finished, loaders, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A kill between the two renames of save leaves model.old (and no model/)."""
    out = tmp_path / "o"
    shutil.copytree(finished, out)
    os.replace(out / "model", out / "model.old")
    _run(out, loaders, overwrite=True)
    assert (out / "model" / "weights.pt").is_file() and not (out / "model.old").exists()


def test_a_foreign_model_old_is_refused_before_training(finished, loaders, tmp_path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "o"
    shutil.copytree(finished, out)
    (out / "model.old").mkdir()
    (out / "model.old" / "mine.txt").write_text("keep")
    files = snapshot_files(out)
    with pytest.raises(ConfigError, match="model.old"):
        _run(out, loaders, overwrite=True)
    assert snapshot_files(out) == files  # refused before a single epoch


def test_a_diverging_run_stops_and_keeps_the_last_good_checkpoint(loaders, tmp_path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "o"

    def poison(state):  # type: ignore[no-untyped-def]
        with torch.no_grad():  # the checkpoint of this epoch is written; now the weights blow up
            for t in state["model"].values():
                if t.is_floating_point():
                    t.fill_(float("nan"))

    with pytest.raises(NonFiniteError, match="loss became nan.*last good checkpoint"):
        _run(out, loaders, opts=TrainOptions(epochs=2, lr=0.01, max_batches=1, eval_batches=1), on_epoch_end=poison)
    ckpt = load_checkpoint(out / "checkpoint.pt")
    assert ckpt["position"]["epoch"] == 1
    assert all(torch.isfinite(t).all() for t in ckpt["model"].values() if t.is_floating_point())


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"opts": TrainOptions(epochs=1, lr=0.5, max_batches=1, eval_batches=1)}, "lr 0.01 -> 0.5"),
        ({"seed": 4}, "seed 0 -> 4"),
    ],
)
def test_resume_with_other_options_is_refused(finished, loaders, tmp_path, change, named) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "o"
    shutil.copytree(finished, out)
    with pytest.raises(ConfigError, match=named):
        _run(out, loaders, resume=True, **change)


def test_resume_with_another_batch_size_is_refused(finished, tmp_path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "o"
    shutil.copytree(finished, out)
    with pytest.raises(ConfigError, match="batch size 8 -> 16"):
        _run(out, make_loaders(batch_size=16, seed=0), resume=True)


def test_outputs_respect_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        prunekit.save(get_model("resnet20"), tmp_path / "m", reports=[], builder="resnet20")
        prunekit.save(get_model("resnet20"), tmp_path / "m", reports=[], builder="resnet20")  # the swap path too
        from prunekit.fileio import write_text

        write_text(tmp_path / "c.json", "{}")
    finally:
        os.umask(old)
    mode = lambda p: stat.S_IMODE(p.stat().st_mode)  # noqa: E731
    assert mode(tmp_path / "m") == 0o755
    assert mode(tmp_path / "m" / "weights.pt") == mode(tmp_path / "m" / "prunekit.json") == 0o644
    assert mode(tmp_path / "c.json") == 0o644


def test_ctrl_c_is_one_line(monkeypatch, capsys, tmp_path) -> None:  # type: ignore[no-untyped-def]
    import prunekit.cli._pipeline_args as pipeline_args

    def interrupted(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise KeyboardInterrupt

    monkeypatch.setattr(pipeline_args, "run_from_args", interrupted)
    assert main(["train", "--out", str(tmp_path / "o"), "-q"]) == 130
    assert capsys.readouterr().err.strip() == "prunekit: interrupted; resume with --resume"


def test_a_full_disk_is_one_line(monkeypatch, capsys, tmp_path) -> None:  # type: ignore[no-untyped-def]
    import prunekit.pipeline.runner as runner

    def full(state, path):  # type: ignore[no-untyped-def]
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(runner, "save_checkpoint", full)
    argv = ["train", "--out", str(tmp_path / "o"), "--batch-size", "8", "--max-batches", "1", "--eval-batches", "1"]
    assert main([*argv, "--epochs", "1", "--no-progress", "-q"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"prunekit: error: {tmp_path / 'o' / 'checkpoint.pt'}: No space left on device"


def test_sensitivity_takes_the_same_data_names(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    """Item 10: `--data embedded` failed with "name: unknown dataset 'embedded'"."""
    argv = ["sensitivity", "--model", "resnet20", "--data", "embedded", "--out", str(tmp_path / "s"),
            "--sparsities", "0,0.5", "--max-batches", "1", "--batch-size", "8", "--no-progress"]  # fmt: skip
    assert main(argv) == 0
    assert (tmp_path / "s" / "schedule.yaml").is_file()


def test_loading_after_an_interrupted_save_points_at_model_old(tmp_path: Path) -> None:
    prunekit.save(get_model("resnet20"), tmp_path / "model", reports=[], builder="resnet20")
    os.replace(tmp_path / "model", tmp_path / "model.old")
    with pytest.raises(ConfigError, match="interrupted"):
        prunekit.load(tmp_path / "model")
    prunekit.save(get_model("resnet20"), tmp_path / "model", reports=[], builder="resnet20")  # recovers
    assert prunekit.load(tmp_path / "model") is not None and not (tmp_path / "model.old").exists()
