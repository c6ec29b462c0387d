"""prunekit's own versioned pruning config: validated frozen dataclasses and a YAML loader."""

from prunekit.config.loader import config_to_dict, dump_config, load_config
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
]
