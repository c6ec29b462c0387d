"""``shorten``: a Distiller schedule scaled into fewer epochs, to try a 300-epoch file in minutes.

Every epoch ``e`` of the file becomes ``floor(e * N / span)``, ``span`` being the file's length
(:attr:`DistillerRecipe.run_epochs`): ``epochs: [...]`` lists are mapped (duplicates merged),
``starting_epoch``/``ending_epoch`` windows are mapped with their ``frequency`` scaled (at least
1), and an AGP window keeps at least two steps. LR schedulers keep their overall shape over the
fewer ``step()`` calls: ``ExponentialLR``'s ``gamma`` becomes ``gamma ** (k / k')``,
``StepLR``'s ``step_size``, ``MultiStepLR``'s ``milestones`` and ``CosineAnnealingLR``'s
``T_max`` are scaled by ``k' / k`` (``k`` and ``k'`` the number of steps before and after).

Note:
    A shortened schedule is for dry runs: it exercises every pruner, thinning and LR policy of the
    file, in order, but with less training between them the accuracy is not the file's.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from prunekit.compat.distiller.schema import DistillerSchedule, PolicySpec
from prunekit.errors import ConfigError
from prunekit.schedules.recipe import LRSchedulerSpec

__all__ = ["shorten", "schedule_span"]


def schedule_span(schedule: DistillerSchedule) -> int:
    """The number of epochs the schedule's policies cover (the last one's epoch + 1)."""
    return max((max(p.epochs) + 1 for p in schedule.policies), default=1)


def _policy(p: PolicySpec, f: float, agp: bool) -> PolicySpec:
    if p.starting_epoch is None:
        return dataclasses.replace(p, epochs=tuple(sorted({int(e * f) for e in p.epochs})))
    start = int(p.starting_epoch * f)
    end = max(math.ceil(p.ending_epoch * f), start + 1)  # type: ignore[operator]
    freq = max(1, round(p.frequency * f))
    if agp and (end - start - 1) // freq * freq <= 0:  # AGP needs a step after its first
        freq, end = 1, max(end, start + 2)
    return dataclasses.replace(
        p, starting_epoch=start, ending_epoch=end, frequency=freq, epochs=tuple(range(start, end, freq))
    )


def _lr_kwargs(spec: LRSchedulerSpec, before: int, after: int) -> dict[str, Any]:
    kw = dict(spec.kwargs)
    r = after / max(before, 1)
    if spec.name == "ExponentialLR":
        kw["gamma"] = float(kw["gamma"]) ** (before / max(after, 1))
    elif spec.name == "StepLR":
        kw["step_size"] = max(1, round(int(kw["step_size"]) * r))
    elif spec.name == "MultiStepLR":
        kw["milestones"] = sorted({max(1, round(int(m) * r)) for m in kw["milestones"]})
    elif spec.name == "CosineAnnealingLR":
        kw["T_max"] = max(1, round(int(kw["T_max"]) * r))
    return kw


def shorten(schedule: DistillerSchedule, epochs: int) -> DistillerSchedule:
    """``schedule`` with every epoch scaled into ``epochs`` (see the module docstring).

    A schedule already that short is returned unchanged.

    Raises:
        ConfigError: ``epochs`` is not an int >= 1.
    """
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ConfigError(f"--shorten: must be an int >= 1, but got {epochs!r}", module="--shorten")
    span = schedule_span(schedule)
    if span <= epochs:
        return schedule
    f = epochs / span
    policies = tuple(_policy(p, f, p.kind == "pruner" and schedule.pruners[p.instance].agp) for p in schedule.policies)
    old_lr = [p for p in schedule.policies if p.kind == "lr_scheduler"]
    new_lr = [p for p in policies if p.kind == "lr_scheduler"]
    lr = tuple(
        LRSchedulerSpec(s.name, _lr_kwargs(s, len(a.epochs), len(b.epochs)), b.epochs)
        for s, a, b in zip(schedule.lr_schedulers, old_lr, new_lr)
    )
    return dataclasses.replace(schedule, policies=policies, lr_schedulers=lr)
