"""Recipes: what the training pipeline drives, epoch by epoch.

``schedule`` runs prunekit's own :class:`~prunekit.config.PruneConfig` (a
:class:`ScheduleRecipe`); ``loading`` reads a YAML file, a mapping or a config in prunekit's
schema or Distiller's (:func:`load_recipe`) and builds a recipe from keyword options
(:func:`recipe_from_options`).
"""

from prunekit.recipes.loading import is_distiller, load_recipe, recipe_from_options
from prunekit.recipes.schedule import ScheduleRecipe, decisions_from_state

__all__ = ["ScheduleRecipe", "decisions_from_state", "load_recipe", "recipe_from_options", "is_distiller"]
