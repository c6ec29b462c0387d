"""``prune_`` / ``prune``: rank channels, choose what goes, and cut for real.

The straight path of one prune: validate :class:`~prunekit.engine.PruneOptions`, trace the
:class:`~prunekit.DependencyGraph`, find the sparsity for a target
(:func:`~prunekit.engine.search_sparsity`), plan (:func:`~prunekit.engine.plan_pruning`), cut
(:func:`~prunekit.surgery.apply.apply_plan`, which rolls back on failure), report
(:func:`~prunekit.engine.fill_report`).
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Mapping
from typing import Any

import torch.nn as nn

from prunekit.checks import check_model, check_module
from prunekit.criteria import Criterion
from prunekit.engine import (
    GroupSparsity,
    PruneOptions,
    Snapshot,
    analyse,
    build_criterion,
    build_report,
    candidates,
    check_model_options,
    fast_macs_per_module,
    plan_pruning,
    pruned_graph,
    report_config,
    resolve_options,
    rule_views,
    search_sparsity,
    snapshot,
    warn_unmet,
)
from prunekit.engine.latency_search import LatencySession
from prunekit.engine.options import check_fraction, round_multiple
from prunekit.errors import ConfigError
from prunekit.graph.dependency import DependencyGraph
from prunekit.inputs import ExampleInputs, InputsLike, as_example_inputs
from prunekit.report import PruneReport
from prunekit.surgery.apply import apply_plan
from prunekit.surgery.plan import PrunePlan

__all__ = ["prune_", "prune_step_", "prune", "check_sparsity", "check_options", "resolve_sparsity"]


def check_sparsity(value: object, name: str = "sparsity") -> float:
    """Validates a sparsity: a number in [0, 1)."""
    try:
        return check_fraction(name, value)
    except ConfigError as e:
        raise ConfigError(f"{name} {e.detail}", module=name, detail=e.detail) from None


def check_options(*, scope: str, round_to: int, max_group_sparsity: float = 0.9) -> None:
    """Validates ``scope``, ``round_to`` and ``max_group_sparsity`` as :class:`PruneOptions` does."""
    resolve_options(scope=scope, round_to=round_to, max_group_sparsity=max_group_sparsity)


def resolve_sparsity(module: str, default: float, overrides: Mapping[str, float | None] | None) -> float | None:
    """Sparsity for ``module``: an exact name wins, then the first matching ``re:`` pattern
    (``re.fullmatch``), then ``default``. ``None`` means "do not prune"."""
    return resolve_options(overrides=dict(overrides or {})).override_for(module, default)


def prune_(
    model: nn.Module,
    example_inputs: InputsLike,
    options: PruneOptions | None = None,
    *,
    group_sparsity: GroupSparsity | None = None,
    **kwargs: Any,
) -> PruneReport:
    """Removes channels from ``model`` in place and returns a :class:`PruneReport`.

    Args:
        model: the model; a plain ``nn.Module`` of the same classes afterwards.
        example_inputs: the forward's inputs: a Tensor, a tuple of arguments, a list argument
            (detection models), a dict of keyword arguments (see :mod:`prunekit.inputs`).
        options: a :class:`~prunekit.engine.PruneOptions`; keyword arguments named after its
            fields (``sparsity=0.5, criterion="l1", scope=..., ignore=..., round_to=...,
            exact_only=..., max_group_sparsity=..., overrides=..., target_macs=...,
            target_params=..., target_latency=..., latency_backend=..., tracer=...``) override
            it. Give exactly one of ``sparsity``, ``target_macs``, ``target_params`` or
            ``target_latency``; with a target the amount is found by bisection (each trial cut
            applied and undone in place), the graph traced once, and ``report.config`` holds the
            requested target and the ``realised`` ratio (for latency: measured on the pruned
            model). With ``target_latency`` (or ``report_latency=True``) ``report.latency``
            holds the measured latency before and after, and a warning is issued when the
            speed-up is under half of the MAC reduction.
        group_sparsity: with ``scope="local"``, a function giving each candidate group's
            sparsity (``None`` keeps it), used instead of ``sparsity`` and ``overrides`` (the
            schedules use it to keep exact per-group channel counts across cuts); ``sparsity``
            must still be given, and is recorded in the report.

    Note:
        Optimizer state is not kept: create the optimizer again after pruning. If anything
        fails, the model is left exactly as it was.

    Raises:
        ConfigError, UnknownNameError, ExampleInputError, TraceError, UnsupportedLayerError,
        NoPrunableGroupError, SurgeryError.
    """
    return _prune(model, example_inputs, resolve_options(options, **kwargs), None, group_sparsity, derive=False)[0]


def prune_step_(
    model: nn.Module,
    example_inputs: InputsLike,
    options: PruneOptions | None = None,
    *,
    graph: DependencyGraph | None = None,
    group_sparsity: GroupSparsity | None = None,
    **kwargs: Any,
) -> tuple[PruneReport, DependencyGraph | None]:
    """:func:`prune_` for repeated cuts: reuses ``graph`` instead of tracing, and also returns
    the graph of the pruned model, derived from the plan (:func:`~prunekit.engine.pruned_graph`),
    for the next cut. ``graph`` must describe ``model`` as it is now (the graph a previous call
    returned for it); ``None`` traces it. The returned graph is ``None`` when the cut changed
    how a layer rule reads some layer (:func:`~prunekit.engine.rule_views`): trace again then.
    """
    return _prune(model, example_inputs, resolve_options(options, **kwargs), graph, group_sparsity, derive=True)


def _prune(
    model: nn.Module,
    example_inputs: InputsLike,
    opts: PruneOptions,
    graph: DependencyGraph | None,
    group_sparsity: GroupSparsity | None,
    *,
    derive: bool,
) -> tuple[PruneReport, DependencyGraph | None]:
    """The one path of a prune; ``derive``: also derive the pruned model's graph."""
    opts.require_amount()
    check_module(model)
    if group_sparsity is not None and (opts.target is not None or opts.scope != "local"):
        raise ConfigError("group_sparsity needs scope='local' and no target", module="group_sparsity")
    check_model_options(model, opts)
    crit = build_criterion(opts)
    inputs = as_example_inputs(example_inputs)
    check_model(model, inputs, module_checked=True)
    macs = None
    if graph is None:
        graph, macs = analyse(model, inputs, tracer=opts.tracer)
    before = snapshot(model, inputs, macs=macs)
    needs_latency = opts.measures_latency or opts.round_to == "auto" or opts.allocates_by_latency
    latency = LatencySession(model, inputs, opts) if needs_latency else None
    if latency is not None:
        opts = latency.align(opts)  # round_to="auto" -> the measured multiple
    plan, sparsity, opts = _plan(model, graph, inputs, opts, crit, before, latency, group_sparsity)
    if latency is not None and opts.measures_latency:
        latency.measure_before()
    views = rule_views(model, plan) if derive else {}
    # the report reads the pruned layers' MACs only: count per module for those alone
    after = apply_plan(model, plan, verify=lambda: fast_macs_per_module(model, inputs, modules=plan.module_keep))
    total_channels = sum(g.size for g in candidates(graph, opts))
    report = build_report(
        model, plan, before, after, channels_total=total_channels, config=report_config(opts, crit, sparsity)
    )
    if latency is not None:
        latency.finish(report, model, measure=opts.measures_latency)
        if report.latency and report.latency["warning"]:
            warnings.warn(report.latency["warning"], stacklevel=3)
    if opts.target is not None:
        report.config["realised"] = _realised(report, opts.target[0])
    largest = max((g.size for g in candidates(graph, opts)), default=0)
    warn_unmet(
        report, round_to=round_multiple(opts), largest_group=largest, targets=dict([opts.target] if opts.target else [])
    )
    if not derive or rule_views(model, plan) != views:
        return report, None
    return report, pruned_graph(graph, plan)


def _plan(
    model: nn.Module,
    graph: DependencyGraph,
    inputs: ExampleInputs,
    opts: PruneOptions,
    crit: Criterion,
    before: Snapshot,
    latency: LatencySession | None,
    group_sparsity: GroupSparsity | None,
) -> tuple[PrunePlan, float, PruneOptions]:
    """What to cut, the sparsity it amounts to, and the options it was cut with: a latency-aware
    search when latency allocates or is the target (which may find that ``round_to=1`` beats the
    measured multiple), else a bisection on MACs or parameters for a target, else the given
    sparsity."""
    if latency is not None and (opts.target_latency is not None or opts.allocates_by_latency):
        return latency.search_aligned(graph, opts, crit, before=before)
    sparsity = opts.sparsity if opts.sparsity is not None else 0.0
    if opts.target is not None:
        key, target = opts.target
        total = before.macs if key == "target_macs" else before.params
        sparsity = search_sparsity(model, graph, inputs, opts, key=key, budget=target * total, criterion=crit)
    return plan_pruning(model, graph, opts, sparsity=sparsity, criterion=crit, per_group=group_sparsity), sparsity, opts


def _realised(report: PruneReport, key: str) -> float:
    """The realised fraction of a target: MACs, parameters, or MEASURED latency."""
    if key == "target_latency" and report.latency:
        return float(report.latency["after_ms"] / report.latency["before_ms"])
    return report.macs_ratio if key == "target_macs" else report.params_ratio


def prune(
    model: nn.Module,
    example_inputs: InputsLike,
    options: PruneOptions | None = None,
    **kwargs: Any,
) -> tuple[nn.Module, PruneReport]:
    """Like :func:`prune_` but returns a pruned deep copy; ``model`` is left untouched."""
    pruned = copy.deepcopy(model)
    report = prune_(pruned, example_inputs, options, **kwargs)
    return pruned, report
