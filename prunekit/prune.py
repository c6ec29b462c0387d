"""``prune_`` / ``prune``: rank channels, choose what goes, and cut for real."""

from __future__ import annotations

import copy
import difflib
from collections.abc import Iterable, Sequence

import numpy as np
import torch
import torch.nn as nn

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

__all__ = ["prune_", "prune", "plan_pruning", "check_sparsity"]


def check_sparsity(value: object, name: str = "sparsity") -> float:
    """Validates a sparsity: a number in [0, 1)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= float(value) < 1.0:
        raise ConfigError(f"{name} must be a number in [0, 1), but got {value!r}", module=name)
    return float(value)


def _check_ignore(model: nn.Module, ignore: Iterable[str] | None) -> list[str]:
    names = [n for n, _ in model.named_modules()]
    known = set(names)
    if ignore is None:
        return []
    if isinstance(ignore, str):
        ignore = [ignore]
    out = []
    for name in ignore:
        if name not in known:
            close = difflib.get_close_matches(str(name), names, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise UnknownNameError(f"ignore: {name!r} is not a module of {type(model).__name__}{hint}", module=str(name))
        out.append(name)
    return out


def _touches(group: Group, ignored: list[str]) -> bool:
    """True if the group holds the output channels of an ignored module (or of its children)."""
    return any(
        m.role != "in" and (m.module == n or m.module.startswith(n + ".") or n == "")
        for m in group.members
        for n in ignored
    )


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
) -> PrunePlan:
    """Scores the prunable groups and returns the plan of what to remove (nothing is cut)."""
    crit = get_criterion(criterion)
    candidates = _candidates(graph, list(ignore), exact_only)
    if not candidates:
        reasons = "; ".join(f"group {g.id}: {g.reason or 'ignored'}" for g in graph.groups[:5])
        raise NoPrunableGroupError(
            f"{type(model).__name__} has no channel group that can be pruned "
            f"({len(graph.groups)} groups; {reasons}). Check `ignore` and print(prunekit.DependencyGraph(model, x)).",
            module=type(model).__name__,
        )
    scores = {g.id: np.asarray(crit.scores(model, g), dtype=np.float64) for g in candidates}
    if scope == "local":
        counts = {g.id: removal_count(g.size, sparsity, round_to=round_to) for g in candidates}
    else:
        counts = _global_counts(candidates, scores, sparsity, max_group_sparsity, round_to)
    removed = {g.id: select_channels(g, scores[g.id], counts[g.id]) for g in candidates}
    return make_plan(graph, removed)


def _global_counts(groups: list[Group], scores: dict[int, np.ndarray], sparsity: float,
                   max_group_sparsity: float, round_to: int) -> dict[int, int]:
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
    return counts


def prune_(
    model: nn.Module,
    example_inputs: torch.Tensor | Sequence[torch.Tensor],
    *,
    sparsity: float,
    criterion: str | Criterion = "l1",
    scope: str = "local",
    ignore: Sequence[str] | None = None,
    round_to: int = 1,
    exact_only: bool = False,
    max_group_sparsity: float = 0.9,
    tracer: str = "auto",
) -> PruneReport:
    """Removes channels from ``model`` in place and returns a :class:`PruneReport`.

    Args:
        model: the model; a plain ``nn.Module`` of the same classes afterwards.
        example_inputs: a Tensor or a tuple of Tensors for the forward.
        sparsity: fraction in [0, 1) of channels to remove from each prunable group
            (``scope="local"``) or overall (``scope="global"``).
        criterion: a registered criterion name (``"l1"``...) or a Criterion instance.
        scope: "local" or "global" (one ranking on mean-normalised scores, each group losing at
            most ``max_group_sparsity`` of its channels).
        ignore: module names whose output channels must not change (a container name covers
            its children); their input channels may still shrink with the layer before.
        round_to: keep channel counts multiples of this.
        exact_only: prune only groups where removal is exactly equivalent to zeroing.
        max_group_sparsity: with ``scope="global"``, the most any one group may lose.
        tracer: "auto", "fx" or "export" (see :class:`~prunekit.DependencyGraph`).

    Note:
        Optimizer state is not kept: create the optimizer again after pruning. If anything
        fails, the model is left exactly as it was.

    Raises:
        ConfigError, UnknownNameError, ExampleInputError, TraceError, UnsupportedLayerError,
        NoPrunableGroupError, SurgeryError.
    """
    sparsity = check_sparsity(sparsity)
    if scope not in ("local", "global"):
        raise ConfigError(f"scope must be 'local' or 'global', but got {scope!r}", module="scope")
    if isinstance(round_to, bool) or not isinstance(round_to, int) or round_to < 1:
        raise ConfigError(f"round_to must be an int >= 1, but got {round_to!r}", module="round_to")
    check_sparsity(max_group_sparsity, "max_group_sparsity")
    ignored = _check_ignore(model, ignore)
    crit = get_criterion(criterion)
    inputs = as_input_tuple(example_inputs)
    graph = DependencyGraph(model, inputs, tracer=tracer)
    params_before = count_params(model)
    macs_before, per_before = macs_per_module(model, inputs)
    layer_params = {n: sum(p.numel() for p in m.parameters(recurse=False)) for n, m in model.named_modules()}
    plan = plan_pruning(model, graph, sparsity=sparsity, criterion=crit, scope=scope, ignore=ignored,
                        round_to=round_to, exact_only=exact_only, max_group_sparsity=max_group_sparsity)
    macs_after, per_after = apply_plan(model, plan, verify=lambda: macs_per_module(model, inputs))
    report = PruneReport(
        params_before=params_before,
        params_after=count_params(model),
        macs_before=macs_before,
        macs_after=macs_after,
        groups_pruned=len(plan.removed),
        channels_removed=int(sum(len(v) for v in plan.removed.values())),
        channels_total=sum(g.size for g in _candidates(graph, ignored, exact_only)),
        config={"sparsity": sparsity, "criterion": getattr(crit, "name", type(crit).__name__), "scope": scope,
                "ignore": ignored, "round_to": round_to, "exact_only": exact_only,
                "max_group_sparsity": max_group_sparsity},
    )
    _fill_report(report, model, plan, layer_params, per_before, per_after)
    return report


def _fill_report(report: PruneReport, model: nn.Module, plan: PrunePlan, layer_params: dict[str, int],
                 per_before: dict[str, int], per_after: dict[str, int]) -> None:
    for name in sorted(plan.module_keep, key=list(layer_params).index):
        keeps = dict(plan.module_keep[name])
        sizes = dict(plan.sizes[name])
        module = model.get_submodule(name)
        rule = get_rule(type(module))
        if rule is not None and tuple(rule.roles) == ("out",) and not rule.mixes_inputs(module):  # per-channel: in == out
            keeps.setdefault("in", keeps.get("out"))
            sizes.setdefault("in", sizes.get("out"))
        report.kept[name] = {role: idx.tolist() for role, idx in keeps.items() if idx is not None}
        report.layers.append(LayerChange(
            name=name, kind=type(module).__name__,
            in_before=sizes.get("in"), in_after=len(keeps["in"]) if "in" in keeps else sizes.get("in"),
            out_before=sizes.get("out"), out_after=len(keeps["out"]) if "out" in keeps else sizes.get("out"),
            params_before=layer_params.get(name, 0),
            params_after=sum(p.numel() for p in module.parameters(recurse=False)),
            macs_before=per_before.get(name, 0), macs_after=per_after.get(name, 0),
        ))
    report.kept_params = {t: {d: idx.tolist() for d, idx in dims.items()} for t, dims in plan.param_keep.items()}


def prune(
    model: nn.Module, example_inputs: torch.Tensor | Sequence[torch.Tensor], **options: object
) -> tuple[nn.Module, PruneReport]:
    """Like :func:`prune_` but returns a pruned deep copy; ``model`` is left untouched."""
    pruned = copy.deepcopy(model)
    report = prune_(pruned, example_inputs, **options)  # type: ignore[arg-type]
    return pruned, report
