"""Latency-aware global allocation: remove channels where they buy the most latency per unit of
importance.

Each candidate group loses channels in chunks of ``round_to`` (its lowest-scoring channels
first). A chunk's *importance* is the sum of its channels' mean-normalised scores (the same
normalisation as global scope, ``s_c / mean_g |s|``) times ``L_g``, the number of timed layers the
group's channels live in (as inputs or outputs); its *latency gain* is how much the predicted
latency of those layers falls when their widths shrink by the chunk
(:class:`~prunekit.latency.LatencyTable` estimates at the layers' current widths, so removing
channels from both sides of a layer is counted once, at the widths it has then). A *move* takes
a group's next one or more chunks (:func:`best_move`); the move with the least importance per
second gained goes first, greedily, until the predicted latency reaches the requested fraction:
the resource-constrained knapsack that HALP solves (Shen et al., "Structural Pruning via
Latency-Saliency Knapsack", NeurIPS 2022), with measured per-layer tables as in NetAdapt (Yang et
al., ECCV 2018) and a latency budget in the spirit of AMC (He et al., ECCV 2018).

Note:
    Deviations from HALP, each found on ResNet-20 / Fashion-MNIST at ``target_latency=0.5``
    (``benchmarks/latency_accuracy.py``):

    * ``L_g``: HALP sums a coupled group's Taylor scores over all its layers, so a residual
      stream's channel weighs as much as the layers it lives in; mean normalisation removes that
      scale while the gain still sums over those layers, and without ``L_g`` the residual streams
      (7 or 8 timed layers each, an inner conv's outputs 2) went first, stage 2's to 8 of 32
      channels.
    * Moves of several chunks: measured curves have plateaus (on the torch CPU backend a 7x7 conv
      with 64 inputs costs the same at 56 outputs as at 64, and more by noise) and the next chunk
      alone never showed a gain there: stage 3's inner convs were never cut while everything
      else was.
    * A chunk's importance is also multiplied by ``(size / kept) ** p`` (the group's width over
      what it keeps after the chunk; ``p`` is the ``latency_balance`` option, default 1: the
      marginal loss of a layer whose value grows as ``log(kept)``), so a layer the table says is
      cheap to shrink is not emptied first; ``p = 0`` is HALP's ratio.

    * A removable branch (``remove_branches``, :mod:`prunekit.graph.branches`) may also go whole:
      one move takes all its remaining channels, weighed by their plain normalised importance
      (times ``L_g``, without the balance factor: the block keeps its identity path) against the
      time of all its layers, which cost 0 afterwards (their stand-ins compute nothing). Without
      it, on ResNet-56 at batch 1, channel cuts alone left 38% of the eager latency (per-layer
      overhead) untouched.

    The greedy order does not depend on the requested fraction, so :func:`latency_steps` is run
    once and any fraction is a prefix of it (the search bisects on that prefix, measuring the
    real model). A conv's or linear's batch norm and activation are timed with it (the table's
    unit, :func:`~prunekit.latency.layer_specs`); pooling, additions and the rest are not in the
    prediction, nor is a removed branch's last norm, which still runs on its constant; the search
    measures them anyway.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from prunekit.graph.groups import Group
from prunekit.surgery.selection import removal_count

__all__ = [
    "LayerCost",
    "Touch",
    "AllocationStep",
    "touches",
    "latency_steps",
    "best_move",
    "counts_at",
    "counts_of",
    "prefix_length",
    "predicted_latency",
    "LOOKAHEAD",
]

LOOKAHEAD = 8  # chunks one move may take: bridges a plateau of 8 * round_to channels
LayerCost = Callable[[str, int, int], float]  # (layer, in width, out width) -> seconds


@dataclass(frozen=True)
class Touch:
    """A group's channels in one timed layer: each channel is ``per_channel`` of its inputs
    (``role == "in"``) or outputs (``"out"``); more than 1 after a flatten."""

    layer: str
    role: str
    per_channel: int


@dataclass(frozen=True)
class AllocationStep:
    """One move: its group, how many channels it removes (one or more chunks), and the predicted
    total after it."""

    group: int
    channels: int
    predicted: float


def touches(groups: list[Group], layers: Mapping[str, tuple[int, int]]) -> dict[int, list[Touch]]:
    """For each group, the timed layers (``layers``: name -> full (in, out) widths) whose input
    or output channels it holds."""
    out: dict[int, list[Touch]] = {}
    for g in groups:
        seen = []
        for m in g.members:
            if m.module in layers and m.role in ("in", "out"):
                per = max(1, int(round(len(m.positions) / max(g.size, 1))))
                seen.append(Touch(m.module, m.role, per))
        out[g.id] = seen
    return out


class _State:
    """Current widths of the timed layers and the predicted latency of each."""

    def __init__(self, layers: Mapping[str, tuple[int, int]], cost: LayerCost) -> None:
        self._cost = cost
        self._known: dict[tuple[str, int, int], float] = {}  # a move's look-ahead asks again
        self.width = {n: list(w) for n, w in layers.items()}
        self.time = {n: self.cost(n, w[0], w[1]) for n, w in layers.items()}

    def cost(self, name: str, cin: int, cout: int) -> float:
        if cin <= 0 or cout <= 0:  # a removed branch's layer: its stand-in computes nothing
            return 0.0
        key = (name, cin, cout)
        if key not in self._known:
            self._known[key] = self._cost(name, cin, cout)
        return self._known[key]

    def gain(self, moves: list[Touch], n: int) -> float:
        """Predicted seconds saved by removing ``n`` channels through ``moves``."""
        new = {name: list(w) for name, w in ((t.layer, self.width[t.layer]) for t in moves)}
        for t in moves:
            new[t.layer][0 if t.role == "in" else 1] -= n * t.per_channel
        return sum(self.time[k] - self.cost(k, w[0], w[1]) for k, w in new.items())

    def apply(self, moves: list[Touch], n: int) -> None:
        for t in moves:
            self.width[t.layer][0 if t.role == "in" else 1] -= n * t.per_channel
        for name in {t.layer for t in moves}:
            w = self.width[name]
            self.time[name] = self.cost(name, w[0], w[1])

    @property
    def total(self) -> float:
        return float(sum(self.time.values()))


def _chunks(
    group: Group, scores: np.ndarray, step: int, max_sparsity: float, balance: float, layers: float = 1
) -> tuple[list[float], list[float]]:
    """The importance of each chunk ``group`` can lose, in order (lowest scores first), and the
    plain importance of every channel in that order. A chunk's importance: the sum of its
    channels' normalised scores times ``(size / kept) ** balance`` after it, times ``layers``,
    the number of timed layers the group's channels live in (see the module docstring); a
    channel's plain importance: its normalised score times ``layers``."""
    norm = np.asarray(scores, dtype=np.float64) / (np.abs(scores).mean() + 1e-12)
    free = np.nonzero(~group.locked)[0]
    order = free[np.argsort(norm[free], kind="stable")]
    cap = min(removal_count(group.size, max_sparsity, round_to=step), len(order))
    importance = [
        float(norm[order[i : i + step]].sum()) * (group.size / max(group.size - i - step, 1)) ** balance * layers
        for i in range(0, cap - cap % step, step)
    ]
    return importance, (norm[order] * layers).tolist()


def latency_steps(
    groups: list[Group],
    scores: Mapping[int, np.ndarray],
    layers: Mapping[str, tuple[int, int]],
    cost: LayerCost,
    *,
    step: int = 1,
    max_group_sparsity: float = 0.9,
    balance: float = 1.0,
    lookahead: int = LOOKAHEAD,
    whole: Callable[[int], bool] | None = None,
    removable: frozenset[int] | set[int] = frozenset(),
    weights: Mapping[int, float] | None = None,
) -> tuple[float, list[AllocationStep]]:
    """The greedy order of moves, each one or more chunks of one group (see the module docstring).

    Args:
        groups: the candidate groups; scores: their channel scores by group id.
        layers: the timed layers, name -> full (in, out) widths.
        cost: the latency of a layer at given widths (a table's ``estimate``); a layer left
            with no input or output channel is replaced by a stand-in and costs 0.
        step: the chunk size (``round_to``), so every width stays a multiple of it.
        max_group_sparsity: the most any group loses (a removable branch may lose all).
        balance: the exponent of the ``size / kept`` factor (the ``latency_balance`` option).
        lookahead: the most chunks one move removes from a group (see :func:`best_move`).
        removable: the groups that may lose all their channels (removable branches);
        whole: asked before a move empties one of them (True: it may), so that a caller can
            keep the set of removed branches one whose data path holds.
        weights: a factor on each group's importance (by group id, default 1): the allocation
            search's other candidates (:mod:`prunekit.engine.allocation_search`).

    Returns:
        The predicted latency of the full widths and the steps in order.
    """
    state = _State(layers, cost)
    full = state.total
    queue = _Moves(state, touches(groups, layers), step, lookahead)
    for g in groups:
        factor = len(queue.moves[g.id]) * (1.0 if weights is None else float(weights.get(g.id, 1.0)))
        imp, per_channel = _chunks(g, scores[g.id], step, max_group_sparsity, balance, factor)
        queue.add(g, imp, per_channel if g.id in removable and len(per_channel) == g.size else None)
    return full, queue.run(whole)


class _Moves:
    """The greedy queue of :func:`latency_steps`: each group's best next move, cheapest first
    (a heap with versions: a group's entry is stale once its layers' widths changed)."""

    def __init__(self, state: _State, moves: dict[int, list[Touch]], step: int, lookahead: int) -> None:
        self.state, self.moves, self.step, self.lookahead = state, moves, step, lookahead
        self.chunks: dict[int, list[float]] = {}
        self.plain: dict[int, list[float]] = {}  # per channel, for a removable branch's whole move
        self.size: dict[int, int] = {}
        self.taken: dict[int, int] = {}  # chunks taken; a whole move takes the group's rest
        self.version: dict[int, int] = {}
        self.users: dict[str, set[int]] = {}
        self.heap: list[tuple[float, int, int, int]] = []  # (ratio, group, version, chunks; 0: the rest)

    def add(self, group: Group, chunks: list[float], plain: list[float] | None) -> None:
        if not (chunks or plain) or not self.moves[group.id]:
            return
        gid = group.id
        self.chunks[gid], self.size[gid], self.taken[gid], self.version[gid] = chunks, group.size, 0, 0
        if plain is not None:
            self.plain[gid] = plain
        for t in self.moves[gid]:
            self.users.setdefault(t.layer, set()).add(gid)

    def push(self, gid: int) -> None:
        self.version[gid] += 1
        left = self.chunks[gid][self.taken[gid] :]
        gain = self.state.gain
        ratio, n = (
            best_move(left, lambda j: gain(self.moves[gid], j * self.step), self.lookahead) if left else (np.inf, 1)
        )
        done = self.taken[gid] * self.step
        if gid in self.plain and done < self.size[gid]:
            # the whole rest at once: every remaining channel at its plain importance (no balance
            # factor: the block keeps its identity path), against the time of its layers
            g = gain(self.moves[gid], self.size[gid] - done)
            whole = sum(self.plain[gid][done:]) / g if g > 1e-12 else np.inf
            if whole < ratio or not left:
                ratio, n = whole, 0
        if left or n == 0:
            # a move that gains nothing by the table (a plateau, noise) still goes, last: the
            # table is an estimate, and the search measures what the cut really does
            heapq.heappush(self.heap, (ratio, gid, self.version[gid], n))

    def run(self, whole: Callable[[int], bool] | None) -> list[AllocationStep]:
        for gid in self.chunks:
            self.push(gid)
        steps: list[AllocationStep] = []
        while self.heap:
            _, gid, ver, n = heapq.heappop(self.heap)
            if ver != self.version[gid]:
                continue  # stale: its gain changed since it was pushed
            if n == 0 and whole is not None and not whole(gid):
                del self.plain[gid]  # may not go whole (the data path): only chunks from now on
                self.push(gid)
                continue
            k = self.size[gid] - self.taken[gid] * self.step if n == 0 else n * self.step
            self.state.apply(self.moves[gid], k)
            self.taken[gid] = len(self.chunks[gid]) if n == 0 else self.taken[gid] + n
            if n == 0:
                del self.plain[gid]
            steps.append(AllocationStep(gid, k, self.state.total))
            for other in {o for t in self.moves[gid] for o in self.users[t.layer]}:
                self.push(other)
        return steps


def best_move(importance: list[float], gain: Callable[[int], float], lookahead: int) -> tuple[float, int]:
    """The cheapest next move of one group: ``min over j <= lookahead`` of
    ``sum(importance[:j]) / gain(j)``, the importance lost per second gained by removing its next
    ``j`` chunks together; returns that ratio and ``j`` (``inf`` and 1 when no ``j`` gains).

    A measured latency curve has plateaus (a kernel that works on blocks of 16 output channels
    costs as much at 56 as at 64) and timing noise, so one chunk can gain nothing, or seem to
    lose, where two gain a lot; judging the next chunk alone would never cut such a group.
    Taking the steepest of the next ``j`` segments follows the next edge of the curve's lower
    convex hull, the greedy rule of the multiple-choice knapsack's relaxation (Sinha and
    Zoltners, "The Multiple-Choice Knapsack Problem", Operations Research 1979).
    """
    best, best_j, total = float("inf"), 1, 0.0
    for j in range(1, min(lookahead, len(importance)) + 1):
        total += importance[j - 1]
        g = gain(j)
        if g > 1e-12 and total / g < best:
            best, best_j = total / g, j
    return best, best_j


def prefix_length(steps: list[AllocationStep], full: float, fraction: float) -> int:
    """The length of the shortest prefix of ``steps`` whose predicted latency is at most
    ``fraction * full`` (all of them if none is)."""
    for i, s in enumerate(steps):
        if s.predicted <= fraction * full:
            return i + 1
    return len(steps)


def counts_of(steps: list[AllocationStep]) -> dict[int, int]:
    """Channels each group loses in ``steps``."""
    counts: dict[int, int] = {}
    for s in steps:
        counts[s.group] = counts.get(s.group, 0) + s.channels
    return counts


def counts_at(steps: list[AllocationStep], full: float, fraction: float) -> dict[int, int]:
    """Channels each group loses in the shortest prefix of ``steps`` whose predicted latency is
    at most ``fraction * full`` (all of them if none is)."""
    return counts_of(steps[: prefix_length(steps, full, fraction)])


def predicted_latency(
    moves: Mapping[int, list[Touch]], layers: Mapping[str, tuple[int, int]], cost: LayerCost, counts: Mapping[int, int]
) -> float:
    """The predicted latency of the timed ``layers`` once each group has lost ``counts[id]``
    channels (``moves``: :func:`touches` of the groups; a layer left with no input or output
    channel costs 0, as in :func:`latency_steps`)."""
    state = _State(layers, cost)
    for gid, n in counts.items():
        if n:
            state.apply(moves[gid], n)
    return state.total
