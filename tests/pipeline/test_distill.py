"""The distillation loss against its formula (Hinton et al. 2015)."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from prunekit.errors import ConfigError
from prunekit.pipeline import DistillationLoss, kd_loss


def _reference(s, t, y, T, alpha):  # type: ignore[no-untyped-def]
    p_t = F.softmax(t / T, dim=1)
    kl = (p_t * (p_t.log() - F.log_softmax(s / T, dim=1))).sum(1).mean()
    return alpha * T * T * kl + (1 - alpha) * F.cross_entropy(s, y)


@pytest.mark.parametrize("T, alpha", [(1.0, 0.5), (4.0, 0.9), (2.0, 1.0)])
def test_kd_loss_matches_the_formula(T, alpha):  # type: ignore[no-untyped-def]
    g = torch.Generator().manual_seed(0)
    s, t = torch.randn(6, 10, generator=g), torch.randn(6, 10, generator=g)
    y = torch.randint(0, 10, (6,), generator=g)
    assert kd_loss(s, t, y, temperature=T, alpha=alpha) == pytest.approx(float(_reference(s, t, y, T, alpha)), rel=1e-5)


def test_alpha_zero_is_cross_entropy_and_identical_logits_cost_nothing_soft():
    s = torch.randn(4, 5)
    y = torch.tensor([0, 1, 2, 3])
    assert torch.equal(kd_loss(s, s + 1, y, alpha=0.0), F.cross_entropy(s, y))
    assert float(kd_loss(s, s, y, alpha=1.0)) == pytest.approx(0.0, abs=1e-6)


def test_distillation_loss_keeps_the_teacher_frozen():
    teacher = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    loss = DistillationLoss(teacher, temperature=2.0, alpha=0.7).train()
    assert not teacher.training and not any(p.requires_grad for p in teacher.parameters())
    x, y = torch.randn(8, 3), torch.randint(0, 4, (8,))
    student = nn.Linear(3, 4)
    value = loss(student(x), x, y)
    value.backward()
    assert student.weight.grad is not None and teacher[0].weight.grad is None
    with torch.no_grad():
        expected = kd_loss(student(x), teacher(x), y, temperature=2.0, alpha=0.7)
    assert float(value.detach()) == pytest.approx(float(expected))


def test_bad_arguments():
    s, y = torch.randn(2, 3), torch.tensor([0, 1])
    with pytest.raises(ConfigError, match="temperature"):
        kd_loss(s, s, y, temperature=0)
    with pytest.raises(ConfigError, match="alpha"):
        kd_loss(s, s, y, alpha=2)
