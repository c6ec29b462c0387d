"""Layer rules for normalisations and per-channel layers.

* BatchNorm / InstanceNorm / PReLU act on each channel separately: removing a channel is exact.
* LayerNorm over channels and GroupNorm compute statistics across channels, so removing one
  changes the mean and variance of the others: prunable, but the group is marked inexact.
"""

from __future__ import annotations

import torch.nn as nn

from prunekit.channels import channel_atoms, layer_label
from prunekit.rules.base import LayerRule

__all__ = ["PerChannelRule", "LayerNormRule", "GroupNormRule"]


class PerChannelRule(LayerRule):
    """A layer whose parameters are one value per channel on dim 1 (BatchNorm, InstanceNorm, PReLU).

    Args:
        tensors: names of the per-channel parameters and buffers.
        size_attr: the attribute that holds the channel count.
    """

    roles = ("out",)

    def __init__(self, tensors: tuple[str, ...], size_attr: str) -> None:
        self.tensors = tensors
        self.size_attr = size_attr

    def _per_channel(self, module: nn.Module) -> bool:
        return getattr(module, self.size_attr, 1) > 1 or any(
            getattr(module, t, None) is not None and getattr(module, t).numel() > 1 for t in self.tensors
        )

    def propagate(self, ctx, name, module, args, axes, output):
        x = args[0]
        cdim = 1 if x.ndim > 1 else 0
        if not self._per_channel(module):  # e.g. PReLU with one shared parameter
            return axes[0]
        atoms = channel_atoms(ctx, axes[0], cdim, layer_label(name, module))
        if atoms is None:
            return None
        if any(getattr(module, t, None) is not None for t in self.tensors):
            ctx.member(name, "out", atoms)
        return axes[0]

    def role_tensors(self, module, role):
        return [(t, 0) for t in self.tensors] if role == "out" else []

    def new_attributes(self, module, tensors):
        for t in self.tensors:
            if tensors.get(t) is not None:
                return {self.size_attr: tensors[t].shape[0]}
        return {}

    def mixes_inputs(self, module):
        return False


class LayerNormRule(LayerRule):
    """``nn.LayerNorm`` and ``nn.RMSNorm`` (no bias): over the last dims. Over the channel dim it
    is prunable but inexact."""

    roles = ("out",)

    def propagate(self, ctx, name, module, args, axes, output):
        ax = axes[0]
        x = args[0]
        k = len(module.normalized_shape)
        normed = set(range(x.ndim - k, x.ndim))
        what = layer_label(name, module)
        if ax is None or not hasattr(ax, "dims"):
            return None
        if not normed & set(ax.dims):
            return ax
        if ax.dims == (x.ndim - 1,) and k == 1:
            if any(getattr(module, t, None) is not None for t in ("weight", "bias")):
                ctx.member(name, "out", ax.atoms)
            stat = "root mean square" if isinstance(module, nn.RMSNorm) else "mean and variance"
            ctx.inexact(ax.atoms, f"{what} normalises across channels: removing one changes the {stat}")
            return ax
        ctx.lock(ax, f"{what} normalises over several dims that hold channels")
        return None

    def role_tensors(self, module, role):
        return [(t, 0) for t in ("weight", "bias") if hasattr(module, t)] if role == "out" else []

    def new_attributes(self, module, tensors):
        for t in ("weight", "bias"):
            if tensors.get(t) is not None:
                return {"normalized_shape": (tensors[t].shape[0],)}
        return {}

    def mixes_inputs(self, module):
        return False


class GroupNormRule(LayerRule):
    """``nn.GroupNorm``: statistics over groups of channels; each group keeps the same count."""

    roles = ("out",)

    def propagate(self, ctx, name, module, args, axes, output):
        atoms = channel_atoms(ctx, axes[0], 1, layer_label(name, module))
        if atoms is None:
            return None
        if module.affine:
            ctx.member(name, "out", atoms)
        ctx.partition(atoms.reshape(module.num_groups, -1), f"GroupNorm '{name}' (num_groups={module.num_groups})")
        ctx.inexact(atoms, f"GroupNorm {layer_label(name, module)} normalises across channels of a group")
        return axes[0]

    def role_tensors(self, module, role):
        return [("weight", 0), ("bias", 0)] if role == "out" else []

    def new_attributes(self, module, tensors):
        w = tensors.get("weight")
        return {"num_channels": w.shape[0]} if w is not None else {}

    def mixes_inputs(self, module):
        return False
