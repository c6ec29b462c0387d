"""Choosing which channels of a group to remove, honouring locks and balanced cells."""

from __future__ import annotations

import math

import numpy as np

from prunekit.graph.groups import Group

__all__ = ["removal_count", "select_channels"]


def removal_count(size: int, sparsity: float, *, round_to: int = 1, allow_empty: bool = False) -> int:
    """How many of ``size`` channels to remove at ``sparsity``.

    ``floor(sparsity * size)`` channels, so that the kept count is a multiple of ``round_to``
    (rounded up) and at least ``max(1, round_to)`` channels are kept (capped at ``size``);
    with ``allow_empty`` (a removable branch), ``sparsity`` 1 removes them all.
    """
    n = int(math.floor(sparsity * size + 1e-6))
    if allow_empty and n >= size:
        return size
    keep = size - n
    if round_to > 1:
        keep = min(size, int(math.ceil(keep / round_to)) * round_to)
    keep = max(keep, min(size, max(1, round_to)))
    return size - keep


def select_channels(group: Group, scores: np.ndarray, n_remove: int, *, allow_empty: bool = False) -> np.ndarray:
    """The ``n_remove`` lowest-scoring unlocked channels of ``group`` (sorted indices).

    With ``allow_empty`` (a removable branch, :mod:`prunekit.graph.branches`) and ``n_remove``
    at least the group's size, every channel goes.

    With balanced cells the same fraction of every cell goes: ``k * |cell| / gcd(cell sizes)``
    channels per cell for the largest ``k`` that fits ``n_remove`` and leaves every member a
    channel; the rest of the budget comes from unconstrained channels. No member (a layer's
    outputs after a cat, say) ever loses all its channels.
    """
    if allow_empty and n_remove >= group.size and not group.locked.any():
        return np.arange(group.size, dtype=np.int64)
    scores = np.asarray(scores, dtype=np.float64)
    unlocked = ~group.locked
    if n_remove <= 0 or not unlocked.any():
        return np.zeros(0, dtype=np.int64)
    guard = _MemberGuard(group)
    free = np.ones(group.size, bool)
    budget = n_remove
    if group.cells:
        sizes = [len(c) for c in group.cells]
        unit = math.gcd(*sizes)
        constrained = sum(sizes)
        k = int(math.floor(n_remove * unit / group.size + 1e-9))
        # a grouped conv's cells are all one size: one (cells, size) array, no loop over cells
        stacked = np.stack(group.cells) if len(set(sizes)) == 1 else None
        if stacked is not None:
            free[stacked] = False
            size = sizes[0]
            k = min(k, (size - 1) * unit // size, int(unlocked[stacked].sum(axis=1).min()) * unit // size)
        else:
            for c in group.cells:
                free[c] = False
                k = min(k, (len(c) - 1) * unit // len(c), int(unlocked[c].sum()) * unit // len(c))
        guard, k = _remove_from_cells(group, group.cells, stacked, scores, unlocked, max(k, 0), unit)
        budget = n_remove - k * constrained // unit
    cand = np.nonzero(free & unlocked)[0]
    if budget > 0 and cand.size:
        guard.take(cand[np.argsort(scores[cand], kind="stable")], budget)
    return np.sort(guard.all_taken())


def _remove_from_cells(
    group: Group,
    cells: list[np.ndarray],
    stacked: np.ndarray | None,
    scores: np.ndarray,
    unlocked: np.ndarray,
    k: int,
    unit: int,
) -> tuple[_MemberGuard, int]:
    """Takes ``k * |cell| / unit`` lowest-scoring unlocked channels of every cell of
    ``group``, for the largest ``k`` (at most the given one) at which no member runs out;
    returns the guard holding what was taken, and that ``k``. ``stacked``: the cells as one
    (cells, size) array when they are all one size, else ``None``."""
    constrained = sum(len(c) for c in cells)
    all_unlocked = bool(unlocked.all())
    while k > 0:
        guard = _MemberGuard(group)
        total = k * constrained // unit
        if stacked is not None and all_unlocked and guard.cannot_run_out(total):
            # a grouped conv's cells: one argsort over the (cells, size) array
            order: np.ndarray = np.argsort(scores[stacked], axis=1, kind="stable")
            lowest = order[:, : k * len(cells[0]) // unit]
            guard.take_all(np.take_along_axis(stacked, lowest, axis=1).reshape(-1))
            return guard, k
        complete = True
        for c in cells:
            r = k * len(c) // unit
            cand = c[unlocked[c]]
            if len(guard.take(cand[np.argsort(scores[cand], kind="stable")], r)) < r:
                complete = False  # this cell cannot give r without emptying a member: fewer
                break
        if complete:
            return guard, k
        k -= 1
    return _MemberGuard(group), 0


class _MemberGuard:
    """Channels taken so far from a group, and how many each member still holds, so that no
    member loses all of its channels. The per-member counts are only built once a member could
    run out (until then every member holds more channels than have been taken in all)."""

    def __init__(self, group: Group) -> None:
        self.group = group
        self.held = [m.n_distinct for m in group.members] or [group.size]
        self.taken: list[np.ndarray] = []
        self.count = 0
        self.left: list[int] | None = None
        self.holders: dict[int, list[int]] = {}

    def cannot_run_out(self, more: int) -> bool:
        """True when taking ``more`` channels (any) cannot empty a member."""
        return self.left is None and self.count + more < min(self.held)

    def take_all(self, channels: np.ndarray) -> None:
        """Records ``channels`` as taken (the caller checked :meth:`cannot_run_out`, or the
        counts were already updated)."""
        self.taken.append(np.asarray(channels, dtype=np.int64))
        self.count += len(channels)

    def take(self, order: np.ndarray, budget: int) -> np.ndarray:
        """Takes channels in ``order`` up to ``budget``, skipping any whose removal would
        leave a member with no channel; returns those taken."""
        if self.cannot_run_out(budget):
            out = np.asarray(order[:budget], dtype=np.int64)
            self.take_all(out)
            return out
        left, holders = self._counts()
        taken: list[int] = []
        for c in order.tolist():
            if len(taken) >= budget:
                break
            if any(left[i] <= 1 for i in holders.get(c, ())):
                continue
            taken.append(c)
            for i in holders.get(c, ()):
                left[i] -= 1
        out = np.asarray(taken, dtype=np.int64)
        self.take_all(out)
        return out

    def all_taken(self) -> np.ndarray:
        return np.concatenate(self.taken) if self.taken else np.zeros(0, dtype=np.int64)

    def _counts(self) -> tuple[list[int], dict[int, list[int]]]:
        if self.left is None:
            members = self.group.members
            if members:
                for i, m in enumerate(members):
                    for c in m.distinct_channels.tolist():
                        self.holders.setdefault(c, []).append(i)
            else:
                self.holders = {c: [0] for c in range(self.group.size)}
            self.left = list(self.held)
            for c in self.all_taken().tolist():
                for i in self.holders.get(c, ()):
                    self.left[i] -= 1
        return self.left, self.holders
