"""``Recipe``: a pruning program over the epochs of a training run.

A recipe is what a YAML schedule (prunekit's own schema or Distiller's) turns into, and what the
training pipeline (:mod:`prunekit.pipeline`) drives. The pipeline calls, per epoch::

    event = recipe.on_epoch_begin(model, example_inputs, epoch, calibration=batches)
    if event.rebuild_optimizer: ...                 # parameters were replaced by a physical cut
    for batch in loader:
        ...; optimizer.step()
        recipe.after_optimizer_step(model)          # masks (structured or element-wise) re-applied
    event = recipe.on_epoch_end(model, example_inputs, epoch)   # e.g. a Distiller thinning step
    ...
    event = recipe.finalize(model, example_inputs)  # thin whatever is still only masked

Every event carries a :class:`Decision`: plain data (lists of ints and tensors) that says
exactly what was cut or masked. ``recipe.replay(model, decision)`` applies the same decision to
another copy of the model and brings the recipe's own state to the same point, without scoring
anything. Distributed fine-tuning uses this (rank 0 decides, the decision is broadcast, every
other rank replays it), and so does ``--resume`` (the decisions made so far are stored in the
checkpoint and replayed on a freshly built model).

Learning-rate schedules named in a recipe (Distiller's ``lr_schedulers``) are returned as
:class:`LRSchedulerSpec` data; the pipeline creates them on its optimizer.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from prunekit.inputs import InputsLike

__all__ = [
    "Batches",
    "Decision",
    "RecipeEvent",
    "LRSchedulerSpec",
    "Recipe",
    "decision_to_dict",
    "decision_from_dict",
    "pack_mask",
    "unpack_mask",
]


@dataclass
class Decision:
    """What one recipe step did to the model, as data that can be pickled and replayed.

    Attributes:
        kind: "none", "physical" (channels removed), "mask" (channels zeroed, shapes kept) or
            "elementwise" (unstructured weight masks).
        module_keep: module name -> role ("in"/"out") -> kept positions (physical and mask).
        param_keep: tensor qualified name -> dim -> kept positions (physical and mask).
        weight_masks: parameter qualified name -> 0/1 float mask of its shape ("elementwise";
            may also accompany "mask").
        info: anything else the recipe needs to bring its state to the same point (plain
            Python values only: numbers, strings, lists, dicts).
    """

    kind: str = "none"
    module_keep: dict[str, dict[str, list[int]]] = field(default_factory=dict)
    param_keep: dict[str, dict[int, list[int]]] = field(default_factory=dict)
    weight_masks: dict[str, torch.Tensor] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)


@dataclass
class RecipeEvent:
    """What a recipe call did.

    Attributes:
        epoch: the epoch passed in.
        changed: True if weights were masked or channels removed.
        rebuild_optimizer: True when parameters were replaced (a physical cut): create the
            optimizer (and the LR schedulers holding it) again.
        decisions: the decisions taken, in order (replayable with :meth:`Recipe.replay`).
        reports: the :class:`~prunekit.PruneReport` of every physical cut.
        messages: human-readable lines for the log (what was pruned, targets, warnings).
    """

    epoch: int
    changed: bool = False
    rebuild_optimizer: bool = False
    decisions: list[Decision] = field(default_factory=list)
    reports: list[Any] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class LRSchedulerSpec:
    """A ``torch.optim.lr_scheduler`` class to create on the pipeline's optimizer.

    Attributes:
        name: the class name in ``torch.optim.lr_scheduler`` (validated by the loader).
        kwargs: its arguments (without the optimizer).
        epochs: the epochs at which ``scheduler.step()`` is called at the end of the epoch.
    """

    name: str
    kwargs: dict[str, Any]
    epochs: tuple[int, ...]


#: Calibration batches a data-driven criterion reads (a DataLoader or any iterable), or None.
Batches = Iterable[Any] | None


class Recipe:
    """Base class: the epoch hooks the training pipeline calls. See the module docstring."""

    #: epochs, 0-based, after which the recipe does nothing more (the pipeline trains at least
    #: this many epochs when it runs the recipe).
    num_epochs: int = 1
    lr_schedulers: tuple[LRSchedulerSpec, ...] = ()
    #: True if a criterion needs calibration batches (activations, gradients), or the prune
    #: scores its candidate allocations on data (``allocation_candidates``).
    needs_data: bool = False
    #: the fewest calibration batches the recipe needs (the pipeline gives at least its
    #: ``calibration_batches``).
    data_batches: int = 0

    def on_epoch_begin(
        self, model: nn.Module, example_inputs: InputsLike, epoch: int, *, calibration: Batches = None
    ) -> RecipeEvent:
        """Prunes or masks what the schedule says for ``epoch``, before its training batches."""
        raise NotImplementedError

    def after_optimizer_step(self, model: nn.Module) -> None:
        """Re-applies the current masks so masked weights stay zero."""

    def on_epoch_end(
        self, model: nn.Module, example_inputs: torch.Tensor | Sequence[torch.Tensor], epoch: int
    ) -> RecipeEvent:
        """Runs what is scheduled after ``epoch``'s batches (e.g. a thinning extension)."""
        return RecipeEvent(epoch)

    def finalize(self, model: nn.Module, example_inputs: torch.Tensor | Sequence[torch.Tensor]) -> RecipeEvent:
        """Removes physically every channel that is still only masked; called once at the end."""
        return RecipeEvent(-1)

    def replay(self, model: nn.Module, decision: Decision) -> None:
        """Applies ``decision`` (taken on another copy of the model) to ``model`` and updates
        the recipe's state as if it had taken it."""
        raise NotImplementedError

    def state_dict(self) -> dict[str, Any]:
        """Plain-data state (no tensors needed beyond decisions) for checkpoints."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restores :meth:`state_dict`."""


def pack_mask(mask: torch.Tensor) -> dict[str, Any]:
    """A 0/1 mask as one bit per element (``uint8``, 32 times smaller than float32) and its shape."""
    bits = np.packbits(mask.detach().cpu().reshape(-1).numpy() != 0)
    return {"shape": list(mask.shape), "bits": torch.from_numpy(bits)}


def unpack_mask(data: dict[str, Any] | torch.Tensor) -> torch.Tensor:
    """The float 0/1 mask :func:`pack_mask` stored (a plain tensor, from older checkpoints, as is)."""
    if isinstance(data, torch.Tensor):
        return data
    shape = [int(n) for n in data["shape"]]
    count = int(np.prod(shape)) if shape else 1
    flat = np.unpackbits(data["bits"].numpy(), count=count).astype(np.float32)
    return torch.from_numpy(flat).reshape(shape)


def decision_to_dict(decision: Decision) -> dict[str, Any]:
    """A :class:`Decision` as plain data (lists, dicts; masks stay tensors) for a checkpoint."""
    return {
        "kind": decision.kind,
        "module_keep": {
            n: {r: list(map(int, i)) for r, i in roles.items()} for n, roles in decision.module_keep.items()
        },
        "param_keep": {
            t: {int(d): list(map(int, i)) for d, i in dims.items()} for t, dims in decision.param_keep.items()
        },
        "weight_masks": {k: pack_mask(v) for k, v in decision.weight_masks.items()},
        "info": dict(decision.info),
    }


def decision_from_dict(data: dict[str, Any]) -> Decision:
    """The inverse of :func:`decision_to_dict`."""
    return Decision(
        kind=str(data.get("kind", "none")),
        module_keep={n: {r: list(i) for r, i in roles.items()} for n, roles in data.get("module_keep", {}).items()},
        param_keep={t: {int(d): list(i) for d, i in dims.items()} for t, dims in data.get("param_keep", {}).items()},
        weight_masks={k: unpack_mask(v) for k, v in data.get("weight_masks", {}).items()},
        info=dict(data.get("info", {})),
    )
