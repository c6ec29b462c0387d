"""A small hand-written Recipe for the pipeline tests, independent of the YAML schedules.

Epoch 0 masks a quarter of the channels (a "mask" decision), epoch 1 cuts 30% physically (a
"physical" decision; parameters are replaced, so the optimizer must be rebuilt), epoch 2 does
nothing. Replay applies the same plans from the decisions' data.
"""

from __future__ import annotations

from typing import Any

import numpy as np

import prunekit
from prunekit.masks import ChannelMasks, masks_for_plan
from prunekit.schedules.recipe import Decision, Recipe, RecipeEvent
from prunekit.surgery.apply import apply_plan
from prunekit.surgery.plan import plan_from_kept


def _lists(keep: dict) -> dict:
    return {n: {r: np.asarray(i).astype(int).tolist() for r, i in roles.items()} for n, roles in keep.items()}


class ToyRecipe(Recipe):
    num_epochs = 3

    def __init__(self) -> None:
        self.masks: ChannelMasks | None = None
        self.taken = 0
        self.replayed = 0  # decisions received from another copy (rank 0, or a checkpoint)

    def on_epoch_begin(self, model, example_inputs, epoch, *, calibration=None):  # type: ignore[no-untyped-def]
        if epoch == 0:
            self.masks = prunekit.mask_(model, example_inputs, sparsity=0.25)
            d = Decision("mask", _lists(self.masks.plan.module_keep), _lists(self.masks.plan.param_keep))
            self.taken += 1
            return RecipeEvent(epoch, changed=True, decisions=[d], messages=["masked 25%"])
        if epoch == 1:
            report = prunekit.prune_(model, example_inputs, sparsity=0.3)
            self.masks = None
            d = Decision("physical", report.kept, report.kept_params)
            self.taken += 1
            return RecipeEvent(epoch, changed=True, rebuild_optimizer=True, decisions=[d], reports=[report])
        return RecipeEvent(epoch)

    def after_optimizer_step(self, model) -> None:  # type: ignore[no-untyped-def]
        if self.masks is not None:
            self.masks.apply_(model)

    def replay(self, model, decision: Decision) -> None:  # type: ignore[no-untyped-def]
        plan = plan_from_kept(decision.module_keep, decision.param_keep)
        if decision.kind == "mask":
            self.masks = ChannelMasks(plan, masks_for_plan(model, plan))
            self.masks.apply_(model)
        else:
            apply_plan(model, plan)
            self.masks = None
        self.taken += 1
        self.replayed += 1

    def state_dict(self) -> dict[str, Any]:
        return {"taken": self.taken}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        assert state["taken"] == self.taken  # the replayed decisions brought us to the same point
