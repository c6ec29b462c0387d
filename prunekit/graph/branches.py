"""Removable branches: groups whose channels may all go (the ``remove_branches`` option).

A residual block computes ``act(x + branch(x))``. Pruning the branch's inner channels thins it;
removing all of them removes the branch: with every inner channel zeroed, the layer that reads
them computes its bias at every position, so the branch becomes a constant ``c`` and the block
``act(x + c)``. That is depth pruning (dropping blocks, as in Veit et al., "Residual Networks
Behave Like Ensembles of Relatively Shallow Networks", NeurIPS 2016, who found single blocks of
a trained ResNet removable at little cost) expressed in prunekit's own terms: the pruned model
still computes exactly what the original computes with those channels zeroed. On small inputs,
where per-layer overhead rather than arithmetic sets the latency, it is the cut that makes a
model faster in step with its MACs.

A group may lose all its channels when (:func:`branch_blocker` says why not otherwise):

* it is exact, unlocked, unbalanced, and no op couples its channels with others (no add, cat,
  split, gate): they live only between the layers that make them and the layers that read them;
* its members are plain convolutions (``groups == 1``) or linear layers that make all their
  outputs in it (producers) or read all their inputs from it (consumers), and batch norms or
  depthwise convs in between, none with hooks or a patched ``forward``; there is at least one
  producer and one consumer;
* the model's outputs still depend on its inputs with the consumers' inputs cut: a path around
  the branch (the identity of a residual block) remains. :func:`keeps_data_path` checks this on
  the traced graph, for every set of groups removed together.

:mod:`prunekit.surgery.standins` has the layers that take the removed ones' places.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch.fx as fx
import torch.nn as nn

from prunekit.graph.dependency import DependencyGraph
from prunekit.graph.groups import Group
from prunekit.submodules import submodule

__all__ = ["branch_blocker", "removable_branches", "keeps_data_path", "consumers", "together", "JointCut"]

_MIXING = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)
_PLAIN = (*_MIXING, nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)


def _plain_type(module: nn.Module) -> type | None:
    """The torch layer type ``module`` computes as (a subclass that keeps its base's forward
    counts), or None."""
    for base in _PLAIN:
        if isinstance(module, base) and type(module).forward is base.forward:
            return base
    return None


def _mixes(module: nn.Module) -> bool:
    """A plain convolution with ``groups == 1`` or a linear layer: each output reads every input."""
    return _plain_type(module) in _MIXING and getattr(module, "groups", 1) == 1


def _member_blocker(model: nn.Module, group: Group, name: str, role: str) -> str | None:
    """Why member ``name``'s ``role`` cannot lose all its channels, or None."""
    if not name:
        return "the model itself is a member"
    module = submodule(model, name)
    base = _plain_type(module)
    if base is None or "forward" in vars(module):
        return f"'{name}' ({type(module).__name__}) is not a plain convolution, linear layer or batch norm"
    if module._forward_hooks or module._forward_pre_hooks:
        return f"'{name}' has forward hooks"
    if base is nn.Linear or (issubclass(base, nn.modules.conv._ConvNd) and module.groups == 1):
        size = module.out_features if base is nn.Linear else module.out_channels
        if role == "in":
            size = module.in_features if base is nn.Linear else module.in_channels
        held = sum(len(m.positions) for m in group.members if m.module == name and m.role == role)
        if held != size:
            return f"'{name}' holds other channels than the group's"
        return None
    if issubclass(base, nn.modules.conv._ConvNd):
        if module.groups == module.in_channels == module.out_channels:  # depthwise: per channel
            return None
        return f"'{name}' is a grouped convolution"
    return None  # a batch norm: per channel


def consumers(model: nn.Module, group: Group) -> set[str]:
    """The mixing layers (plain conv or linear) that read the group's channels."""
    return {m.module for m in group.members if m.role == "in" and _mixes(submodule(model, m.module))}


def branch_blocker(model: nn.Module, group: Group) -> str | None:
    """Why ``group`` cannot lose all its channels on structural grounds, or None (the data path
    is checked separately, :func:`keeps_data_path`)."""
    if group.size < 1 or group.locked.any():
        return "some channels are locked"
    if not group.exact or group.cells:
        return "removal is inexact or balanced across cells"
    coupled = group.couplings - {"depthwise"}
    if coupled:
        return f"its channels are coupled ({', '.join(sorted(coupled))})"
    producers = 0
    for m in group.members:
        if m.role == "param":
            return f"a bare parameter holds its channels ({m})"
        why = _member_blocker(model, group, m.module, m.role)
        if why:
            return why
        if m.role == "out" and _mixes(submodule(model, m.module)):
            producers += 1
    if not producers or not consumers(model, group):
        return "it has no layer that makes its channels or none that reads them"
    return None


def keeps_data_path(graph: DependencyGraph, cut: Iterable[str]) -> bool:
    """True when every output of the traced graphs that depends on the model's inputs still
    does once the layers in ``cut`` no longer read theirs (each graph the analysis ran; a layer
    with no recorded input node cannot be judged: False)."""
    cut = set(cut)
    blocked: set[fx.Node] = set()
    for name in cut:
        nodes = graph.input_nodes.get(name)
        if not nodes:
            return False
        blocked.update(nodes)
    graphs = {n.graph for n in blocked}
    return all(_outputs_reached(g, blocked) == _outputs_reached(g, set()) for g in graphs)


def _outputs_reached(graph: fx.Graph, blocked: set[fx.Node]) -> tuple[bool, ...]:
    """For each input node of the graph's output, whether a placeholder reaches it without
    passing through a ``blocked`` node."""
    seen: set[fx.Node] = set()
    todo = [n for n in graph.nodes if n.op == "placeholder"]
    seen.update(todo)
    while todo:
        node = todo.pop()
        for user in node.users:
            if user not in seen and user not in blocked:
                seen.add(user)
                todo.append(user)
    out = next(n for n in reversed(graph.nodes) if n.op == "output")
    return tuple(n in seen for n in out.all_input_nodes)


def removable_branches(graph: DependencyGraph, model: nn.Module, groups: Iterable[Group]) -> dict[int, set[str]]:
    """The groups of ``groups`` that may lose all their channels, each with its consumers (the
    layers that will return a constant); each one alone keeps the data path."""
    out: dict[int, set[str]] = {}
    for g in groups:
        if branch_blocker(model, g) is None:
            cut = consumers(model, g)
            if keeps_data_path(graph, cut):
                out[g.id] = cut
    return out


class JointCut:
    """The branches removed so far: :meth:`add` removes one more only if the data path still
    holds with it and every branch added before (two branches that are each other's way
    around, ``f(x) + g(x)``, cannot both go).

    Args:
        cuts: per removable group, its consumers (:func:`removable_branches`).
    """

    def __init__(self, graph: DependencyGraph, cuts: dict[int, set[str]]) -> None:
        self.graph, self.cuts = graph, cuts
        self.layers: set[str] = set()

    def add(self, gid: int) -> bool:
        """Adds group ``gid``'s branch when the data path holds with it; True if added."""
        if not keeps_data_path(self.graph, self.layers | self.cuts[gid]):
            return False
        self.layers |= self.cuts[gid]
        return True


def together(graph: DependencyGraph, order: Iterable[int], cuts: dict[int, set[str]]) -> list[int]:
    """The groups of ``order`` (most wanted first) that can be removed together (see
    :class:`JointCut`)."""
    joint = JointCut(graph, cuts)
    return [gid for gid in order if joint.add(gid)]
