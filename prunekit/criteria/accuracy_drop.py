"""Accuracy drop: the measured damage of zeroing one channel at a time on calibration data."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from prunekit.criteria.base import CRITERIA
from prunekit.criteria.data_driven import ActivationCriterion, channel_dim, evaluating, model_device, model_signature
from prunekit.errors import ConfigError
from prunekit.graph.groups import Group, Member

__all__ = ["AccuracyDropCriterion"]

METRICS = ("loss", "accuracy")


@CRITERIA.register(
    "accuracy_drop", description="loss increase (or accuracy drop) when the channel is zeroed, on calibration data"
)
class AccuracyDropCriterion(ActivationCriterion):
    """The change of a metric on the calibration batches when channel ``c`` alone is zeroed.

        ``score_c = L(model with c zeroed) - L(model)``            (``metric="loss"``)
        ``score_c = acc(model) - acc(model with c zeroed)``        (``metric="accuracy"``)

    ``L`` is the mean of ``loss_fn`` over the batches (weighted by target size) and ``acc`` the
    top-1 accuracy (classes along dim 1). Zeroing is
    done by forward hooks that multiply the channel by 0 in the output of every "out" member of
    the group, so the model is neither re-traced nor modified. The oracle criterion of
    Molchanov et al. 2017 ("Pruning Convolutional Neural Networks for Resource Efficient
    Inference", ICLR 2017), used there as the reference the cheaper criteria approximate.

    Note:
        Cost: one forward per channel per calibration batch (``group.size * num_batches``
        forwards per group). The batches are cached in memory on first use. ``reduction`` is
        unused: the channel is zeroed in all members at once.

    Args:
        metric: "loss" or "accuracy".
        loss_fn: ``loss_fn(output, target) -> scalar``; cross-entropy by default.
    """

    name = "accuracy_drop"

    def __init__(
        self,
        *,
        data: Iterable[Any] | None,
        num_batches: int = 4,
        metric: str = "loss",
        loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
        reduction: str = "sum",
    ) -> None:
        super().__init__(data=data, num_batches=num_batches, reduction=reduction)
        if metric not in METRICS:
            raise ConfigError(f"metric must be one of {METRICS}, but got {metric!r}", module="metric")
        self.metric = metric
        self.loss_fn = loss_fn if loss_fn is not None else F.cross_entropy
        self._batches: list[tuple[torch.Tensor, torch.Tensor]] | None = None
        self._baseline: float | None = None

    def _cached_batches(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        if self._batches is None:
            kept = []
            for x, y in self.batches():
                if y is None:
                    raise ConfigError(
                        f"criterion {self.name!r} needs targets: each batch must be (input, target)", module="data"
                    )
                kept.append((x, y))
            self._batches = kept
        return self._batches

    def _measure(self, model: nn.Module) -> float:
        device = model_device(model)
        total, n = 0.0, 0
        for x, y in self._cached_batches():
            out = model(x.to(device))
            y = y.to(device)
            if self.metric == "loss":
                total += float(self.loss_fn(out, y)) * y.numel()
            else:  # classes along dim 1, as cross_entropy expects
                total += float((out.argmax(dim=1) == y).sum())
            n += y.numel()
        return total / max(n, 1)

    def scores(self, model: nn.Module, group: Group) -> np.ndarray:
        outs = [m for m in group.members if m.role == "out"]
        if not outs:
            names = ", ".join(sorted(group.modules()))
            raise ConfigError(f"group {group.id} ({names}) has no layer output to zero", module=names)
        with evaluating(model), torch.no_grad():
            key = model_signature(model)
            if key != self._cache_key:
                self._baseline = self._measure(model)
                self._cache_key = key
            base = float(self._baseline)  # type: ignore[arg-type]
            result = np.zeros(group.size)
            for c in range(group.size):
                handles = [_zero_channel(model, m, c) for m in outs]
                try:
                    value = self._measure(model)
                finally:
                    for h in handles:
                        h.remove()
                result[c] = value - base if self.metric == "loss" else base - value
        return result


def _zero_channel(model: nn.Module, member: Member, channel: int) -> torch.utils.hooks.RemovableHandle:
    """A forward hook that zeroes the member's positions holding ``channel`` (on a copy)."""
    module = model.get_submodule(member.module)
    dim = channel_dim(module)
    positions = torch.as_tensor(member.positions[member.channels == channel], dtype=torch.long)

    def hook(mod: nn.Module, args: tuple, output: Any) -> Any:
        if not isinstance(output, torch.Tensor):
            return output
        out = output.clone()
        out.index_fill_(dim % out.dim(), positions.to(out.device), 0.0)
        return out

    return module.register_forward_hook(hook)
