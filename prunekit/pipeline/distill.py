"""Knowledge distillation from the unpruned model (Hinton, Vinyals & Dean 2015).

The fine-tuned (pruned) student is trained on

    L = alpha * T^2 * KL(softmax(t / T) || softmax(s / T)) + (1 - alpha) * CE(s, y)

with ``s`` and ``t`` the student's and teacher's logits. The ``T^2`` factor keeps the soft
term's gradients on the same scale as the hard term's when ``T`` changes (the paper, sec. 2).
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from prunekit.errors import ConfigError

__all__ = ["kd_loss", "DistillationLoss"]


def kd_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    targets: torch.Tensor,
    *,
    temperature: float = 4.0,
    alpha: float = 0.5,
    label_smoothing: float = 0.0,
) -> torch.Tensor:
    """The distillation loss above, averaged over the batch.

    Args:
        student_logits, teacher_logits: ``(N, C)`` logits (the teacher's are detached here).
        targets: ``(N,)`` class indices.
        temperature: ``T > 0``.
        alpha: weight in [0, 1] of the soft (KL) term.
        label_smoothing: for the hard (cross-entropy) term.
    """
    if not temperature > 0:
        raise ConfigError(f"temperature must be > 0, but got {temperature!r}", module="temperature")
    if not 0.0 <= alpha <= 1.0:
        raise ConfigError(f"alpha must be in [0, 1], but got {alpha!r}", module="alpha")
    hard = F.cross_entropy(student_logits, targets, label_smoothing=label_smoothing)
    if alpha == 0.0:
        return hard
    log_p_student = F.log_softmax(student_logits.float() / temperature, dim=1)
    log_p_teacher = F.log_softmax(teacher_logits.detach().float() / temperature, dim=1)
    soft = F.kl_div(log_p_student, log_p_teacher, reduction="batchmean", log_target=True)
    return alpha * temperature**2 * soft + (1.0 - alpha) * hard


class DistillationLoss(nn.Module):
    """``loss(student_logits, inputs, targets)``: runs the frozen teacher and calls :func:`kd_loss`.

    Args:
        teacher: the unpruned model; put in eval mode with gradients off.
        temperature, alpha, label_smoothing: see :func:`kd_loss`.
    """

    def __init__(
        self, teacher: nn.Module, *, temperature: float = 4.0, alpha: float = 0.5, label_smoothing: float = 0.0
    ) -> None:
        super().__init__()
        self.teacher = teacher.eval().requires_grad_(False)
        self.temperature = temperature
        self.alpha = alpha
        self.label_smoothing = label_smoothing

    def train(self, mode: bool = True) -> DistillationLoss:
        super().train(mode)
        self.teacher.eval()  # BatchNorm statistics of the teacher never move
        return self

    def forward(self, student_logits: torch.Tensor, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            teacher_logits = self.teacher(inputs)
        return kd_loss(
            student_logits,
            teacher_logits,
            targets,
            temperature=self.temperature,
            alpha=self.alpha,
            label_smoothing=self.label_smoothing,
        )
