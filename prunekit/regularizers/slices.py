"""Differentiable per-channel slices of a coupled group: what every regularizer penalises.

A criterion reads detached views of a group's members (``LayerRule.position_views``). A
regularizer needs the same slices with gradients. Rather than teach every layer rule a second,
differentiable view, the rule's own view is computed once on a *shadow* of the module whose
parameters hold their flat element indices; the result is, for each member, a matrix of indices
into a real parameter. ``param.reshape(-1)[index]`` is then the member's (positions, -1) slice,
with gradients, for any layer a rule supports (grouped, depthwise, transposed convs included).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn

from prunekit.graph.groups import Group, Member
from prunekit.rules.base import get_rule

__all__ = ["Slice", "GroupSlices", "group_slices", "channel_sq_norms"]


@dataclass(frozen=True)
class Slice:
    """Where one member of a group keeps its channels in one parameter.

    Attributes:
        param: qualified parameter name (``model.get_parameter(param)``).
        index: (positions, k) long tensor of flat indices into the parameter.
        channels: (positions,) long tensor: the group channel each row holds.
        module: the member's module name; ``role`` its role ("out", "in" or "param").
    """

    param: str
    index: torch.Tensor
    channels: torch.Tensor
    module: str
    role: str


@dataclass(frozen=True)
class GroupSlices:
    """A group's id, size, locked channels and all its member slices."""

    group_id: int
    size: int
    locked: np.ndarray
    slices: tuple[Slice, ...]


def _member_slices(model: nn.Module, member: Member) -> list[Slice]:
    idx = torch.as_tensor(member.positions, dtype=torch.long)
    channels = torch.as_tensor(member.channels, dtype=torch.long)
    if member.role == "param":
        name, dim = member.key.tensor, member.key.dim
        p = model.get_parameter(name)
        flat = torch.arange(p.numel()).reshape(p.shape).movedim(dim, 0).reshape(p.shape[dim], -1)
        return [Slice(name, flat.index_select(0, idx), channels, member.module, member.role)]
    module = model.get_submodule(member.module)
    rule = get_rule(type(module))
    if rule is None:  # members only come from modules that have rules
        raise TypeError(f"internal: member {member.module!r} has no layer rule")
    # the shadow's parameters hold "offset + flat index"; offsets tell the parameters apart
    shadow = copy.copy(module)
    shadow._parameters = {}  # a fresh table for the shadow
    ranges: list[tuple[int, int, str]] = []
    offset = 0
    for pname, param in list(module._parameters.items()):
        if param is None:
            shadow._parameters[pname] = None  # type: ignore[assignment]
            continue
        values = torch.arange(offset, offset + param.numel(), dtype=torch.float64).reshape(param.shape)
        shadow._parameters[pname] = nn.Parameter(values, requires_grad=False)
        ranges.append((offset, offset + param.numel(), pname))
        offset += param.numel()
    prefix = f"{member.module}." if member.module else ""
    out = []
    for view in rule.position_views(shadow, member.role):
        if view.numel() == 0:
            continue
        flat = view.index_select(0, idx).long()
        first = int(flat.min())
        start, _, pname = next(r for r in ranges if r[0] <= first < r[1])
        out.append(Slice(prefix + pname, flat - start, channels, member.module, member.role))
    return out


def group_slices(model: nn.Module, group: Group) -> GroupSlices:
    """The differentiable slices of every member of ``group`` (see the module docstring)."""
    slices = [s for member in group.members for s in _member_slices(model, member)]
    return GroupSlices(group.id, group.size, group.locked.copy(), tuple(slices))


def channel_sq_norms(
    params: Mapping[str, torch.Tensor], group: GroupSlices, *, roles: tuple[str, ...] = ("out", "in", "param")
) -> torch.Tensor:
    """``s_c = sum_m ||W_m[c]||_2^2``: per group channel, the squared norm of every slice holding it.

    Args:
        params: ``dict(model.named_parameters())``.
        group: from :func:`group_slices`.
        roles: the member roles counted (all by default).
    """
    device = next(iter(params.values())).device if params else torch.device("cpu")
    total = torch.zeros(group.size, device=device)
    for s in group.slices:
        if s.role not in roles:
            continue
        p = params[s.param]
        rows = p.reshape(-1)[s.index.to(p.device)].float().pow(2).sum(dim=1)
        total = total.index_add(0, s.channels.to(p.device), rows)
    return total
