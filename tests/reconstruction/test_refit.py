"""The solvers and the refit alone: least squares, LASSO, ThiNet's greedy order, reconstruct_."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

import prunekit
from prunekit.errors import ConfigError, UnknownNameError
from prunekit.models import CifarResNet
from prunekit.reconstruction import lasso_gram, lasso_scores, least_squares, reconstruct_, thinet_scores


def test_least_squares_recovers_an_exact_linear_map():
    g = torch.Generator().manual_seed(0)
    a, w, b = torch.randn(200, 7, generator=g), torch.randn(3, 7, generator=g), torch.randn(3, generator=g)
    w_fit, b_fit = least_squares(a, a @ w.T + b, bias=True)
    assert torch.allclose(w_fit.float(), w, atol=1e-5) and torch.allclose(b_fit.float(), b, atol=1e-5)


def test_lasso_on_an_orthonormal_design_is_soft_thresholding():
    lin = torch.tensor([3.0, -0.5, 1.2, 0.1], dtype=torch.float64)
    beta = lasso_gram(torch.eye(4, dtype=torch.float64), lin, 1.0)
    assert torch.allclose(beta, torch.tensor([2.0, 0.0, 0.2, 0.0], dtype=torch.float64), atol=1e-8)


def test_lasso_scores_keep_the_requested_count_and_spare_locked_channels():
    g = torch.Generator().manual_seed(1)
    z = torch.randn(50, 6, generator=g, dtype=torch.float64) * torch.tensor([3, 2, 1, 0.5, 0.2, 0.1])
    gram, lin = z.T @ z, z.T @ z.sum(1)  # target: every channel with beta = 1
    free = np.array([True, True, True, True, True, False])
    scores = lasso_scores(gram, lin, 2, free=free)
    assert set(np.argsort(-scores[free])[:2].tolist()) == {0, 1}  # the largest contributions survive
    assert (scores[:5] > 1).sum() == 2


def test_thinet_removes_a_cancelling_pair_first():
    # channels 0 and 1 cancel (Z_1 = -Z_0): removing both changes nothing
    gram = torch.tensor([[1.0, -1.0, 0.0], [-1.0, 1.0, 0.0], [0.0, 0.0, 1.5]])
    scores = thinet_scores(gram, free=np.ones(3, bool))
    assert sorted(np.argsort(scores)[:2].tolist()) == [0, 1]


def _resnet():
    torch.manual_seed(0)
    return CifarResNet(8, num_classes=10, in_channels=1, width=8).eval()


def test_refit_reduces_every_layer_error_and_the_output_error():
    original = _resnet()
    x = torch.randn(1, 1, 16, 16)
    data = [torch.randn(16, 1, 16, 16) for _ in range(2)]
    test = torch.randn(32, 1, 16, 16)
    pruned, report = prunekit.prune(original, x, sparsity=0.5, criterion="l1")
    plain = copy.deepcopy(pruned)
    rows = reconstruct_(pruned, original, data, kept=report, num_samples=512)
    assert {r.name for r in rows} >= {"layer1.0.conv1", "layer1.0.conv2", "layer2.0.conv1", "fc"}
    assert all(r.error_after < r.error_before for r in rows)
    with torch.no_grad():
        ref = original(test)
        err = [float((m(test) - ref).pow(2).sum() / ref.pow(2).sum()) for m in (plain, pruned)]
    assert err[1] < 0.5 * err[0]


def test_reconstruct_errors_name_the_layer():
    original = _resnet()
    pruned, report = prunekit.prune(original, torch.randn(1, 1, 16, 16), sparsity=0.5)
    data = [torch.randn(4, 1, 16, 16)]
    with pytest.raises(UnknownNameError, match="nope"):
        reconstruct_(pruned, original, data, layers=["nope"])
    with pytest.raises(ConfigError, match="layer1.0.conv1.*kept=report"):
        reconstruct_(pruned, original, data, layers=["layer1.0.conv1"])
    with pytest.raises(ConfigError, match="cannot be refit"):
        reconstruct_(pruned, original, data, layers=["layer1.0.bn1"], kept=report)
