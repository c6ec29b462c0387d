"""``prune_`` / ``prune``: rank channels, choose what goes, and cut for real."""

from __future__ import annotations

import copy
import difflib
import re
import warnings
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from prunekit.checks import check_model, check_module
from prunekit.criteria import Criterion, get_criterion
from prunekit.errors import ConfigError, NoPrunableGroupError, UnknownNameError
from prunekit.graph.dependency import DependencyGraph, as_input_tuple
from prunekit.graph.groups import Group
from prunekit.metrics import count_params, macs_per_module
from prunekit.report import LayerChange, PruneReport
from prunekit.rules.base import get_rule
from prunekit.surgery.apply import apply_plan
from prunekit.surgery.plan import PrunePlan, make_plan
from prunekit.surgery.selection import removal_count, select_channels

__all__ = ["prune_", "prune", "plan_pruning", "check_sparsity", "check_options"]


def check_sparsity(value: object, name: str = "sparsity") -> float:
    """Validates a sparsity: a number in [0, 1)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= float(value) < 1.0:
        raise ConfigError(f"{name} must be a number in [0, 1), but got {value!r}", module=name)
    return float(value)


def check_options(*, scope: str, round_to: int, max_group_sparsity: float = 0.9) -> None:
    """Validates the options shared by :func:`prune_` and :func:`prunekit.mask_`."""
    if scope not in ("local", "global"):
        raise ConfigError(f"scope must be 'local' or 'global', but got {scope!r}", module="scope")
    if isinstance(round_to, bool) or not isinstance(round_to, int) or round_to < 1:
        raise ConfigError(f"round_to must be an int >= 1, but got {round_to!r}", module="round_to")
    check_sparsity(max_group_sparsity, "max_group_sparsity")


def _check_ignore(model: nn.Module, ignore: Iterable[str] | None) -> list[str]:
    names = [n for n, _ in model.named_modules()]
    known = set(names)
    if ignore is None:
        return []
    if isinstance(ignore, str):
        ignore = [ignore]
    if not isinstance(ignore, (list, tuple, set, frozenset)) or not all(isinstance(n, str) for n in ignore):
        raise ConfigError(f"ignore: must be a list of module names, but got {ignore!r}", module="ignore")
    out = []
    for name in ignore:
        if name not in known:
            close = difflib.get_close_matches(str(name), names, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise UnknownNameError(
                f"ignore: {name!r} is not a module of {type(model).__name__}{hint}", module=str(name)
            )
        out.append(name)
    return out


def _touches(group: Group, ignored: list[str]) -> bool:
    """True if the group holds the output channels of an ignored module (or of its children)."""
    return any(
        m.role != "in" and (m.module == n or m.module.startswith(n + ".") or n == "")
        for m in group.members
        for n in ignored
    )


def resolve_sparsity(module: str, default: float, overrides: dict[str, float | None] | None) -> float | None:
    """Sparsity for ``module``: an exact name wins, then the first matching ``re:`` pattern
    (``re.fullmatch``), then ``default``. ``None`` means "do not prune"."""
    if not overrides:
        return default
    if module in overrides:
        return overrides[module]
    for pattern, value in overrides.items():
        if pattern.startswith("re:") and re.fullmatch(pattern[3:], module):
            return value
    return default


def _check_overrides(model: nn.Module, overrides: dict[str, float | None] | None) -> dict[str, float | None]:
    if overrides is None:
        return {}
    if not isinstance(overrides, dict):
        raise ConfigError(
            f"overrides must be a dict of module name or 're:' pattern -> sparsity, but got {type(overrides).__name__}",
            module="overrides",
        )
    names = [n for n, _ in model.named_modules()]
    for key, value in overrides.items():
        where = f"overrides[{key!r}]"
        if value is not None:
            check_sparsity(value, where)
        if isinstance(key, str) and key.startswith("re:"):
            try:
                rx = re.compile(key[3:])
            except re.error as exc:
                raise ConfigError(f"{where}: invalid regex: {exc}", module=where) from None
            if not any(rx.fullmatch(n) for n in names):
                raise UnknownNameError(
                    f"{where}: the pattern matches no module of {type(model).__name__}", module=where
                )
        elif key not in names:
            close = difflib.get_close_matches(str(key), names, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise UnknownNameError(f"{where}: {key!r} is not a module of {type(model).__name__}{hint}", module=where)
    return dict(overrides)


def _group_sparsity(group: Group, default: float, overrides: dict[str, float | None]) -> float | None:
    """A group's sparsity: the overrides of the layers whose outputs it holds; the smallest wins,
    and ``None`` on any of them keeps the group."""
    if not overrides:
        return default
    values = {resolve_sparsity(m.module, default, overrides) for m in group.members if m.role == "out"}
    if not values:
        return default
    known = [v for v in values if v is not None]
    return None if len(known) < len(values) else min(known)


def _candidates(graph: DependencyGraph, ignored: list[str], exact_only: bool) -> list[Group]:
    """The groups a prune may cut: prunable, not holding an ignored module's outputs, exact if asked."""
    return [g for g in graph.groups if g.prunable and not _touches(g, ignored) and (g.exact or not exact_only)]


def plan_pruning(
    model: nn.Module,
    graph: DependencyGraph,
    *,
    sparsity: float,
    criterion: str | Criterion = "l1",
    scope: str = "local",
    ignore: Sequence[str] = (),
    round_to: int = 1,
    exact_only: bool = False,
    max_group_sparsity: float = 0.9,
    overrides: dict[str, float | None] | None = None,
    group_sparsity: Callable[[Group], float | None] | None = None,
) -> PrunePlan:
    """Scores the prunable groups and returns the plan of what to remove (nothing is cut).

    ``group_sparsity``, if given, replaces ``sparsity`` and ``overrides`` with
    ``scope="local"``: it returns each candidate group's sparsity (``None`` keeps the group).
    """
    crit = get_criterion(criterion)
    overrides = overrides or {}
    candidates = _candidates(graph, list(ignore), exact_only)
    if group_sparsity is not None:
        per_group = {g.id: group_sparsity(g) for g in candidates}
    else:
        per_group = {g.id: _group_sparsity(g, sparsity, overrides) for g in candidates}
    candidates = [g for g in candidates if per_group[g.id] is not None]
    if not candidates:
        reasons = "; ".join(f"group {g.id}: {g.reason or 'ignored'}" for g in graph.groups[:5])
        raise NoPrunableGroupError(
            f"{type(model).__name__} has no channel group that can be pruned "
            f"({len(graph.groups)} groups; {reasons}). Check `ignore` and print(prunekit.DependencyGraph(model, x)).",
            module=type(model).__name__,
        )
    scores = {g.id: np.asarray(crit.scores(model, g), dtype=np.float64) for g in candidates}
    if not candidates:
        return make_plan(graph, {})
    if scope == "local":
        counts = {g.id: removal_count(g.size, float(per_group[g.id] or 0.0), round_to=round_to) for g in candidates}
    else:
        counts = _global_counts(candidates, scores, sparsity, max_group_sparsity, round_to)
    removed = {g.id: select_channels(g, scores[g.id], counts[g.id]) for g in candidates}
    return make_plan(graph, removed)


def _global_counts(
    groups: list[Group], scores: dict[int, np.ndarray], sparsity: float, max_group_sparsity: float, round_to: int
) -> dict[int, int]:
    """One ranking across groups on mean-normalised scores, capped per group."""
    entries = []
    for g in groups:
        s = scores[g.id]
        norm = s / (np.abs(s).mean() + 1e-12)
        for ch in np.nonzero(~g.locked)[0].tolist():
            entries.append((norm[ch], g.id, ch))
    entries.sort()
    total = sum(g.size for g in groups)
    budget = int(np.floor(sparsity * total + 1e-6))
    caps = {g.id: removal_count(g.size, max_group_sparsity, round_to=round_to) for g in groups}
    counts = {g.id: 0 for g in groups}
    for _, gid, _ in entries:
        if budget <= 0:
            break
        if counts[gid] < caps[gid]:
            counts[gid] += 1
            budget -= 1
    # keep counts multiples of round_to: remove the fraction each group got, rounded the same way
    sizes = {g.id: g.size for g in groups}
    return {gid: removal_count(sizes[gid], n / sizes[gid], round_to=round_to) for gid, n in counts.items()}


def prune_(
    model: nn.Module,
    example_inputs: torch.Tensor | Sequence[torch.Tensor],
    *,
    sparsity: float | None = None,
    criterion: str | Criterion = "l1",
    scope: str = "local",
    ignore: Sequence[str] | None = None,
    round_to: int = 1,
    exact_only: bool = False,
    max_group_sparsity: float = 0.9,
    overrides: dict[str, float | None] | None = None,
    target_macs: float | None = None,
    target_params: float | None = None,
    tracer: str = "auto",
    group_sparsity: Callable[[Group], float | None] | None = None,
) -> PruneReport:
    """Removes channels from ``model`` in place and returns a :class:`PruneReport`.

    Args:
        model: the model; a plain ``nn.Module`` of the same classes afterwards.
        example_inputs: a Tensor or a tuple of Tensors for the forward.
        sparsity: fraction in [0, 1) of channels to remove from each prunable group
            (``scope="local"``) or overall (``scope="global"``). Give it, or one target.
        criterion: a registered criterion name (``"l1"``...) or a Criterion instance.
        scope: "local" or "global" (one ranking on mean-normalised scores, each group losing at
            most ``max_group_sparsity`` of its channels).
        ignore: module names whose output channels must not change (a container name covers
            its children); their input channels may still shrink with the layer before.
        round_to: keep channel counts multiples of this.
        exact_only: prune only groups where removal is exactly equivalent to zeroing.
        max_group_sparsity: with ``scope="global"``, the most any one group may lose.
        overrides: per-layer sparsity by module name: an exact name wins, then the first
            ``"re:<regex>"`` that fully matches, then ``sparsity``; ``None`` keeps the layer. A
            group takes the smallest override of the layers whose outputs it holds.
        target_macs: instead of ``sparsity``, the fraction of the original MACs to keep (e.g.
            0.5); the sparsity is found by bisection on copies of the model, the graph traced
            once. ``report.config`` holds the requested target and the realised ratio.
        target_params: the same for the parameter count.
        tracer: "auto", "fx" or "export" (see :class:`~prunekit.DependencyGraph`).
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
    targets = {k: v for k, v in (("target_macs", target_macs), ("target_params", target_params)) if v is not None}
    if (sparsity is None) == (not targets) or len(targets) > 1:
        raise ConfigError("give exactly one of sparsity, target_macs or target_params", module="sparsity")
    for key, value in targets.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 < float(value) <= 1.0:
            raise ConfigError(
                f"{key} must be a fraction in (0, 1] of the original to keep, but got {value!r}", module=key
            )
    sparsity = check_sparsity(sparsity) if sparsity is not None else 0.0
    check_options(scope=scope, round_to=round_to, max_group_sparsity=max_group_sparsity)
    check_module(model)
    ignored = _check_ignore(model, ignore)
    crit = get_criterion(criterion)
    inputs = as_input_tuple(example_inputs)
    check_model(model, inputs)
    graph = DependencyGraph(model, inputs, tracer=tracer)
    params_before = count_params(model)
    macs_before, per_before = macs_per_module(model, inputs)
    layer_params = {n: sum(p.numel() for p in m.parameters(recurse=False)) for n, m in model.named_modules()}
    overrides = _check_overrides(model, overrides)
    options: dict[str, Any] = dict(
        criterion=crit,
        scope=scope,
        ignore=ignored,
        round_to=round_to,
        exact_only=exact_only,
        max_group_sparsity=max_group_sparsity,
        overrides=overrides,
    )
    if group_sparsity is not None:
        if targets or scope != "local":
            raise ConfigError("group_sparsity needs scope='local' and no target", module="group_sparsity")
        options["group_sparsity"] = group_sparsity
    if targets:
        ((key, target),) = targets.items()
        before = macs_before if key == "target_macs" else params_before
        sparsity = _search_sparsity(model, graph, inputs, key, target * before, options)
    plan = plan_pruning(model, graph, sparsity=sparsity, **options)
    macs_after, per_after = apply_plan(model, plan, verify=lambda: macs_per_module(model, inputs))
    report = PruneReport(
        params_before=params_before,
        params_after=count_params(model),
        macs_before=macs_before,
        macs_after=macs_after,
        groups_pruned=len(plan.removed),
        channels_removed=int(sum(len(v) for v in plan.removed.values())),
        channels_total=sum(g.size for g in _candidates(graph, ignored, exact_only)),
        config={
            "sparsity": sparsity,
            "criterion": getattr(crit, "name", type(crit).__name__),
            "scope": scope,
            "ignore": ignored,
            "round_to": round_to,
            "exact_only": exact_only,
            "max_group_sparsity": max_group_sparsity,
            "overrides": overrides,
            **targets,
        },
    )
    if targets:
        report.config["realised"] = report.macs_ratio if "target_macs" in targets else report.params_ratio
    _fill_report(report, model, plan, layer_params, per_before, per_after)
    largest = max((g.size for g in _candidates(graph, ignored, exact_only)), default=0)
    _warn_unmet(report, round_to=round_to, largest_group=largest, targets=targets)
    return report


def _warn_unmet(report: PruneReport, *, round_to: int, largest_group: int, targets: dict[str, float]) -> None:
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


def _search_sparsity(
    model: nn.Module, graph: DependencyGraph, inputs: tuple, key: str, budget: float, options: dict
) -> float:
    """The smallest sparsity whose pruned copy fits ``budget`` MACs or params (bisection)."""

    def cost(s: float) -> int:
        trial = copy.deepcopy(model)
        plan = plan_pruning(trial, graph, sparsity=s, **options)
        apply_plan(trial, plan)
        return count_params(trial) if key == "target_params" else macs_per_module(trial, inputs)[0]

    lo, hi = 0.0, 0.95
    if cost(hi) > budget:
        return hi  # the most prunekit may remove; the report shows what was reached
    for _ in range(10):
        mid = (lo + hi) / 2
        if cost(mid) <= budget:
            hi = mid
        else:
            lo = mid
    return hi


def _fill_report(
    report: PruneReport,
    model: nn.Module,
    plan: PrunePlan,
    layer_params: dict[str, int],
    per_before: dict[str, int],
    per_after: dict[str, int],
) -> None:
    for name in sorted(plan.module_keep, key=list(layer_params).index):
        keeps = dict(plan.module_keep[name])
        sizes = dict(plan.sizes[name])
        module = model.get_submodule(name)
        rule = get_rule(type(module))
        if (
            rule is not None and tuple(rule.roles) == ("out",) and not rule.mixes_inputs(module)
        ):  # per-channel: in == out
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
                params_before=layer_params.get(name, 0),
                params_after=sum(p.numel() for p in module.parameters(recurse=False)),
                macs_before=per_before.get(name, 0),
                macs_after=per_after.get(name, 0),
            )
        )
    report.kept_params = {t: {d: idx.tolist() for d, idx in dims.items()} for t, dims in plan.param_keep.items()}


def prune(
    model: nn.Module, example_inputs: torch.Tensor | Sequence[torch.Tensor], **options: object
) -> tuple[nn.Module, PruneReport]:
    """Like :func:`prune_` but returns a pruned deep copy; ``model`` is left untouched."""
    pruned = copy.deepcopy(model)
    report = prune_(pruned, example_inputs, **options)  # type: ignore[arg-type]
    return pruned, report
