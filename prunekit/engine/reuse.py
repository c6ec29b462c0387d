"""Reusing a traced graph across cuts: the graph of a pruned model, derived without tracing.

Channels keep their identity (root atom) through a cut: the groups of the pruned model are the
groups of the original with the removed channels left out. For every group, the kept channels
are renumbered in order; for every member, the kept positions are renumbered along the member's
dim (across all the groups it spans, e.g. a conv's input after a cat). Locks, couplings,
reasons and balanced cells carry over (a balanced cut removes the same fraction of every cell,
so the cells stay balanced). A schedule of N cuts thus traces once instead of N times.

Note:
    The derived graph is only valid for the model the plan was applied to; :func:`shape_key`
    lets a caller check that the model still has the shapes the graph describes before reusing
    it. A cut can also change how a layer rule reads a layer (a grouped conv left with one
    input channel per group is depthwise, whose input and output channels are one): compare
    :func:`rule_views` before and after the cut, and trace again when they differ.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import torch.nn as nn

from prunekit.channels import MemberKey
from prunekit.graph.dependency import DependencyGraph
from prunekit.graph.groups import Group
from prunekit.inputs import as_example_inputs
from prunekit.rules.base import get_rule
from prunekit.surgery.plan import PrunePlan, removed_mask

__all__ = ["pruned_graph", "shape_key", "rule_views"]


def shape_key(model: nn.Module, inputs: Any) -> tuple:
    """What a graph depends on besides the model's code: its tensors' shapes and the inputs'
    (every tensor of the inputs, in any form :mod:`prunekit.inputs` takes)."""
    tensors = [(n, tuple(t.shape)) for n, t in model.state_dict(keep_vars=True).items()]
    shapes = tuple((tuple(x.shape), x.dtype) for x in as_example_inputs(inputs).tensors())
    return (id(model), tuple(tensors), shapes)


def rule_views(model: nn.Module, plan: PrunePlan) -> dict[str, tuple]:
    """How the layer rules read each layer ``plan`` cuts: whether it mixes its inputs and which
    tensors hold each role's channels. Equal before and after a cut means the graph's channel
    model of those layers still holds."""
    views = {}
    for name in plan.module_keep:
        m = model.get_submodule(name)
        rule = get_rule(type(m))
        if rule is not None:
            roles = tuple(tuple(rule.role_tensors(m, r)) for r in rule.roles)
            views[name] = (type(m), rule.mixes_inputs(m), roles)
    return views


def pruned_graph(graph: DependencyGraph, plan: PrunePlan) -> DependencyGraph:
    """The dependency graph of the model after ``plan`` was applied, without tracing again."""
    if not plan.removed:
        return graph
    removed = np.concatenate([graph.groups[gid].roots[ch] for gid, ch in plan.removed.items()])
    old_roots = graph.member_roots()
    gone = removed_mask(removed, [*old_roots.values(), *(g.roots for g in graph.groups)])
    kept_pos: dict[MemberKey, np.ndarray] = {}
    new_pos: dict[MemberKey, np.ndarray] = {}
    for key, roots in old_roots.items():
        keep = ~gone[roots]
        kept_pos[key] = keep
        new_pos[key] = np.cumsum(keep) - 1
    groups = [_pruned_group(g, gone, kept_pos, new_pos) for g in graph.groups]
    member_roots = {key: roots[kept_pos[key]] for key, roots in old_roots.items()}
    return graph.replaced(groups, member_roots)


def _pruned_group(
    g: Group, gone: np.ndarray, kept_pos: dict[MemberKey, np.ndarray], new_pos: dict[MemberKey, np.ndarray]
) -> Group:
    keep = ~gone[g.roots]
    if keep.all():
        return g
    new_idx = np.cumsum(keep) - 1
    members = []
    for m in g.members:
        sel = kept_pos[m.key][m.positions]
        members.append(
            dataclasses.replace(m, positions=new_pos[m.key][m.positions[sel]], channels=new_idx[m.channels[sel]])
        )
    cells = None
    if g.cells is not None:
        cells = [new_idx[c[keep[c]]] for c in g.cells]
        cells = [c for c in cells if len(c)]
    return dataclasses.replace(
        g,
        size=int(keep.sum()),
        members=members,
        locked=g.locked[keep],
        lock_reasons=list(g.lock_reasons),
        inexact_reasons=list(g.inexact_reasons),
        couplings=set(g.couplings),
        coupling_sites=list(g.coupling_sites),
        cells=cells,
        roots=g.roots[keep],
    )
