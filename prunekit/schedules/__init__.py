"""Sparsity schedules: pure functions of the step, a registry, and a thin scheduler."""

from prunekit.schedules.functions import agp_sparsity, iterative_sparsity, one_shot_sparsity
from prunekit.schedules.registry import SCHEDULES
from prunekit.schedules.scheduler import MODES, PruningScheduler, StepResult

__all__ = [
    "one_shot_sparsity",
    "iterative_sparsity",
    "agp_sparsity",
    "SCHEDULES",
    "PruningScheduler",
    "StepResult",
    "MODES",
]
