"""Sparsity schedules: pure functions of the step, a registry, a thin scheduler, and the
:class:`Recipe` interface that the training pipeline drives (prunekit's own recipe is
:class:`prunekit.recipes.ScheduleRecipe`, Distiller's :class:`prunekit.compat.distiller.DistillerRecipe`)."""

import importlib
import warnings
from typing import Any

from prunekit.schedules.functions import (
    agp_sparsity,
    distiller_agp_sparsity,
    iterative_sparsity,
    one_shot_sparsity,
)
from prunekit.schedules.recipe import Decision, LRSchedulerSpec, Recipe, RecipeEvent
from prunekit.schedules.registry import SCHEDULES
from prunekit.schedules.scheduler import MODES, PruningScheduler, StepResult, step_options

__all__ = [
    "one_shot_sparsity",
    "iterative_sparsity",
    "agp_sparsity",
    "SCHEDULES",
    "PruningScheduler",
    "StepResult",
    "MODES",
    "step_options",
    "Recipe",
    "RecipeEvent",
    "Decision",
    "LRSchedulerSpec",
    "distiller_agp_sparsity",
]


# Names that moved up a layer in 0.1 (issue 10); importing them from here still works, with a
# DeprecationWarning that names their new home. Resolved by name on first use, so that this
# package never imports the layers above it.
_MOVED = {
    "ScheduleRecipe": "prunekit.recipes",
    "DistillerRecipe": "prunekit.compat.distiller",
}


def __getattr__(name: str) -> Any:
    if name in _MOVED:
        warnings.warn(
            f"prunekit.schedules.{name} moved to {_MOVED[name]}.{name}; import it from there",
            DeprecationWarning,
            stacklevel=2,
        )
        return getattr(importlib.import_module(_MOVED[name]), name)
    raise AttributeError(f"module 'prunekit.schedules' has no attribute {name!r}")
