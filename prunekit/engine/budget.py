"""Budget search: the sparsity that meets a MACs or parameter target.

``cost(s)`` (the MACs or parameters left after pruning a copy at sparsity ``s``) falls as ``s``
rises, so the smallest ``s`` with ``cost(s) <= budget`` is found by bisection on [0, 0.95]
(10 halvings: a resolution of 0.001 in sparsity), tracing the graph once. Each trial plan is
applied in place and undone (no copy of the model), and its MACs come from a shape-only forward
(:func:`~prunekit.engine.macs.fast_macs_per_module`: no convolution is computed).
"""

from __future__ import annotations

from typing import Any

import torch.nn as nn

from prunekit.criteria import Criterion
from prunekit.engine.macs import fast_count_macs
from prunekit.engine.options import PruneOptions
from prunekit.engine.planning import plan_pruning
from prunekit.graph.dependency import DependencyGraph
from prunekit.metrics import count_params
from prunekit.surgery.apply import measure_plan

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
        plan = plan_pruning(model, graph, options, sparsity=s, criterion=criterion)
        if key == "target_params":
            return measure_plan(model, plan, lambda: count_params(model))
        return measure_plan(model, plan, lambda: fast_count_macs(model, inputs))

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
