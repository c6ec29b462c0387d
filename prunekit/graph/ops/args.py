"""Reading a call's arguments inside op rules: positional or keyword, and dims."""

from __future__ import annotations

from typing import Any

import torch

__all__ = ["arg", "norm_dim", "reduced_dims"]


def arg(args: tuple[Any, ...], kwargs: dict[str, Any], i: int, name: str, default: Any = None) -> Any:
    """Argument ``i`` of a call, given positionally or as keyword ``name``."""
    if len(args) > i:
        return args[i]
    return kwargs.get(name, default)


def norm_dim(d: int, ndim: int) -> int:
    """``d`` as a non-negative dim of an ``ndim``-dim tensor."""
    return d % ndim if ndim else 0


def reduced_dims(x: torch.Tensor, dim: Any) -> list[int]:
    """The dims an op with argument ``dim`` (None, an int or a sequence) acts on."""
    if dim is None:
        return list(range(x.ndim))
    dims = [dim] if isinstance(dim, int) else list(dim)
    return [norm_dim(d, x.ndim) for d in dims]
