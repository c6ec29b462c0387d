"""apoz, mean_activation, entropy, taylor and accuracy_drop against references; real-data pruning."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import prunekit
from prunekit.criteria import (
    AccuracyDropCriterion,
    APoZCriterion,
    EntropyCriterion,
    MeanActivationCriterion,
    TaylorCriterion,
)
from prunekit.errors import ConfigError

from .nets import assert_unchanged, fashion_batches, group0, params_of, small_cnn, tiny_net

DATA_CRITERIA = [APoZCriterion, MeanActivationCriterion, EntropyCriterion, TaylorCriterion, AccuracyDropCriterion]


def tiny_batches(n: int = 3, *, targets: bool = False) -> list:
    g = torch.Generator().manual_seed(5)
    xs = [torch.randn(4, 1, 3, 3, generator=g) for _ in range(n)]
    if not targets:
        return xs
    return [(x, torch.randn(4, 2, 3, 3, generator=g)) for x in xs]


def bn_output(net: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """BN(conv(x)) by hand: running mean 0, var 1."""
    w = net[0].weight.detach().view(1, 3, 1, 1)
    b = net[0].bias.detach().view(1, 3, 1, 1)
    gamma = net[1].weight.detach().view(1, 3, 1, 1)
    beta = net[1].bias.detach().view(1, 3, 1, 1)
    return (w * x + b) * gamma / np.sqrt(1 + net[1].eps) + beta


def mse(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return F.mse_loss(out, y)


def test_apoz_reference():
    net, data = tiny_net(), tiny_batches()
    acts = torch.cat([bn_output(net, x) for x in data])
    expected = 1 - (acts <= 0).double().mean(dim=(0, 2, 3))
    got = APoZCriterion(data=data).scores(net, group0(net))
    np.testing.assert_allclose(got, expected.numpy())


def test_mean_activation_reference():
    net, data = tiny_net(), tiny_batches()
    acts = torch.cat([bn_output(net, x) for x in data])
    expected = acts.clamp(min=0).double().mean(dim=(0, 2, 3))
    got = MeanActivationCriterion(data=data).scores(net, group0(net))
    np.testing.assert_allclose(got, expected.numpy(), rtol=1e-5)


def test_entropy_reference():
    net, data = tiny_net(), tiny_batches(4)
    pooled = torch.cat([bn_output(net, x) for x in data]).mean(dim=(2, 3)).double().numpy()
    expected = []
    for c in range(3):
        counts, _ = np.histogram(pooled[:, c], bins=8, range=(pooled[:, c].min(), pooled[:, c].max()))
        p = counts[counts > 0] / counts.sum()
        expected.append(-(p * np.log(p)).sum())
    got = EntropyCriterion(data=data, bins=8).scores(net, group0(net))
    np.testing.assert_allclose(got, expected, rtol=1e-5)


def test_taylor_activation_reference():
    net, data = tiny_net(), tiny_batches(targets=True)
    ref = copy.deepcopy(net)
    expected = torch.zeros(3, dtype=torch.float64)
    for x, y in data:
        a = ref[1](ref[0](x))
        a.retain_grad()
        mse(ref[3](torch.relu(a)), y).backward()
        expected += (a.detach() * a.grad).double().sum(dim=(0, 2, 3)).pow(2)
    got = TaylorCriterion(data=data, loss_fn=mse).scores(net, group0(net))
    np.testing.assert_allclose(got, expected.numpy(), rtol=1e-4)


@pytest.mark.parametrize("reduction", ["sum", "mean", "max"])
def test_taylor_weight_reference(reduction):
    net, data = tiny_net(), tiny_batches(targets=True)
    ref = copy.deepcopy(net)
    acc = {n: torch.zeros_like(p, dtype=torch.float64) for n, p in ref.named_parameters()}
    for x, y in data:
        ref.zero_grad()
        mse(ref(x), y).backward()
        for n, p in ref.named_parameters():
            acc[n] += (p.detach() * p.grad).double().pow(2)
    members = torch.stack(
        [
            acc["0.weight"].view(3) + acc["0.bias"],
            acc["1.weight"] + acc["1.bias"],
            acc["3.weight"].view(2, 3).sum(0),
        ],
        dim=1,
    )
    expected = {"sum": members.sum(1), "mean": members.mean(1), "max": members.max(1).values}[reduction]
    got = TaylorCriterion(data=data, variant="weight", loss_fn=mse, reduction=reduction).scores(net, group0(net))
    np.testing.assert_allclose(got, expected.numpy(), rtol=1e-4)


@pytest.mark.parametrize("metric", ["loss", "accuracy"])
def test_accuracy_drop_reference(metric):
    net = tiny_net()
    g = torch.Generator().manual_seed(2)
    data = [(torch.randn(8, 1, 3, 3, generator=g), torch.randint(0, 2, (8, 3, 3), generator=g)) for _ in range(2)]

    @torch.no_grad()
    def measure(zero: int | None) -> float:
        vals = []
        for x, y in data:
            a = torch.relu(bn_output(net, x))
            if zero is not None:
                a[:, zero] = 0
            out = net[3](a)
            vals.append(
                float(F.cross_entropy(out, y)) if metric == "loss" else float((out.argmax(1) == y).float().mean())
            )
        return float(np.mean(vals))

    base = measure(None)
    expected = [measure(c) - base if metric == "loss" else base - measure(c) for c in range(3)]
    got = AccuracyDropCriterion(data=data, metric=metric).scores(net, group0(net))
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("cls", DATA_CRITERIA)
def test_missing_data_raises(cls):
    with pytest.raises(ConfigError, match="needs calibration data") as info:
        cls(data=None)
    assert info.value.module == "data"
    assert cls.needs_data


@pytest.mark.parametrize("cls", [TaylorCriterion, AccuracyDropCriterion])
def test_targets_required(cls):
    net = tiny_net()
    with pytest.raises(ConfigError, match="targets"):
        cls(data=tiny_batches()).scores(net, group0(net))


def test_bad_options_raise():
    with pytest.raises(ConfigError, match="num_batches"):
        APoZCriterion(data=[], num_batches=0)
    with pytest.raises(ConfigError, match="variant"):
        TaylorCriterion(data=[], variant="hessian")
    with pytest.raises(ConfigError, match="metric"):
        AccuracyDropCriterion(data=[], metric="f1")


def test_one_pass_per_model_and_cache_invalidation():
    net = small_cnn()
    data = fashion_batches(3, 16)
    calls = []
    net.register_forward_pre_hook(lambda m, a: calls.append(1))
    crit = MeanActivationCriterion(data=data, num_batches=2)
    groups = [g for g in prunekit.DependencyGraph(net, data[0][0]).groups if g.prunable]
    assert len(groups) >= 2
    for g in groups:
        crit.scores(net, g)
    assert len(calls) == 2  # one pass over num_batches batches for all groups
    other = small_cnn()
    crit.scores(other, groups[0])
    assert len(calls) == 2 and crit._cache_key[0] == id(other)


@pytest.mark.parametrize("cls", DATA_CRITERIA)
def test_scoring_leaves_model_untouched(cls):
    net = small_cnn().train()
    net[0].weight.requires_grad_(False)
    marker = torch.full_like(net[3].weight, 7.0)
    net[3].weight.grad = marker.clone()
    before = params_of(net)
    data = fashion_batches(2, 16)
    crit = cls(data=data)
    for g in prunekit.DependencyGraph(net, data[0][0]).groups:
        if g.prunable:
            assert np.isfinite(crit.scores(net, g)).all()
    assert_unchanged(net, before)
    assert net.training and all(m.training for m in net.modules())
    assert not net[0].weight.requires_grad and net[3].weight.requires_grad
    assert torch.equal(net[3].weight.grad, marker) and net[4].weight.grad is None
    assert not any(m._forward_hooks for m in net.modules())


@pytest.mark.parametrize("cls", DATA_CRITERIA)
def test_prune_with_data_criterion_is_equivalent(cls):
    net = small_cnn()
    data = fashion_batches(2, 16)
    original = copy.deepcopy(net)
    x = data[0][0][:4]
    report = prunekit.prune_(net, x, sparsity=0.5, criterion=cls(data=data))
    assert report.channels_removed > 0
    assert prunekit.check_equivalence(original, net, x, report).ok


def test_apoz_ranks_dead_channel_last():
    net = small_cnn()
    with torch.no_grad():  # channel 3 of the first BN always outputs -1 -> all zeros after ReLU
        net[1].weight[3] = 0.0
        net[1].bias[3] = -1.0
    data = fashion_batches(1, 16)
    g = next(g for g in prunekit.DependencyGraph(net, data[0][0]).groups if "1" in g.modules())
    scores = APoZCriterion(data=data).scores(net, g)
    assert scores[3] == 0.0 and np.argmin(scores) == 3


@pytest.mark.parametrize("cls", [APoZCriterion, MeanActivationCriterion, TaylorCriterion])
def test_reduction_over_several_producers(cls):
    import zoo

    net = dict(zoo.ZOO)["ResidualNet"]()
    (x,) = net.example_inputs()
    data = [(x, torch.zeros(1))]
    group = next(
        g
        for g in prunekit.DependencyGraph(net, x).groups
        if sum(m.role == "out" and isinstance(net.get_submodule(m.module), nn.BatchNorm2d) for m in g.members) >= 2
    )
    opts = {"loss_fn": lambda out, y: out.pow(2).mean()} if cls is TaylorCriterion else {}
    s, m, mx = (cls(data=data, reduction=r, **opts).scores(net, group) for r in ("sum", "mean", "max"))
    n_bn = sum(m_.role == "out" and isinstance(net.get_submodule(m_.module), nn.BatchNorm2d) for m_ in group.members)
    np.testing.assert_allclose(s, m * n_bn, rtol=1e-9)
    assert (mx <= s + 1e-12).all() and (mx >= m - 1e-12).all()


def test_cache_refreshed_after_pruning():
    net = small_cnn()
    data = fashion_batches(1, 16)
    crit = MeanActivationCriterion(data=data)
    report = prunekit.prune_(net, data[0][0][:2], sparsity=0.5, criterion=crit)
    assert report.channels_removed > 0
    groups = [g for g in prunekit.DependencyGraph(net, data[0][0][:2]).groups if g.prunable]
    assert [len(crit.scores(net, g)) for g in groups] == [g.size for g in groups]


@pytest.mark.parametrize("cls", DATA_CRITERIA)
def test_inplace_relu_gives_same_scores(cls):
    """Hooks read the producer's output before an in-place ReLU overwrites it."""

    def make(inplace: bool) -> nn.Sequential:
        torch.manual_seed(0)
        return nn.Sequential(
            nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(inplace=inplace), nn.Conv2d(4, 5, 3),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        ).eval()  # fmt: skip

    g = torch.Generator().manual_seed(3)
    data = [(torch.randn(8, 1, 8, 8, generator=g), torch.randint(0, 5, (8,), generator=g))]
    got = []
    for inplace in (False, True):
        net = make(inplace)
        group = prunekit.DependencyGraph(net, data[0][0]).groups[0]
        got.append(cls(data=data).scores(net, group))
    np.testing.assert_allclose(got[0], got[1], rtol=1e-6)
