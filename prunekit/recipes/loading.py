"""``load_recipe`` and ``recipe_from_options``: from a schedule file or CLI options to a Recipe.

Two schemas are read, told apart by their top-level keys:

* prunekit's own (:class:`~prunekit.config.PruneConfig`: ``version``, ``criterion``,
  ``schedule``...) gives a :class:`~prunekit.recipes.ScheduleRecipe`;
* Distiller's (``pruners``, ``policies``, ``extensions``, ``lr_schedulers``...) gives a
  :class:`~prunekit.compat.distiller.DistillerRecipe`.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from prunekit.compat.distiller.recipe import DistillerRecipe
from prunekit.compat.distiller.schema import is_quantization_stats
from prunekit.config.loader import build_dataclass, load_config, parse_yaml, read_yaml_file, schedule_from
from prunekit.config.schema import PruneConfig
from prunekit.engine.options import AMOUNTS, PruneOptions
from prunekit.errors import ConfigError, option_error
from prunekit.recipes.schedule import ScheduleRecipe
from prunekit.schedules.recipe import Recipe

__all__ = ["load_recipe", "recipe_from_options", "DISTILLER_KEYS", "is_distiller"]

#: Top-level keys only Distiller's schema has (``version`` is shared, so it does not count).
DISTILLER_KEYS = ("pruners", "regularizers", "lr_schedulers", "extensions", "policies", "quantizers")


def is_distiller(data: Mapping[str, Any]) -> bool:
    """True if a parsed schedule uses Distiller's schema (any of :data:`DISTILLER_KEYS`)."""
    return any(k in data for k in DISTILLER_KEYS)


def _read(source: str | os.PathLike[str]) -> tuple[Any, str]:
    """Parses a path, or YAML text given as a string (a string with a newline or ``: ``)."""
    if isinstance(source, str) and ("\n" in source or (": " in source and not Path(source).is_file())):
        return parse_yaml(source, "<yaml text>"), "<yaml text>"
    # an empty schedule file is a mistake, not "prune 50% with L1" (the defaults)
    return read_yaml_file(source, what="schedule", allow_empty=False), str(source)


def load_recipe(source: str | os.PathLike[str] | Mapping[str, Any] | PruneConfig, *, mode: str | None = None) -> Recipe:
    """A :class:`~prunekit.schedules.Recipe` from a schedule in either schema.

    Args:
        source: a path to a YAML file, YAML text, a parsed mapping, or a :class:`PruneConfig`.
        mode: prunekit schema only: "masked" or "physical", overriding the config's ``mode``.

    Raises:
        ConfigError: with the dotted YAML path of the problem (see :func:`load_config` and
            :func:`prunekit.compat.distiller.schema.parse_distiller`).
    """
    if isinstance(source, PruneConfig):
        return ScheduleRecipe(source, mode=mode)
    if isinstance(source, Mapping):
        data, where = source, "<mapping>"
    elif isinstance(source, (str, os.PathLike)):
        data, where = _read(source)
    else:
        raise ConfigError(
            f"source must be a path, YAML text, a mapping or a PruneConfig, but got {type(source).__name__}",
            module="source",
        )
    data = {} if data is None else data
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where}: a schedule must be a mapping, but got {type(data).__name__}", module=where)
    if is_distiller(data) or is_quantization_stats(data):  # the latter is refused by parse_distiller
        if mode is not None:
            raise ConfigError(
                "mode: Distiller schedules say themselves when to thin (extensions); do not pass mode",
                module="mode",
            )
        return DistillerRecipe.from_mapping(data)
    return ScheduleRecipe(load_config(data), mode=mode)


def recipe_from_options(
    options: PruneOptions | None = None, *, schedule: str = "one_shot", mode: str = "physical", **kwargs: Any
) -> Recipe:
    """A :class:`~prunekit.recipes.ScheduleRecipe` from command-line style options.

    Args:
        options: the :class:`~prunekit.engine.PruneOptions`; keyword arguments named after its
            fields override it. Give ``sparsity`` (the schedule's final sparsity) or one of
            ``target_macs`` / ``target_params`` (one-shot only). ``overrides`` maps a module name
            or ``re:`` pattern to its final sparsity (``None`` keeps it).
        schedule: a registered schedule kind; the other keyword arguments are its
            :class:`~prunekit.config.ScheduleConfig` fields (``start``, ``end``, ``steps``,
            ``initial``, ``frequency``...); those the kind does not read are ignored.
        mode: "physical" (default: cut at each step, the usual choice for a one-shot prune
            followed by fine-tuning) or "masked".

    Raises:
        ConfigError: none or several of sparsity / target_macs / target_params, or any
            invalid field (the message names it).
    """
    option_names = [f.name for f in dataclasses.fields(PruneOptions)]
    values = {n: getattr(options, n) for n in option_names} if options is not None else {}
    values.update({k: v for k, v in kwargs.items() if k in option_names})
    given = [n for n in AMOUNTS if values.get(n) is not None]
    if len(given) != 1:
        raise option_error(
            "sparsity",
            f"give exactly one of sparsity, target_macs or target_params (or target_latency), but got {given or 'none'}",
        )
    sparsity = values.pop("sparsity", None)
    timing = {k: v for k, v in kwargs.items() if k not in option_names}
    sched = schedule_from({"kind": schedule, **timing, "final": sparsity or 0.0}, "schedule", lenient=True)
    cfg = build_dataclass(PruneConfig, {**values, "schedule": sched, "mode": mode}, "")
    return load_recipe(cfg)
