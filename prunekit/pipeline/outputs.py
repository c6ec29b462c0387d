"""What a run leaves behind: the saved models, the resolved config and the report (rank 0).

``out/model/`` is the final model (:func:`prunekit.save`: weights plus the composed cut, loadable
with :func:`prunekit.load`), ``out/original/`` the model before the prune phase (the teacher of a
later ``prunekit finetune --distill``), ``out/config.json`` the resolved configuration, and
``out/report/`` the report of :func:`prunekit.reporting.write_report`.
"""

from __future__ import annotations

import contextlib
import copy
import errno
import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch.nn as nn

from prunekit.errors import ConfigError, option_error
from prunekit.fileio import write_text
from prunekit.report import PruneReport
from prunekit.serialization import check_save_target
from prunekit.serialization import save as save_model

__all__ = ["write_outputs", "cut_reports", "write_prune_report", "check_out_dir", "out_dir_lock", "LOCK_FILE"]

LOCK_FILE = ".prunekit.lock"

log = logging.getLogger("prunekit.pipeline")


def cut_reports(runner: Any) -> list[PruneReport]:
    """The cuts the final model went through, oldest first, as reports :func:`prunekit.save`
    composes: the saved source's cut, then one per physical decision of the run (a masked
    recipe's ``finalize`` cut included, which comes with no report of its own)."""
    own = [
        PruneReport(kept=d.module_keep, kept_params={t: dict(dims) for t, dims in d.param_keep.items()})
        for _, d in runner.decisions
        if d.kind == "physical"
    ]
    return runner.source.base_reports() + own


def _cpu(model: nn.Module) -> nn.Module:
    return copy.deepcopy(model).cpu().eval()


def write_prune_report(
    runner: Any, out: Path, *, config: dict[str, Any] | None, latency: bool = True
) -> dict[str, Path]:
    """Calls :func:`prunekit.reporting.write_report` for a run that pruned (latency included)."""
    from prunekit.reporting import write_report

    return write_report(
        out / "report",
        model_before=_cpu(runner.original if runner.original is not None else runner.teacher),
        model_after=_cpu(runner.model),
        example_inputs=runner.example.cpu(),
        prune_reports=runner.reports,
        metrics=runner.metrics,
        history_csv=out / "history.csv",
        config=config,
        latency=latency,
    )


def write_outputs(
    runner: Any, out: Path, *, config: dict[str, Any] | None, save: bool, report: bool, latency: bool = True
) -> dict[str, Path]:
    """Writes the files described in the module docstring; returns ``{kind: path}``."""
    files: dict[str, Path] = {"history": out / "history.csv", "checkpoint": out / "checkpoint.pt"}
    src = runner.source
    if config is not None:
        files["config"] = write_text(out / "config.json", json.dumps(config, indent=1, default=str) + "\n")
    if save:
        # input_shape lets `prunekit report` and `prunekit export` rebuild an example input
        extra = {"config": config, "metrics": runner.metrics, "input_shape": list(runner.example.shape)}
        save_model(
            _cpu(runner.model), out / "model", reports=cut_reports(runner), builder=src.spec,
            builder_kwargs=src.builder_kwargs, extra=json.loads(json.dumps(extra, default=str)),
        )  # fmt: skip
        files["model"] = out / "model"
        if runner.original is not None:
            save_model(
                _cpu(runner.original), out / "original", reports=src.base_reports(), builder=src.spec,
                builder_kwargs=src.builder_kwargs,
            )  # fmt: skip
            files["original"] = out / "original"
    if report and (runner.original is not None or runner.teacher is not None):
        for kind, path in write_prune_report(runner, out, config=config, latency=latency).items():
            files[f"report_{kind}"] = path
    log.info("outputs written to %s", out)
    return files


def check_out_dir(out: Path, *, resume: bool, overwrite: bool) -> None:
    """Checks, before any training, that a run may write to the folder ``out``.

    ``out`` must be a folder (or not exist yet) that this process can write; a non-empty one is
    refused unless ``resume`` (continue its run) or ``overwrite`` (replace prunekit's files in
    it), so a typo never replaces a previous run; and ``out/model``, ``out/original`` (and a
    ``.old`` left by a killed save) must be folders a save may replace.

    Raises:
        ConfigError: naming the folder (``module="out_dir"``).
    """
    if out.exists() and not out.is_dir():
        raise option_error("out_dir", f"{str(out)!r} is a file, not a folder")
    if resume and not (out / "checkpoint.pt").is_file():
        raise option_error("resume", f"{str(out)!r} holds no checkpoint.pt to resume from")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise option_error("out_dir", f"cannot create {str(out)!r}: {exc.strerror}") from None
    if not os.access(out, os.W_OK | os.X_OK):
        raise option_error("out_dir", f"{str(out)!r} is not writable")
    entries = sorted(p.name for p in out.iterdir() if p.name != LOCK_FILE)
    if entries and not (resume or overwrite):
        shown = ", ".join(entries[:4]) + (", ..." if len(entries) > 4 else "")
        raise option_error(
            "out_dir",
            f"{str(out)!r} is not empty ({shown}); give a new folder, --resume to continue "
            "its run, or --overwrite to replace prunekit's files in it",
        )
    for name in ("model", "original"):
        try:
            check_save_target(out / name)
        except ConfigError as exc:
            raise option_error("out_dir", f"{exc}") from None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's live process
    return True


@contextlib.contextmanager
def out_dir_lock(out: Path) -> Iterator[Path]:
    """Holds ``out/.prunekit.lock`` (holding this process id) while a run writes to ``out``.

    A second run on the same folder is refused while the first is alive; the lock of a process
    that died (``kill -9``) is taken over.

    Raises:
        ConfigError: another live process holds the lock.
    """
    lock = out / LOCK_FILE
    for _ in range(2):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666)
        except FileExistsError:
            try:
                pid = int(lock.read_text().strip() or 0)
            except (OSError, ValueError):
                pid = 0
            if pid and pid != os.getpid() and _pid_alive(pid):
                raise option_error(
                    "out_dir",
                    f"another run (process {pid}) is writing to {str(out)!r}; wait for it or use "
                    f"another folder (remove {str(lock)!r} if that process is not prunekit)",
                ) from None
            lock.unlink(missing_ok=True)  # left by a dead process
            continue
        except OSError as exc:
            if exc.errno in (errno.EACCES, errno.EROFS, errno.EPERM):
                raise option_error("out_dir", f"{str(out)!r} is not writable") from None
            raise
        with os.fdopen(fd, "w") as f:
            f.write(f"{os.getpid()}\n")
        break
    else:
        raise option_error("out_dir", f"cannot take the lock {str(lock)!r}")
    try:
        yield lock
    finally:
        lock.unlink(missing_ok=True)
