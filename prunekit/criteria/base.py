"""The criterion registry and how a criterion scores a whole coupled group."""

from __future__ import annotations

import inspect
from collections.abc import Callable

import numpy as np
import torch
import torch.nn as nn

from prunekit.errors import ConfigError
from prunekit.graph.groups import Group, Member
from prunekit.registry import Registry
from prunekit.rules.base import get_rule
from prunekit.submodules import submodule

__all__ = [
    "Criterion",
    "CRITERIA",
    "get_criterion",
    "member_views",
    "member_row_scores",
    "reduce_to_channels",
    "REDUCTIONS",
]

REDUCTIONS = ("sum", "mean", "max")


class Criterion:
    """Scores the channels of a group; higher means more important (kept first).

    Args:
        reduction: how the scores of a group's members are combined per channel: "sum", "mean"
            or "max".
    """

    name = "criterion"
    needs_data = False

    def __init__(self, *, reduction: str = "sum") -> None:
        if reduction not in REDUCTIONS:
            raise ConfigError(f"reduction must be one of {REDUCTIONS}, but got {reduction!r}", module="reduction")
        self.reduction = reduction

    def scores(self, model: nn.Module, group: Group) -> np.ndarray:
        raise NotImplementedError


CRITERIA: Registry[Callable[..., Criterion]] = Registry("criterion")


def get_criterion(criterion: str | Criterion, **options: object) -> Criterion:
    """Returns a criterion instance from a registered name or passes an instance through."""
    if isinstance(criterion, Criterion):
        return criterion
    factory = CRITERIA.get(criterion, argument="criterion")
    required = [
        p.name
        for p in inspect.signature(factory).parameters.values()
        if p.default is p.empty and p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD) and p.name not in options
    ]
    if required:  # e.g. a data-driven criterion named without its calibration data
        raise ConfigError(
            f"criterion {criterion!r} cannot be made from its name alone (it needs {', '.join(required)}); "
            f"data-driven criteria need calibration batches: pass get_criterion({criterion!r}, data=batches), "
            "or prune through a recipe that gives them",
            module="criterion",
        )
    return factory(**options)


def member_views(model: nn.Module, member: Member) -> list[torch.Tensor]:
    """Per-position views (rows = this member's positions) of the member's parameters."""
    idx = torch.as_tensor(member.positions, dtype=torch.long)
    return [v.index_select(0, idx.to(v.device)) for v in _all_rows(model, member)]


def member_row_scores(
    model: nn.Module, member: Member, fn: Callable[[torch.Tensor], torch.Tensor]
) -> np.ndarray | None:
    """``sum over the member's views of fn(view)`` at the member's positions, as float64, or
    ``None`` if the member has no weights.

    ``fn`` maps a (rows, -1) view to one value per row, so it runs on the whole view and only
    the scores are indexed: no copy of the member's rows, as :func:`member_views` makes.
    """
    views = _all_rows(model, member)
    if not views:
        return None
    values = _as_float64(fn(_as_float32(views[0])))
    for v in views[1:]:  # summed in numpy: a layer's few views are small, torch's per-op cost is not
        values += _as_float64(fn(_as_float32(v)))
    if member.covers_all(len(values)):
        return values
    return values[member.positions]


def _as_float32(t: torch.Tensor) -> torch.Tensor:
    return t if t.dtype == torch.float32 else t.float()


def _as_float64(t: torch.Tensor) -> np.ndarray:
    """A float64 copy of a row-score tensor, in numpy."""
    return (t if t.device.type == "cpu" else t.cpu()).numpy().astype(np.float64)


def _all_rows(model: nn.Module, member: Member) -> list[torch.Tensor]:
    """Views of all the member's tensors with the member's dim first, shape (size, -1)."""
    if member.role == "param":
        owner, _, attr = member.key.tensor.rpartition(".")
        t = getattr(submodule(model, owner), attr)
        if not isinstance(t, nn.Parameter):
            return []
        views = [t.detach().movedim(member.key.dim, 0).reshape(t.shape[member.key.dim], -1)]
    else:
        module = submodule(model, member.module)
        rule = get_rule(type(module))
        if rule is None:  # members only come from modules that have rules
            raise TypeError(f"internal: member {member.module!r} has no layer rule")
        views = rule.position_views(module, member.role)
    return views


def reduce_to_channels(group: Group, per_member: list[tuple[Member, np.ndarray]], reduction: str) -> np.ndarray:
    """Combines per-position member scores into one score per group channel."""
    if reduction == "max":
        best = np.full(group.size, -np.inf)
        for member, values in per_member:
            np.maximum.at(best, member.channels, values)
        return np.where(np.isfinite(best), best, 0.0)
    total = np.zeros(group.size)
    count = np.zeros(group.size)
    for member, values in per_member:
        ch = member.channels
        if len(ch) == group.size > 0 and member.channels_are_identity:  # the common case: one position per channel
            total += values
            count += 1
        else:  # bincount: one pass, where np.add.at is an unbuffered loop
            total += np.bincount(ch, weights=values, minlength=group.size)
            count += np.bincount(ch, minlength=group.size)
    return total if reduction == "sum" else total / np.maximum(count, 1)
