"""The base of criteria that score channels from the model's behaviour on calibration data.

A data-driven criterion runs the model over ``num_batches`` calibration batches once per model,
with forward hooks on every layer that has a layer rule, and caches per-channel statistics of each
layer's output; scoring the groups afterwards reads the cache. The model is never modified: hooks
are removed and the training flag restored whatever happens.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from prunekit.criteria.base import Criterion, reduce_to_channels
from prunekit.errors import ConfigError
from prunekit.graph.groups import Group, Member
from prunekit.rules.base import get_rule

__all__ = [
    "ActivationCriterion",
    "model_device",
    "model_signature",
    "split_batch",
    "channel_dim",
    "producer_members",
    "as_ncl",
    "combine_producers",
    "evaluating",
]

_LAST_DIM = (nn.Linear, nn.LayerNorm)


def split_batch(batch: Any) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``(input, target)`` of a batch: a Tensor (no target) or a tuple/list ``(input, target, ...)``."""
    if isinstance(batch, torch.Tensor):
        return batch, None
    if isinstance(batch, (tuple, list)) and batch and isinstance(batch[0], torch.Tensor):
        target = batch[1] if len(batch) > 1 and isinstance(batch[1], torch.Tensor) else None
        return batch[0], target
    raise ConfigError(
        f"data: a batch must be a Tensor or a tuple/list (input, target), but got {type(batch).__name__}",
        module="data",
    )


def channel_dim(module: nn.Module) -> int:
    """The output channel dim: last for Linear/LayerNorm, 1 (NCHW) otherwise."""
    return -1 if isinstance(module, _LAST_DIM) else 1


def as_ncl(output: torch.Tensor, dim: int) -> torch.Tensor:
    """Reshapes an output to (samples, channels, positions): every other dim folded away."""
    x = output.movedim(dim, 1)
    return x.reshape(x.shape[0], x.shape[1], -1)


def producer_members(model: nn.Module, group: Group) -> list[Member]:
    """The group's "out" members whose activations stand for its channels.

    BatchNorm outputs when the group has any (they are what the activation function sees), else
    every other "out" member of a layer with a rule.
    """
    outs = [m for m in group.members if m.role == "out" and get_rule(type(model.get_submodule(m.module))) is not None]
    bns = [m for m in outs if isinstance(model.get_submodule(m.module), nn.modules.batchnorm._BatchNorm)]
    return bns or outs


def model_signature(model: nn.Module) -> tuple:
    return (id(model),) + tuple((n, tuple(p.shape)) for n, p in model.named_parameters())


class ActivationCriterion(Criterion):
    """Base of criteria that read per-channel statistics of layer outputs on calibration data.

    Subclasses implement :meth:`_update` (accumulate one batch of one layer's output, shaped
    (samples, channels, positions)) and :meth:`_finish` (per-position scores from the state).

    Args:
        data: a DataLoader or any iterable of batches; a batch is a Tensor or a tuple/list
            ``(input, target, ...)``.
        num_batches: how many batches to use (fewer if ``data`` runs out).
        reduction: how the scores of several producing members are combined per channel.

    Raises:
        ConfigError: ``data`` is None, or ``num_batches`` is not a positive int.
    """

    name = "activation"
    needs_data = True

    def __init__(self, *, data: Iterable[Any] | None, num_batches: int = 4, reduction: str = "sum") -> None:
        super().__init__(reduction=reduction)
        if data is None:
            raise ConfigError(
                f"criterion {self.name!r} needs calibration data: pass data=DataLoader(...) (or any iterable "
                "of batches) when you create it",
                module="data",
            )
        if isinstance(num_batches, bool) or not isinstance(num_batches, int) or num_batches < 1:
            raise ConfigError(f"num_batches must be an int >= 1, but got {num_batches!r}", module="num_batches")
        self.data = data
        self.num_batches = num_batches
        self._cache_key: tuple | None = None
        self._cache: dict[str, np.ndarray] = {}

    # -- data ---------------------------------------------------------------------------------
    def batches(self) -> Iterator[tuple[torch.Tensor, torch.Tensor | None]]:
        """The first ``num_batches`` batches of ``data`` as ``(input, target)`` pairs."""
        n = 0
        for batch in self.data:
            if n >= self.num_batches:
                break
            yield split_batch(batch)
            n += 1
        if n == 0:
            raise ConfigError(f"criterion {self.name!r}: data yielded no batches", module="data")

    # -- statistics ---------------------------------------------------------------------------
    def _update(self, state: dict[str, Any], act: torch.Tensor) -> None:
        raise NotImplementedError

    def _finish(self, state: dict[str, Any]) -> np.ndarray:
        raise NotImplementedError

    def _collect(self, model: nn.Module) -> dict[str, np.ndarray]:
        """One pass over the data with hooks on every ruled layer: per-position scores by name."""
        states: dict[str, dict[str, Any]] = {}
        handles = []

        def hook_for(name: str, dim: int):
            def hook(module: nn.Module, args: tuple, output: Any) -> None:
                if isinstance(output, torch.Tensor) and output.dim() >= 2:
                    act = as_ncl(output.detach().float(), dim)
                    state = states.setdefault(name, {})
                    # a module called at several widths (torchvision's Bottleneck reuses one ReLU
                    # after conv1, conv2 and the add) has no per-channel statistics of its own
                    if state.setdefault("_width", act.shape[1]) != act.shape[1] or state.get("_mixed"):
                        state["_mixed"] = True
                        return
                    self._update(state, act)

            return hook

        for name, module in model.named_modules():
            if name and get_rule(type(module)) is not None:
                handles.append(module.register_forward_hook(hook_for(name, channel_dim(module))))
        device = model_device(model)
        with evaluating(model), torch.no_grad():
            try:
                for x, _ in self.batches():
                    model(x.to(device))
            finally:
                for h in handles:
                    h.remove()
        return {
            name: self._finish({k: v for k, v in state.items() if not k.startswith("_")})
            for name, state in states.items()
            if not state.get("_mixed")
        }

    def channel_stats(self, model: nn.Module) -> dict[str, np.ndarray]:
        """The cached per-position scores of every layer, collected again for a new model."""
        key = model_signature(model)
        if key != self._cache_key:
            self._cache = self._collect(model)
            self._cache_key = key
        return self._cache

    def scores(self, model: nn.Module, group: Group) -> np.ndarray:
        stats = self.channel_stats(model)
        return combine_producers(
            model, group, lambda m: stats[m.module][m.positions] if m.module in stats else None, self.reduction
        )


def combine_producers(model: nn.Module, group: Group, values_of: Any, reduction: str) -> np.ndarray:
    """Per channel: mean over a producer's positions of that channel, then ``reduction`` over producers."""
    per_member = []
    for member in producer_members(model, group):
        values = values_of(member)
        if values is None:
            continue
        per_channel = reduce_to_channels(group, [(member, np.asarray(values, dtype=np.float64))], "mean")
        held = np.zeros(group.size, bool)
        held[member.channels] = True
        per_member.append((member, per_channel, held))
    if not per_member:
        names = ", ".join(sorted(group.modules()))
        raise ConfigError(
            f"group {group.id} ({names}) has no producing layer whose output could be hooked", module=names
        )
    # reduce_to_channels reads only ``.channels``: a stand-in holding each producer's channels
    held_only = [(_Held(np.flatnonzero(held)), vals[held]) for _, vals, held in per_member]
    return reduce_to_channels(group, held_only, reduction)  # type: ignore[arg-type]


class _Held:
    """A stand-in member that holds ``channels`` once each."""

    def __init__(self, channels: np.ndarray) -> None:
        self.channels = channels
        self.channels_are_identity = len(channels) == 0 or bool(np.array_equal(channels, np.arange(len(channels))))


def model_device(model: nn.Module) -> torch.device:
    p = next(model.parameters(), None)
    return p.device if p is not None else torch.device("cpu")


@contextmanager
def evaluating(model: nn.Module) -> Iterator[nn.Module]:
    """Puts the model in eval mode and restores every module's training flag afterwards."""
    flags = {m: m.training for m in model.modules()}
    model.eval()
    try:
        yield model
    finally:
        for m, flag in flags.items():
            m.training = flag
