"""Op rules for sizes: ``x.shape``, ``x.size(d)`` and the integer arithmetic done on them.

A model that computes a reshape size from a channel count (``C = x.shape[-1]``, then
``qkv.reshape(B, N, 3, heads, C // heads)``) ties that reshape to those channels: after pruning,
``C`` changes. These rules follow such numbers as :class:`~prunekit.channels.SizeOf` annotations
(which channels a number counts), so the reshape rules can check that a size computed from
channels ``S`` lands on a dim that holds exactly the channels ``S`` (see
:meth:`~prunekit.channels.TraceContext.link_size`); otherwise the cut is locked before surgery
rather than failing in the pruned model's forward.
"""

from __future__ import annotations

import builtins
import operator
from typing import Any

import numpy as np
import torch

from prunekit.channels import Ann, Axis, SizeOf, TraceContext
from prunekit.graph.ops.args import arg, norm_dim
from prunekit.graph.ops.registry import op_rule

__all__ = ["shape_of", "merge_sizes", "size", "get_attribute", "int_arithmetic", "link_sizes"]


def shape_of(x: torch.Tensor, ann: Ann) -> tuple[SizeOf, ...]:
    """Per dim of ``x``, the channels its size counts (empty for dims holding none)."""
    empty = np.zeros(0, np.int64)
    if not isinstance(ann, Axis):
        return tuple(SizeOf(empty) for _ in range(x.ndim))
    out = []
    for d in range(x.ndim):
        if d in ann.dims:
            k = ann.dims.index(d)
            out.append(SizeOf(np.unique(np.moveaxis(ann.atoms, k, 0).reshape(ann.atoms.shape[k], -1)[:, 0])))
        else:
            out.append(SizeOf(empty))
    return tuple(out)


def merge_sizes(anns: list[Ann]) -> SizeOf | None:
    """The annotation of a number computed from several: the union of what they count."""
    found = [a.atoms for a in anns if isinstance(a, SizeOf) and a.atoms.size]
    return SizeOf(np.unique(np.concatenate(found))) if found else None


@op_rule("size")
def size(ctx, node, args, kwargs, anns, kwanns, result):
    shape = shape_of(args[0], anns[0])
    dim = arg(args, kwargs, 1, "dim")
    return shape if dim is None else shape[norm_dim(dim, args[0].ndim)]


@op_rule(builtins.getattr)
def get_attribute(ctx, node, args, kwargs, anns, kwanns, result):
    if isinstance(args[0], torch.Tensor) and args[1] == "shape":
        return shape_of(args[0], anns[0])
    return None


@op_rule(operator.floordiv, operator.mod)
def int_arithmetic(ctx, node, args, kwargs, anns, kwanns, result):
    """Integer arithmetic: the result counts what its operands count."""
    if isinstance(result, torch.Tensor):
        return None
    return merge_sizes(list(anns) + list(kwanns.values()))


def link_sizes(ctx: TraceContext, sizes: list[Ann], first_dim: int, result: Any, out: Ann, what: str) -> None:
    """Ties each output dim whose size is computed from channel counts to the channels it holds.

    Args:
        sizes: the annotations of the size arguments, for output dims ``first_dim, ...``.
        out: the annotation of the reshaped result.
    """
    if not isinstance(result, torch.Tensor):
        return
    held = out.flat if isinstance(out, Axis) else np.zeros(0, np.int64)
    for i, s in enumerate(sizes):
        d = first_dim + i
        if not isinstance(s, SizeOf) or not s.atoms.size or d >= result.ndim:
            continue
        here = held if isinstance(out, Axis) and d in out.dims else np.zeros(0, np.int64)
        ctx.link_size(here, s, f"{what} computes the size of its dim {d} from a channel count")
