"""Latency as a budget: ``round_to="auto"``, the ``target_latency`` search, and the measured
before / after figures of a prune.

A :class:`LatencySession` holds the :class:`~prunekit.latency.Meter` (``latency_backend``,
``latency_batch``, ``latency_threads``) and, when needed, the per-layer
:class:`~prunekit.latency.LatencyTable` (cached on disk). :meth:`LatencySession.search` finds the
least pruning whose MEASURED latency is at most ``target_latency`` times the original's (or,
with ``latency_allocation``, whose MACs or parameters meet ``target_macs`` / ``target_params``):

* latency allocation (global scope): candidates are prefixes of the latency-aware greedy order of
  :func:`~prunekit.engine.latency_allocation.latency_steps` (channels go where they buy the most
  latency per unit of importance), indexed by the predicted fraction removed;
* otherwise: candidates are uniform (local) or score-ranked (global) sparsities, as
  ``target_macs`` does.

Each candidate is cut on a copy and timed; bisection (``SEARCH_STEPS`` halvings after checking
the largest candidate) keeps the smallest one under budget. Timing is noisy and machines drift,
so every candidate is timed PAIRED with the original: ``BEFORE_ROUNDS`` interleaved rounds
(original, candidate), and the candidate's time is rescaled by ``before / original now`` (the
ratio to the original at the same moment, on the scale of the first reading). A verdict either
way can end the search badly: a slow reading of the most pruned candidate would say the target
is out of reach and keep the most pruning there is (ResNet-20, target 0.5 on a loaded machine,
landed at 0.38), a fast one would pass a barely pruned model. The realised figure is measured
the same way on the pruned model before :func:`prunekit.prune_` returns.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from prunekit.criteria import Criterion
from prunekit.engine.allocation_search import Allocator, Family, choose, take_batches
from prunekit.engine.budget import MAX_SPARSITY, bisect_budget
from prunekit.engine.latency_allocation import AllocationStep, counts_of, prefix_length, touches
from prunekit.engine.options import PruneOptions, round_multiple
from prunekit.engine.planning import candidates, group_sparsity, plan_pruning
from prunekit.errors import PrunekitError, option_error
from prunekit.graph.branches import removable_branches
from prunekit.graph.dependency import DependencyGraph
from prunekit.inputs import as_example_inputs
from prunekit.latency import Alignment, LatencyTable, Meter, best_multiple, layer_specs
from prunekit.metrics import count_params, macs_per_module
from prunekit.modes import training_flags
from prunekit.report import PruneReport, latency_summary
from prunekit.surgery.apply import apply_plan
from prunekit.surgery.plan import PrunePlan

__all__ = ["LatencySession", "closer_plan", "SEARCH_STEPS", "MIN_RUN_TIME", "CLOSER_STEPS"]

log = logging.getLogger(__name__)

SEARCH_STEPS = 7  # halvings after the first candidate: a resolution of 1/128 of the range
MIN_RUN_TIME = 0.5  # seconds of measurement per model
BEFORE_ROUNDS = 3  # timings of the original model, median kept
CHECK_MARGIN = 0.02  # round_to="auto": how much more MACs per ms the cut at 1 must do to be kept
CHECK_ROUNDS = 9  # round_to="auto": interleaved timings of the two cuts, one against the other


CLOSER_STEPS = 32  # later moves tried in place of the one that crossed a MAC or parameter budget


def closer_plan(
    steps: list[AllocationStep],
    full: float,
    amount: float,
    plan: PrunePlan,
    reached: float,
    cost: Callable[[PrunePlan], float],
    budget: float,
    plan_of: Callable[[dict[int, int]], PrunePlan],
    sizes: dict[int, int],
) -> PrunePlan:
    """A plan nearer a MAC or parameter ``budget`` than ``plan`` (the shortest prefix of
    ``steps`` that meets it, at cost ``reached``), or ``plan``.

    The move that crosses the budget may be large (a removed branch takes a whole block's MACs
    at once) and overshoot it. Without that move, the next moves of the greedy order that thin
    a group (not the ones that remove a branch, as large) are added one by one (at most
    :data:`CLOSER_STEPS`) until the budget is met; that plan is kept when its cost is nearer the
    budget (``sizes``: each group's channel count). Skipping a move never removes a branch the order did not
    (the data path of its removed branches holds: it is a subset of the order's)."""
    k = prefix_length(steps, full, 1.0 - amount)
    if k == 0:
        return plan
    counts = counts_of(steps[: k - 1])  # the prefix without the move that crossed the budget
    best, best_cost = plan, reached
    tried = 0
    for s in steps[k:]:
        if tried == CLOSER_STEPS:
            break
        if counts.get(s.group, 0) + s.channels >= sizes[s.group]:
            continue  # a removed branch: as large a step as the one skipped
        counts[s.group] = counts.get(s.group, 0) + s.channels
        tried += 1
        trial = plan_of({g: c for g, c in counts.items() if c > 0})
        c = cost(trial)
        if c <= budget:
            if c > best_cost:
                best, best_cost = trial, c
            break
    return best


class LatencySession:
    """The latency side of one prune (see the module docstring).

    Args:
        model: the model before pruning; inputs: its example inputs.
        options: ``latency_backend``, ``latency_batch`` and ``latency_threads`` are read.
        cache_dir: the table's folder (default :func:`~prunekit.latency.default_cache_dir`).
    """

    def __init__(self, model: nn.Module, inputs: Any, options: PruneOptions, *, cache_dir: Any = None) -> None:
        ex = as_example_inputs(inputs)
        if ex.kwargs or not all(isinstance(a, torch.Tensor) for a in ex.args):
            raise option_error(
                "latency_backend",
                "latency is measured on models that take tensors as positional arguments; give the "
                "example inputs as a tensor or a tuple of tensors, or use target_macs",
            )
        self.model, self.inputs = model, tuple(ex.args)
        self.meter = Meter(
            options.latency_backend,
            batch=options.latency_batch,
            threads=options.latency_threads,
            min_run_time=MIN_RUN_TIME,
        )
        self.cache_dir = cache_dir
        self.alignment: Alignment | None = None
        self.before_s: float | None = None
        self._original_run: Callable[[], Any] | None = None  # prepared by measure_before, for the search
        self.budget_s: float | None = None
        self.trials: list[dict[str, float]] = []
        self._table: LatencyTable | None = None
        self._specs: dict[str, Any] | None = None
        self.allocation_search: dict[str, Any] | None = None  # what _choose scored, for the report

    @property
    def table(self) -> LatencyTable:
        if self._table is None:
            self._table = LatencyTable(self.meter, cache_dir=self.cache_dir)
        return self._table

    @property
    def specs(self) -> dict[str, Any]:
        if self._specs is None:
            self._specs = layer_specs(self.model, self.inputs)
        return self._specs

    def align(self, options: PruneOptions) -> PruneOptions:
        """``options`` with ``round_to="auto"`` replaced by the measured multiple."""
        if options.round_to != "auto":
            return options
        macs = macs_per_module(self.model, self.inputs)[1]
        self.alignment = best_multiple(self.table, self.specs, macs)
        log.info("round_to='auto': multiple %d on %s (%s)", self.alignment.multiple, self.meter.name, self.alignment)
        return options.replace(round_to=self.alignment.multiple)

    def measure_before(self) -> float:
        """The original model's latency: the median of ``BEFORE_ROUNDS`` timings (the budget
        and every ratio hang on it, so one noisy reading must not set them). The run is
        prepared on a copy and kept, to time the original again next to each candidate and
        next to the pruned model (``prune_`` cuts ``model`` itself)."""
        if self.before_s is None:
            self._original_run = self.meter.prepare(copy.deepcopy(self.model), self.inputs)
            self.before_s = float(np.median([self.meter.time(self._original_run) for _ in range(BEFORE_ROUNDS)]))
        return self.before_s

    def _paired(self, run: Callable[[], Any]) -> tuple[float, float, float]:
        """``run``'s time on the scale of the first reading of the original, from
        ``BEFORE_ROUNDS`` interleaved rounds (original, ``run``): ``median(run) * before /
        median(original now)``, so a machine that is busier or quieter than when the original
        was first timed slows or speeds both alike. Returns it, the median of ``run`` and the
        median of the original."""
        before, original_run = self.measure_before(), self._original_run
        if original_run is None:  # finish() let it go: the model may be pruned by now
            raise PrunekitError("this LatencySession has finished; the original can no longer be timed")
        times = self.meter.interleaved({"original": original_run, "run": run}, BEFORE_ROUNDS)
        t, o = float(np.median(times["run"])), float(np.median(times["original"]))
        return t * before / max(o, 1e-12), t, o

    def search(
        self, graph: DependencyGraph, options: PruneOptions, criterion: Criterion, *, before: Any
    ) -> tuple[PrunePlan, float]:
        """The plan that meets ``options``' target, and the fraction of candidate channels it
        removes: MEASURED latency for ``target_latency``, else the MACs or parameters counted
        on the trial (``before``: the :class:`~prunekit.engine.Snapshot` of the model)."""
        if options.target is None or not isinstance(options.round_to, int):
            raise ValueError("search needs a target and an int round_to (call align first)")
        key, value = options.target
        if key == "target_latency":
            budget = self.budget_s = value * self.measure_before()
        else:
            budget = value * (before.macs if key == "target_macs" else before.params)
        batches = None
        if options.allocation_candidates and options.allocates_by_latency:
            batches = take_batches(options.allocation_data, options.allocation_batches)  # checked before timing
        allocator: Allocator | None = None
        if options.allocates_by_latency:
            allocator = self._allocator(graph, options, criterion)
            greedy, steps = allocator.family()
            self.table.save()  # the widths the greedy order timed, for the next prune
            high = greedy.high

            def plan_at(amount: float) -> PrunePlan:
                return allocator.plan_of(greedy.counts(amount))

        else:

            def plan_at(amount: float) -> PrunePlan:
                return plan_pruning(self.model, graph, options, sparsity=amount, criterion=criterion)

            high = MAX_SPARSITY

        def count(plan: PrunePlan) -> float:
            trial = self._pruned_copy(plan)
            return float(macs_per_module(trial, self.inputs)[0] if key == "target_macs" else count_params(trial))

        def search_along(plan_at: Callable[[float], PrunePlan], high: float) -> tuple[float, float]:
            if key != "target_latency":
                return bisect_budget(lambda a: count(plan_at(a)), high, budget, steps=10)
            return self._measured_search(plan_at, high, budget)

        amount, reached = search_along(plan_at, high)
        if reached > budget:
            warnings.warn(
                f"{key}={value} is out of reach: the most pruning allowed (max_group_sparsity "
                f"{options.max_group_sparsity}) leaves {reached / (budget / value):.3f} of the original",
                stacklevel=3,
            )
        plan = plan_at(amount)
        if allocator is not None and key != "target_latency" and reached <= budget:
            sizes = {g.id: g.size for g in allocator.groups}
            plan = closer_plan(
                steps, allocator.predict({}), amount, plan, reached, count, budget, allocator.plan_of, sizes
            )
        if allocator is not None and batches is not None:
            plan = self._choose(allocator, plan, options, batches, count, search_along, budget)
        total = sum(g.size for g in candidates(graph, options))
        return plan, sum(len(v) for v in plan.removed.values()) / max(total, 1)

    def _measured_search(
        self, plan_at: Callable[[float], PrunePlan], high: float, budget: float
    ) -> tuple[float, float]:
        """The least amount in [0, ``high``] whose plan runs within ``budget`` seconds, and its
        time: a bisection on candidates timed paired with the original (:meth:`_paired`), each
        trial recorded for ``report.latency["search"]``."""

        def cost(amount: float) -> float:
            seconds, measured, original_now = self._paired(
                self.meter.prepare(self._pruned_copy(plan_at(amount)), self.inputs)
            )
            self.trials.append(
                {"amount": amount, "ms": measured * 1e3, "original_ms": original_now * 1e3, "paired_ms": seconds * 1e3}
            )
            log.info("target_latency: amount %.4f -> %.3f ms (budget %.3f ms)", amount, seconds * 1e3, budget * 1e3)
            return seconds

        return bisect_budget(cost, high, budget, steps=SEARCH_STEPS)

    def search_aligned(
        self, graph: DependencyGraph, options: PruneOptions, criterion: Criterion, *, before: Any
    ) -> tuple[PrunePlan, float, PruneOptions]:
        """:meth:`search` at the multiple ``round_to="auto"`` measured and, under a MAC or
        parameter target when that multiple is not 1, at 1 too; the options of the cut it keeps
        come back with it.

        The probe times the heaviest layer alone, whose kernels need not be the model's: on
        resnet50 in eager at batch 1, multiples of 16 run a 56x56 layer 31% faster and a 28x28
        one 18% slower, so which multiple runs the whole model faster has to be measured on the
        whole model (an interactive 3x cut read 0.80 of its MAC reduction at 16 against 0.96 at
        1; the benchmark's 9-round checks later found 16 1-8% ahead on the same model, in
        ``benchmarks/results/latency.md``). So both cuts are timed whole, one against the other in
        ``CHECK_ROUNDS`` interleaved rounds, and compared by the work they do per unit of time,
        ``MACs / latency`` (at equal MACs: the faster one): 1 replaces the measured multiple
        when the median round says it does more than ``CHECK_MARGIN`` more. Three rounds, each
        paired with the original instead, were not enough: on resnet50 in eager (3x) they kept
        16 in one run and 1 in the next. The evidence goes to
        ``report.config["round_to_auto"]`` (``checked``: each cut's MACs and median ms;
        ``verdict``: the rounds, the median ratio and the margin).

        Not under ``target_latency``: there the two cuts keep different MACs, and more MACs per
        millisecond is no proxy for what a cut keeps. On ResNet-20 (Fashion-MNIST, eager, batch
        32) the cut at 1 did 25-35% more MACs per ms than the one at 8 by draining stages 1
        and 2 to 2 and 4 channels, and lost 3.7-4.8 points of top-1 against uniform L1 after
        fine-tuning, where the cut at 8 was within a point of it
        (``benchmarks/results/latency_accuracy_check_at_1.md``).
        """
        aligned = self.search(graph, options, criterion, before=before)
        searched = self.allocation_search  # the candidates the aligned cut was chosen from
        if self.alignment is None or self.alignment.multiple == 1 or options.target_latency is not None:
            return (*aligned, options)
        plain_options = options.replace(round_to=1)
        plain = self.search(graph, plain_options, criterion, before=before)
        multiple = self.alignment.multiple
        checked, ratios = self._compare({multiple: aligned[0], 1: plain[0]})
        # each search met its own budget by its own readings; timed again, a cut that landed at
        # the budget reads over it about half the time, so the budget does not decide: the
        # aligned cut stays unless 1 does clearly more work per millisecond, in the median of
        # the rounds (each round times the two cuts back to back, so a machine that slows down
        # between rounds slows both alike)
        gain = float(np.median(ratios))
        best = 1 if gain > 1 + CHECK_MARGIN else multiple
        verdict = {"rounds": float(len(ratios)), "rate_1_over_aligned": gain, "margin": CHECK_MARGIN}
        self.alignment = dataclasses.replace(
            self.alignment, multiple=best, checked={str(m): c for m, c in checked.items()}, verdict=verdict
        )
        log.info("round_to='auto': kept multiple %d after timing both cuts (%s, %s)", best, checked, verdict)
        if best != 1:
            self.allocation_search = searched
        return (*aligned, options) if best != 1 else (*plain, plain_options)

    def _pruned_copy(self, plan: PrunePlan) -> nn.Module:
        """A copy of the model with ``plan`` cut (the model itself is left as it is)."""
        trial = copy.deepcopy(self.model)
        apply_plan(trial, plan)
        return trial

    def _compare(self, plans: dict[int, PrunePlan]) -> tuple[dict[int, dict[str, float]], list[float]]:
        """The two cuts of ``plans`` (multiple -> plan; the aligned one first, then 1) timed
        against each other in ``CHECK_ROUNDS`` interleaved rounds: each cut's MACs and median
        time in ms, and per round the MACs per ms of the cut at 1 over the aligned one's."""
        multiple = next(iter(plans))
        trials = {m: self._pruned_copy(p) for m, p in plans.items()}
        macs = {m: float(macs_per_module(t, self.inputs)[0]) for m, t in trials.items()}
        times = self.meter.interleaved({m: self.meter.prepare(t, self.inputs) for m, t in trials.items()}, CHECK_ROUNDS)
        ratios = [
            (macs[1] / max(t1, 1e-12)) / (macs[multiple] / max(tm, 1e-12))
            for tm, t1 in zip(times[multiple], times[1], strict=True)
        ]
        checked = {m: {"macs": macs[m], "ms": float(np.median(times[m])) * 1e3} for m in plans}
        return checked, ratios

    def _allocator(self, graph: DependencyGraph, options: PruneOptions, criterion: Criterion) -> Allocator:
        """The latency allocation of the candidate groups, on the table of ``latency_backend``."""
        groups = [g for g in candidates(graph, options) if group_sparsity(g, 1.0, options) is not None]
        scores = {g.id: np.asarray(criterion.scores(self.model, g), dtype=np.float64) for g in groups}
        specs = self.specs
        touched = {t.layer for ts in touches(groups, {n: (0, 0) for n in specs}).values() for t in ts}
        table = self.table
        step = table.multiple = round_multiple(options)
        return Allocator(
            graph,
            groups,
            scores,
            {n: (s.in_channels, s.out_channels) for n, s in specs.items() if n in touched},
            lambda n, ci, co: table.estimate(specs[n], ci, co),
            step=step,
            max_group_sparsity=options.max_group_sparsity,
            balance=options.latency_balance,
            cuts=removable_branches(graph, self.model, groups) if options.remove_branches else {},
        )

    def _choose(
        self,
        allocator: Allocator,
        plan: PrunePlan,
        options: PruneOptions,
        batches: list[Any],
        count: Callable[[PrunePlan], float],
        search_along: Callable[[Callable[[float], PrunePlan], float], tuple[float, float]],
        budget: float,
    ) -> PrunePlan:
        """The greedy ``plan`` or the best-scoring candidate of the same cost
        (:func:`~prunekit.engine.allocation_search.choose`). Under ``target_latency`` the uniform
        candidate is placed by a measured search, the perturbed ones at the greedy cut's
        predicted latency, and a perturbed one that wins is searched again on measured latency
        along its family; under a MAC or parameter target every candidate is placed at the
        budget itself (counted)."""
        chosen = {gid: len(v) for gid, v in plan.removed.items() if len(v)}
        latency_target = options.target_latency is not None

        def fit(f: Family) -> tuple[float, float]:  # the measured search along a family
            return search_along(lambda a: allocator.plan_of(f.counts(a)), f.high)

        if latency_target:
            ceiling = allocator.predict(chosen) * (1 + 1e-9)

            def fits(counts: dict[int, int]) -> bool:
                return allocator.predict(counts) <= ceiling

        else:

            def fits(counts: dict[int, int]) -> bool:
                return count(allocator.plan_of(counts)) <= budget

        family, counts, info = choose(
            allocator, chosen, fits, self._pruned_copy, batches, options.allocation_candidates,
            (lambda f: fit(f)[0]) if latency_target else None, steps=options.allocation_steps, lr=options.allocation_lr,
        )  # fmt: skip
        self.allocation_search = info
        if family is None:
            return plan
        if not latency_target or info["candidates"][info["kept"]]["placed"] == "measured":
            return allocator.plan_of(counts)
        amount, reached = fit(family)
        info["refit"] = {"amount": amount, "paired_ms": reached * 1e3, "budget_ms": budget * 1e3}
        return allocator.plan_of(family.counts(amount))

    def finish(self, report: PruneReport, model: nn.Module, *, measure: bool = True) -> None:
        """Records the measured multiple in ``report.config["round_to_auto"]``; with
        ``measure``, times the pruned ``model`` and stores the figures in ``report.latency``."""
        if self.alignment is not None:
            report.config["round_to_auto"] = self.alignment.to_dict()
        if self.allocation_search is not None:
            report.config["allocation_search"] = self.allocation_search
        if not measure:
            self._original_run = None  # let the backend's session go
            return
        report.config.update(
            latency_backend=self.meter.name, latency_batch=self.meter.batch, latency_threads=self.meter.threads
        )
        with training_flags(model):  # every module's own flag back afterwards
            after, after_measured, original_now = self._paired(self.meter.prepare(model, self.inputs))
        self._original_run = None
        extra: dict[str, Any] = {
            "round_to": report.config.get("round_to"),
            "after_measured_ms": after_measured * 1e3,
            "original_again_ms": original_now * 1e3,
        }
        if self.alignment is not None:
            extra["alignment"] = self.alignment.to_dict()
        if self.budget_s is not None:
            extra["budget_ms"] = self.budget_s * 1e3
            extra["search"] = self.trials
        if self._table is not None:
            extra["table"] = self._table.to_dict()
        report.latency = latency_summary(
            self.measure_before(),
            after,
            report.macs_before,
            report.macs_after,
            backend=self.meter.name,
            batch=self.meter.batch,
            threads=self.meter.threads,
            **extra,
        )
