"""Choosing which channels of a group to remove, honouring locks and balanced cells."""

from __future__ import annotations

import math

import numpy as np

from prunekit.graph.groups import Group

__all__ = ["removal_count", "select_channels"]


def removal_count(size: int, sparsity: float, *, round_to: int = 1) -> int:
    """How many of ``size`` channels to remove at ``sparsity``.

    ``floor(sparsity * size)`` channels, so that the kept count is a multiple of ``round_to``
    (rounded up) and at least ``max(1, round_to)`` channels are kept (capped at ``size``).
    """
    n = int(math.floor(sparsity * size + 1e-6))
    keep = size - n
    if round_to > 1:
        keep = min(size, int(math.ceil(keep / round_to)) * round_to)
    keep = max(keep, min(size, max(1, round_to)))
    return size - keep


def select_channels(group: Group, scores: np.ndarray, n_remove: int) -> np.ndarray:
    """The ``n_remove`` lowest-scoring unlocked channels of ``group`` (sorted indices).

    With balanced cells the same fraction of every cell goes: ``k * |cell| / gcd(cell sizes)``
    channels per cell for the largest ``k`` that fits ``n_remove``; the rest of the budget comes
    from unconstrained channels.
    """
    scores = np.asarray(scores, dtype=np.float64)
    unlocked = ~group.locked
    if n_remove <= 0 or not unlocked.any():
        return np.zeros(0, dtype=np.int64)
    removed: list[np.ndarray] = []
    free = np.ones(group.size, bool)
    budget = n_remove
    if group.cells:
        sizes = [len(c) for c in group.cells]
        unit = math.gcd(*sizes)
        constrained = sum(sizes)
        k = int(math.floor(n_remove * unit / group.size + 1e-9))
        if len(set(sizes)) == 1 and bool(unlocked.all()):  # a grouped conv's cells: one argsort
            cells = np.stack(group.cells)
            free[cells.reshape(-1)] = False
            k = max(min(k, (sizes[0] - 1) * unit // sizes[0]), 0)
            lowest = np.argsort(scores[cells], axis=1, kind="stable")[:, : k * sizes[0] // unit]
            removed.append(np.take_along_axis(cells, lowest, axis=1).reshape(-1))
        else:
            for c in group.cells:
                free[c] = False
                k = min(k, (len(c) - 1) * unit // len(c), int(unlocked[c].sum()) * unit // len(c))
            k = max(k, 0)
            for c in group.cells:
                r = k * len(c) // unit
                cand = c[unlocked[c]]
                removed.append(cand[np.argsort(scores[cand], kind="stable")[:r]])
        budget = n_remove - k * constrained // unit
    cand = np.nonzero(free & unlocked)[0]
    if budget > 0 and cand.size:
        removed.append(_greedy_keeping_members(group, cand[np.argsort(scores[cand], kind="stable")], budget))
    out = np.concatenate(removed) if removed else np.zeros(0, dtype=np.int64)
    return np.sort(out.astype(np.int64))


def _greedy_keeping_members(group: Group, order: np.ndarray, budget: int) -> np.ndarray:
    """Takes channels in ``order`` up to ``budget``, skipping any whose removal would leave a
    member (a layer's outputs after a cat, say) with no channel at all."""
    held = [len(m.distinct_channels) for m in group.members] or [group.size]
    if budget < min(held):  # no member can run out: the greedy would skip nothing
        return np.asarray(order[:budget], dtype=np.int64)
    left: list[int] = []
    holders: dict[int, list[int]] = {}
    for i, m in enumerate(group.members):
        chans = m.distinct_channels
        left.append(len(chans))
        for c in chans.tolist():
            holders.setdefault(c, []).append(i)
    if not group.members:
        left, holders = [group.size], {c: [0] for c in range(group.size)}
    taken: list[int] = []
    for c in order.tolist():
        if len(taken) >= budget:
            break
        if any(left[i] <= 1 for i in holders.get(c, ())):
            continue
        taken.append(c)
        for i in holders.get(c, ()):
            left[i] -= 1
    return np.asarray(taken, dtype=np.int64)
