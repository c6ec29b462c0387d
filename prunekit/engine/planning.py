"""Planning: which groups may be cut, how far each one goes, and which channels leave.

Nothing here changes a model. :func:`plan_pruning` turns a traced graph and
:class:`~prunekit.engine.PruneOptions` into a :class:`~prunekit.surgery.PrunePlan`:

* **local** scope: group ``g`` of ``n`` channels loses ``removal_count(n, s_g)`` channels, where
  ``s_g`` is the smallest override of the layers whose outputs it holds (else ``sparsity``);
* **global** scope: every prunable channel ``c`` of group ``g`` gets the mean-normalised score
  ``s_c / (mean_g |s| + 1e-12)``; the ``floor(sparsity * N)`` lowest go, each group losing at
  most ``max_group_sparsity`` of its channels (then rounded to ``round_to`` like local).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import torch.nn as nn

from prunekit.criteria import CRITERIA, Criterion, get_criterion
from prunekit.engine.options import PruneOptions, round_multiple
from prunekit.errors import (
    ConfigError,
    CriterionError,
    NoPrunableGroupError,
    PrunekitError,
    UnknownNameError,
    option_error,
)
from prunekit.graph.branches import removable_branches, together
from prunekit.graph.dependency import DependencyGraph
from prunekit.graph.groups import Group
from prunekit.surgery.plan import PrunePlan, make_plan
from prunekit.surgery.selection import removal_count, select_channels

__all__ = [
    "GroupSparsity",
    "check_model_options",
    "build_criterion",
    "criterion_with_data",
    "candidates",
    "group_sparsity",
    "plan_pruning",
    "score_group",
    "global_counts",
]

GroupSparsity = Callable[[Group], "float | None"]


def check_model_options(model: nn.Module, options: PruneOptions) -> None:
    """Checks the options that name modules against ``model``: every ``ignore`` entry is a
    module, and every override names a module or is a ``re:`` pattern that matches one.

    Raises:
        UnknownNameError: naming the entry, with the closest module name.
    """
    names = [n for n, _ in model.named_modules()]
    known = set(names)

    def unknown(where: str, name: str, module: str) -> UnknownNameError:
        close = difflib.get_close_matches(name, names, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        return UnknownNameError(f"{where}: {name!r} is not a module of {type(model).__name__}{hint}", module=module)

    for name in options.ignore:
        if name not in known:
            raise unknown("ignore", name, name)
    for o in options.overrides:
        where = f"overrides[{o.pattern!r}]"
        if o.is_regex:
            rx = re.compile(o.pattern[3:])
            if not any(rx.fullmatch(n) for n in names):
                raise UnknownNameError(
                    f"{where}: the pattern matches no module of {type(model).__name__}", module=where
                )
        elif o.pattern not in known:
            raise unknown(where, o.pattern, where)


def build_criterion(options: PruneOptions) -> Criterion:
    """The criterion of ``options``: an instance as given, a name built with its options."""
    if isinstance(options.criterion, Criterion):
        return options.criterion
    try:
        return get_criterion(options.criterion, **options.criterion_options)
    except TypeError as exc:
        raise option_error("criterion_options", str(exc)) from exc


def criterion_with_data(
    name: str, options: dict[str, Any], calibration: Iterable[Any] | None, *, where: str
) -> Criterion:
    """The criterion ``name`` with ``options``; a data-driven one gets ``data=calibration``.

    Raises:
        ConfigError: naming ``where``, if the criterion needs data and none is given, or an
            option is not one the criterion takes.
    """
    needs_data = bool(getattr(CRITERIA.get(name, argument=where), "needs_data", False))
    kwargs = dict(options)
    if needs_data:
        if calibration is None:
            raise ConfigError(
                f"{where}: criterion {name!r} scores channels from calibration data, but none was given: "
                "pass calibration=batches to on_epoch_begin (the pipeline's --calibration-batches)",
                module=where,
            )
        kwargs["data"] = calibration
    try:
        return get_criterion(name, **kwargs)
    except TypeError as exc:
        raise ConfigError(f"{where}_options: {exc}", module=f"{where}_options") from None


def _touches(group: Group, ignored: tuple[str, ...]) -> bool:
    """True if the group holds the output channels of an ignored module (or of its children)."""
    return any(
        m.role != "in" and (m.module == n or m.module.startswith(n + ".") or n == "")
        for m in group.members
        for n in ignored
    )


def candidates(graph: DependencyGraph, options: PruneOptions) -> list[Group]:
    """The groups a prune may cut: prunable, not holding an ignored module's outputs, and exact
    if ``options.exact_only``."""
    return [
        g
        for g in graph.groups
        if g.prunable and not _touches(g, options.ignore) and (g.exact or not options.exact_only)
    ]


def group_sparsity(group: Group, default: float, options: PruneOptions) -> float | None:
    """A group's sparsity: the overrides of the layers whose outputs it holds; the smallest wins,
    and ``None`` on any of them keeps the group."""
    if not options.overrides:
        return default
    values = {options.override_for(m.module, default) for m in group.members if m.role == "out"}
    if not values:
        return default
    known = [v for v in values if v is not None]
    return None if len(known) < len(values) else min(known)


def plan_pruning(
    model: nn.Module,
    graph: DependencyGraph,
    options: PruneOptions,
    *,
    sparsity: float,
    criterion: Criterion | None = None,
    per_group: GroupSparsity | None = None,
) -> PrunePlan:
    """Scores the candidate groups and returns the plan of what to remove (nothing is cut).

    Args:
        sparsity: the sparsity to plan for (``options.sparsity`` may be a target instead).
        criterion: an already built criterion (default: :func:`build_criterion`).
        per_group: with local scope, each candidate group's sparsity (``None`` keeps it),
            used instead of ``sparsity`` and the overrides.

    Raises:
        NoPrunableGroupError: no group is left to cut, with the first groups' reasons.
    """
    crit = criterion if criterion is not None else build_criterion(options)
    groups = candidates(graph, options)
    if per_group is not None:
        levels = {g.id: per_group(g) for g in groups}
    else:
        levels = {g.id: group_sparsity(g, sparsity, options) for g in groups}
    groups = [g for g in groups if levels[g.id] is not None]
    if not groups:
        reasons = "; ".join(f"group {g.id}: {g.reason or 'ignored'}" for g in graph.groups[:5])
        raise NoPrunableGroupError(
            f"{type(model).__name__} has no channel group that can be pruned "
            f"({len(graph.groups)} groups; {reasons}). Check `ignore` and print(prunekit.DependencyGraph(model, x)).",
            module=type(model).__name__,
        )
    scores = {g.id: score_group(crit, model, g) for g in groups}
    whole: set[int] = set()
    if options.scope == "local" or per_group is not None:
        counts = {
            g.id: removal_count(g.size, float(levels[g.id] or 0.0), round_to=round_multiple(options)) for g in groups
        }
    else:
        cuts = removable_branches(graph, model, groups) if options.remove_branches else {}
        counts = global_counts(groups, scores, sparsity, options, removable=set(cuts))
        whole = _removed_together(graph, groups, scores, counts, cuts, round_multiple(options))
    removed = {g.id: select_channels(g, scores[g.id], counts[g.id], allow_empty=g.id in whole) for g in groups}
    return make_plan(graph, removed, emptied=whole)


def _removed_together(
    graph: DependencyGraph,
    groups: list[Group],
    scores: dict[int, np.ndarray],
    counts: dict[int, int],
    cuts: dict[int, set[str]],
    round_to: int,
) -> set[int]:
    """The groups ``counts`` empties that can go together (lowest mean score first); the others
    keep ``max(1, round_to)`` channels (``counts`` is updated)."""
    sizes = {g.id: g.size for g in groups}
    emptied = [gid for gid in cuts if counts.get(gid, 0) >= sizes[gid]]
    emptied.sort(key=lambda gid: float(np.abs(scores[gid]).mean()))
    kept = set(together(graph, emptied, cuts))
    for gid in emptied:
        if gid not in kept:
            counts[gid] = removal_count(sizes[gid], 1.0, round_to=round_to)
    return kept


def score_group(criterion: Criterion, model: nn.Module, group: Group) -> np.ndarray:
    """``criterion``'s scores of ``group``: one finite number per channel.

    Raises:
        CriterionError: the criterion raised (chained) or returned the wrong number of scores,
            naming the criterion and the group's layers.
    """
    name = getattr(criterion, "name", type(criterion).__name__)
    where = f"criterion {name!r} on group {group.id} ({', '.join(sorted(group.modules())[:4])})"
    try:
        scores = np.asarray(criterion.scores(model, group), dtype=np.float64).reshape(-1)
    except PrunekitError:
        raise
    except Exception as exc:
        raise CriterionError(f"{where} failed: {type(exc).__name__}: {exc}", module=name) from exc
    if scores.shape != (group.size,):
        raise CriterionError(f"{where} returned {scores.size} scores for {group.size} channels", module=name)
    return scores


def global_counts(
    groups: list[Group],
    scores: dict[int, np.ndarray],
    sparsity: float,
    options: PruneOptions,
    *,
    removable: set[int] | frozenset[int] = frozenset(),
) -> dict[int, int]:
    """How many channels each group loses under one ranking across groups on mean-normalised
    scores, capped at ``options.max_group_sparsity`` per group; a group in ``removable`` (a
    removable branch) may lose them all."""
    entries = []
    for g in groups:
        s = scores[g.id]
        norm = s / (np.abs(s).mean() + 1e-12)
        for ch in np.nonzero(~g.locked)[0].tolist():
            entries.append((norm[ch], g.id, ch))
    entries.sort()
    total = sum(g.size for g in groups)
    budget = int(np.floor(sparsity * total + 1e-6))
    step = round_multiple(options)
    caps = {
        g.id: g.size if g.id in removable else removal_count(g.size, options.max_group_sparsity, round_to=step)
        for g in groups
    }
    counts = {g.id: 0 for g in groups}
    for _, gid, _ in entries:
        if budget <= 0:
            break
        if counts[gid] < caps[gid]:
            counts[gid] += 1
            budget -= 1
    # keep counts multiples of round_to: remove the fraction each group got, rounded the same way
    sizes = {g.id: g.size for g in groups}
    return {
        gid: removal_count(sizes[gid], n / sizes[gid], round_to=step, allow_empty=gid in removable)
        for gid, n in counts.items()
    }
