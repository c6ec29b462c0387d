"""Choosing among allocations with data: a short fine-tune (NetAdapt) and re-estimated batch-norm
statistics (EagleEye) score candidate cuts of one budget.

The latency allocation (:mod:`prunekit.engine.latency_allocation`) ranks a group's channels by a
criterion normalised within the group, which says how a layer's channels compare with each
other but not which layers matter more than others. On ResNet-20 (Fashion-MNIST, torch at
batch 32, ``target_latency`` about 0.46) its greedy order passed through uniform L1's own widths
and its cuts came out within noise of uniform L1 after fine-tuning, at best
(``benchmarks/results/latency_accuracy_units_greedy.md``).

With ``allocation_candidates=N`` and ``allocation_data``, a prune also builds ``N`` other
allocations of the same cost and keeps the one the data says is best:

* the **uniform** cut: every group loses the same fraction of its channels (rounded to
  ``round_to``), so the kept allocation never scores below the uniform one;
* ``N - 1`` **perturbed greedy** orders: each group's importance times a random factor,
  log-uniform in ``[1 / SPREAD, SPREAD]`` (seeded with :data:`SEED`, so a prune is
  reproducible), which moves the cut between layers while it stays latency-aware.

Each is placed at the cost of the greedy cut the search found: under ``target_latency`` the
uniform cut where it meets the budget as measured (like the greedy one), the perturbed ones at
the greedy cut's predicted latency; under a MAC or parameter target, at the counted budget.
Each is cut on a copy and scored by :func:`adaptive_bn_score`: ``allocation_steps`` SGD steps on
the first half of the batches (NetAdapt's short-term fine-tune, Yang et al., ECCV 2018, cut
short), its batch norms' running statistics estimated again on that half, and its mean
cross-entropy on the second half is the score (ties: top-1).

Right after a cut a network's batch-norm statistics are the full network's, so every candidate
is near chance and scores say nothing; re-estimated, the candidates' accuracies rank them much
as their accuracies after fine-tuning do (Li et al., "EagleEye: Fast Sub-net Evaluation for
Efficient Neural Network Pruning", ECCV 2020, on ResNet-50 / ImageNet and MobileNetV1, at
moderate cuts). At a cut to a quarter of the MACs, with the statistics alone ResNet-20's
candidates scored 25-65% top-1 and their losses ranked five cuts with a rank correlation of 0.90
to their top-1 after three fine-tuning epochs; after 16 steps of training first, 1.00 on two
draws of the batches (``benchmarks/results/allocation_proxy.md``). A perturbed candidate that wins under
``target_latency`` is then searched again on measured latency along its family.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from prunekit.engine.budget import bisect_budget
from prunekit.engine.latency_allocation import (
    AllocationStep,
    LayerCost,
    counts_at,
    latency_steps,
    predicted_latency,
    touches,
)
from prunekit.errors import ConfigError
from prunekit.graph.branches import JointCut
from prunekit.graph.dependency import DependencyGraph
from prunekit.graph.groups import Group
from prunekit.surgery.plan import PrunePlan, make_plan
from prunekit.surgery.selection import removal_count, select_channels

__all__ = [
    "Allocator",
    "Family",
    "Score",
    "SEED",
    "SPREAD",
    "PLACE_STEPS",
    "uniform_family",
    "random_weights",
    "place",
    "take_batches",
    "adaptive_bn_score",
    "best",
    "choose",
]

SEED = 0  # the perturbed candidates' random factors: the same prune gives the same candidates
SPREAD = 2.0  # a group's importance is scaled by a factor in [1 / SPREAD, SPREAD]
PLACE_STEPS = 16  # halvings when placing a family at a cost: 2**-16 of its range


@dataclass(frozen=True)
class Family:
    """A one-parameter family of allocations: ``counts(amount)`` is how many channels each
    group loses (by group id), growing with ``amount`` in ``[0, high]``."""

    name: str
    counts: Callable[[float], dict[int, int]]
    high: float


@dataclass(frozen=True)
class Score:
    """A candidate's top-1 and mean cross-entropy on the scoring batches; higher ``key`` is
    better: the lower loss (ties: the higher top-1). On a few batches the loss ranks cuts more
    finely than top-1, which moves in steps of one image and flattens after a short fine-tune:
    five ResNet-20 cuts of 17-25% of the MACs, whose top-1 after three fine-tuning epochs ranged
    85.2-87.6%, were ranked exactly by their loss after 16 steps on two draws of the batches,
    and with a rank correlation of 0.90 by their top-1 on one of them
    (``benchmarks/results/allocation_proxy.md``)."""

    top1: float
    loss: float

    @property
    def key(self) -> tuple[float, float]:
        return (-self.loss, self.top1)


def uniform_family(groups: list[Group], step: int, max_group_sparsity: float) -> Family:
    """Every group loses the same fraction ``amount`` of its channels, its kept count a multiple
    of ``step`` (:func:`~prunekit.surgery.selection.removal_count`), never more than
    ``max_group_sparsity`` of them nor any locked channel."""
    caps = {g.id: min(removal_count(g.size, max_group_sparsity, round_to=step), int((~g.locked).sum())) for g in groups}

    def counts(amount: float) -> dict[int, int]:
        out = {g.id: min(removal_count(g.size, amount, round_to=step), caps[g.id]) for g in groups}
        return {gid: n for gid, n in out.items() if n > 0}

    return Family("uniform", counts, max_group_sparsity)


def random_weights(groups: list[Group], count: int, *, seed: int = SEED) -> list[dict[int, float]]:
    """``count`` maps of group id -> a factor ``SPREAD ** u``, ``u`` uniform in [-1, 1]."""
    rng = np.random.default_rng(seed)
    return [{g.id: float(SPREAD ** rng.uniform(-1.0, 1.0)) for g in groups} for _ in range(count)]


def place(family: Family, fits: Callable[[dict[int, int]], bool], steps: int = PLACE_STEPS) -> float:
    """The least ``amount`` of ``family`` whose counts ``fit`` (a budget that removing more
    channels only helps to meet), by :func:`~prunekit.engine.budget.bisect_budget`; 0 when
    nothing need go, ``family.high`` when none fits."""
    if fits(family.counts(0.0)):
        return 0.0
    return bisect_budget(lambda a: 0.0 if fits(family.counts(a)) else 1.0, family.high, 0.0, steps)[0]


def take_batches(data: Iterable[Any] | None, count: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The first ``count`` batches of ``data`` as ``(input, target)`` pairs (at least two: one
    to re-estimate batch-norm statistics, one to score)."""
    if data is None:
        raise ConfigError(
            "allocation_candidates needs labelled batches to score the candidates: pass "
            "allocation_data=[(inputs, targets), ...] (a DataLoader works), or set allocation_candidates=0",
            module="allocation_data",
        )
    try:
        batches: list[tuple[torch.Tensor, torch.Tensor]] = []
        for batch in data:
            if len(batches) == count:
                break
            if not (isinstance(batch, (tuple, list)) and len(batch) >= 2 and isinstance(batch[0], torch.Tensor)):
                raise ConfigError(
                    f"allocation_data: batch {len(batches)} is not an (inputs, targets) pair of tensors "
                    f"(got {type(batch).__name__}); the candidates are scored by their top-1 on labelled batches",
                    module="allocation_data",
                )
            batches.append((batch[0], batch[1]))
    except TypeError as e:
        raise ConfigError(
            f"allocation_data must be an iterable of (inputs, targets) batches: {e}", module="allocation_data"
        ) from e
    if len(batches) < 2:
        raise ConfigError(
            f"allocation_data gave {len(batches)} batch(es); give at least 2 (half re-estimate the batch-norm "
            "statistics, half score the candidates)",
            module="allocation_data",
        )
    return batches


def adaptive_bn_score(
    model: nn.Module, batches: list[tuple[torch.Tensor, torch.Tensor]], *, steps: int = 0, lr: float = 0.01
) -> Score:
    """``model``'s :class:`Score` after re-estimating its batch norms' running statistics.

    On a copy: with ``steps``, first that many SGD steps (momentum 0.9, learning rate ``lr``,
    cross-entropy) on the first ``len(batches) // 2`` batches in turn, the model in training
    mode (NetAdapt's short-term fine-tune, Yang et al., ECCV 2018, cut short: it ranks cuts by
    how fast they recover, which the statistics alone may not). Then every batch norm's
    statistics are reset and accumulated again as a plain average (``momentum=None``) over those
    batches, with the batch norms in training mode and every other layer (dropout) in eval
    mode; then the copy, in eval mode, scores its top-1 and mean cross-entropy on the other
    batches (EagleEye's adaptive batch-norm evaluation; see the module docstring). A model
    without batch norms is scored as it is. ``model`` itself is not changed.

    Raises:
        ConfigError: the model's output on a batch is not ``[batch, classes]`` logits for class
            index targets (``allocation_data``).
    """
    trial = copy.deepcopy(model)
    device = next((p.device for p in trial.parameters()), torch.device("cpu"))
    half = len(batches) // 2
    if steps:
        _short_finetune(trial, batches[:half], steps, lr, device)
    trial.eval()
    norms = [m for m in trial.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    for bn in norms:
        if bn.track_running_stats:
            bn.reset_running_stats()
            bn.momentum = None
            bn.train()
    with torch.no_grad():
        if any(bn.training for bn in norms):
            for i, (x, _) in enumerate(batches[:half]):
                _forward(trial, x.to(device), i)
        trial.eval()
        correct, total, loss = 0, 0, 0.0
        for i, (x, y) in enumerate(batches[half:]):
            out, y = _logits(trial, x.to(device), y.to(device), half + i)
            correct += int((out.argmax(1) == y).sum())
            total += int(y.numel())
            loss += float(F.cross_entropy(out.float(), y.long(), reduction="sum"))
    return Score(correct / max(total, 1), loss / max(total, 1) if total else math.inf)


def _short_finetune(
    model: nn.Module, batches: list[tuple[torch.Tensor, torch.Tensor]], steps: int, lr: float, device: torch.device
) -> None:
    """``steps`` SGD steps on ``batches`` in turn (see :func:`adaptive_bn_score`)."""
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        return
    optimizer = torch.optim.SGD(params, lr=lr, momentum=0.9)
    model.train()
    with torch.enable_grad():
        for step in range(steps):
            i = step % len(batches)
            x, y = batches[i]
            out, y = _logits(model, x.to(device), y.to(device), i)
            optimizer.zero_grad(set_to_none=True)
            F.cross_entropy(out.float(), y.long()).backward()
            optimizer.step()


def _logits(model: nn.Module, x: torch.Tensor, y: torch.Tensor, index: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``model(x)`` checked to be ``[batch, classes]`` logits for the class indices ``y``."""
    out = _forward(model, x, index)
    if not (isinstance(out, torch.Tensor) and out.dim() == 2 and y.shape == out.shape[:1]):
        raise ConfigError(
            f"allocation_data: batch {index} gave "
            f"{tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__} outputs for "
            f"targets of shape {tuple(y.shape)}; the candidates are scored by top-1, which needs "
            "[batch, classes] logits and class-index targets",
            module="allocation_data",
        )
    return out, y


def _forward(model: nn.Module, x: torch.Tensor, index: int) -> Any:
    """``model(x)``; a failure is a ConfigError naming the batch of ``allocation_data``."""
    try:
        return model(x)
    except Exception as e:
        raise ConfigError(
            f"allocation_data: the pruned candidate failed on batch {index} (inputs of shape {tuple(x.shape)}): "
            f"{type(e).__name__}: {e}; give batches of the inputs the model takes",
            module="allocation_data",
        ) from e


def best(scores: Mapping[str, Score], first: str) -> str:
    """The name with the best score; ``first`` on ties (the greedy allocation is not replaced
    by one that only equals it)."""
    name = first
    for other, s in scores.items():
        if s.key > scores[name].key:
            name = other
    return name


class Allocator:
    """The latency allocation of one prune: its greedy families, their plans and the table's
    prediction (see :mod:`prunekit.engine.latency_allocation`).

    Args:
        graph: the model's graph; groups: the candidate groups; scores: their channel scores.
        layers: the timed layers, name -> full (in, out) widths; cost: a layer's predicted time.
        step: the chunk size (``round_to``); max_group_sparsity, balance: as the options.
        cuts: the removable branches (group id -> consumers), empty without ``remove_branches``.
    """

    def __init__(
        self,
        graph: DependencyGraph,
        groups: list[Group],
        scores: Mapping[int, np.ndarray],
        layers: Mapping[str, tuple[int, int]],
        cost: LayerCost,
        *,
        step: int,
        max_group_sparsity: float,
        balance: float,
        cuts: dict[int, set[str]],
    ) -> None:
        self.graph, self.groups, self.scores, self.layers, self.cost = graph, groups, scores, layers, cost
        self.step, self.max_group_sparsity, self.balance, self.cuts = step, max_group_sparsity, balance, cuts
        self.by_id = {g.id: g for g in groups}
        self.moves = touches(groups, layers)  # the layers each group's channels live in

    def steps(self, weights: Mapping[int, float] | None = None) -> tuple[float, list[AllocationStep]]:
        """The greedy order (:func:`~prunekit.engine.latency_allocation.latency_steps`), with
        each group's importance times ``weights[id]``, and the predicted full latency."""
        return latency_steps(
            self.groups,
            self.scores,
            self.layers,
            self.cost,
            step=self.step,
            max_group_sparsity=self.max_group_sparsity,
            balance=self.balance,
            removable=set(self.cuts),
            whole=JointCut(self.graph, self.cuts).add,  # a fresh set of removed branches per order
            weights=weights,
        )

    def family(
        self, name: str = "greedy", weights: Mapping[int, float] | None = None
    ) -> tuple[Family, list[AllocationStep]]:
        """The greedy order as a :class:`Family` (``amount``: the predicted fraction of latency
        removed) and its steps."""
        full, steps = self.steps(weights)
        lowest = steps[-1].predicted / full if steps and full > 0 else 1.0
        return Family(name, lambda amount: counts_at(steps, full, 1.0 - amount), 1.0 - lowest), steps

    def predict(self, counts: Mapping[int, int]) -> float:
        """The table's latency of the timed layers after ``counts``."""
        return predicted_latency(self.moves, self.layers, self.cost, counts)

    def plan_of(self, counts: Mapping[int, int]) -> PrunePlan:
        """The plan that removes ``counts[id]`` lowest-scoring channels of each group (all of a
        removable branch's when it reaches its size)."""
        emptied = {gid for gid, n in counts.items() if n >= self.by_id[gid].size}
        removed = {
            gid: select_channels(self.by_id[gid], self.scores[gid], n, allow_empty=gid in emptied)
            for gid, n in counts.items()
            if n > 0
        }
        return make_plan(self.graph, removed, emptied=emptied)


def choose(
    allocator: Allocator,
    chosen: dict[int, int],
    fits: Callable[[dict[int, int]], bool],
    trial: Callable[[PrunePlan], nn.Module],
    batches: list[tuple[torch.Tensor, torch.Tensor]],
    candidates: int,
    measured: Callable[[Family], float] | None = None,
    *,
    steps: int = 0,
    lr: float = 0.01,
) -> tuple[Family | None, dict[int, int], dict[str, Any]]:
    """The best of the greedy cut ``chosen`` and ``candidates`` others of the same cost (see the
    module docstring): its family (``None``: the greedy one), its counts, and what was scored
    (``report.config["allocation_search"]``; each candidate's ``placed``: ``"fits"`` or
    ``"measured"``). ``trial(plan)`` is a pruned copy of the model.

    The perturbed candidates are placed where their counts ``fit`` (the greedy cut's predicted
    latency, or the MAC / parameter budget). With ``measured`` (a measured budget), the uniform
    candidate is placed at ``measured(family)`` instead, the amount at which it meets the budget
    as timed, like the greedy cut: the table's prediction is not to be trusted across different
    shapes of cut (on ResNet-20 it predicted uniform L1's cut slower than a greedy cut with 16%
    fewer MACs, which timed 4-5% faster), and the uniform cut is the floor the others must
    beat. ``steps`` and ``lr``: the short fine-tune of :func:`adaptive_bn_score`."""
    families = [uniform_family(allocator.groups, allocator.step, allocator.max_group_sparsity)]
    for i, w in enumerate(random_weights(allocator.groups, candidates - 1)):
        families.append(allocator.family(f"perturbed {i + 1}", w)[0])
    placed: dict[str, tuple[Family | None, dict[int, int]]] = {"greedy": (None, chosen)}
    how = {"greedy": "measured" if measured is not None else "fits"}
    for f in families:
        if measured is not None and f.name == "uniform":
            placed[f.name], how[f.name] = (f, f.counts(measured(f))), "measured"
        else:
            placed[f.name], how[f.name] = (f, f.counts(place(f, fits))), "fits"
    scores, info = {}, {}
    for name, (_, counts) in placed.items():
        scores[name] = adaptive_bn_score(trial(allocator.plan_of(counts)), batches, steps=steps, lr=lr)
        info[name] = {
            "top1": scores[name].top1,
            "loss": scores[name].loss,
            "predicted_ms": allocator.predict(counts) * 1e3,
            "channels_removed": int(sum(counts.values())),
            "placed": how[name],
        }
    kept = best(scores, "greedy")
    family, counts = placed[kept]
    return family, counts, {"kept": kept, "batches": len(batches), "steps": steps, "candidates": info}
