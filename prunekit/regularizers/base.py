"""The regularizer registry and the base class: a penalty added to the loss while training.

A regularizer is set up once on a model and its :class:`~prunekit.DependencyGraph` (it keeps the
differentiable slices of every prunable group), then ``penalty(model, step=...)`` returns a scalar
tensor to add to the loss. ``channel_norms`` gives, per group, the per-channel magnitude the
regularizer drives towards zero; ``below(model, threshold)`` is the fraction of prunable channels
already under ``threshold`` (logged by the pipeline's ``sparsify`` phase).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from prunekit.errors import ConfigError, option_error
from prunekit.graph.dependency import DependencyGraph
from prunekit.registry import Registry
from prunekit.regularizers.slices import GroupSlices, channel_sq_norms, group_slices

__all__ = ["Regularizer", "REGULARIZERS", "get_regularizer", "check_strength"]


def check_strength(value: object, name: str = "strength") -> float:
    """Validates a penalty coefficient: a number >= 0."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not float(value) >= 0.0:
        raise option_error(name, f"must be a number >= 0, but got {value!r}")
    return float(value)


class Regularizer:
    """Base class: ``penalty = strength * R(W)`` over the prunable groups of a model.

    Args:
        strength: the coefficient ``lambda`` of the penalty.

    Subclasses implement :meth:`penalty` (and :meth:`channel_norms` when they shrink something
    other than the coupled groups' slices); :meth:`state_dict` holds
    whatever a resumed run needs to continue the same penalty (the step is passed in, never
    counted inside).
    """

    name = "regularizer"
    needs_graph = True  # False: setup ignores the graph (per-layer penalties), so none is traced

    def __init__(self, *, strength: float) -> None:
        self.strength = check_strength(strength)
        self.groups: list[GroupSlices] = []
        self.ready = False

    def setup(
        self, model: nn.Module, graph: DependencyGraph, *, example_inputs: tuple[torch.Tensor, ...] | None = None
    ) -> None:
        """Keeps the slices of ``graph``'s prunable groups (call again after the model changes).

        ``example_inputs`` (the inputs ``graph`` was traced with) are for regularizers that plan a
        prune, such as GReg with a MACs target.
        """
        self.groups = [group_slices(model, g) for g in graph.groups if g.prunable]
        if not self.groups:
            raise ConfigError(
                f"regularizer {self.name!r}: {type(model).__name__} has no prunable channel group to penalise",
                module=self.name,
            )
        self.ready = True

    def _require_ready(self) -> None:
        if not self.ready:
            raise ConfigError(f"regularizer {self.name!r}: call setup(model, graph) before penalty()", module=self.name)

    def penalty(self, model: nn.Module, *, step: int = 0) -> torch.Tensor:
        """The scalar to add to the loss at training step ``step`` (batches into the phase)."""
        raise NotImplementedError

    @torch.no_grad()
    def channel_norms(self, model: nn.Module) -> dict[int, np.ndarray]:
        """Per prunable group id, the per-channel magnitude this regularizer shrinks: by default
        the L2 norm over every slice of the coupled group holding the channel
        (``sqrt(channel_sq_norms)``); a regularizer of other tensors overrides it."""
        self._require_ready()
        params = dict(model.named_parameters())
        return {g.group_id: channel_sq_norms(params, g).sqrt().cpu().numpy() for g in self.groups}

    def below(self, model: nn.Module, threshold: float) -> float:
        """The fraction of unlocked channels of the prunable groups whose magnitude is < ``threshold``."""
        self._require_ready()
        norms = self.channel_norms(model)
        hits = total = 0
        for g in self.groups:
            free = ~g.locked
            hits += int((norms[g.group_id][free] < threshold).sum())
            total += int(free.sum())
        return hits / max(total, 1)

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state:
            raise ConfigError(f"regularizer {self.name!r}: unexpected state keys {sorted(state)}", module=self.name)

    def describe(self) -> dict[str, Any]:
        """Name and options, for the resolved config."""
        return {"name": self.name, "strength": self.strength}


REGULARIZERS: Registry[Callable[..., Regularizer]] = Registry("regularizer")


def get_regularizer(regularizer: str | Regularizer, **options: object) -> Regularizer:
    """Returns a regularizer instance from a registered name, or passes an instance through."""
    if isinstance(regularizer, Regularizer):
        return regularizer
    return REGULARIZERS.get(regularizer, argument="regularizer")(**options)
