"""Sparsity schedules: pure functions of the step, a registry, a thin scheduler, and the
:class:`Recipe` interface that the training pipeline drives (prunekit's own recipe is
:class:`prunekit.recipes.ScheduleRecipe`, Distiller's :class:`prunekit.compat.distiller.DistillerRecipe`)."""

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
