"""Which members of a group a weight criterion reads: Distiller's ``group_type``.

A coupled group is one set of channels, so filter pruning and channel pruning remove the same
things; they differ in which weights rank them (Li et al. 2017 rank filters by the producing
layer's weights; channel pruning ranks a layer's input channels by its own input slices):

* ``"Filters"``: the producers' output slices, ``s_c = sum_{p} ||W_p[c, ...]||`` over the "out"
  members whose layer has a weight matrix (convolutions, linear layers; not BatchNorm);
* ``"Channels"``: the consumers' input slices, ``s_c = sum_{q} ||W_q[:, c, ...]||`` over the
  "in" members (the layers that read the channels);
* ``"Rows"``: a Linear layer's input features, i.e. its weight's columns: the same members as
  ``"Channels"``.

``None`` reads every member (prunekit's default for a group).
"""

from __future__ import annotations

import copy

import numpy as np
import torch.nn as nn

from prunekit.criteria.base import Criterion
from prunekit.errors import ConfigError
from prunekit.graph.groups import Group, Member

__all__ = ["GROUP_TYPES", "scoring_members", "restrict_group", "score_group"]

GROUP_TYPES = ("Filters", "Channels", "Rows")


def _has_matrix(model: nn.Module, member: Member) -> bool:
    weight = getattr(model.get_submodule(member.module), "weight", None)
    return weight is not None and weight.dim() >= 2


def scoring_members(model: nn.Module, group: Group, group_type: str | None) -> list[Member]:
    """The members of ``group`` that ``group_type`` scores (see the module docstring).

    Raises:
        ConfigError: an unknown ``group_type``.
    """
    if group_type is None:
        return list(group.members)
    if group_type not in GROUP_TYPES:
        raise ConfigError(f"group_type must be one of {GROUP_TYPES}, but got {group_type!r}", module="group_type")
    if group_type == "Filters":
        return [m for m in group.members if m.role == "out" and _has_matrix(model, m)]
    return [m for m in group.members if m.role == "in"]


def restrict_group(model: nn.Module, group: Group, group_type: str | None) -> Group:
    """A shallow copy of ``group`` holding only the members ``group_type`` scores.

    The copy has the same id, size, locks and cells; when no member qualifies (a group without
    a weight matrix on that side) the group is returned unchanged.
    """
    members = scoring_members(model, group, group_type)
    if not members or len(members) == len(group.members):
        return group
    view = copy.copy(group)
    view.members = members
    return view


def score_group(criterion: Criterion, model: nn.Module, group: Group, *, group_type: str | None = None) -> np.ndarray:
    """``criterion``'s scores of ``group``'s channels, read from the ``group_type`` members.

    Data-driven criteria read activations, which are the same whichever side is named: they
    score the whole group.
    """
    if getattr(criterion, "needs_data", False):
        return np.asarray(criterion.scores(model, group), dtype=np.float64)
    return np.asarray(criterion.scores(model, restrict_group(model, group, group_type)), dtype=np.float64)
