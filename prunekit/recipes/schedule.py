"""``ScheduleRecipe``: a :class:`Recipe` built from prunekit's own :class:`PruneConfig`.

The schedule's steps are epochs: at the start of epoch ``t`` the recipe asks the
:class:`PruningScheduler` for the target ``s_t`` (one-shot, iterative or AGP) and masks
(``mode="masked"``, the default) or cuts (``mode="physical"``) up to it. In masked mode
``finalize`` removes the masked channels once, at the end. A config with ``target_macs`` or
``target_params`` prunes once, at ``schedule.start``, to that target.

Resuming (what the training pipeline does with ``--resume``)::

    model = build_model()                                 # the original architecture
    recipe = load_recipe(source)                          # the same recipe
    for d in decisions_from_state(ckpt["recipe"]):        # in the order they were taken
        recipe.replay(model, d)                           # same shapes, same masks
    model.load_state_dict(ckpt["model"])                  # then the trained weights
    recipe.load_state_dict(ckpt["recipe"])                # counters; replay already set them
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn as nn

from prunekit.config.schema import PruneConfig
from prunekit.criteria import CRITERIA, Criterion
from prunekit.engine import criterion_with_data
from prunekit.errors import ConfigError
from prunekit.inputs import InputsLike
from prunekit.masks import mask_
from prunekit.prune import prune, prune_
from prunekit.schedules.decisions import apply_decision_, decision_from_plan
from prunekit.schedules.recipe import Batches, Decision, Recipe, RecipeEvent, decision_from_dict, decision_to_dict
from prunekit.schedules.scheduler import EPS, PruningScheduler, step_options

__all__ = ["ScheduleRecipe", "decisions_from_state"]

log = logging.getLogger(__name__)
STATE_FORMAT = "prunekit.recipe/1"


def decisions_from_state(state: dict[str, Any]) -> list[Decision]:
    """The decisions stored in a recipe's :meth:`~Recipe.state_dict`, in the order taken."""
    return [decision_from_dict(d) for d in state.get("decisions", [])]


class ScheduleRecipe(Recipe):
    """Prunes along a :class:`PruneConfig` schedule, one step per epoch.

    Args:
        config: the validated config (see :func:`prunekit.config.load_config`).
        mode: "masked" or "physical"; ``None`` takes ``config.mode``.
        max_group_sparsity: with ``scope="global"``, the most one group may lose.
    """

    def __init__(
        self, config: PruneConfig, *, mode: str | None = None, max_group_sparsity: float | None = None
    ) -> None:
        if not isinstance(config, PruneConfig):
            raise ConfigError(f"config must be a PruneConfig, but got {type(config).__name__}", module="config")
        if max_group_sparsity is not None:
            config = dataclasses.replace(config, max_group_sparsity=max_group_sparsity)
        self.config = config
        self.mode = config.mode if mode is None else mode
        self.criterion = str(config.criterion)  # a PruneConfig names its criterion
        criterion_needs_data = bool(getattr(CRITERIA.get(self.criterion), "needs_data", False))
        self.needs_data = criterion_needs_data or config.allocation_candidates > 0
        self.data_batches = config.allocation_batches if config.allocation_candidates else 0
        # Validate the criterion options now (a dry build; data-driven ones get an empty iterable).
        criterion_with_data(
            self.criterion, config.criterion_options, () if criterion_needs_data else None, where="criterion"
        )
        sched = config.schedule
        self.scheduler = PruningScheduler(
            sched.kind, options=sched.options(), mode=self.mode, prune_options=step_options(config)
        )
        self.num_epochs = sched.start + 1 if sched.kind == "one_shot" else sched.end + 1
        self.decisions: list[Decision] = []
        self.target_done = False

    # ------------------------------------------------------------------------------ hooks
    def _will_act(self, epoch: int) -> bool:
        if self.config.target is not None:
            return not self.target_done and epoch >= self.config.schedule.start
        s = self.scheduler
        target = s.target(epoch)
        return target > s.applied + EPS or (s.mode == "masked" and s.masks is None and s.applied > 0.0)

    def on_epoch_begin(
        self, model: nn.Module, example_inputs: InputsLike, epoch: int, *, calibration: Batches = None
    ) -> RecipeEvent:
        """Masks or cuts up to the schedule's target for ``epoch`` (a no-op between changes)."""
        if not self._will_act(epoch):
            return RecipeEvent(epoch)
        criterion = criterion_with_data(self.criterion, self.config.criterion_options, calibration, where="criterion")
        self.scheduler.prune_options = self.scheduler.prune_options.replace(
            criterion=criterion, allocation_data=calibration if self.config.allocation_candidates else None
        )
        if self.config.target is not None:
            return self._prune_to_target(model, example_inputs, epoch, criterion)
        result = self.scheduler.step(model, example_inputs, epoch)
        if result.masks is not None and self.scheduler.mode == "masked":
            plan, kind = result.masks.plan, "mask"
            event = RecipeEvent(epoch, changed=True)
            decision = decision_from_plan(kind, plan, epoch=epoch, applied=self.scheduler.applied)
            event.messages.append(
                f"epoch {epoch}: masked channels at sparsity {self.scheduler.applied:.4f} "
                f"({len(plan.module_keep)} layers touched)"
            )
        else:
            report = result.report
            decision = Decision(
                "physical",
                module_keep=report.kept,
                param_keep=report.kept_params,
                info={
                    "epoch": epoch,
                    "applied": self.scheduler.applied,
                    "achieved": self.scheduler.achieved,
                    "sizes": dict(self.scheduler.sizes),
                },
            )
            event = RecipeEvent(epoch, changed=True, rebuild_optimizer=True, reports=[report])
            event.messages.append(
                f"epoch {epoch}: cut {report.channels_removed} channels (target {result.target:.4f}, "
                f"reached {self.scheduler.achieved:.4f}); params {report.params_before} -> {report.params_after}"
            )
        self.decisions.append(decision)
        event.decisions.append(decision)
        for line in event.messages:
            log.info(line)
        return event

    def _prune_to_target(self, model: nn.Module, example_inputs: Any, epoch: int, criterion: Criterion) -> RecipeEvent:
        """One-shot to ``target_macs``/``target_params``: the sparsity is found on a copy, then
        the model is cut (physical) or masked at that sparsity (masked)."""
        key, value = self.config.target  # type: ignore[misc]
        opts = self.scheduler.prune_options
        self.target_done = True
        if self.mode == "physical":
            report = prune_(model, example_inputs, opts.replace(**{key: value}))
            sparsity = float(report.config["sparsity"])
            decision = Decision("physical", report.kept, report.kept_params, info={"epoch": epoch, "target": True})
            event = RecipeEvent(epoch, changed=True, rebuild_optimizer=True, reports=[report])
        else:
            _, report = prune(model, example_inputs, opts.replace(**{key: value}))  # on a copy
            sparsity = float(report.config["sparsity"])
            masks = mask_(model, example_inputs, opts.replace(sparsity=sparsity))
            self.scheduler.masks = masks
            decision = decision_from_plan("mask", masks.plan, epoch=epoch, applied=sparsity, target=True)
            event = RecipeEvent(epoch, changed=True)
        self.scheduler.applied = sparsity
        event.messages.append(
            f"epoch {epoch}: {key}={value} requested, {report.config.get('realised', float('nan')):.4f} "
            f"realised at sparsity {sparsity:.4f} ({self.mode})"
        )
        self.decisions.append(decision)
        event.decisions.append(decision)
        log.info(event.messages[-1])
        return event

    def after_optimizer_step(self, model: nn.Module) -> None:
        """Masked mode: keeps the masked channels at zero."""
        self.scheduler.after_optimizer_step(model)

    def finalize(self, model: nn.Module, example_inputs: torch.Tensor | Sequence[torch.Tensor]) -> RecipeEvent:
        """Masked mode: removes the masked channels physically (once)."""
        masks = self.scheduler.masks
        if self.scheduler.mode != "masked" or masks is None:
            return RecipeEvent(-1)
        decision = decision_from_plan("physical", masks.plan, finalize=True)
        self.scheduler.finalize(model)
        self.decisions.append(decision)
        message = f"finalize: removed the masked channels of {len(masks.plan.module_keep)} layers"
        log.info(message)
        return RecipeEvent(-1, changed=True, rebuild_optimizer=True, decisions=[decision], messages=[message])

    # ------------------------------------------------------------------------------ replay/state
    def replay(self, model: nn.Module, decision: Decision) -> None:
        """Applies ``decision`` to ``model`` and sets the scheduler where taking it left it."""
        masks = apply_decision_(model, decision)
        info = decision.info
        s = self.scheduler
        if decision.kind == "mask":
            s.masks = masks
            s.applied = float(info.get("applied", s.applied))
        elif decision.kind == "physical" and info.get("finalize"):
            s.masks, s.mode = None, "physical"
        elif decision.kind == "physical":
            s.applied = float(info.get("applied", s.applied))
            s.achieved = float(info.get("achieved", s.achieved))
            s.sizes = {str(k): int(v) for k, v in info.get("sizes", s.sizes).items()}
        if info.get("target"):
            self.target_done = True
            s.applied = float(info.get("applied", s.applied))
        self.decisions.append(decision)

    def state_dict(self) -> dict[str, Any]:
        """Counters plus every decision taken so far (see the module docstring to resume)."""
        return {
            "format": STATE_FORMAT,
            "scheduler": self.scheduler.state_dict(),
            "target_done": self.target_done,
            "decisions": [decision_to_dict(d) for d in self.decisions],
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restores the counters; masks come from replaying the decisions first.

        Raises:
            ConfigError: the state is not a ScheduleRecipe state, or decisions were replayed
                that differ in number from the state's.
        """
        if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
            raise ConfigError(f"state: not a {STATE_FORMAT} recipe state", module="state")
        stored = state.get("decisions", [])
        if self.decisions and len(self.decisions) != len(stored):
            raise ConfigError(
                f"state: {len(stored)} decisions stored but {len(self.decisions)} replayed; replay all "
                "of decisions_from_state(state) on a fresh model before load_state_dict",
                module="state",
            )
        masks, mode = self.scheduler.masks, self.scheduler.mode
        self.scheduler.load_state_dict(state["scheduler"])
        if self.decisions:  # replayed: keep the masks and the mode that replay restored
            self.scheduler.masks, self.scheduler.mode = masks, mode
        else:
            self.decisions = decisions_from_state(state)
        self.target_done = bool(state.get("target_done", False))
