"""``PruningScheduler``: gradual pruning driven by a schedule, called from the user's own loop.

    >>> sched = PruningScheduler("agp", options=dict(initial=0.0, final=0.5, start=0, end=1000,
    ...                                               frequency=100))
    >>> for step, (x, y) in enumerate(loader):
    ...     sched.step(model, example_inputs, step)     # prunes when the target rises
    ...     loss(model(x), y).backward(); opt.step(); opt.zero_grad()
    ...     sched.after_optimizer_step(model)           # masked mode: keep zeroed weights zero
    >>> sched.finalize(model)                           # masked mode: thin physically once

Two modes:

* ``mode="masked"`` (default, soft pruning): at each step where the target rises the masks are
  recomputed at the target with :func:`prunekit.mask_` (channels already zeroed score lowest, so
  they stay chosen); :meth:`after_optimizer_step` re-applies the latest masks and
  :meth:`finalize` removes the masked channels once, at the end. Shapes never change during
  training, so the optimizer can be kept.
* ``mode="physical"``: each time the target rises the model is cut with :func:`prunekit.prune_`
  by the fraction of what remains that brings the ORIGINAL channel count to the target,
  ``(s_t - s_prev) / (1 - s_prev)``. Parameters are replaced, so **the optimizer (and any LR
  scheduler holding it) must be created again** whenever ``StepResult.rebuild_optimizer`` is True.

The state is the last applied target and, in physical mode, the sparsity actually reached
(:meth:`state_dict` / :meth:`load_state_dict`).

Note:
    Channel counts are whole numbers (``prune_`` floors), so a physical cut can fall short of its
    target; the next fraction is computed from the sparsity actually reached, measured as
    ``channels_removed / channels_total`` of each cut's report and compounded, so that small
    shortfalls are caught up instead of accumulating. That measure counts the groups excluded
    by ``ignore`` or ``exact_only`` as prunable, so with those options the final count can
    overshoot slightly.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
import torch.nn as nn

from prunekit.errors import ConfigError
from prunekit.schedules.functions import check_fraction, check_step
from prunekit.schedules.registry import SCHEDULES

if TYPE_CHECKING:
    from prunekit.criteria.base import Criterion

__all__ = ["PruningScheduler", "StepResult", "MODES", "config_kwargs"]

MODES = ("masked", "physical")
_EPS = 1e-12


@dataclass(frozen=True)
class StepResult:
    """What :meth:`PruningScheduler.step` did.

    Attributes:
        step: the step passed in.
        target: the schedule's sparsity at this step.
        pruned: True if masks were recomputed (masked) or channels were cut (physical).
        rebuild_optimizer: True after a physical cut: create the optimizer again.
        fraction: the fraction of the remaining channels removed by this call (physical).
        report: the :class:`~prunekit.PruneReport` of a physical cut, else None.
        masks: the current :class:`~prunekit.ChannelMasks` in masked mode, else None.
    """

    step: int
    target: float
    pruned: bool = False
    rebuild_optimizer: bool = False
    fraction: float = 0.0
    report: Any = None
    masks: Any = None


def config_kwargs(cfg: Any) -> dict[str, Any]:
    """The :class:`PruningScheduler` keyword arguments a :class:`~prunekit.config.PruneConfig` gives
    (all but ``mode``; the criterion by name, its options left to the caller)."""
    return dict(
        options=cfg.schedule.options(),
        criterion=cfg.criterion,
        scope=cfg.scope,
        ignore=cfg.ignore,
        round_to=cfg.round_to,
        exact_only=cfg.exact_only,
        overrides={o.pattern: o.sparsity for o in cfg.overrides} or None,
    )


class PruningScheduler:
    """Prunes a model gradually following a sparsity schedule.

    Args:
        schedule: a name in :data:`SCHEDULES` ("one_shot", "iterative", "agp") or a callable
            ``step -> sparsity``.
        options: the keyword arguments of the named schedule function (e.g. ``final``, ``start``).
        mode: "masked" (default) or "physical"; see the module docstring.
        criterion, scope, ignore, round_to, exact_only, max_group_sparsity: passed to
            :func:`prunekit.mask_` / :func:`prunekit.prune_` (``criterion`` may be an instance,
            e.g. a data-driven criterion built with its calibration data).
        overrides: per-module FINAL sparsities (see :func:`prunekit.prune_` for the
            precedence); at each step an override ``o`` follows the schedule scaled by
            ``o / final``, i.e. ``o * s_t / s_f`` (named schedules with a ``final`` only).
    """

    def __init__(
        self,
        schedule: str | Callable[[int], float],
        *,
        options: Mapping[str, Any] | None = None,
        mode: str = "masked",
        criterion: str | Criterion = "l1",
        scope: str = "local",
        ignore: Sequence[str] | None = None,
        round_to: int = 1,
        exact_only: bool = False,
        max_group_sparsity: float = 0.9,
        overrides: dict[str, float | None] | None = None,
    ) -> None:
        if mode not in MODES:
            raise ConfigError(f"mode must be one of {MODES}, but got {mode!r}", module="mode")
        if isinstance(schedule, str):
            fn = SCHEDULES.get(schedule, argument="schedule")
            self._fn: Callable[[int], float] = functools.partial(fn, **dict(options or {}))
        elif callable(schedule):
            if options:
                raise ConfigError(
                    "options are only for a named schedule; bind them into the callable", module="options"
                )
            self._fn = schedule
        else:
            raise ConfigError(
                f"schedule must be a schedule name or a callable, but got {schedule!r}", module="schedule"
            )
        self.target(0)  # validate the options now, not at the first step
        self.final = float(dict(options or {}).get("final", 0.0))
        if overrides and (not isinstance(schedule, str) or self.final <= 0.0):
            raise ConfigError("overrides need a named schedule with final > 0 (they scale with it)", module="overrides")
        self.mode = mode
        self.prune_kwargs: dict[str, Any] = dict(
            criterion=criterion,
            scope=scope,
            ignore=ignore,
            round_to=round_to,
            exact_only=exact_only,
            max_group_sparsity=max_group_sparsity,
        )
        self.overrides = dict(overrides or {})
        self.sizes: dict[str, int] = {}  # physical, local scope: each group's original size
        self.applied = 0.0  # the last target acted on
        self.achieved = 0.0  # physical mode: fraction of the original channels actually removed
        self.masks: Any = None  # latest ChannelMasks (masked mode); rebuilt after a resume

    @classmethod
    def from_config(cls, cfg: Any, *, mode: str = "masked") -> PruningScheduler:
        """A scheduler for a :class:`~prunekit.config.PruneConfig` (its schedule, criterion and
        options; its overrides are final per-module sparsities, scaled along the schedule)."""
        from prunekit.config import PruneConfig

        if not isinstance(cfg, PruneConfig):
            raise ConfigError(f"cfg must be a PruneConfig, but got {type(cfg).__name__}", module="cfg")
        if cfg.target_macs is not None or cfg.target_params is not None:
            raise ConfigError(
                "a config with target_macs/target_params is one-shot: use prunekit.prune_ or "
                "prunekit.load_recipe, not PruningScheduler",
                module="target_macs" if cfg.target_macs is not None else "target_params",
            )
        from prunekit.criteria import get_criterion

        kwargs = config_kwargs(cfg)
        if cfg.criterion_options:
            kwargs["criterion"] = get_criterion(cfg.criterion, **cfg.criterion_options)
        return cls(cfg.schedule.kind, mode=mode, **kwargs)

    def target(self, step: int) -> float:
        """The schedule's sparsity at ``step`` (pure: no state is read or changed)."""
        value = self._fn(check_step(step, "step"))
        return check_fraction(value, "schedule value")

    def step(self, model: nn.Module, example_inputs: torch.Tensor | Sequence[torch.Tensor], step: int) -> StepResult:
        """Prunes ``model`` if the target at ``step`` is above the last applied sparsity."""
        import prunekit  # late import: prunekit imports this package lazily

        target = self.target(step)
        if self.mode == "masked":
            if target > self.applied + _EPS or (self.masks is None and self.applied > 0.0):
                # Also after load_state_dict: recompute the masks at the sparsity reached so far.
                level = max(target, self.applied)
                self.masks = prunekit.mask_(
                    model, example_inputs, sparsity=level, overrides=self._scaled(level, 0.0), **self.prune_kwargs
                )
                pruned = level > self.applied + _EPS
                self.applied = level
                return StepResult(step, target, pruned=pruned, masks=self.masks)
            return StepResult(step, target, masks=self.masks)
        if target <= self.applied + _EPS:
            return StepResult(step, target)
        # (s_t - s_prev) / (1 - s_prev) of what remains brings the ORIGINAL count to s_t.
        fraction = max(0.0, (target - self.achieved) / (1.0 - self.achieved))
        kwargs = dict(self.prune_kwargs)
        if kwargs["scope"] == "local":  # exact per-group counts, from each group's original size
            kwargs["group_sparsity"] = functools.partial(self._group_level, target=target)
        else:
            kwargs["overrides"] = self._scaled(target, self.applied)
        report = prunekit.prune_(model, example_inputs, sparsity=fraction, **kwargs)
        removed_now = report.channels_removed / max(report.channels_total, 1)
        self.achieved = 1.0 - (1.0 - self.achieved) * (1.0 - removed_now)
        self.applied = target
        return StepResult(step, target, pruned=True, rebuild_optimizer=True, fraction=fraction, report=report)

    def _group_level(self, group: Any, *, target: float) -> float | None:
        """Physical, local scope: the fraction of ``group``'s current channels to remove so that
        it keeps ``orig - removal_count(orig, level)`` of its original ``orig`` channels, with
        ``level`` the target (or the group's scaled override). No rounding error accumulates."""
        from prunekit.prune import _group_sparsity
        from prunekit.surgery.selection import removal_count

        key = ",".join(sorted({f"{m.module}:{m.role}" for m in group.members if m.role != "in"}))
        orig = self.sizes.setdefault(key, group.size)
        level = _group_sparsity(group, target, self._scaled(target, 0.0) or {})
        if level is None:
            return None
        keep = orig - removal_count(orig, level, round_to=self.prune_kwargs["round_to"])
        return max(0, group.size - keep) / group.size

    def _scaled(self, target: float, previous: float) -> dict[str, float | None] | None:
        """The overrides at ``target``: ``o * target / final`` (masked), or the fraction of what
        remains that takes ``o * previous / final`` there (physical, ``previous`` > 0)."""
        if not self.overrides:
            return None
        out: dict[str, float | None] = {}
        for key, o in self.overrides.items():
            if o is None:
                out[key] = None
                continue
            now, before = o * target / self.final, o * previous / self.final
            out[key] = min(max(0.0, (now - before) / (1.0 - before)), 0.999)
        return out

    def after_optimizer_step(self, model: nn.Module) -> None:
        """Masked mode: zeroes the masked weights again (call after every ``optimizer.step()``)."""
        if self.mode == "masked" and self.masks is not None:
            self.masks.apply_(model)

    def finalize(self, model: nn.Module) -> bool:
        """Masked mode: removes the masked channels physically, once. Returns True if it did."""
        if self.mode != "masked" or self.masks is None:
            return False
        self.masks.thin_(model)
        self.masks = None
        self.mode = "physical"  # the model now has its final shapes; no masks to keep
        return True

    def state_dict(self) -> dict[str, Any]:
        """The scheduler's state: the last applied target, the sparsity reached, and the mode."""
        return {"applied": self.applied, "achieved": self.achieved, "mode": self.mode, "sizes": dict(self.sizes)}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restores :meth:`state_dict`. In masked mode the next :meth:`step` rebuilds the masks."""
        unknown = set(state) - {"applied", "achieved", "mode", "sizes"}
        if unknown:
            raise ConfigError(f"state: unknown keys {sorted(unknown)}", module="state")
        self.applied = check_fraction(state.get("applied", 0.0), "applied")
        self.achieved = check_fraction(state.get("achieved", 0.0), "achieved")
        mode = state.get("mode", self.mode)
        if mode not in MODES:
            raise ConfigError(f"mode must be one of {MODES}, but got {mode!r}", module="mode")
        self.mode = mode
        self.sizes = {str(k): int(v) for k, v in dict(state.get("sizes", {})).items()}
        self.masks = None
