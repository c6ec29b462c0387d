"""Layer rules for ``nn.Linear`` and ``nn.Embedding``."""

from __future__ import annotations

from prunekit.channels import Axis, channel_atoms, layer_label
from prunekit.rules.base import LayerRule

__all__ = ["LinearRule", "EmbeddingRule"]


class LinearRule(LayerRule):
    """``nn.Linear``: input features ("in", weight dim 1) on the last dim; outputs are new."""

    def propagate(self, ctx, name, module, args, axes, output):
        x = args[0]
        atoms_in = channel_atoms(ctx, axes[0], x.ndim - 1, layer_label(name, module))
        if atoms_in is not None:
            ctx.member(name, "in", atoms_in)
        out = ctx.new_space((name, "out"), module.out_features, f"{name}:out")
        ctx.member(name, "out", out)
        return Axis((output.ndim - 1,), out)

    def role_tensors(self, module, role):
        return [("weight", 0), ("bias", 0)] if role == "out" else [("weight", 1)]

    def new_attributes(self, module, tensors):
        w = tensors["weight"]
        return {"in_features": w.shape[1], "out_features": w.shape[0]}

    def input_dim(self, module, ndim):
        return ndim - 1


class EmbeddingRule(LayerRule):
    """``nn.Embedding``: its embedding dim (weight dim 1) is a new set of output channels."""

    roles = ("out",)

    def propagate(self, ctx, name, module, args, axes, output):
        out = ctx.new_space((name, "out"), module.embedding_dim, f"{name}:out")
        ctx.member(name, "out", out)
        return Axis((output.ndim - 1,), out)

    def role_tensors(self, module, role):
        return [("weight", 1)] if role == "out" else []

    def new_attributes(self, module, tensors):
        return {"embedding_dim": tensors["weight"].shape[1]}
