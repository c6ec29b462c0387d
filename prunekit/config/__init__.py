"""Pruning configs: prunekit's own versioned schema (validated frozen dataclasses, a YAML loader)
and ``load_recipe``, which also reads Distiller's schedule files."""

from prunekit.compat.distiller.schema import DistillerSchedule, parse_distiller
from prunekit.config.loader import config_to_dict, dump_config, load_config
from prunekit.config.recipes import load_recipe, recipe_from_options
from prunekit.config.schema import CONFIG_VERSION, SCHEDULE_KINDS, Override, PruneConfig, ScheduleConfig

__all__ = [
    "PruneConfig",
    "ScheduleConfig",
    "Override",
    "CONFIG_VERSION",
    "SCHEDULE_KINDS",
    "load_config",
    "config_to_dict",
    "dump_config",
    "load_recipe",
    "recipe_from_options",
    "parse_distiller",
    "DistillerSchedule",
]
