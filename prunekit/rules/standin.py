"""Layer rules for the stand-ins of a removed branch (:mod:`prunekit.surgery.standins`).

* :class:`~prunekit.surgery.standins.Emptied` has no channels: its output is a new, empty space,
  and its input is not read (the channels that reach it are no longer used by it).
* :class:`~prunekit.surgery.standins.ConstantOutput` reads no input channel either; its outputs
  are a new space whose channels are the bias (or the zero) it returns, so a later cut of the
  channels it feeds (a residual stream) slices them like a conv's filters.
"""

from __future__ import annotations

from prunekit.channels import Axis
from prunekit.rules.base import LayerRule

__all__ = ["EmptiedRule", "ConstantOutputRule"]


class EmptiedRule(LayerRule):
    """An emptied layer: 0 output channels, inputs unused."""

    roles = ()

    def propagate(self, ctx, name, module, args, axes, output):
        return Axis((module.channel_dim(output.ndim),), ctx.new_space((name, "out"), 0, f"{name}:out"))

    def mixes_inputs(self, module):
        return False


class ConstantOutputRule(LayerRule):
    """A layer that returns its bias: output channels only."""

    roles = ("out",)

    def propagate(self, ctx, name, module, args, axes, output):
        out = ctx.new_space((name, "out"), module.out_channels, f"{name}:out")
        ctx.member(name, "out", out)
        return Axis((module.channel_dim(output.ndim),), out)

    def role_tensors(self, module, role):
        return [("bias", 0), ("zero", 0)] if role == "out" else []

    def new_attributes(self, module, tensors):
        t = tensors.get("bias") if tensors.get("bias") is not None else tensors.get("zero")
        return {"out_channels": t.shape[0]} if t is not None else {}

    def mixes_inputs(self, module):
        # not a per-channel layer (whose outputs are its inputs, one by one): its outputs are
        # its own channels, as a conv's are
        return True
