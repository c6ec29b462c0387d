"""The penalties and their gradients against the formulas, on small hand-made groups."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn as nn

import prunekit
from prunekit.criteria.base import member_views
from prunekit.errors import ConfigError, UnknownNameError
from prunekit.regularizers import (
    REGULARIZERS,
    GroupLasso,
    GrowingRegularizer,
    Slimming,
    channel_sq_norms,
    get_regularizer,
    greg_strength,
    group_slices,
)
from tests.zoo import ZOO, ResidualNet, build


def conv_bn_conv() -> nn.Sequential:
    """conv(2->3, bias) -> BN(3) -> ReLU -> conv(3->2): one prunable group of 3 channels."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(2, 3, 3, padding=1), nn.BatchNorm2d(3), nn.ReLU(), nn.Conv2d(3, 2, 1))
    with torch.no_grad():
        net[1].weight.copy_(torch.tensor([0.5, -1.0, 2.0]))
        net[1].bias.copy_(torch.tensor([0.1, 0.2, -0.3]))
    return net


def setup(reg, net):
    graph = prunekit.DependencyGraph(net, torch.randn(1, 2, 5, 5))
    reg.setup(net, graph)
    return graph


def channel_vectors(net: nn.Sequential) -> list[torch.Tensor]:
    """W_c by hand: every weight channel c owns in conv0 (filter, bias), BN (scale, shift), conv3 (column)."""
    return [
        torch.cat(
            [
                net[0].weight[c].reshape(-1),
                net[0].bias[c : c + 1],
                net[1].weight[c : c + 1],
                net[1].bias[c : c + 1],
                net[3].weight[:, c].reshape(-1),
            ]
        )  # fmt: skip
        for c in range(3)
    ]


def test_group_lasso_penalty_and_gradient_match_the_formula():
    net, lam, eps = conv_bn_conv(), 0.3, 1e-8
    reg = GroupLasso(strength=lam, eps=eps)
    setup(reg, net)
    p = reg.penalty(net)
    expected = lam * sum(torch.sqrt(v.pow(2).sum() + eps) for v in channel_vectors(net))
    torch.testing.assert_close(p, expected)
    p.backward()
    norms = [torch.sqrt(v.pow(2).sum() + eps).detach() for v in channel_vectors(net)]
    # d/dw = lam * w / ||W_c|| on every slice of channel c
    for c in range(3):
        torch.testing.assert_close(net[0].weight.grad[c], lam * net[0].weight[c].detach() / norms[c])
        torch.testing.assert_close(net[1].weight.grad[c], lam * net[1].weight[c].detach() / norms[c])
        torch.testing.assert_close(net[3].weight.grad[:, c], lam * net[3].weight[:, c].detach() / norms[c])
    norms_np = reg.channel_norms(net)
    np.testing.assert_allclose(next(iter(norms_np.values())), [float(n) for n in norms], rtol=1e-5)


def test_slimming_penalty_and_gradient_match_the_formula():
    net, lam = conv_bn_conv(), 0.01
    reg = Slimming(strength=lam)
    setup(reg, net)
    p = reg.penalty(net)
    torch.testing.assert_close(p, torch.tensor(lam * (0.5 + 1.0 + 2.0)))
    p.backward()
    torch.testing.assert_close(net[1].weight.grad, lam * torch.tensor([1.0, -1.0, 1.0]))
    assert net[0].weight.grad is None and net[1].bias.grad is None  # only the BN scales
    assert reg.below(net, 0.6) == pytest.approx(1 / 3)


def test_greg_coefficient_grows_then_stays_at_the_ceiling():
    values = [greg_strength(t, delta=0.1, interval=5, ceiling=0.25) for t in (0, 4, 5, 12, 15, 1000)]
    assert values == pytest.approx([0.0, 0.0, 0.1, 0.2, 0.25, 0.25])


def test_greg_penalises_only_the_selected_channels_with_the_grown_coefficient():
    net = conv_bn_conv()
    reg = GrowingRegularizer(strength=1.0, sparsity=0.4, delta=0.1, interval=2)  # 3 channels: 1 goes
    setup(reg, net)
    vecs = channel_vectors(net)
    l1 = [float(v.detach().abs().sum()) for v in vecs]  # the l1 criterion scores the whole group
    (chosen,) = reg.selected.values()
    assert chosen.tolist() == [int(np.argmin(l1))]
    c = int(chosen[0])
    assert float(reg.penalty(net, step=1)) == 0.0
    p = reg.penalty(net, step=7)  # lambda = 0.3
    torch.testing.assert_close(p, 0.5 * 0.3 * vecs[c].pow(2).sum())
    p.backward()
    torch.testing.assert_close(net[0].weight.grad[c], 0.3 * net[0].weight[c].detach())
    others = [k for k in range(3) if k != c]
    assert float(net[0].weight.grad[others].abs().sum()) == 0.0


def test_greg_state_restores_the_selection():
    net = conv_bn_conv()
    reg = GrowingRegularizer(sparsity=0.4)
    setup(reg, net)
    state = reg.state_dict()
    with torch.no_grad():
        net[0].weight.mul_(-3)[0].zero_()  # scores change; a resumed run must not re-select
    again = GrowingRegularizer(sparsity=0.4)
    again.load_state_dict(state)
    setup(again, net)
    assert {k: v.tolist() for k, v in again.selected.items()} == {k: v.tolist() for k, v in reg.selected.items()}


@pytest.mark.parametrize("name,make", ZOO, ids=[n for n, _ in ZOO])
def test_slices_are_the_criteria_views_with_gradients(name, make):
    """For every member of every zoo net (grouped, depthwise, transposed, flatten, concat...), the
    differentiable slice equals the detached view the criteria score."""
    net = make()
    graph = prunekit.DependencyGraph(net, net.example_inputs())
    params = dict(net.named_parameters())
    for group in graph.groups:
        slices = group_slices(net, group).slices
        for member in group.members:
            views = member_views(net, member)
            mine = [s for s in slices if s.module == member.module and s.role == member.role]
            if member.role == "param":
                mine = [s for s in mine if s.param == member.key.tensor]
            got = [params[s.param].reshape(-1)[s.index] for s in mine]
            assert len(got) == len([v for v in views if v.numel()]), (name, str(member))
            for g, v in zip(got, [v for v in views if v.numel()]):
                torch.testing.assert_close(g.detach(), v)


def test_channel_sq_norms_sum_every_member_of_a_residual_group():
    net = build(ResidualNet)
    graph = prunekit.DependencyGraph(net, net.example_inputs())
    g = next(g for g in graph.groups if "add" in g.couplings)
    norms = channel_sq_norms(dict(net.named_parameters()), group_slices(net, g))
    by_hand = torch.zeros(g.size)
    for m in g.members:
        for v in member_views(net, m):
            by_hand.index_add_(0, torch.as_tensor(m.channels), v.pow(2).sum(1))
    torch.testing.assert_close(norms, by_hand)


def test_registry_names_and_errors():
    assert {"group_lasso", "slimming", "greg"} <= set(REGULARIZERS.names())
    with pytest.raises(UnknownNameError, match="did you mean 'group_lasso'"):
        get_regularizer("group_laso")
    with pytest.raises(ConfigError, match="already registered"):
        REGULARIZERS.add("group_lasso", GroupLasso)
    with pytest.raises(ConfigError, match="strength: must be a number >= 0, but got -1"):
        GroupLasso(strength=-1)
    with pytest.raises(ConfigError, match="sparsity: must be a number in"):
        GrowingRegularizer(sparsity=1.5)
    with pytest.raises(ConfigError, match="call setup"):
        GroupLasso().penalty(conv_bn_conv())


def test_slimming_refuses_a_model_without_batchnorm():
    net = nn.Sequential(nn.Conv2d(2, 3, 3), nn.ReLU(), nn.Conv2d(3, 2, 1))
    with pytest.raises(ConfigError, match="no affine BatchNorm"):
        setup(Slimming(), net)
