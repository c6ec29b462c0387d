"""Group lasso shrinks a residual group's members together, which a per-layer penalty cannot."""

from __future__ import annotations

import torch

import prunekit
from prunekit.criteria.base import member_views
from prunekit.regularizers import GroupLasso
from tests.zoo import ResidualNet, build


def member_norms(net, group, c):
    out = {}
    for m in group.members:
        rows = [v[torch.as_tensor(m.channels) == c] for v in member_views(net, m)]
        out[str(m)] = float(torch.sqrt(sum(r.pow(2).sum() for r in rows)))
    return out


def test_a_residual_group_shrinks_together():
    """Plain SGD on the penalty alone: each step scales every slice of channel c by the same
    factor (1 - lr * lambda / ||W_c||), so all members of the residual group -- conv2, bn2, the
    downsample conv and BN, and the head's input slices -- shrink by one ratio and reach ~0 together."""
    net = build(ResidualNet)
    graph = prunekit.DependencyGraph(net, net.example_inputs())
    group = next(g for g in graph.groups if "add" in g.couplings)
    assert {m.module for m in group.members} >= {"layer1.0.conv2", "layer1.0.bn2", "layer1.0.downsample.0", "head"}
    reg = GroupLasso(strength=1.0)
    reg.setup(net, graph)
    everything = reg.groups
    # a weight of conv2 also holds a channel of the conv1 group (its input): penalise this group
    # alone so each slice's change comes from this group's term only
    reg.groups = [g for g in reg.groups if g.group_id == group.id]
    before = member_norms(net, group, 0)
    opt = torch.optim.SGD(net.parameters(), lr=0.02)
    for _ in range(10):
        opt.zero_grad()
        reg.penalty(net).backward()
        opt.step()
    after = member_norms(net, group, 0)
    ratios = [after[k] / before[k] for k in before if before[k] > 0]
    assert max(ratios) < 0.999
    torch.testing.assert_close(torch.tensor(ratios), torch.full((len(ratios),), ratios[0]), rtol=1e-4, atol=1e-6)
    reg.groups = everything
    for _ in range(400):
        opt.zero_grad()
        reg.penalty(net).backward()
        opt.step()
    assert reg.below(net, 0.05) == 1.0  # every prunable channel of every group is ~0
