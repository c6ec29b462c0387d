"""prunekit's own versioned pruning config: validated frozen dataclasses (the pruning options of
:class:`~prunekit.engine.PruneOptions` plus the schedule) and a YAML loader. Recipes built from a
config, and Distiller's schema, are in :mod:`prunekit.recipes` and :mod:`prunekit.compat.distiller`."""

from prunekit.config.loader import config_to_dict, dump_config, load_config
from prunekit.config.schema import CONFIG_VERSION, SCHEDULE_KINDS, Override, PruneConfig, ScheduleConfig, kind_fields
from prunekit.deprecation import moved_names

__all__ = [
    "PruneConfig",
    "ScheduleConfig",
    "Override",
    "CONFIG_VERSION",
    "SCHEDULE_KINDS",
    "kind_fields",
    "load_config",
    "config_to_dict",
    "dump_config",
]


# Names that moved up a layer in 0.1 (issue 10): still importable from here, with a
# DeprecationWarning naming their new home.
__getattr__ = moved_names(
    "prunekit.config",
    {
        "load_recipe": "prunekit.recipes",
        "recipe_from_options": "prunekit.recipes",
        "parse_distiller": "prunekit.compat.distiller",
        "DistillerSchedule": "prunekit.compat.distiller",
    },
)
