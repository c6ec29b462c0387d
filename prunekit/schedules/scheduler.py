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

The model is traced once: masking keeps every shape, so later steps reuse the graph, and after a
physical cut the graph of the pruned model is derived from the cut
(:func:`~prunekit.engine.pruned_graph`). The graph is reused only while the model and the
example inputs have the shapes it was made for (:func:`~prunekit.engine.shape_key`) and no cut
changed how a layer rule reads a layer (a grouped conv turned depthwise); anything else
(another model, a layer replaced by hand, a resume) traces again.

Note:
    Channel counts are whole numbers (``prune_`` floors), so a physical cut can fall short of its
    target; the next fraction is computed from the sparsity actually reached, measured as
    ``channels_removed / channels_total`` of each cut's report and compounded, so that small
    shortfalls are caught up instead of accumulating. That measure counts the groups excluded
    by ``ignore`` or ``exact_only`` as prunable, so with those options the final count can
    overshoot slightly.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch.nn as nn

from prunekit.engine import Override, PruneOptions, analyse, group_sparsity, resolve_options, shape_key
from prunekit.engine.options import AMOUNTS, round_multiple
from prunekit.errors import ConfigError
from prunekit.graph.dependency import DependencyGraph
from prunekit.inputs import InputsLike, as_example_inputs
from prunekit.masks import mask_
from prunekit.prune import prune_step_
from prunekit.schedules.functions import check_fraction, check_step
from prunekit.schedules.registry import SCHEDULES
from prunekit.surgery.selection import removal_count

__all__ = ["PruningScheduler", "StepResult", "MODES", "EPS", "step_options"]

MODES = ("masked", "physical")
EPS = 1e-12  # targets closer than this count as equal


def step_options(options: PruneOptions) -> PruneOptions:
    """The :class:`~prunekit.engine.PruneOptions` part of ``options`` (a ``PruneConfig`` too),
    without an amount: what every step of a schedule prunes with."""
    fields = {f.name: getattr(options, f.name) for f in dataclasses.fields(PruneOptions)}
    fields.update(dict.fromkeys(AMOUNTS))
    return PruneOptions(**fields)


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


class PruningScheduler:
    """Prunes a model gradually following a sparsity schedule.

    Args:
        schedule: a name in :data:`SCHEDULES` ("one_shot", "iterative", "agp") or a callable
            ``step -> sparsity``.
        options: the keyword arguments of the named schedule function (e.g. ``final``, ``start``).
        mode: "masked" (default) or "physical"; see the module docstring.
        prune_options: the :class:`~prunekit.engine.PruneOptions` of every step (its
            ``sparsity`` and targets must be unset: the schedule sets the sparsity); keyword
            arguments (``criterion``, ``scope``, ``ignore``, ``round_to``, ``exact_only``,
            ``max_group_sparsity``, ``overrides``...) override it. ``criterion`` may be an
            instance, e.g. a data-driven criterion built with its calibration data.
            The overrides are per-module FINAL sparsities (see :func:`prunekit.prune_` for the
            precedence); at each step an override ``o`` follows the schedule scaled by
            ``o / final``, i.e. ``o * s_t / s_f`` (named schedules with a ``final`` only).
    """

    def __init__(
        self,
        schedule: str | Callable[[int], float],
        *,
        options: Mapping[str, Any] | None = None,
        mode: str = "masked",
        prune_options: PruneOptions | None = None,
        **kwargs: Any,
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
        self.prune_options = resolve_options(prune_options, **kwargs)
        if self.prune_options.sparsity is not None or self.prune_options.target is not None:
            raise ConfigError("the schedule sets the sparsity: give no sparsity or target", module="prune_options")
        if self.prune_options.overrides and (not isinstance(schedule, str) or self.final <= 0.0):
            raise ConfigError("overrides need a named schedule with final > 0 (they scale with it)", module="overrides")
        self.mode = mode
        self.sizes: dict[str, int] = {}  # physical, local scope: each group's original size
        self.applied = 0.0  # the last target acted on
        self.achieved = 0.0  # physical mode: fraction of the original channels actually removed
        self.masks: Any = None  # latest ChannelMasks (masked mode); rebuilt after a resume
        self._graph: tuple[tuple, DependencyGraph] | None = None  # (shape_key, graph), not state

    @classmethod
    def from_config(cls, cfg: PruneOptions, *, mode: str = "masked") -> PruningScheduler:
        """A scheduler for a :class:`~prunekit.config.PruneConfig` (its schedule, criterion and
        options; its overrides are final per-module sparsities, scaled along the schedule)."""
        schedule = getattr(cfg, "schedule", None)
        if not isinstance(cfg, PruneOptions) or schedule is None:
            raise ConfigError(f"cfg must be a PruneConfig, but got {type(cfg).__name__}", module="cfg")
        if cfg.target is not None:
            raise ConfigError(
                "a config with target_macs/target_params is one-shot: use prunekit.prune_ or "
                "prunekit.load_recipe, not PruningScheduler",
                module=cfg.target[0],
            )
        return cls(schedule.kind, options=schedule.options(), mode=mode, prune_options=step_options(cfg))

    def target(self, step: int) -> float:
        """The schedule's sparsity at ``step`` (pure: no state is read or changed)."""
        value = self._fn(check_step(step, "step"))
        return check_fraction(value, "schedule value")

    def step(self, model: nn.Module, example_inputs: InputsLike, step: int) -> StepResult:
        """Prunes ``model`` if the target at ``step`` is above the last applied sparsity."""
        target = self.target(step)
        if self.mode == "masked":
            if target > self.applied + EPS or (self.masks is None and self.applied > 0.0):
                # Also after load_state_dict: recompute the masks at the sparsity reached so far.
                level = max(target, self.applied)
                opts = self.prune_options.replace(sparsity=level, overrides=self._scaled(level, 0.0))
                inputs = as_example_inputs(example_inputs)
                graph = self._graph_for(model, inputs)
                if graph is None:
                    graph = analyse(model, inputs, tracer=opts.tracer)[0]
                self.masks = mask_(model, inputs, opts, graph=graph)
                self._graph = (shape_key(model, inputs), graph)
                pruned = level > self.applied + EPS
                self.applied = level
                return StepResult(step, target, pruned=pruned, masks=self.masks)
            return StepResult(step, target, masks=self.masks)
        if target <= self.applied + EPS:
            return StepResult(step, target)
        # (s_t - s_prev) / (1 - s_prev) of what remains brings the ORIGINAL count to s_t.
        fraction = max(0.0, (target - self.achieved) / (1.0 - self.achieved))
        opts = self.prune_options.replace(sparsity=fraction)
        inputs = as_example_inputs(example_inputs)
        graph = self._graph_for(model, inputs)
        if opts.scope == "local":  # exact per-group counts, from each group's original size
            per_group = functools.partial(self._group_level, target=target)
            report, graph = prune_step_(model, inputs, opts, graph=graph, group_sparsity=per_group)
        else:
            opts = opts.replace(overrides=self._scaled(target, self.applied))
            report, graph = prune_step_(model, inputs, opts, graph=graph)
        self._graph = (shape_key(model, inputs), graph) if graph is not None else None
        removed_now = report.channels_removed / max(report.channels_total, 1)
        self.achieved = 1.0 - (1.0 - self.achieved) * (1.0 - removed_now)
        self.applied = target
        return StepResult(step, target, pruned=True, rebuild_optimizer=True, fraction=fraction, report=report)

    def _graph_for(self, model: nn.Module, inputs: InputsLike) -> DependencyGraph | None:
        """The graph of the previous step, if ``model`` and ``inputs`` still have its shapes."""
        if self._graph is not None and self._graph[0] == shape_key(model, inputs):
            return self._graph[1]
        return None

    def _group_level(self, group: Any, *, target: float) -> float | None:
        """Physical, local scope: the fraction of ``group``'s current channels to remove so that
        it keeps ``orig - removal_count(orig, level)`` of its original ``orig`` channels, with
        ``level`` the target (or the group's scaled override). No rounding error accumulates."""
        key = ",".join(sorted({f"{m.module}:{m.role}" for m in group.members if m.role != "in"}))
        orig = self.sizes.setdefault(key, group.size)
        level = group_sparsity(group, target, self.prune_options.replace(overrides=self._scaled(target, 0.0)))
        if level is None:
            return None
        keep = orig - removal_count(orig, level, round_to=round_multiple(self.prune_options))
        return max(0, group.size - keep) / group.size

    def _scaled(self, target: float, previous: float) -> tuple[Override, ...]:
        """The overrides at ``target``: ``o * target / final`` (masked), or the fraction of what
        remains that takes ``o * previous / final`` there (physical, ``previous`` > 0)."""
        out = []
        for o in self.prune_options.overrides:
            if o.sparsity is None:
                out.append(o)
                continue
            now, before = o.sparsity * target / self.final, o.sparsity * previous / self.final
            out.append(Override(o.pattern, min(max(0.0, (now - before) / (1.0 - before)), 0.999)))
        return tuple(out)

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
        self._graph = None
