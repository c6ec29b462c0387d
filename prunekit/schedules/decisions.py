"""Turning plans into :class:`Decision` data and applying a Decision to a model (replay)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch.nn as nn

from prunekit.errors import ConfigError
from prunekit.masks import ChannelMasks, masks_for_plan
from prunekit.schedules.recipe import Decision
from prunekit.surgery.apply import apply_plan
from prunekit.surgery.plan import PrunePlan, plan_from_kept

__all__ = ["decision_from_plan", "plan_of", "apply_decision_", "kept_report"]


def _lists(keep: Mapping[Any, Mapping[Any, Any]]) -> dict:
    return {n: {r: np.asarray(i).astype(int).tolist() for r, i in roles.items()} for n, roles in keep.items()}


def decision_from_plan(kind: str, plan: PrunePlan, **info: Any) -> Decision:
    """A "physical" or "mask" Decision holding ``plan``'s kept positions as plain lists."""
    return Decision(kind=kind, module_keep=_lists(plan.module_keep), param_keep=_lists(plan.param_keep), info=info)


def plan_of(decision: Decision) -> PrunePlan:
    """The plan a "physical" or "mask" Decision describes."""
    return plan_from_kept(decision.module_keep, decision.param_keep)


def apply_decision_(model: nn.Module, decision: Decision) -> ChannelMasks | None:
    """Applies ``decision`` to ``model`` in place; returns the masks of a "mask" decision.

    "physical" cuts with :func:`~prunekit.surgery.apply.apply_plan`; "mask" zeroes the channels
    the plan would remove; "elementwise" multiplies parameters by ``weight_masks``.

    Raises:
        ConfigError: an unknown kind, or a mask naming a parameter the model lacks.
        SurgeryError: the model does not have the shapes the decision was taken on.
    """
    if decision.kind == "none":
        return None
    if decision.kind == "physical":
        apply_plan(model, plan_of(decision))
        return None
    if decision.kind == "mask":
        plan = plan_of(decision)
        masks = ChannelMasks(plan, masks_for_plan(model, plan))
        masks.apply_(model)
        return masks
    if decision.kind == "elementwise":
        from prunekit.schedules.elementwise import apply_weight_masks_

        apply_weight_masks_(model, decision.weight_masks)
        return None
    raise ConfigError(
        f"decision.kind must be none, physical, mask or elementwise, but got {decision.kind!r}", module="kind"
    )


def kept_report(decision: Decision) -> Any:
    """A :class:`~prunekit.PruneReport` holding only the kept indices, for the equivalence check."""
    from prunekit.report import PruneReport

    return PruneReport(kept=decision.module_keep, kept_params=decision.param_keep)
