"""Distiller's ``fold_batchnorm`` pruner argument: rank convolutions with their BatchNorm folded in.

With ``args: {fold_batchnorm: true}`` on a pruner's policy, Distiller ranks a ``Conv2d`` followed
by a ``BatchNorm2d`` by the weights inference would run, ``W'[c] = W[c] * gamma[c] /
sqrt(running_var[c] + eps)`` (Jacob et al. 2018, eqs. 20-21), using the running statistics. Only
the ranking changes: the model's own weights are left as they are.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Iterator

import torch
import torch.nn as nn

from prunekit.graph.dependency import DependencyGraph

__all__ = ["conv_bn_pairs", "folded_batchnorm"]


def conv_bn_pairs(model: nn.Module, graph: DependencyGraph) -> list[tuple[str, str]]:
    """``(conv, bn)`` names: each ``Conv2d`` and the ``BatchNorm2d`` that normalises its output,
    i.e. the next BatchNorm in module order that holds the conv's output channels in its group."""
    modules = list(model.named_modules())
    pairs = []
    for i, (name, conv) in enumerate(modules):
        if not isinstance(conv, nn.Conv2d):
            continue
        group_members = {m.module for g in graph.groups_of(name, "out") for m in g.members if m.role == "out"}
        for later, bn in modules[i + 1 :]:
            if isinstance(bn, nn.Conv2d):
                break
            if isinstance(bn, nn.BatchNorm2d) and later in group_members and bn.num_features == conv.out_channels:
                pairs.append((name, later))
                break
    return pairs


@contextlib.contextmanager
@torch.no_grad()
def folded_batchnorm(model: nn.Module, graph: DependencyGraph, *, enabled: bool) -> Iterator[nn.Module]:
    """Yields ``model`` itself, or (``enabled``) a copy whose convolutions have their BatchNorm
    folded into the weights, for scoring; the model is never changed."""
    if not enabled:
        yield model
        return
    folded = copy.deepcopy(model)
    for conv_name, bn_name in conv_bn_pairs(model, graph):
        conv, bn = folded.get_submodule(conv_name), folded.get_submodule(bn_name)
        if not isinstance(conv, nn.Conv2d) or not isinstance(bn, nn.BatchNorm2d) or bn.running_var is None:
            continue  # conv_bn_pairs names only such pairs; a BatchNorm without running stats is skipped
        gamma = bn.weight if bn.affine else torch.ones_like(bn.running_var)
        scale = gamma / torch.sqrt(bn.running_var + bn.eps)
        conv.weight.mul_(scale.view(-1, 1, 1, 1))
    yield folded
