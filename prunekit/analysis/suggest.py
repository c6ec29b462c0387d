"""From sensitivity curves to per-layer sparsities and a ready-to-run YAML schedule.

For an accuracy ``tolerance``, each group gets the largest sparsity ``s`` on its curve such that
every tried sparsity up to ``s`` keeps ``top1 >= baseline_top1 - tolerance`` (Li et al. 2017
prune the insensitive layers more). For a MACs target, the tolerance is the smallest value among
the measured drops whose suggestion, pruned on a copy of the model, keeps at most ``target_macs``
of the original MACs (binary search: a larger tolerance never keeps more MACs).

The schedule is prunekit's own :class:`~prunekit.config.PruneConfig`: a one-shot schedule whose
``final`` is the largest suggested sparsity, with one override per module whose output channels a
group holds (``None`` where the group is best left whole), so ``load_config`` reads it and
``prunekit.prune_(model, x, sparsity=cfg.schedule.final, overrides=..., ...)`` or the training
pipeline runs it.
"""

from __future__ import annotations

import copy
import dataclasses
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from prunekit.analysis.sensitivity import SensitivityResult
from prunekit.config import Override, PruneConfig, ScheduleConfig, dump_config
from prunekit.errors import ConfigError
from prunekit.prune import prune
from prunekit.schedules import step_options

__all__ = ["suggest_sparsities", "suggest_for_macs", "schedule_config", "write_schedule", "prune_options"]


def suggest_sparsities(result: SensitivityResult, *, tolerance: float) -> dict[int, float]:
    """Group id -> the largest sparsity whose top-1 (and every smaller one's) stays within ``tolerance``."""
    if isinstance(tolerance, bool) or not isinstance(tolerance, (int, float)) or tolerance < 0:
        raise ConfigError(f"tolerance must be a number >= 0, but got {tolerance!r}", module="tolerance")
    floor = result.baseline[0] - tolerance
    out = {}
    for gid in result.modules:
        s, top1 = result.curve(gid)
        ok = top1 >= floor - 1e-12
        bad = np.nonzero(~ok)[0]
        last = (bad[0] if bad.size else len(s)) - 1
        out[gid] = float(s[last]) if last >= 0 else 0.0
    return out


def prune_options(cfg: PruneConfig) -> dict[str, Any]:
    """The keyword arguments of :func:`prunekit.prune_` that run a one-shot ``cfg``."""
    opts = step_options(cfg).replace(sparsity=cfg.schedule.final)
    return {f.name: getattr(opts, f.name) for f in dataclasses.fields(opts)}


def schedule_config(result: SensitivityResult, sparsities: dict[int, float], *, round_to: int = 1) -> PruneConfig:
    """A one-shot :class:`PruneConfig` that prunes each group at its suggested sparsity."""
    final = max([s for s in sparsities.values()] + [0.0])
    overrides = []
    for gid, s in sorted(sparsities.items()):
        for name in result.modules[gid]:
            overrides.append(Override(name, s if s > 0 else None))
    return PruneConfig(
        criterion=result.criterion,
        round_to=round_to,
        ignore=tuple(result.ignore),
        schedule=ScheduleConfig(kind="one_shot", final=final),
        overrides=tuple(overrides),
    )


def suggest_for_macs(
    result: SensitivityResult,
    model: nn.Module,
    example_inputs: torch.Tensor | Sequence[torch.Tensor],
    *,
    target_macs: float,
    round_to: int = 1,
) -> tuple[dict[int, float], float]:
    """``(sparsities, macs_ratio)``: the smallest-tolerance suggestion that keeps <= ``target_macs``.

    If even the largest measured tolerance does not reach the target, that suggestion is
    returned with its ratio (above the target); the caller decides.
    """
    if isinstance(target_macs, bool) or not isinstance(target_macs, (int, float)) or not 0 < target_macs <= 1:
        raise ConfigError(f"target_macs must be a fraction in (0, 1], but got {target_macs!r}", module="target_macs")
    drops = sorted({max(0.0, result.baseline[0] - p.top1) for p in result.points} | {0.0})

    def ratio(tol: float) -> tuple[dict[int, float], float]:
        s = suggest_sparsities(result, tolerance=tol)
        if not any(s.values()):
            return s, 1.0
        options = prune_options(schedule_config(result, s, round_to=round_to))
        _, report = prune(copy.deepcopy(model), example_inputs, **options)
        return s, report.macs_ratio

    lo, hi = 0, len(drops) - 1
    best = ratio(drops[hi])
    if best[1] > target_macs:
        return best
    while lo < hi:
        mid = (lo + hi) // 2
        cand = ratio(drops[mid])
        if cand[1] <= target_macs:
            hi, best = mid, cand
        else:
            lo = mid + 1
    return best


def write_schedule(cfg: PruneConfig, path: str | os.PathLike[str]) -> Path:
    """Writes ``cfg`` as YAML (atomically); ``prunekit.config.load_config(path)`` reads it back."""
    return dump_config(cfg, path)
