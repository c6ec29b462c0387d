"""``SCHEDULES``: the registry of named sparsity schedules (pure functions of the step)."""

from __future__ import annotations

from collections.abc import Callable

from prunekit.registry import Registry
from prunekit.schedules.functions import agp_sparsity, iterative_sparsity, one_shot_sparsity

__all__ = ["SCHEDULES"]

SCHEDULES: Registry[Callable[..., float]] = Registry("schedule")
SCHEDULES.add("one_shot", one_shot_sparsity, description="all at once at step `at`")
SCHEDULES.add("iterative", iterative_sparsity, description="N equal linear steps from start to end")
SCHEDULES.add("agp", agp_sparsity, description="automated gradual pruning, cubic (Zhu & Gupta 2017)")
