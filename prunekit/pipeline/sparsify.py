"""The loss of a ``sparsify`` phase: the task loss plus a regularizer's penalty.

:class:`RegularizedLoss` has the pipeline's ``loss(logits, inputs, targets)`` signature, so
:func:`~prunekit.pipeline.train_epoch` runs it unchanged. It is made afresh for every epoch with
the phase's step at the epoch start and counts the batches of that epoch only (the regularizer's
coefficient is a function of the step, e.g. GReg's growing ``lambda``), and it keeps the mean
penalty of the epoch for ``history.csv``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn as nn

from prunekit.regularizers import Regularizer

__all__ = ["RegularizedLoss"]

LossFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


class RegularizedLoss:
    """``loss(logits, x, y) = task(logits, x, y) + regularizer.penalty(model, step=start + i)``.

    Args:
        task: the task loss (cross-entropy or distillation).
        regularizer: a regularizer already set up on ``model``.
        model: the unwrapped model whose parameters are penalised (under DDP every rank adds the
            same penalty, so the averaged gradient is the penalty's own).
        start_step: the phase's step (batches done) at the start of this epoch.
    """

    def __init__(self, task: LossFn, regularizer: Regularizer, model: nn.Module, *, start_step: int) -> None:
        self.task, self.regularizer, self.model = task, regularizer, model
        self.step = start_step
        self.penalty_sum = 0.0
        self.calls = 0

    def __call__(self, logits: torch.Tensor, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        penalty = self.regularizer.penalty(self.model, step=self.step)
        self.step += 1
        self.calls += 1
        self.penalty_sum += float(penalty.detach())
        return self.task(logits, inputs, targets) + penalty

    @property
    def mean_penalty(self) -> float:
        """The mean penalty over the batches of this epoch (0 before any)."""
        return self.penalty_sum / max(self.calls, 1)
