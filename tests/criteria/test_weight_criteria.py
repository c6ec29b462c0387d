"""fpgm, bn_scale, random and lamp against hand-computed references; the registry."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn as nn

import prunekit
from prunekit.criteria import (
    CRITERIA,
    BNScaleCriterion,
    FPGMCriterion,
    LAMPCriterion,
    RandomCriterion,
    lamp_scores,
)
from prunekit.errors import ConfigError, UnknownNameError

from .nets import assert_unchanged, group0, params_of, tiny_net

# per-channel rows of group 0 in tiny_net: conv0 weight, conv0 bias, BN gamma, BN beta, conv3 in-slice
ROWS = np.array(
    [
        [1.0, 0.0, 0.5, 0.1, 1.0, -1.0],
        [-2.0, 1.0, -3.0, 0.0, 0.0, 1.0],
        [0.5, -1.0, 1.0, -0.2, 2.0, 0.0],
    ]
)


def test_registry_lists_all_names():
    expected = {
        "l1",
        "l2",
        "fpgm",
        "bn_scale",
        "random",
        "lamp",
        "apoz",
        "mean_activation",
        "entropy",
        "taylor",
        "accuracy_drop",
    }
    assert expected <= set(CRITERIA.names())
    assert all(CRITERIA.describe(n) for n in expected)


def test_get_criterion_and_typo():
    assert isinstance(prunekit.get_criterion("fpgm"), FPGMCriterion)
    with pytest.raises(UnknownNameError, match="fpgm"):
        prunekit.get_criterion("fpmg")


def test_fpgm_matches_hand_computation():
    net = tiny_net()
    expected = np.array([sum(np.linalg.norm(ROWS[c] - ROWS[j]) for j in range(3)) for c in range(3)])
    got = FPGMCriterion().scores(net, group0(net))
    np.testing.assert_allclose(got, expected, rtol=1e-6)


def test_fpgm_median_channel_scores_lowest():
    net = tiny_net()
    with torch.no_grad():  # channel 2 halfway between 0 and 1 in every member
        for p, dim in ((net[0].weight, 0), (net[0].bias, 0), (net[1].weight, 0), (net[1].bias, 0), (net[3].weight, 1)):
            t = p.movedim(dim, 0)
            t[2] = (t[0] + t[1]) / 2
    assert np.argmin(FPGMCriterion().scores(net, group0(net))) == 2


@pytest.mark.parametrize("reduction", ["sum", "mean", "max"])
def test_bn_scale_is_abs_gamma(reduction):
    net = tiny_net()
    got = BNScaleCriterion(reduction=reduction).scores(net, group0(net))
    np.testing.assert_allclose(got, [0.5, 3.0, 1.0])


def test_bn_scale_without_batchnorm_raises():
    net = nn.Sequential(nn.Conv2d(1, 3, 1), nn.ReLU(), nn.Conv2d(3, 2, 1))
    group = prunekit.DependencyGraph(net, torch.zeros(1, 1, 4, 4)).groups[0]
    with pytest.raises(ConfigError, match="no affine BatchNorm"):
        BNScaleCriterion().scores(net, group)


def test_random_is_seeded():
    net = tiny_net()
    g = group0(net)
    a = RandomCriterion(seed=3).scores(net, g)
    b = RandomCriterion(seed=3).scores(net, g)
    c = RandomCriterion(seed=4).scores(net, g)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, np.random.default_rng(3).random(3))
    assert not np.array_equal(a, c)
    with pytest.raises(ConfigError, match="seed"):
        RandomCriterion(seed="x")  # type: ignore[arg-type]


def test_lamp_scores_formula():
    e = np.array([4.0, 1.0, 2.0, 3.0])
    # ascending 1,2,3,4: 1/10, 2/9, 3/7, 4/4
    np.testing.assert_allclose(lamp_scores(e), [1.0, 0.1, 2 / 9, 3 / 7])
    np.testing.assert_allclose(lamp_scores(np.array([2.0, 2.0])), [0.5, 0.5])


@pytest.mark.parametrize("reduction", ["sum", "mean", "max"])
def test_lamp_on_group(reduction):
    net = tiny_net()
    sq = ROWS**2
    # per member (conv0 out: weight+bias, BN: gamma+beta, conv3 in) energies
    members = np.stack([sq[:, 0] + sq[:, 1], sq[:, 2] + sq[:, 3], sq[:, 4] + sq[:, 5]], axis=1)
    energy = {"sum": members.sum(1), "mean": members.mean(1), "max": members.max(1)}[reduction]
    got = LAMPCriterion(reduction=reduction).scores(net, group0(net))
    np.testing.assert_allclose(got, lamp_scores(energy), rtol=1e-6)
    assert got.max() == pytest.approx(1.0)


@pytest.mark.parametrize("name", ["fpgm", "bn_scale", "random", "lamp"])
def test_weight_criteria_prune_equivalently(name):
    net = tiny_net()
    before = params_of(net)
    net.train()
    crit = prunekit.get_criterion(name)
    crit.scores(net, group0(net))
    assert_unchanged(net, before)
    import copy

    original = copy.deepcopy(net)
    x = torch.randn(2, 1, 5, 5)
    report = prunekit.prune_(net, x, sparsity=0.5, criterion=crit)
    assert report.channels_removed >= 1
    assert prunekit.check_equivalence(original, net, x, report).ok


def test_lamp_global_scope():
    import copy

    net = nn.Sequential(
        nn.Conv2d(1, 6, 3), nn.BatchNorm2d(6), nn.ReLU(), nn.Conv2d(6, 8, 3), nn.BatchNorm2d(8), nn.ReLU(),
        nn.Conv2d(8, 2, 1),
    ).eval()  # fmt: skip
    original = copy.deepcopy(net)
    x = torch.randn(2, 1, 8, 8)
    report = prunekit.prune_(net, x, sparsity=0.5, criterion="lamp", scope="global")
    assert report.channels_removed > 0
    assert prunekit.check_equivalence(original, net, x, report).ok
