"""prunekit's own versioned pruning config: validated frozen dataclasses (the pruning options of
:class:`~prunekit.engine.PruneOptions` plus the schedule) and a YAML loader. Recipes built from a
config, and Distiller's schema, are in :mod:`prunekit.recipes` and :mod:`prunekit.compat.distiller`."""

import importlib
import warnings
from typing import Any

from prunekit.config.loader import config_to_dict, dump_config, load_config
from prunekit.config.schema import CONFIG_VERSION, SCHEDULE_KINDS, Override, PruneConfig, ScheduleConfig, kind_fields

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


# Names that moved up a layer in 0.1 (issue 10); importing them from here still works, with a
# DeprecationWarning that names their new home. Resolved by name on first use, so that this
# package never imports the layers above it.
_MOVED = {
    "load_recipe": "prunekit.recipes",
    "recipe_from_options": "prunekit.recipes",
    "parse_distiller": "prunekit.compat.distiller",
    "DistillerSchedule": "prunekit.compat.distiller",
}


def __getattr__(name: str) -> Any:
    if name in _MOVED:
        warnings.warn(
            f"prunekit.config.{name} moved to {_MOVED[name]}.{name}; import it from there",
            DeprecationWarning,
            stacklevel=2,
        )
        return getattr(importlib.import_module(_MOVED[name]), name)
    raise AttributeError(f"module 'prunekit.config' has no attribute {name!r}")
