"""Sparsity schedules: pure functions of the step, a registry, a thin scheduler, and the Recipes
(prunekit's own schedules and Distiller's) that the training pipeline drives."""

from prunekit.schedules.functions import (
    agp_sparsity,
    distiller_agp_sparsity,
    iterative_sparsity,
    one_shot_sparsity,
)
from prunekit.schedules.recipe import Decision, LRSchedulerSpec, Recipe, RecipeEvent
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
    "Recipe",
    "RecipeEvent",
    "Decision",
    "LRSchedulerSpec",
    "ScheduleRecipe",
    "DistillerRecipe",
    "distiller_agp_sparsity",
]


def __getattr__(name: str):  # lazy: the recipes import the pruning engine
    if name == "ScheduleRecipe":
        from prunekit.schedules.schedule_recipe import ScheduleRecipe

        return ScheduleRecipe
    if name == "DistillerRecipe":
        from prunekit.compat.distiller.recipe import DistillerRecipe

        return DistillerRecipe
    raise AttributeError(f"module 'prunekit.schedules' has no attribute {name!r}")
