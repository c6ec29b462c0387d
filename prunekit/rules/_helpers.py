"""Small helpers shared by the built-in layer rules."""

from __future__ import annotations

import numpy as np

from prunekit.graph._atoms import Axis

__all__ = ["channel_atoms", "layer_label"]


def layer_label(name: str, module: object) -> str:
    return f"{type(module).__name__} '{name}'"


def channel_atoms(ctx, ann: object, cdim: int, what: str) -> np.ndarray | None:
    """The atoms on dim ``cdim`` of a layer input, or None when that dim carries no channels.

    Channels that sit on any other dim are locked: the layer mixes or reshapes that dim in a way
    the rule does not describe.
    """
    if not isinstance(ann, Axis):
        return None
    if ann.dims == (cdim,):
        return ann.atoms
    ctx.lock(ann, f"{what} reads channels laid out on dims {ann.dims}, not on its channel dim {cdim}")
    return None
