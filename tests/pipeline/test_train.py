"""evaluate() and train_epoch() on tiny synthetic data."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn

from prunekit.pipeline import TrainOptions, build_optimizer, evaluate, train_epoch
from prunekit.pipeline.train import cross_entropy_loss


class Fixed(nn.Module):
    """Returns the logits stored for each input index (x holds the index)."""

    def __init__(self, logits: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("logits", logits)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.logits[x.long()]


def test_evaluate_top1_top5_and_loss():
    logits = torch.tensor([[0.0, 1, 2, 3, 4, 5], [5.0, 4, 3, 2, 1, 0], [0.0, 0, 9, 0, 0, 0]])
    targets = torch.tensor([5, 0, 5])  # right, right, wrong (and 5 is not in row 2's top 5? it is, tie)
    batches = [(torch.tensor([0, 1]), targets[:2]), (torch.tensor([2]), targets[2:])]
    result = evaluate(Fixed(logits), batches)
    assert result.samples == 3 and result.top1 == pytest.approx(2 / 3)
    expected = nn.functional.cross_entropy(logits, targets)
    assert result.loss == pytest.approx(float(expected))
    assert evaluate(Fixed(logits), batches, max_batches=1).samples == 2


def test_train_epoch_learns_and_respects_max_batches():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 4, generator=g)
    y = (x[:, 0] > 0).long()
    batches = [(x[i : i + 16], y[i : i + 16]) for i in range(0, 64, 16)]
    model = nn.Linear(4, 2)
    opt = build_optimizer(model, TrainOptions(lr=0.5, weight_decay=0.0))
    first = train_epoch(model, batches, opt, loss_fn=cross_entropy_loss(), max_batches=3)
    assert first.steps == 3
    for _ in range(10):
        last = train_epoch(model, batches, opt, loss_fn=cross_entropy_loss())
    assert last.steps == 4 and last.loss < first.loss and last.acc > 0.9
