"""One training epoch and evaluation: the inner loops of the pipeline.

Mixed precision (``torch.autocast`` in float16 with a ``GradScaler``) is used on CUDA when asked;
on CPU everything runs in float32. Progress bars (tqdm) show the running loss and accuracy; they
are off when ``progress`` is False and tqdm hides them when stderr is not a terminal.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from prunekit.errors import NonFiniteError
from prunekit.modes import training_flags
from prunekit.pipeline.optim import StepLR
from prunekit.schedules.recipe import Recipe

__all__ = ["EvalResult", "EpochStats", "evaluate", "train_epoch", "cross_entropy_loss", "autocast", "progress_bar"]

LossFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class EvalResult:
    """Mean loss and top-1 / top-5 accuracy (fractions in [0, 1]) over ``samples`` images."""

    loss: float
    top1: float
    top5: float
    samples: int


@dataclass(frozen=True)
class EpochStats:
    """Mean training loss and accuracy of an epoch, the last LR, and the batches run."""

    loss: float
    acc: float
    lr: float
    steps: int


def cross_entropy_loss(label_smoothing: float = 0.0) -> LossFn:
    """``loss(logits, inputs, targets)``: cross-entropy with optional label smoothing."""

    def loss(logits: torch.Tensor, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits, targets, label_smoothing=label_smoothing)

    return loss


def autocast(device: torch.device, enabled: bool) -> contextlib.AbstractContextManager[Any]:
    """float16 autocast on CUDA when ``enabled``; a no-op elsewhere (CPU trains in float32)."""
    if enabled and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.float16)
    return contextlib.nullcontext()


def progress_bar(iterable: Iterable[Any], *, enabled: bool, **kwargs: Any) -> Any:
    """A tqdm bar, or the iterable itself when disabled (tqdm hides bars off a terminal)."""
    if not enabled:
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, disable=None, dynamic_ncols=True, **kwargs)


def _topk_correct(logits: torch.Tensor, targets: torch.Tensor, k: int) -> int:
    k = min(k, logits.shape[1])
    top = logits.topk(k, dim=1).indices
    return int((top == targets[:, None]).any(dim=1).sum())


@torch.no_grad()
def evaluate(
    model: nn.Module,
    loader: Iterable[tuple[torch.Tensor, torch.Tensor]],
    *,
    device: torch.device | str = "cpu",
    max_batches: int | None = None,
    amp: bool = False,
    progress: bool = False,
) -> EvalResult:
    """Top-1, top-5 and mean cross-entropy of ``model`` (in eval mode) over ``loader``."""
    device = torch.device(device)
    loss_sum, top1, top5, n = 0.0, 0, 0, 0
    with training_flags(model, False):  # each module gets its own flag back (frozen BatchNorms stay frozen)
        for i, (x, y) in enumerate(progress_bar(loader, enabled=progress, desc="eval", leave=False)):
            if max_batches is not None and i >= max_batches:
                break
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            with autocast(device, amp):
                logits = model(x)
            logits = logits.float()
            loss_sum += float(F.cross_entropy(logits, y, reduction="sum"))
            top1 += _topk_correct(logits, y, 1)
            top5 += _topk_correct(logits, y, 5)
            n += y.numel()
    n_safe = max(n, 1)
    return EvalResult(loss=loss_sum / n_safe, top1=top1 / n_safe, top5=top5 / n_safe, samples=n)


def train_epoch(
    model: nn.Module,
    loader: Iterable[tuple[torch.Tensor, torch.Tensor]],
    optimizer: torch.optim.Optimizer,
    *,
    loss_fn: LossFn,
    step: int = 0,
    schedule: StepLR | None = None,
    scaler: torch.amp.GradScaler | None = None,
    recipe: Recipe | None = None,
    recipe_model: nn.Module | None = None,
    device: torch.device | str = "cpu",
    amp: bool = False,
    max_batches: int | None = None,
    progress: bool = False,
    desc: str = "train",
) -> EpochStats:
    """Trains ``model`` for one pass over ``loader``.

    Args:
        model: the model to run (possibly wrapped in DistributedDataParallel).
        loss_fn: ``loss(logits, inputs, targets)`` (cross-entropy or distillation).
        step: the phase's step (batch) number at the start of this epoch, for ``schedule``.
        schedule: sets the LR before every batch; ``None`` when a recipe's schedulers do it.
        scaler: a GradScaler for mixed precision (disabled on CPU).
        recipe: ``recipe.after_optimizer_step(recipe_model)`` runs after every optimizer step
            (it keeps masked weights at zero).
        recipe_model: the unwrapped model the recipe sees (default: ``model``).
        max_batches: stop after this many batches.

    Raises:
        NonFiniteError: the loss of a batch is NaN or inf; no optimizer step was taken on it.
    """
    device = torch.device(device)
    model.train()
    loss_sum, correct, n, steps = 0.0, 0, 0, 0
    lr = optimizer.param_groups[0]["lr"]
    bar = progress_bar(loader, enabled=progress, desc=desc, leave=False, total=_length(loader, max_batches))
    for i, (x, y) in enumerate(bar):
        if max_batches is not None and i >= max_batches:
            break
        if schedule is not None:
            lr = schedule.apply(optimizer, step + i)
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        with autocast(device, amp):
            logits = model(x)
            loss = loss_fn(logits, x, y)
        value = float(loss.detach())
        if not math.isfinite(value):  # stop before the step: NaN weights would be checkpointed
            raise NonFiniteError(
                f"training loss became {value} at batch {i + 1} of this epoch (learning rate {lr:.3g}); "
                "the run diverged: lower --lr or check the data",
                module="loss",
            )
        optimizer.zero_grad(set_to_none=True)
        if scaler is not None and scaler.is_enabled():
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
        else:
            loss.backward()
            optimizer.step()
        if recipe is not None:
            recipe.after_optimizer_step(recipe_model if recipe_model is not None else model)
        steps += 1
        loss_sum += value * y.numel()
        correct += int((logits.detach().argmax(1) == y).sum())
        n += y.numel()
        if hasattr(bar, "set_postfix"):
            bar.set_postfix(loss=f"{loss_sum / n:.3f}", acc=f"{correct / n:.3f}", lr=f"{lr:.3g}", refresh=False)
    n_safe = max(n, 1)
    return EpochStats(loss=loss_sum / n_safe, acc=correct / n_safe, lr=float(lr), steps=steps)


def _length(loader: Iterable[Any], max_batches: int | None) -> int | None:
    try:
        total = len(loader)  # type: ignore[arg-type]
    except TypeError:
        return max_batches
    return total if max_batches is None else min(total, max_batches)
