"""``run``: train -> prune -> fine-tune as one resumable sequence of phases.

A run is a list of :class:`Phase` objects ("train", "sparsify" with a
:class:`~prunekit.regularizers.Regularizer`, "prune" with a
:class:`~prunekit.schedules.recipe.Recipe`, "finetune"). After every epoch the run writes
``checkpoint.pt`` and ``history.csv`` to its folder (rank 0 only); ``resume=True`` restarts from
the checkpoint: it builds the model from its :class:`ModelSource`, replays the recorded
:class:`~prunekit.schedules.recipe.Decision` objects in order with ``recipe.replay`` (so the
architecture matches even after physical cuts), then loads weights, optimizer, LR-schedule, recipe
and RNG state. With the same seed, data and threads, a resumed CPU run ends with bit-identical
weights to an uninterrupted one (``tests/pipeline/test_resume.py``).

At the end the pruned model is saved with :func:`prunekit.save` (the original, unpruned one too,
as the teacher for a later ``prunekit finetune --distill``), with the resolved config and the
report (:mod:`prunekit.pipeline.outputs`).
"""

from __future__ import annotations

import contextlib
import copy
import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
from torch.utils.data import DataLoader

from prunekit.errors import ConfigError, NonFiniteError, option_error
from prunekit.pipeline.checkpoint import load_checkpoint
from prunekit.pipeline.device import check_device
from prunekit.pipeline.distributed import DistContext, init_distributed
from prunekit.pipeline.options import TrainOptions
from prunekit.pipeline.outputs import check_out_dir, out_dir_lock, write_outputs
from prunekit.pipeline.runner import Runner
from prunekit.pipeline.source import ModelSource
from prunekit.regularizers import Regularizer
from prunekit.report import PruneReport
from prunekit.schedules.recipe import Recipe

__all__ = ["Phase", "RunResult", "run", "PHASES"]

log = logging.getLogger("prunekit.pipeline")
PHASES = ("train", "sparsify", "prune", "finetune")


@dataclass
class Phase:
    """One stage of a run.

    Attributes:
        name: "train", "sparsify" (trains with ``regularizer``'s penalty added to the loss, so
            whole channel groups shrink towards zero before a prune), "prune" (runs ``recipe``
            interleaved with training) or "finetune".
        options: how it trains. A prune phase lasts ``max(options.epochs, recipe.num_epochs)``
            epochs; with ``options.epochs == 0`` the recipe's hooks run without training
            (one-shot pruning, then fine-tune in the next phase).
        recipe: the pruning program (prune phase only).
        regularizer: the penalty (sparsify phase only); set up on the model as it is when the
            phase starts, its state (GReg's selection) kept in the checkpoint.
        threshold: a channel whose norm (as the regularizer measures it) is under this counts as
            zero in ``history.csv``'s ``reg_below`` (sparsify phase).
    """

    name: str
    options: TrainOptions = field(default_factory=TrainOptions)
    recipe: Recipe | None = None
    regularizer: Regularizer | None = None
    threshold: float = 1e-2

    def __post_init__(self) -> None:
        if self.name not in PHASES:
            raise option_error("phase", f"must be one of {', '.join(PHASES)}, but got {self.name!r}")
        if (self.recipe is None) == (self.name == "prune"):
            raise ConfigError(
                f"phase {self.name!r}: a recipe is needed by, and only by, a prune phase", module="recipe"
            )
        if (self.regularizer is None) == (self.name == "sparsify"):
            raise ConfigError(
                f"phase {self.name!r}: a regularizer is needed by, and only by, a sparsify phase", module="regularizer"
            )
        t = self.threshold
        if isinstance(t, bool) or not isinstance(t, (int, float)) or not t >= 0:
            raise ConfigError(f"threshold: must be a number >= 0, but got {t!r}", module="threshold")

    @property
    def num_epochs(self) -> int:
        if self.recipe is not None:
            return max(self.options.epochs, int(self.recipe.num_epochs))
        return self.options.epochs

    @property
    def trains(self) -> bool:
        return self.options.epochs > 0


@dataclass
class RunResult:
    """What :func:`run` produced (the model is the unwrapped, final one)."""

    model: nn.Module
    history: list[dict[str, Any]]
    reports: list[PruneReport]
    metrics: dict[str, Any]
    out_dir: Path | None
    files: dict[str, Path]


def run(
    source: ModelSource,
    phases: Sequence[Phase],
    *,
    train_loader: DataLoader,
    val_loader: DataLoader,
    out_dir: str | os.PathLike[str] | None = None,
    seed: int = 0,
    resume: bool = False,
    overwrite: bool = False,
    device: str | None = None,
    progress: bool = True,
    initial_state: dict[str, torch.Tensor] | None = None,
    teacher: nn.Module | None = None,
    config: dict[str, Any] | None = None,
    save: bool = True,
    report: bool = True,
    latency: bool = True,
    calibration_batches: int = 4,
    on_epoch_end: Callable[[dict[str, Any]], None] | None = None,
) -> RunResult:
    """Runs ``phases`` on the model built from ``source``; see the module docstring.

    Args:
        source: how to build the starting model (and rebuild it on resume).
        phases: e.g. ``[Phase("train", opts)]`` or ``[Phase("prune", o1, recipe), Phase("finetune", o2)]``.
        train_loader, val_loader: the data; under torchrun the training loader is sharded.
        out_dir: folder for ``checkpoint.pt``, ``history.csv``, the saved model and the report;
            ``None`` writes nothing (and cannot resume).
        seed: seeds torch, the data order and the augmentations (per epoch, so resuming
            reproduces them).
        resume: continue from ``out_dir/checkpoint.pt``.
        overwrite: write into a non-empty ``out_dir`` that holds no run to resume (without it,
            and without ``resume``, a non-empty ``out_dir`` is an error: nothing is replaced by
            accident). While the run writes, ``out_dir/.prunekit.lock`` keeps a second run out.
        device: "cpu", "cuda" or None (CUDA when available; ``cuda:LOCAL_RANK`` under torchrun).
        progress: tqdm bars (rank 0, on a terminal).
        initial_state: weights to load into the built model before the first phase (e.g. from a
            ``prunekit train`` checkpoint); ignored on resume.
        teacher: the model distilled from in phases with ``options.distill``; default: the model
            as it was before the first prune phase of this run.
        config: the resolved configuration, written to ``out_dir/config.json`` and the saved model.
        save, report: save the final model and write the report at the end (rank 0).
        latency: measure CPU latency before/after in the report.
        calibration_batches: training batches given to recipes whose criterion needs data.
        on_epoch_end: called on every rank with the checkpoint state after each epoch (tests
            use it to simulate a kill).
    """
    if not phases:
        raise option_error("phases", "a run needs at least one phase")
    if sum(p.name == "prune" for p in phases) > 1:
        raise option_error("phases", "a run may hold at most one prune phase")
    out = Path(out_dir) if out_dir is not None else None
    check_device(device)
    ctx = init_distributed(device)
    try:
        with contextlib.ExitStack() as stack:
            if out is not None and ctx.is_main:  # before any training: a bad folder fails now, not at the end
                check_out_dir(out, resume=resume, overwrite=overwrite)
                stack.enter_context(out_dir_lock(out))
            return _run(
                ctx, source, list(phases), train_loader, val_loader, out, seed, resume, progress, initial_state,
                teacher, config, save, report, latency, calibration_batches, on_epoch_end,
            )  # fmt: skip
    finally:
        ctx.close()


def _run(  # noqa: PLR0913 - the arguments of run(), unpacked
    ctx: DistContext,
    source: ModelSource,
    phases: list[Phase],
    train_loader: DataLoader,
    val_loader: DataLoader,
    out: Path | None,
    seed: int,
    resume: bool,
    progress: bool,
    initial_state: dict[str, torch.Tensor] | None,
    teacher: nn.Module | None,
    config: dict[str, Any] | None,
    save: bool,
    report: bool,
    latency: bool,
    calibration_batches: int,
    on_epoch_end: Callable[[dict[str, Any]], None] | None,
) -> RunResult:
    torch.manual_seed(seed)
    runner = Runner(
        ctx, source, phases, train_loader, val_loader, out_dir=out, seed=seed, progress=progress,
        calibration_batches=calibration_batches, on_epoch_end=on_epoch_end,
    )  # fmt: skip
    if resume:
        if out is None:
            raise option_error("resume", "needs out_dir, where the checkpoint is")
        runner.restore(load_checkpoint(out / "checkpoint.pt", map_location=ctx.device), teacher=teacher)
    else:
        if initial_state is not None:
            runner.model.load_state_dict(initial_state)
        if teacher is not None:
            runner.teacher = copy.deepcopy(teacher).to(ctx.device)
    t0 = time.perf_counter()
    try:
        runner.run_all()
    except NonFiniteError as exc:
        kept = (
            f"; the last good checkpoint is {str(out / 'checkpoint.pt')!r}"
            if out is not None and (out / "checkpoint.pt").is_file()
            else ""
        )
        raise NonFiniteError(f"{exc}{kept}", module=exc.module) from None
    log.info("run finished in %.1f s", time.perf_counter() - t0)
    files: dict[str, Path] = {}
    if out is not None and ctx.is_main and (save or report):
        files = write_outputs(runner, out, config=config, save=save, report=report, latency=latency)
    ctx.barrier()
    return RunResult(runner.model, runner.history, runner.all_reports(), runner.metrics, out, files)
