"""Budget search: the sparsity that meets a MACs or parameter target.

``cost(s)`` (the MACs or parameters left after pruning a copy at sparsity ``s``) falls as ``s``
rises, so the smallest ``s`` with ``cost(s) <= budget`` is found by bisection on [0, 0.95]
(10 halvings: a resolution of 0.001 in sparsity), tracing the graph once. Each trial plan is
applied in place and undone (no copy of the model), and its MACs come from a shape-only forward
(:func:`~prunekit.engine.macs.fast_macs_per_module`: no convolution is computed).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch.nn as nn

from prunekit.criteria import Criterion
from prunekit.engine.macs import fast_count_macs
from prunekit.engine.options import PruneOptions
from prunekit.engine.planning import plan_pruning
from prunekit.graph.dependency import DependencyGraph
from prunekit.metrics import count_params
from prunekit.surgery.apply import measure_plan

__all__ = ["search_sparsity", "bisect_budget", "MAX_SPARSITY"]

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

    return bisect_budget(cost, MAX_SPARSITY, budget, steps=10)[0]


def bisect_budget(cost: Callable[[float], float], high: float, budget: float, steps: int = 10) -> tuple[float, float]:
    """The smallest amount in [0, ``high``] with ``cost(amount) <= budget`` (``cost`` falls as
    the amount rises), and its cost; ``high`` and its cost when even that is over budget."""
    best, best_cost = high, cost(high)
    if best_cost > budget:
        return best, best_cost
    lo = 0.0
    for _ in range(steps):
        mid = (lo + best) / 2
        c = cost(mid)
        if c <= budget:
            best, best_cost = mid, c
        else:
            lo = mid
    return best, best_cost
