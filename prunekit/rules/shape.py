"""Layer rules for parameter-free layers: activations, pooling, flatten, shuffle, opaque layers."""

from __future__ import annotations

import numpy as np

from prunekit.channels import Axis, channel_atoms, layer_label, reshape_axis
from prunekit.rules.base import LayerRule

__all__ = [
    "ElementwiseRule",
    "SpatialRule",
    "FlattenRule",
    "UnflattenRule",
    "SoftmaxRule",
    "ChannelShuffleRule",
    "OpaqueRule",
]


class ElementwiseRule(LayerRule):
    """A layer applied to each element on its own (activations, dropout, identity)."""

    roles = ()

    def propagate(self, ctx, name, module, args, axes, output):
        return axes[0] if axes else None


class SpatialRule(LayerRule):
    """A layer that mixes its last ``ndims`` dims (pooling, upsampling, padding).

    Args:
        ndims: how many trailing dims the layer mixes (2 for ``MaxPool2d``).
    """

    roles = ()

    def __init__(self, ndims: int) -> None:
        self.ndims = ndims

    def propagate(self, ctx, name, module, args, axes, output):
        ax = axes[0]
        if not isinstance(ax, Axis):
            return None
        mixed = set(range(output.ndim - self.ndims, output.ndim))
        if mixed & set(ax.dims) or output.ndim != args[0].ndim:
            ctx.lock(ax, f"{layer_label(name, module)} mixes the dims {sorted(mixed)} that hold channels")
            return None
        return ax


class FlattenRule(LayerRule):
    """``nn.Flatten``: each channel becomes ``prod(other flattened dims)`` features."""

    roles = ()

    def propagate(self, ctx, name, module, args, axes, output):
        ax = axes[0]
        if not isinstance(ax, Axis):
            return None
        ctx.tag(ax.flat, "flatten")
        dynamic = [True] * output.ndim
        return reshape_axis(ctx, ax, tuple(args[0].shape), tuple(output.shape), dynamic, layer_label(name, module))


class UnflattenRule(LayerRule):
    """``nn.Unflatten``: the new dims have literal sizes."""

    roles = ()

    def propagate(self, ctx, name, module, args, axes, output):
        ax = axes[0]
        if not isinstance(ax, Axis):
            return None
        dim = module.dim % args[0].ndim
        k = len(module.unflattened_size)
        dynamic = [not (dim <= d < dim + k) for d in range(output.ndim)]
        return reshape_axis(ctx, ax, tuple(args[0].shape), tuple(output.shape), dynamic, layer_label(name, module))


class SoftmaxRule(LayerRule):
    """``nn.Softmax`` / ``nn.LogSoftmax``: mixes its ``dim``."""

    roles = ()

    def propagate(self, ctx, name, module, args, axes, output):
        ax = axes[0]
        if not isinstance(ax, Axis):
            return None
        dim = module.dim if module.dim is not None else (0 if output.ndim in (0, 1, 3) else 1)
        if dim % output.ndim in ax.dims:
            ctx.lock(ax, f"{layer_label(name, module)} normalises across channels")
            return None
        return ax


class ChannelShuffleRule(LayerRule):
    """``nn.ChannelShuffle(g)``: a permutation; position j of each of the g blocks goes together."""

    roles = ()

    def propagate(self, ctx, name, module, args, axes, output):
        atoms = channel_atoms(ctx, axes[0], 1, layer_label(name, module))
        if atoms is None:
            return None
        grid = atoms.reshape(module.groups, -1)
        for r in range(1, grid.shape[0]):
            ctx.union(grid[0], grid[r], "shuffle")
        return Axis((1,), np.ascontiguousarray(grid.T).reshape(-1))


class OpaqueRule(LayerRule):
    """A layer whose channels prunekit keeps: every channel flowing into it is locked.

    Args:
        reason: why, shown in the group table (e.g. "attention head structure").
    """

    roles = ()

    def __init__(self, reason: str = "prunekit has no channel rule for it") -> None:
        self.reason = reason

    def propagate(self, ctx, name, module, args, axes, output):
        ctx.lock(axes, f"{layer_label(name, module)}: {self.reason}")
        return None
