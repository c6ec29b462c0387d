"""Sparsity schedules: pure functions of the step, a registry, a thin scheduler, and the
:class:`Recipe` interface that the training pipeline drives (prunekit's own recipe is
:class:`prunekit.recipes.ScheduleRecipe`, Distiller's :class:`prunekit.compat.distiller.DistillerRecipe`)."""

from prunekit.deprecation import moved_names
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


# Names that moved up a layer in 0.1 (issue 10): still importable from here, with a
# DeprecationWarning naming their new home.
__getattr__ = moved_names(
    "prunekit.schedules",
    {
        "ScheduleRecipe": "prunekit.recipes",
        "DistillerRecipe": "prunekit.compat.distiller",
    },
)
