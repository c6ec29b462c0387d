"""prunekit's own pruning config: frozen dataclasses, validated at construction.

Each class checks its own fields and raises :class:`~prunekit.errors.ConfigError` whose message
starts with the field name (``final: must be in [0, 1), but got 1.2``); the YAML loader prefixes
the dotted path of the enclosing keys (``schedule.final: ...``).
"""

from __future__ import annotations

import difflib
import inspect
from dataclasses import dataclass, field
from typing import Any

from prunekit.engine.options import Override, PruneOptions
from prunekit.errors import ConfigError, option_error
from prunekit.regularizers.config import SparsifyConfig
from prunekit.schedules.registry import SCHEDULES

__all__ = ["CONFIG_VERSION", "SCHEDULE_KINDS", "ScheduleConfig", "Override", "PruneConfig", "kind_fields"]

CONFIG_VERSION = 1
SCHEDULE_KINDS = ("one_shot", "iterative", "agp")  # the built-in kinds; SCHEDULES holds every kind
MODES = ("masked", "physical")
# A schedule function's parameter -> the ScheduleConfig field that holds it (the rest by name).
PARAMETER_FIELDS = {"at": "start"}
STANDARD_FIELDS = ("final", "initial", "start", "end", "frequency", "steps")


def kind_fields(kind: str) -> tuple[str, ...]:
    """The YAML keys a schedule kind reads: ``kind`` and the keyword-only parameters of its
    function in :data:`~prunekit.schedules.SCHEDULES` (``at`` is written ``start``). A schedule a
    user registers is usable from YAML this way, its extra parameters kept in ``params``."""
    fn = SCHEDULES.get(kind, argument="kind")
    params = inspect.signature(fn).parameters.values()
    return ("kind", *(PARAMETER_FIELDS.get(p.name, p.name) for p in params if p.kind is p.KEYWORD_ONLY))


def _fail(name: str, message: str) -> ConfigError:
    return option_error(name, message)


def _fraction(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _fail(name, f"must be a number, but got {value!r} ({type(value).__name__})")
    if not 0.0 <= value < 1.0:  # not float(value): a 400-digit int would overflow
        raise _fail(name, f"must be in [0, 1), but got {value!r}")


MAX_STEP = 2**53  # the largest step count a float holds exactly


def _int(name: str, value: object, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _fail(name, f"must be an int, but got {value!r} ({type(value).__name__})")
    if value < minimum:
        raise _fail(name, f"must be >= {minimum}, but got {value!r}")
    if value > MAX_STEP:  # beyond int64, torch and numpy overflow deep inside a run
        raise _fail(name, f"must be <= {MAX_STEP}, but got {value!r}")


@dataclass(frozen=True)
class ScheduleConfig:
    """When and how far to prune; see :mod:`prunekit.schedules` for the formulas.

    Attributes:
        kind: a name in :data:`~prunekit.schedules.SCHEDULES`: "one_shot" (``final`` at step
            ``start``), "iterative" (``steps`` equal increments from ``start`` to ``end``), "agp"
            (Zhu & Gupta 2017, cubic from ``initial`` to ``final`` between ``start`` and ``end``,
            changing every ``frequency`` steps), or one a user registered.
        params: the parameters of a registered schedule that are not among the fields above.
    """

    kind: str = "one_shot"
    final: float = 0.5
    initial: float = 0.0
    start: int = 0
    end: int = 1
    frequency: int = 1
    steps: int = 1
    params: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in SCHEDULES:
            kinds = SCHEDULES.names()
            close = difflib.get_close_matches(str(self.kind), kinds, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise _fail("kind", f"unknown schedule kind {self.kind!r}{hint} Choices: {', '.join(kinds)}")
        reads = kind_fields(self.kind)
        for name in ("final", "initial"):
            _fraction(name, getattr(self, name))
        _int("start", self.start, 0)
        _int("end", self.end, 0)
        _int("frequency", self.frequency, 1)
        _int("steps", self.steps, 1)
        if "start" in reads and "end" in reads and self.end <= self.start:
            raise _fail("end", f"must be greater than start ({self.start}), but got {self.end!r}")
        if "initial" in reads and self.final < self.initial:
            raise _fail("final", f"must be >= initial ({self.initial}), but got {self.final!r}")
        extra = set(reads) - {"kind", *STANDARD_FIELDS}
        if not isinstance(self.params, dict) or set(self.params) - extra:
            raise _fail("params", f"schedule kind {self.kind!r} takes no parameters {sorted(set(self.params) - extra)}")
        if extra - set(self.params):
            raise _fail(sorted(extra - set(self.params))[0], f"schedule kind {self.kind!r} needs it")
        if self.params:
            try:  # a user schedule checks its own parameters
                self.sparsity(self.start)
            except (TypeError, ValueError) as e:
                raise _fail("params", f"schedule kind {self.kind!r} rejects {self.params}: {e}") from e

    def options(self) -> dict[str, Any]:
        """The keyword arguments of the schedule function in :data:`prunekit.schedules.SCHEDULES`."""
        out = {}
        for p in inspect.signature(SCHEDULES.get(self.kind)).parameters.values():
            if p.kind is p.KEYWORD_ONLY:
                name = PARAMETER_FIELDS.get(p.name, p.name)
                out[p.name] = getattr(self, name) if name in STANDARD_FIELDS else self.params[name]
        return out

    def sparsity(self, step: int) -> float:
        """The target sparsity at ``step``."""
        return SCHEDULES.get(self.kind)(step, **self.options())


@dataclass(frozen=True)
class PruneConfig(PruneOptions):
    """A pruning run as the YAML schema describes it: every :class:`~prunekit.engine.PruneOptions`
    field (each a top-level YAML key, except ``sparsity``, which is ``schedule.final`` here),
    plus the schema version, the schedule and the mode.

    Attributes:
        version: the schema version (only 1 exists).
        schedule: the :class:`ScheduleConfig`.
        mode: how a schedule prunes during training: "masked" (default: zero the channels,
            keep shapes, thin once at the end) or "physical" (cut at every step); see
            :class:`~prunekit.schedules.PruningScheduler`.

    Note:
        ``criterion`` must be a registered name here (a config is data). With ``target_macs``,
        ``target_params`` or ``target_latency`` (which also needs ``mode: physical``) the
        schedule must be one-shot and ``schedule.final`` is not used (the
        YAML loader rejects a written one). See :meth:`resolve_override` for the precedence of
        the overrides. ``sparsify`` is sparsity training before the prune (a
        :class:`~prunekit.regularizers.SparsifyConfig`), or ``None``.
    """

    version: int = field(default=CONFIG_VERSION, metadata={"help": "the schema version", "flag": None})
    schedule: ScheduleConfig = field(
        default_factory=ScheduleConfig, metadata={"help": "when and how far to prune", "flag": None}
    )
    mode: str = field(default="masked", metadata={"help": "mask during training, or cut at each step", "flag": None})
    sparsify: Any = field(
        default=None, metadata={"help": "sparsity training before the prune (a SparsifyConfig)", "flag": None}
    )

    def __post_init__(self) -> None:
        if isinstance(self.version, bool) or self.version != CONFIG_VERSION:
            raise _fail(
                "version", f"unsupported config version {self.version!r}; this prunekit reads version {CONFIG_VERSION}"
            )
        if not isinstance(self.criterion, str):
            raise _fail("criterion", f"must be a string, but got {self.criterion!r}")
        if self.sparsity is not None:
            raise _fail("sparsity", "a config gives the sparsity as schedule.final")
        super().__post_init__()
        if not isinstance(self.schedule, ScheduleConfig):
            raise _fail("schedule", f"must be a ScheduleConfig, but got {type(self.schedule).__name__}")
        if self.mode not in MODES:
            raise _fail("mode", f"must be 'masked' or 'physical', but got {self.mode!r}")
        if self.sparsify is not None and not isinstance(self.sparsify, SparsifyConfig):
            raise _fail("sparsify", f"must be a SparsifyConfig, but got {type(self.sparsify).__name__}")
        if self.target and self.schedule.kind != "one_shot":
            raise _fail(self.target[0], f"needs a one_shot schedule, but schedule.kind is {self.schedule.kind!r}")
        if self.target_latency is not None and self.mode != "physical":
            # the latency-aware allocation is per group, not one sparsity a mask could replay
            raise _fail("target_latency", f"needs mode: physical, but mode is {self.mode!r}")
        if self.allocation_candidates and (self.target is None or self.mode != "physical"):
            raise _fail(
                "allocation_candidates",
                "scores candidate cuts of one target, so it needs target_latency (or latency_allocation with "
                f"target_macs / target_params) and mode: physical; got target {self.target and self.target[0]}, "
                f"mode {self.mode!r}",
            )

    def resolve_override(self, module_name: str) -> float | None:
        """The final sparsity for ``module_name``.

        Precedence: an override with that exact name, then the first ``re:`` override whose
        regex fully matches, then the schedule's ``final``. ``None`` means: do not prune it.
        """
        return self.override_for(module_name, self.schedule.final)
