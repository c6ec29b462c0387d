"""``load_recipe`` and ``recipe_from_options``: from a schedule file or CLI options to a Recipe.

Two schemas are read, told apart by their top-level keys:

* prunekit's own (:class:`~prunekit.config.PruneConfig`: ``version``, ``criterion``,
  ``schedule``...) gives a :class:`~prunekit.schedules.ScheduleRecipe`;
* Distiller's (``pruners``, ``policies``, ``extensions``, ``lr_schedulers``...) gives a
  :class:`~prunekit.schedules.DistillerRecipe`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from prunekit.compat.distiller.schema import is_quantization_stats
from prunekit.config.loader import _build, _parse_yaml, load_config
from prunekit.config.schema import Override, PruneConfig, ScheduleConfig
from prunekit.errors import ConfigError
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
        return _parse_yaml(source, "<yaml text>"), "<yaml text>"
    path = Path(source)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"{path}: cannot read the schedule: {e.strerror}", module=str(path)) from None
    return _parse_yaml(text, str(path)), str(path)


def load_recipe(source: str | os.PathLike[str] | Mapping[str, Any] | PruneConfig, *, mode: str | None = None) -> Recipe:
    """A :class:`~prunekit.schedules.Recipe` from a schedule in either schema.

    Args:
        source: a path to a YAML file, YAML text, a parsed mapping, or a :class:`PruneConfig`.
        mode: prunekit schema only: "masked" or "physical", overriding the config's ``mode``.

    Raises:
        ConfigError: with the dotted YAML path of the problem (see :func:`load_config` and
            :func:`prunekit.compat.distiller.schema.parse_distiller`).
    """
    from prunekit.schedules.schedule_recipe import ScheduleRecipe

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
        from prunekit.compat.distiller.recipe import DistillerRecipe

        if mode is not None:
            raise ConfigError(
                "mode: Distiller schedules say themselves when to thin (extensions); do not pass mode",
                module="mode",
            )
        return DistillerRecipe.from_mapping(data)
    return ScheduleRecipe(load_config(data), mode=mode)


def recipe_from_options(
    *,
    sparsity: float | None = None,
    target_macs: float | None = None,
    target_params: float | None = None,
    criterion: str = "l1",
    criterion_options: Mapping[str, Any] | None = None,
    scope: str = "local",
    round_to: int = 1,
    ignore: Sequence[str] = (),
    overrides: Mapping[str, float | None] | None = None,
    schedule: str = "one_shot",
    initial: float = 0.0,
    start: int = 0,
    end: int = 1,
    frequency: int = 1,
    steps: int = 1,
    mode: str = "physical",
) -> Recipe:
    """A :class:`~prunekit.schedules.ScheduleRecipe` from command-line style options.

    Give ``sparsity`` (the schedule's final sparsity) or one of ``target_macs`` /
    ``target_params`` (one-shot only). ``overrides`` maps a module name or ``re:`` pattern to its
    final sparsity (``None`` keeps it). The other arguments are the fields of
    :class:`PruneConfig` and :class:`ScheduleConfig`. ``mode`` defaults to "physical" (cut
    at each step), the usual choice for a one-shot prune followed by fine-tuning.

    Raises:
        ConfigError: none or several of sparsity / target_macs / target_params, or any
            invalid field (the message names it).
    """
    given = [
        n
        for n, v in (("sparsity", sparsity), ("target_macs", target_macs), ("target_params", target_params))
        if v is not None
    ]
    if len(given) != 1:
        raise ConfigError(
            f"give exactly one of sparsity, target_macs or target_params, but got {given or 'none'}",
            module="sparsity",
        )
    fields: dict[str, Any] = {"kind": schedule, "start": start}
    if schedule in ("iterative", "agp"):
        fields["end"] = end
    if schedule == "iterative":
        fields["steps"] = steps
    if schedule == "agp":
        fields.update(initial=initial, frequency=frequency)
    fields["final"] = sparsity if sparsity is not None else 0.0
    sched = _build(ScheduleConfig, fields, "schedule")
    cfg = _build(
        PruneConfig,
        dict(
            criterion=criterion,
            criterion_options=dict(criterion_options or {}),
            scope=scope,
            round_to=round_to,
            ignore=tuple(ignore),
            schedule=sched,
            overrides=tuple(
                _build(Override, {"pattern": k, "sparsity": v}, f"overrides[{k!r}]")
                for k, v in (overrides or {}).items()
            ),
            mode=mode,
            target_macs=target_macs,
            target_params=target_params,
        ),
        "",
    )
    return load_recipe(cfg)
