"""Budget search: the sparsity that meets a MACs or parameter target.

``cost(s)`` (the MACs or parameters left after pruning a copy at sparsity ``s``) falls as ``s``
rises, so the smallest ``s`` with ``cost(s) <= budget`` is found by bisection on [0, 0.95]
(10 halvings: a resolution of 0.001 in sparsity), tracing the graph once.
"""

from __future__ import annotations

import copy
from typing import Any

import torch.nn as nn

from prunekit.criteria import Criterion
from prunekit.engine.options import PruneOptions
from prunekit.engine.planning import plan_pruning
from prunekit.graph.dependency import DependencyGraph
from prunekit.metrics import count_params, macs_per_module
from prunekit.surgery.apply import apply_plan

__all__ = ["search_sparsity", "MAX_SPARSITY"]

MAX_SPARSITY = 0.95  # the most a budget search removes; the report shows what was reached


def search_sparsity(
    model: nn.Module,
    graph: DependencyGraph,
    inputs: Any,
    options: PruneOptions,
    *,
    key: str,
    budget: float,
    criterion: Criterion,
) -> float:
    """The smallest sparsity whose pruned copy has at most ``budget`` MACs (``key ==
    "target_macs"``) or parameters (``"target_params"``)."""

    def cost(s: float) -> int:
        trial = copy.deepcopy(model)
        apply_plan(trial, plan_pruning(trial, graph, options, sparsity=s, criterion=criterion))
        return count_params(trial) if key == "target_params" else macs_per_module(trial, inputs)[0]

    lo, hi = 0.0, MAX_SPARSITY
    if cost(hi) > budget:
        return hi
    for _ in range(10):
        mid = (lo + hi) / 2
        if cost(mid) <= budget:
            hi = mid
        else:
            lo = mid
    return hi
