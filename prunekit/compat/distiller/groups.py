"""From the weights a Distiller pruner lists to prunekit's coupled groups, and how they are told
apart from the groups' other members (for the "extend or strict" rule)."""

from __future__ import annotations

import copy
import difflib
import re
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn as nn

from prunekit.compat.distiller.schema import PrunerSpec
from prunekit.criteria.group_type import scoring_members
from prunekit.errors import ConfigError
from prunekit.graph.dependency import DependencyGraph
from prunekit.graph.groups import Group

__all__ = [
    "Target",
    "resolve_targets",
    "group_key",
    "coupling_message",
    "leader_scores",
    "leader_view",
    "check_leader",
    "check_targets",
    "check_parameter",
    "listed_layer",
    "producers_of",
]

_VERBS = {"add": "summed", "sub": "subtracted", "mul": "multiplied", "cat": "concatenated", "div": "divided"}


@dataclass
class Target:
    """A group a pruner cuts: the listed layers in it and the group's other prunable layers."""

    group: Group
    listed: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)


def group_key(group: Group) -> str:
    """A name for a group that survives cuts: its producing members (``module:role``)."""
    return ",".join(sorted({f"{m.module}:{m.role}" for m in group.members if m.role != "in"}))


def check_parameter(model: nn.Module, name: str, where: str) -> None:
    """Raises a ConfigError at ``where`` (with the closest name) if ``name`` is not a parameter."""
    params = [n for n, _ in model.named_parameters()]
    if name not in params:
        close = difflib.get_close_matches(name, params, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ConfigError(f"{where}: {name!r} is not a parameter of {type(model).__name__}{hint}", module=where)


def listed_layer(model: nn.Module, spec: PrunerSpec, i: int, weight: str) -> str:
    """The module owning ``spec.weights[i]``, checked: a weight matrix, and a Linear for ``Rows``.

    Raises:
        ConfigError: at ``weights[i]``, naming the parameter.
    """
    where = f"{spec.path}.weights[{i}]"
    check_parameter(model, weight, where)
    module, _, attr = weight.rpartition(".")
    layer = model.get_submodule(module)
    matrix = getattr(layer, "weight", None)
    if attr != "weight" or not isinstance(matrix, torch.Tensor) or matrix.dim() < 2:
        raise ConfigError(
            f"{where}: {spec.cls} ranks the weight matrix of a conv or linear layer, but got {weight!r}", module=where
        )
    if spec.group_type == "Rows" and not isinstance(layer, nn.Linear):
        raise ConfigError(
            f"{where}: group_type Rows is for Linear layers (their input features), but {module!r} is "
            f"{type(layer).__name__}; use Channels for a convolution's input channels",
            module=where,
        )
    return module


def resolve_targets(model: nn.Module, graph: DependencyGraph, spec: PrunerSpec) -> list[Target]:
    """The groups holding the listed layers' filters (``Filters``) or input channels (``Channels``,
    ``Rows``), in the order the weights are listed, each with its listed and missing layers.

    Raises:
        ConfigError: a name is not a parameter (with the closest name), not a layer's weight
            matrix, or its channels cannot be pruned (with the reason).
    """
    role = "out" if spec.group_type == "Filters" else "in"
    targets: dict[int, Target] = {}
    for i, weight in enumerate(spec.weights):
        module = listed_layer(model, spec, i, weight)
        groups = graph.groups_of(module, role)
        what = "filters" if role == "out" else "input channels"
        if not groups or not any(g.prunable for g in groups):
            reason = "; ".join(g.reason for g in groups if g.reason) or "no channel group holds them"
            where = f"{spec.path}.weights[{i}]"
            raise ConfigError(f"{where}: the {what} of {module!r} cannot be pruned: {reason}", module=where)
        for g in groups:
            if g.prunable:
                targets.setdefault(g.id, Target(g)).listed.append(module)
    for t in targets.values():
        layers = dict.fromkeys(m.module for m in scoring_members(model, t.group, spec.group_type))
        t.missing = [m for m in layers if m not in t.listed]
    return list(targets.values())


def _site(kind: str, where: str) -> str:
    match = re.fullmatch(r"'(.+)' in '(.*)'", where)
    return f"{match.group(2)} ({match.group(1)})" if match else f"{where.strip(chr(39))} ({kind})"


def coupling_message(target: Target, spec: PrunerSpec) -> str:
    """Names the listed and missing layers and the ops that couple them, e.g.
    ``layer1.0.conv2 and layer1.1.conv2 are summed at layer1.1 (add)``."""
    layers = f"{', '.join(target.listed)} (listed) and {', '.join(target.missing)} (not listed)"
    sites = target.group.coupling_sites
    if sites:
        kinds = list(dict.fromkeys(k for k, _ in sites))
        verb = " and ".join(_VERBS.get(k, f"coupled by {k}") for k in kinds)
        how = f"are {verb} at {', '.join(_site(k, w) for k, w in sites)}"
    elif spec.group_type == "Filters":
        how = "produce channels that are used together"
    else:
        how = "read the same channels"
    return f"{layers} {how}"


def leader_view(targets: list[Target], spec: PrunerSpec) -> Group:
    """The leader's group holding only the first listed layer's slices (Distiller's rule: a
    Leader group is ranked by the first listed weight alone, not by all its members)."""
    lead = targets[0].group
    module = spec.weights[0].rpartition(".")[0]
    role = "out" if spec.group_type == "Filters" else "in"
    members = [m for m in lead.members if m.module == module and m.role == role]
    if not members or len(members) == len(lead.members):
        return lead
    view = copy.copy(lead)
    view.members = members
    return view


def producers_of(graph: DependencyGraph, model: nn.Module, module: str) -> list[str]:
    """The layers with a weight matrix whose output channels ``module`` reads."""
    out: list[str] = []
    for g in graph.groups_of(module, "in"):
        for m in scoring_members(model, g, "Filters"):
            if m.module not in out:
                out.append(m.module)
    return out


def check_leader(targets: list[Target], spec: PrunerSpec) -> None:
    """Raises a ConfigError if a Leader pruner's groups differ in size from the leader's."""
    lead = targets[0]
    for t in targets[1:]:
        if t.group.size != lead.group.size:
            raise ConfigError(
                f"{spec.path}.group_dependency: Leader shares {lead.listed[0]}'s choice of channels, but "
                f"{t.listed[0]} has {t.group.size} channels and {lead.listed[0]} has {lead.group.size}; "
                "list layers of equal width under one Leader pruner",
                module=f"{spec.path}.group_dependency",
            )


def leader_scores(scores: dict[int, np.ndarray], targets: list[Target], spec: PrunerSpec) -> dict[int, np.ndarray]:
    """``group_dependency: Leader``: every group takes the first (leader) group's scores.

    Raises:
        ConfigError: a group differs in size from the leader's (the choice cannot be shared).
    """
    check_leader(targets, spec)
    lead = targets[0]
    return {t.group.id: scores[lead.group.id] for t in targets}


def check_targets(targets: list[Target], spec: PrunerSpec) -> None:
    """``strict: true`` with unlisted members in a group, or a Leader over unequal widths: errors."""
    for t in targets:
        if t.missing and spec.strict:
            raise ConfigError(
                f"{spec.path}.weights: {coupling_message(t, spec)}: list them together with group_dependency: "
                "Leader (or drop strict: true to extend the choice to the whole group)",
                module=f"{spec.path}.weights",
            )
    if spec.leader and len(targets) > 1:
        check_leader(targets, spec)
