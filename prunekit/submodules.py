"""Fast lookup of a submodule by qualified name.

``nn.Module.get_submodule`` checks each level with ``hasattr`` / ``getattr`` / ``isinstance``;
the engine looks up hundreds of modules per prune (scoring, grouping, surgery), where that
costs more than the arithmetic on a small model. :func:`submodule` walks the ``_modules``
dictionaries directly and falls back to ``get_submodule`` (and its error) for anything else.
"""

from __future__ import annotations

import torch.nn as nn

__all__ = ["submodule"]


def submodule(model: nn.Module, name: str) -> nn.Module:
    """``model.get_submodule(name)``, read off the ``_modules`` tables when they hold it.

    Raises:
        AttributeError: as ``get_submodule`` does, when ``name`` names no submodule.
    """
    if not name:
        return model
    m = model
    for part in name.split("."):
        child = m._modules.get(part)
        if child is None:
            return model.get_submodule(name)
        m = child
    return m
