"""prunekit's own pruning config: frozen dataclasses, validated at construction.

Each class checks its own fields and raises :class:`~prunekit.errors.ConfigError` whose message
starts with the field name (``final: must be in [0, 1), but got 1.2``); the YAML loader prefixes
the dotted path of the enclosing keys (``schedule.final: ...``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from prunekit.errors import ConfigError

__all__ = ["CONFIG_VERSION", "SCHEDULE_KINDS", "ScheduleConfig", "Override", "PruneConfig"]

CONFIG_VERSION = 1
SCHEDULE_KINDS = ("one_shot", "iterative", "agp")
SCOPES = ("local", "global")
MODES = ("masked", "physical")
# Which ScheduleConfig fields each kind reads; the loader rejects the others.
KIND_FIELDS: dict[str, tuple[str, ...]] = {
    "one_shot": ("kind", "final", "start"),
    "iterative": ("kind", "final", "start", "end", "steps"),
    "agp": ("kind", "initial", "final", "start", "end", "frequency"),
}


def _fail(name: str, message: str) -> ConfigError:
    return ConfigError(f"{name}: {message}", module=name)


def _fraction(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _fail(name, f"must be a number, but got {value!r} ({type(value).__name__})")
    if not 0.0 <= float(value) < 1.0:
        raise _fail(name, f"must be in [0, 1), but got {value!r}")


def _int(name: str, value: object, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _fail(name, f"must be an int, but got {value!r} ({type(value).__name__})")
    if value < minimum:
        raise _fail(name, f"must be >= {minimum}, but got {value!r}")


@dataclass(frozen=True)
class ScheduleConfig:
    """When and how far to prune; see :mod:`prunekit.schedules` for the formulas.

    Attributes:
        kind: "one_shot" (``final`` at step ``start``), "iterative" (``steps`` equal increments
            from ``start`` to ``end``) or "agp" (Zhu & Gupta 2017, cubic from ``initial`` to
            ``final`` between ``start`` and ``end``, changing every ``frequency`` steps).
    """

    kind: str = "one_shot"
    final: float = 0.5
    initial: float = 0.0
    start: int = 0
    end: int = 1
    frequency: int = 1
    steps: int = 1

    def __post_init__(self) -> None:
        if self.kind not in SCHEDULE_KINDS:
            import difflib

            close = difflib.get_close_matches(str(self.kind), SCHEDULE_KINDS, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise _fail("kind", f"unknown schedule kind {self.kind!r}{hint} Choices: {', '.join(SCHEDULE_KINDS)}")
        for name in ("final", "initial"):
            _fraction(name, getattr(self, name))
        _int("start", self.start, 0)
        _int("end", self.end, 0)
        _int("frequency", self.frequency, 1)
        _int("steps", self.steps, 1)
        if self.kind != "one_shot" and self.end <= self.start:
            raise _fail("end", f"must be greater than start ({self.start}), but got {self.end!r}")
        if self.kind == "agp" and self.final < self.initial:
            raise _fail("final", f"must be >= initial ({self.initial}), but got {self.final!r}")

    def options(self) -> dict[str, Any]:
        """The keyword arguments of the schedule function in :data:`prunekit.schedules.SCHEDULES`."""
        if self.kind == "one_shot":
            return {"final": self.final, "at": self.start}
        return {k: getattr(self, k) for k in KIND_FIELDS[self.kind] if k != "kind"}

    def sparsity(self, step: int) -> float:
        """The target sparsity at ``step``."""
        from prunekit.schedules import SCHEDULES

        return SCHEDULES.get(self.kind)(step, **self.options())


@dataclass(frozen=True)
class Override:
    """A per-module sparsity.

    Attributes:
        pattern: an exact module name, or ``re:<regex>`` matched with ``re.fullmatch``.
        sparsity: the module's final sparsity in [0, 1), or ``None`` to leave it unpruned.
    """

    pattern: str
    sparsity: float | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.pattern, str) or not self.pattern or self.pattern == "re:":
            raise _fail("pattern", f"must be a module name or 're:<regex>', but got {self.pattern!r}")
        if self.pattern.startswith("re:"):
            try:
                re.compile(self.pattern[3:])
            except re.error as e:
                raise _fail("pattern", f"invalid regex {self.pattern[3:]!r}: {e}") from None
        if self.sparsity is not None:
            _fraction("sparsity", self.sparsity)

    @property
    def is_regex(self) -> bool:
        return self.pattern.startswith("re:")

    def matches(self, module_name: str) -> bool:
        if self.is_regex:
            return re.fullmatch(self.pattern[3:], module_name) is not None
        return module_name == self.pattern


@dataclass(frozen=True)
class PruneConfig:
    """A pruning run: criterion, scope, schedule and per-module overrides.

    Attributes:
        version: the schema version (only 1 exists).
        criterion: a name in :data:`prunekit.CRITERIA` (checked at construction).
        criterion_options: keyword arguments for the criterion.
        scope, round_to, ignore, exact_only: as in :func:`prunekit.prune_`.
        schedule: the :class:`ScheduleConfig`.
        overrides: per-module sparsities; see :meth:`resolve_override` for the precedence.
        mode: how a schedule prunes during training: "masked" (default: zero the channels,
            keep shapes, thin once at the end) or "physical" (cut at every step); see
            :class:`~prunekit.schedules.PruningScheduler`.
        target_macs: instead of the schedule's ``final``, the fraction in (0, 1] of the original
            MACs to keep (one-shot schedules only; see :func:`prunekit.prune_`).
        target_params: the same for the parameter count. Give at most one target; with a
            target, ``schedule.final`` is not used (the YAML loader rejects a written one).
        sparsify: sparsity training before the prune (a
            :class:`~prunekit.regularizers.config.SparsifyConfig`), or ``None``.
    """

    version: int = CONFIG_VERSION
    criterion: str = "l1"
    criterion_options: dict[str, Any] = field(default_factory=dict)
    scope: str = "local"
    round_to: int = 1
    ignore: tuple[str, ...] = ()
    exact_only: bool = False
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    overrides: tuple[Override, ...] = ()
    mode: str = "masked"
    target_macs: float | None = None
    target_params: float | None = None
    sparsify: Any = None  # a SparsifyConfig (typed Any: the schema does not import torch)

    def __post_init__(self) -> None:
        if isinstance(self.version, bool) or self.version != CONFIG_VERSION:
            raise _fail(
                "version", f"unsupported config version {self.version!r}; this prunekit reads version {CONFIG_VERSION}"
            )
        if not isinstance(self.criterion, str):
            raise _fail("criterion", f"must be a string, but got {self.criterion!r}")
        from prunekit.criteria import CRITERIA  # lazy: criteria import torch and their plugins

        if self.criterion not in CRITERIA:
            raise _fail("criterion", CRITERIA.unknown_message(self.criterion))
        if not isinstance(self.criterion_options, dict) or not all(isinstance(k, str) for k in self.criterion_options):
            raise _fail("criterion_options", f"must be a mapping with string keys, but got {self.criterion_options!r}")
        if self.scope not in SCOPES:
            raise _fail("scope", f"must be 'local' or 'global', but got {self.scope!r}")
        _int("round_to", self.round_to, 1)
        if not isinstance(self.ignore, tuple) or not all(isinstance(n, str) for n in self.ignore):
            raise _fail("ignore", f"must be a tuple of module names, but got {self.ignore!r}")
        if not isinstance(self.exact_only, bool):
            raise _fail("exact_only", f"must be true or false, but got {self.exact_only!r}")
        if not isinstance(self.schedule, ScheduleConfig):
            raise _fail("schedule", f"must be a ScheduleConfig, but got {type(self.schedule).__name__}")
        if not isinstance(self.overrides, tuple) or not all(isinstance(o, Override) for o in self.overrides):
            raise _fail("overrides", "must be a tuple of Override")
        seen: set[str] = set()
        for i, o in enumerate(self.overrides):
            if o.pattern in seen:
                raise _fail(f"overrides[{i}].pattern", f"duplicate pattern {o.pattern!r}")
            seen.add(o.pattern)
        if self.mode not in MODES:
            raise _fail("mode", f"must be 'masked' or 'physical', but got {self.mode!r}")
        targets = [n for n in ("target_macs", "target_params") if getattr(self, n) is not None]
        for name in targets:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 < float(value) <= 1.0:
                raise _fail(name, f"must be a fraction in (0, 1] of the original to keep, but got {value!r}")
        if len(targets) > 1:
            raise _fail("target_params", "give at most one of target_macs and target_params")
        if self.sparsify is not None:
            from prunekit.regularizers.config import SparsifyConfig  # lazy, like CRITERIA above

            if not isinstance(self.sparsify, SparsifyConfig):
                raise _fail("sparsify", f"must be a SparsifyConfig, but got {type(self.sparsify).__name__}")
        if targets and self.schedule.kind != "one_shot":
            raise _fail(targets[0], f"needs a one_shot schedule, but schedule.kind is {self.schedule.kind!r}")

    @property
    def target(self) -> tuple[str, float] | None:
        """``("target_macs", value)`` or ``("target_params", value)``, or None for a sparsity."""
        for name in ("target_macs", "target_params"):
            value = getattr(self, name)
            if value is not None:
                return name, float(value)
        return None

    def resolve_override(self, module_name: str) -> float | None:
        """The final sparsity for ``module_name``.

        Precedence: an override with that exact name, then the first ``re:`` override whose
        regex fully matches, then the schedule's ``final``. ``None`` means: do not prune it.
        """
        for o in self.overrides:
            if not o.is_regex and o.pattern == module_name:
                return o.sparsity
        for o in self.overrides:
            if o.is_regex and o.matches(module_name):
                return o.sparsity
        return self.schedule.final
