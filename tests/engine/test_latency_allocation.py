"""The latency-aware allocator: greedy order, chunks of round_to, caps, prefixes (no timing)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn as nn

from prunekit.engine.budget import bisect_budget
from prunekit.engine.latency_allocation import best_move, counts_at, latency_steps, touches
from prunekit.graph.dependency import DependencyGraph


class Chain(nn.Module):
    """Three convs in a chain: a group per conv output (conv1 -> conv2 -> conv3 -> head)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 32, 3, padding=1)
        self.conv2 = nn.Conv2d(32, 32, 3, padding=1)
        self.conv3 = nn.Conv2d(32, 32, 3, padding=1)
        self.head = nn.Conv2d(32, 4, 1)

    def forward(self, x):
        return self.head(torch.relu(self.conv3(torch.relu(self.conv2(torch.relu(self.conv1(x)))))))


def setup(weights, model=None):
    torch.manual_seed(0)
    model = model if model is not None else Chain()
    graph = DependencyGraph(model, torch.randn(1, 3, 8, 8))
    groups = [g for g in graph.groups if g.prunable]
    layers = {n: (m.in_channels, m.out_channels) for n, m in model.named_modules() if isinstance(m, nn.Conv2d)}
    scores = {g.id: np.ones(g.size) for g in groups}  # equal importance everywhere

    def cost(name, ci, co):
        return weights[name] * ci * co

    return graph, groups, layers, scores, cost


def owner(graph, gid):
    return next(m.module for m in graph.groups[gid].members if m.role == "out")


def test_touches_name_both_sides():
    graph, groups, layers, _, _ = setup(dict.fromkeys(["conv1", "conv2", "conv3", "head"], 1.0))
    by_owner = {owner(graph, g.id): touches([g], layers)[g.id] for g in groups}
    assert {(t.layer, t.role) for t in by_owner["conv2"]} == {("conv2", "out"), ("conv3", "in")}


def test_channels_go_where_they_buy_most_latency():
    weights = {"conv1": 1.0, "conv2": 1.0, "conv3": 50.0, "head": 1.0}  # conv3 is slow
    graph, groups, layers, scores, cost = setup(weights)
    full, steps = latency_steps(groups, scores, layers, cost, step=8, max_group_sparsity=0.75)
    assert full == pytest.approx(sum(weights[n] * ci * co for n, (ci, co) in layers.items()))
    first = owner(graph, steps[0].group)
    assert first in ("conv2", "conv3")  # both shrink conv3, the expensive layer
    predicted = [s.predicted for s in steps]
    assert all(b <= a + 1e-9 for a, b in zip([full, *predicted], predicted))


def test_chunks_are_multiples_and_capped():
    graph, groups, layers, scores, cost = setup(dict.fromkeys(["conv1", "conv2", "conv3", "head"], 1.0))
    full, steps = latency_steps(groups, scores, layers, cost, step=8, max_group_sparsity=0.5)
    counts = counts_at(steps, full, 0.0)  # everything the greedy order allows
    assert counts and all(n % 8 == 0 and n <= 16 for n in counts.values())


def test_least_important_channels_first():
    graph, groups, layers, scores, cost = setup(dict.fromkeys(["conv1", "conv2", "conv3", "head"], 1.0))
    g2 = next(g for g in groups if owner(graph, g.id) == "conv2")
    scores[g2.id] = np.full(g2.size, 1e-3)  # conv2's outputs barely matter: they go first
    scores[g2.id][0] = 1.0
    _, steps = latency_steps(groups, scores, layers, cost, step=4)
    assert steps[0].group == g2.id


def test_counts_at_takes_the_shortest_prefix():
    graph, groups, layers, scores, cost = setup(dict.fromkeys(["conv1", "conv2", "conv3", "head"], 1.0))
    full, steps = latency_steps(groups, scores, layers, cost, step=4)
    assert counts_at(steps, full, 1.0) == {steps[0].group: 4}
    half = counts_at(steps, full, 0.5)
    prefix = next(i for i, s in enumerate(steps) if s.predicted <= 0.5 * full) + 1
    assert sum(half.values()) == 4 * prefix


def test_bisect_budget_finds_the_least_amount():
    calls = []

    def cost(a):
        calls.append(a)
        return 1.0 - a

    amount, c = bisect_budget(cost, 0.9, 0.5, steps=10)
    assert 0.5 <= amount < 0.501 and c <= 0.5 and len(calls) == 11
    assert bisect_budget(lambda a: 1.0, 0.9, 0.5) == (0.9, 1.0)  # unreachable: the most it can


@pytest.mark.parametrize("balance", [0.0, 1.0])
def test_a_larger_balance_keeps_widths_closer_to_uniform(balance):
    """conv3 is slow per channel: with balance 0 (HALP's ratio) the groups around it lose all
    they may before the others lose anything; a larger balance spreads the same cut."""
    weights = {"conv1": 1.0, "conv2": 1.0, "conv3": 8.0, "head": 1.0}
    graph, groups, layers, scores, cost = setup(weights)
    spread = {}
    for b in (balance, balance + 2.0):
        full, steps = latency_steps(groups, scores, layers, cost, step=4, balance=b)
        counts = counts_at(steps, full, 0.6)
        spread[b] = max(counts.get(g.id, 0) for g in groups) - min(counts.get(g.id, 0) for g in groups)
    assert spread[balance + 2.0] < spread[balance]


def test_best_move_looks_past_a_plateau():
    """One chunk gains nothing (a plateau) or seems to lose (noise); two gain a lot."""
    gains = {1: 0.0, 2: 4.0, 3: 4.5}
    assert best_move([1.0, 1.0, 1.0], gains.__getitem__, 8) == (0.5, 2)
    assert best_move([1.0, 1.0, 1.0], gains.__getitem__, 1) == (float("inf"), 1)  # no look-ahead: stuck
    assert best_move([1.0], {1: -0.1}.__getitem__, 8) == (float("inf"), 1)


def test_a_plateau_is_crossed_in_one_move():
    """conv2's outputs cost the same at any width in (16, 32] (a kernel working on blocks of 16):
    its group's first chunk of 8 gains nothing there, so its move takes two chunks at once."""

    def blocky(name, ci, co):
        return 100.0 * ci * (-(-co // 16) * 16) if name == "conv2" else ci * co

    graph, groups, layers, scores, _ = setup({})
    full, steps = latency_steps(groups, scores, layers, blocky, step=8, max_group_sparsity=0.75)
    g2 = next(g.id for g in groups if owner(graph, g.id) == "conv2")
    first = next(s for s in steps if s.group == g2)
    assert first.channels == 16 and all(s.channels % 8 == 0 for s in steps)
    _, single = latency_steps(groups, scores, layers, blocky, step=8, max_group_sparsity=0.75, lookahead=1)
    assert all(s.channels == 8 for s in single)
    assert steps.index(first) < next(i for i, s in enumerate(single) if s.group == g2)


class Residual(nn.Module):
    """A residual add: stem -> (conv1 -> conv2) + stem -> head. The stream's group lives in four
    layers (stem and conv2 outputs, conv1 and head inputs), conv1's outputs in two."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 32, 3, padding=1)
        self.conv1 = nn.Conv2d(32, 32, 3, padding=1)
        self.conv2 = nn.Conv2d(32, 32, 3, padding=1)
        self.head = nn.Conv2d(32, 4, 1)

    def forward(self, x):
        s = torch.relu(self.stem(x))
        return self.head(torch.relu(s + self.conv2(torch.relu(self.conv1(s)))))


def test_importance_counts_the_layers_a_group_lives_in():
    """Every layer costs the same per channel on either side, and all scores are equal: the
    stream's channels save twice the latency of conv1's, and count twice the importance, so the
    two groups are cut alike instead of the stream going first."""
    _, groups, layers, scores, _ = setup({}, Residual())
    assert sorted(len(t) for t in touches(groups, layers).values()) == [2, 4]
    full, steps = latency_steps(groups, scores, layers, lambda n, ci, co: float(ci + co), step=4)
    counts = counts_at(steps, full, 0.6)
    assert len(counts) == 2 and abs(counts[groups[0].id] - counts[groups[1].id]) <= 4


def _inner(graph, groups):
    return next(g.id for g in groups if owner(graph, g.id) == "conv1")


def test_a_removable_branch_goes_whole_when_its_plain_importance_per_second_is_lowest():
    """conv1 -> conv2 of Residual is a branch: with balance 4 the chunks that thin it grow dear
    as it narrows, while the whole move costs its channels' plain importance: it is taken, once,
    for every channel, and its layers cost 0 afterwards."""
    graph, groups, layers, scores, _ = setup({}, Residual())
    inner = _inner(graph, groups)

    def cost(name, ci, co):
        return 10.0 * ci * co if name in ("conv1", "conv2") else float(ci * co)

    full, steps = latency_steps(groups, scores, layers, cost, step=4, balance=4.0, removable={inner})
    mine = [s for s in steps if s.group == inner]
    assert sum(s.channels for s in mine) == 32 and mine[-1].channels >= 4
    after = next(s.predicted for s in steps if s is mine[-1])
    assert counts_at(steps, full, after / full)[inner] == 32
    # the same order without the option never empties a group
    _, plain = latency_steps(groups, scores, layers, cost, step=4, balance=4.0)
    assert all(sum(s.channels for s in plain if s.group == g.id) < g.size for g in groups)


def test_a_refused_whole_move_leaves_the_group_its_chunks():
    graph, groups, layers, scores, _ = setup({}, Residual())
    inner = _inner(graph, groups)
    asked = []

    def refuse(gid):
        asked.append(gid)
        return False

    full, steps = latency_steps(
        groups, scores, layers, lambda n, ci, co: float(ci * co), step=4, balance=4.0, removable={inner}, whole=refuse
    )
    assert asked == [inner]
    assert sum(s.channels for s in steps if s.group == inner) <= 0.9 * 32


def test_closer_plan_skips_the_move_that_overshoots():
    """The move that crosses a MAC budget removes a branch (16 of 16 channels) and lands far
    under it; without it, the next thinning move meets the budget closer."""
    from prunekit.engine.latency_allocation import AllocationStep
    from prunekit.engine.latency_search import closer_plan

    steps = [
        AllocationStep(0, 4, 0.9),
        AllocationStep(1, 16, 0.5),
        AllocationStep(0, 4, 0.45),
        AllocationStep(2, 4, 0.4),
    ]
    sizes = {0: 16, 1: 16, 2: 16}
    macs = {0: 6.0, 1: 3.0, 2: 0.5}  # per channel removed

    def cost(counts):
        return 100.0 - sum(macs[g] * n for g, n in counts.items())

    amount = 0.5  # the shortest prefix reaching predicted 0.5: the first two steps
    plan = {0: 4, 1: 16}
    got = closer_plan(steps, 1.0, amount, plan, cost(plan), cost, 53.0, dict, sizes)
    assert got == {0: 8}  # the branch kept: 52 <= 53, nearer than the prefix's 28
    assert cost(got) <= 53.0 and cost(got) > cost(plan)
    assert closer_plan(steps, 1.0, amount, plan, cost(plan), cost, 47.0, dict, sizes) == plan  # none fits


def test_moves_the_table_says_gain_nothing_still_come_last():
    """conv2's time does not change with its width (a flat table, or noise): its group's chunks
    still enter the order, after every move that gains, so a deep target can reach them (the
    search measures what they really do)."""

    def flat_conv2(name, ci, co):
        return 1000.0 if name in ("conv2", "conv3") else float(ci * co)

    graph, groups, layers, scores, _ = setup({})
    full, steps = latency_steps(groups, scores, layers, flat_conv2, step=8, max_group_sparsity=0.75)
    g2 = next(g.id for g in groups if owner(graph, g.id) == "conv2")
    mine = [i for i, s in enumerate(steps) if s.group == g2]
    assert sum(steps[i].channels for i in mine) == 24  # all it may lose
    gaining = [i for i, s in enumerate(steps) if s.predicted < (steps[i - 1].predicted if i else full) - 1e-9]
    assert min(mine) > max(gaining)
