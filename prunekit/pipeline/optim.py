"""Optimizers and learning-rate schedules for the training pipeline.

The built-in LR schedule is a pure function of the step (:func:`lr_factor`), applied before every
batch by :class:`StepLR`, so rebuilding the optimizer after a physical cut, or resuming a run,
only needs the step number. Schedulers named by a recipe (Distiller's ``lr_schedulers``, given as
:class:`~prunekit.schedules.recipe.LRSchedulerSpec`) are ``torch.optim.lr_scheduler`` objects;
:func:`rebuild_recipe_schedulers` moves their state onto a new optimizer.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn as nn

from prunekit.errors import ConfigError
from prunekit.pipeline.options import TrainOptions
from prunekit.schedules.recipe import LRSchedulerSpec

__all__ = ["build_optimizer", "lr_factor", "StepLR", "build_recipe_schedulers", "rebuild_recipe_schedulers"]


def build_optimizer(model: nn.Module, options: TrainOptions) -> torch.optim.Optimizer:
    """SGD (momentum, Nesterov, L2 weight decay) or AdamW over the trainable parameters.

    BatchNorm and bias parameters get weight decay too, as in the reference CIFAR recipes.
    """
    params = [p for p in model.parameters() if p.requires_grad]
    if options.optimizer == "sgd":
        return torch.optim.SGD(
            params,
            lr=options.lr,
            momentum=options.momentum,
            nesterov=options.nesterov,
            weight_decay=options.weight_decay,
        )
    return torch.optim.AdamW(params, lr=options.lr, weight_decay=options.weight_decay)


def lr_factor(step: int, *, steps_per_epoch: int, options: TrainOptions) -> float:
    """The multiplier of ``options.lr`` at batch ``step`` (0-based) of a phase.

    Warm-up: ``(step + 1) / W`` for the first ``W = round(warmup_epochs * steps_per_epoch)``
    steps. Then "cosine": ``(1 + cos(pi * t)) / 2`` with ``t`` the fraction of the post-warm-up
    steps done (SGDR without restarts, Loshchilov & Hutter 2017); "step": ``gamma ** k`` with
    ``k`` the number of milestones ``<= step // steps_per_epoch``; "constant": 1.
    """
    total = max(options.epochs * steps_per_epoch, 1)
    warmup = round(options.warmup_epochs * steps_per_epoch)
    if step < warmup:
        return (step + 1) / warmup
    if options.lr_schedule == "cosine":
        t = min((step - warmup) / max(total - warmup, 1), 1.0)
        return 0.5 * (1.0 + math.cos(math.pi * t))
    if options.lr_schedule == "step":
        epoch = step // max(steps_per_epoch, 1)
        return options.gamma ** sum(1 for m in options.milestones if m <= epoch)
    return 1.0


class StepLR:
    """Sets every parameter group's LR to ``options.lr * lr_factor(step)`` (no hidden counter).

    Args:
        options: the phase's options.
        steps_per_epoch: batches per epoch (after ``max_batches``).
    """

    def __init__(self, options: TrainOptions, *, steps_per_epoch: int) -> None:
        self.options = options
        self.steps_per_epoch = max(int(steps_per_epoch), 1)

    def lr(self, step: int) -> float:
        return self.options.lr * lr_factor(step, steps_per_epoch=self.steps_per_epoch, options=self.options)

    def apply(self, optimizer: torch.optim.Optimizer, step: int) -> float:
        lr = self.lr(step)
        for group in optimizer.param_groups:
            group["lr"] = lr
        return lr


def build_recipe_schedulers(
    optimizer: torch.optim.Optimizer, specs: Sequence[LRSchedulerSpec]
) -> list[torch.optim.lr_scheduler.LRScheduler]:
    """Creates the ``torch.optim.lr_scheduler`` objects a recipe names, on ``optimizer``."""
    out = []
    for i, spec in enumerate(specs):
        cls = getattr(torch.optim.lr_scheduler, spec.name, None)
        if not isinstance(cls, type):
            raise ConfigError(
                f"lr_schedulers[{i}].name: torch.optim.lr_scheduler has no class {spec.name!r}",
                module=f"lr_schedulers[{i}]",
            )
        try:
            out.append(cls(optimizer, **dict(spec.kwargs)))
        except TypeError as exc:
            raise ConfigError(f"lr_schedulers[{i}] ({spec.name}): {exc}", module=f"lr_schedulers[{i}]") from exc
    return out


def rebuild_recipe_schedulers(
    optimizer: torch.optim.Optimizer,
    specs: Sequence[LRSchedulerSpec],
    states: Sequence[dict[str, Any]],
) -> list[torch.optim.lr_scheduler.LRScheduler]:
    """Recreates a recipe's schedulers on a new optimizer at the position ``states`` record.

    ``load_state_dict`` restores a scheduler's counters but not the optimizer's LR, so the last
    LR each scheduler computed is written back into the parameter groups.
    """
    schedulers = build_recipe_schedulers(optimizer, specs)
    for sched, state in zip(schedulers, states):
        sched.load_state_dict(dict(state))
        for group, lr in zip(optimizer.param_groups, sched.get_last_lr()):
            group["lr"] = lr
    return schedulers
