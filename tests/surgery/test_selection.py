"""Channel selection: balanced cells, locks, and members that must keep a channel."""

from __future__ import annotations

import copy

import numpy as np
import torch
import torch.nn as nn

import prunekit
from prunekit.channels import MemberKey
from prunekit.graph.groups import Group, Member
from prunekit.surgery.selection import select_channels


def _group(size: int, cells: list[list[int]], members: list[list[int]]) -> Group:
    g = Group(id=0, size=size, locked=np.zeros(size, bool), roots=np.arange(size))
    g.cells = [np.asarray(c) for c in cells]
    for i, chans in enumerate(members):
        ch = np.asarray(chans)
        g.members.append(Member(f"m{i}", "out", [], np.arange(len(ch)), ch, MemberKey(f"m{i}", "out")))
    return g


def test_equal_cells_lose_their_lowest_scoring_channels_alike() -> None:
    rng = np.random.default_rng(0)
    for _ in range(200):
        width, n_cells = int(rng.integers(2, 9)), int(rng.integers(1, 10))
        size = width * n_cells
        cells = np.split(rng.permutation(size), n_cells)
        g = _group(size, [sorted(c) for c in cells], [list(range(size))])
        scores = rng.normal(size=size)
        removed = set(select_channels(g, scores, int(rng.integers(0, size))).tolist())
        per_cell = [len(removed & set(c.tolist())) for c in cells]
        assert len(set(per_cell)) == 1 and per_cell[0] < width
        for c in cells:  # within a cell, every removed channel scores below every kept one
            gone = [scores[i] for i in c if i in removed]
            kept = [scores[i] for i in c if i not in removed]
            assert not gone or max(gone) <= min(kept)


def test_a_cell_never_takes_the_last_channels_of_a_member() -> None:
    # channels 6 and 7 are a concatenated layer's only outputs, and score lowest in their cell
    g = _group(8, [[0, 1, 2, 3], [4, 5, 6, 7]], [list(range(8)), [6, 7]])
    scores = np.array([1.0, 2, 3, 4, 5, 6, 0, 0])
    removed = select_channels(g, scores, 4)
    assert len(set(removed.tolist()) & {6, 7}) < 2
    assert len(set(removed.tolist()) & {0, 1, 2, 3}) == len(set(removed.tolist()) & {4, 5, 6, 7})


class _CatInChunks(nn.Module):
    """A 2-channel branch concatenated after a 6-channel one, then the 8 channels chunked in two:
    the branch sits inside one balanced cell (the case Hypothesis found in test_properties)."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Conv2d(1, 6, 3, padding=1)
        self.b = nn.Conv2d(6, 2, 3, padding=1)
        self.c = nn.Conv2d(4, 4, 1)
        self.d = nn.Conv2d(4, 4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.a(x).relu()
        y = torch.cat([a, self.b(a).relu()], dim=1)
        p, q = y.chunk(2, dim=1)
        return self.c(p) + self.d(q)


def test_pruning_a_branch_inside_a_cell_keeps_it_alive_and_equivalent() -> None:
    torch.manual_seed(0)
    model = _CatInChunks().eval()
    with torch.no_grad():
        model.b.weight.mul_(1e-3)  # the branch's channels score lowest
    x = torch.randn(2, 1, 8, 8)
    original = copy.deepcopy(model)
    report = prunekit.prune_(model, x, sparsity=0.5)
    assert model.b.out_channels >= 1
    assert prunekit.check_equivalence(original, model, x, report).ok
