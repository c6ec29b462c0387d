"""Filling a :class:`~prunekit.PruneReport` from a carried-out plan: per-layer channels,
parameters and MACs before and after, and the kept indices (original numbering)."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import torch.nn as nn

from prunekit.engine.macs import fast_macs_per_module
from prunekit.engine.options import PruneOptions
from prunekit.metrics import count_params
from prunekit.report import LayerChange, PruneReport
from prunekit.rules.base import get_rule
from prunekit.submodules import submodule
from prunekit.surgery.plan import PrunePlan

__all__ = [
    "warn_unmet",
    "Snapshot",
    "snapshot",
    "build_report",
    "layer_params",
    "own_params",
    "fill_report",
    "report_config",
]


@dataclass(frozen=True)
class Snapshot:
    """A model's size before a prune: totals, and per module (for the report's rows)."""

    params: int
    macs: int
    module_macs: dict[str, int]
    module_params: dict[str, int]


def snapshot(model: nn.Module, inputs: Any, *, macs: tuple[int, dict[str, int]] | None = None) -> Snapshot:
    """The parameters and MACs of ``model`` on ``inputs``, in total and per module.

    Args:
        macs: the MACs if already counted (:func:`~prunekit.engine.macs.analyse` counts them
            during the dependency analysis); else a shape-only forward counts them.
    """
    total, per_module = macs if macs is not None else fast_macs_per_module(model, inputs)
    return Snapshot(count_params(model), total, per_module, layer_params(model))


def build_report(
    model: nn.Module,
    plan: PrunePlan,
    before: Snapshot,
    after: tuple[int, dict[str, int]],
    *,
    channels_total: int,
    config: dict[str, Any],
    cls: type[PruneReport] = PruneReport,
    **extra: Any,
) -> PruneReport:
    """The report of a carried-out ``plan``: totals from ``before`` and ``after`` (the MACs and
    per-module MACs :func:`~prunekit.surgery.apply.apply_plan` measured), then the rows."""
    report = cls(
        params_before=before.params,
        params_after=count_params(model),
        macs_before=before.macs,
        macs_after=after[0],
        groups_pruned=len(plan.removed),
        channels_removed=int(sum(len(v) for v in plan.removed.values())),
        channels_total=channels_total,
        config=config,
        **extra,
    )
    fill_report(report, model, plan, before.module_params, before.module_macs, after[1])
    return report


def layer_params(model: nn.Module) -> dict[str, int]:
    """Each module's own parameter count (not its children's; a parameter it holds under two
    names once), by qualified name. Read off the ``_parameters`` tables: ``parameters(recurse=False)``
    builds a generator per module, twice the cost on a model of hundreds of modules."""
    return {n: own_params(m) for n, m in model.named_modules()}


def own_params(module: nn.Module) -> int:
    """``module``'s own parameter elements (not its children's; one held under two names once)."""
    return sum({id(p): p.numel() for p in module._parameters.values() if p is not None}.values())


def fill_report(
    report: PruneReport,
    model: nn.Module,
    plan: PrunePlan,
    params_before: dict[str, int],
    macs_before: dict[str, int],
    macs_after: dict[str, int],
) -> None:
    """Adds a :class:`LayerChange` row and the kept indices for every module ``plan`` touched."""
    order = {name: i for i, name in enumerate(params_before)}
    for name in sorted(plan.module_keep, key=order.__getitem__):
        keeps = dict(plan.module_keep[name])
        sizes = dict(plan.sizes[name])
        module = submodule(model, name)
        rule = get_rule(type(module))
        if rule is not None and tuple(rule.roles) == ("out",) and not rule.mixes_inputs(module):
            # a per-channel layer (BatchNorm...): its input is its output
            if "out" in keeps:
                keeps.setdefault("in", keeps["out"])
            if "out" in sizes:
                sizes.setdefault("in", sizes["out"])
        report.kept[name] = {role: idx.tolist() for role, idx in keeps.items() if idx is not None}
        report.layers.append(
            LayerChange(
                name=name,
                kind=type(module).__name__,
                in_before=sizes.get("in"),
                in_after=len(keeps["in"]) if "in" in keeps else sizes.get("in"),
                out_before=sizes.get("out"),
                out_after=len(keeps["out"]) if "out" in keeps else sizes.get("out"),
                params_before=params_before.get(name, 0),
                params_after=own_params(module),
                macs_before=macs_before.get(name, 0),
                macs_after=macs_after.get(name, 0),
            )
        )
    report.kept_params = {t: {d: idx.tolist() for d, idx in dims.items()} for t, dims in plan.param_keep.items()}


def report_config(opts: PruneOptions, criterion: Any, sparsity: float) -> dict[str, Any]:
    """The options as the JSON-ready ``report.config``: the sparsity used, the criterion by name."""
    config: dict[str, Any] = {
        "sparsity": sparsity,
        "criterion": getattr(criterion, "name", type(criterion).__name__),
        "scope": opts.scope,
        "ignore": list(opts.ignore),
        "round_to": opts.round_to,
        "exact_only": opts.exact_only,
        "max_group_sparsity": opts.max_group_sparsity,
        "overrides": {o.pattern: o.sparsity for o in opts.overrides},
    }
    if opts.target is not None:
        config[opts.target[0]] = opts.target[1]
    return config


def warn_unmet(report: PruneReport, *, round_to: int, largest_group: int, targets: dict[str, float]) -> None:
    """Warns (``warnings`` and ``report.config["warnings"]``) when a prune cannot do what was asked:
    a ``round_to`` that no group can lose (so nothing is ever pruned), or an unreachable target."""
    notes = []
    if round_to > 1 and 0 < largest_group <= round_to:
        notes.append(
            f"round_to={round_to}: nothing can be pruned, since the largest prunable group has "
            f"{largest_group} channels and keeps at least round_to; use a smaller round_to"
        )
    for key, target in targets.items():
        realised = report.config.get("realised")
        if realised is not None and realised > float(target) * 1.01:
            notes.append(
                f"{key}={target:g} was not reached: the pruned model keeps {realised:.4g} of the original "
                "(prunekit removes at most 95% of a group); this is the smallest it can reach"
            )
    for note in notes:
        warnings.warn(note, stacklevel=3)
    if notes:
        report.config["warnings"] = notes
