"""Following channels through view / reshape / flatten / permute.

A reshape groups input dims and output dims into runs with equal products. The channel atoms of
the runs that hold channels are laid out as a dense field, reshaped, and read back. Two rules keep
the pruned model's own reshape consistent with the pruned channels:

* an output dim that holds channels must have a size the model computes at run time (from
  ``x.size()``, ``-1``, or structurally as in ``flatten``); a literal size is hard-coded and locks
  the channels;
* when channels are split over several output dims (a channel shuffle's ``(g, C/g)`` view), only
  one of them may change size; every slice across the others is removed as a whole, so those
  atoms are coupled. This is what keeps ShuffleNet's shuffle a valid permutation after pruning.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from prunekit.channels.atoms import Axis
from prunekit.channels.context import TraceContext

__all__ = ["match_runs", "reshape_axis", "permute_axis"]


def match_runs(a: Sequence[int], b: Sequence[int]) -> list[tuple[list[int], list[int]]] | None:
    """Pairs runs of dims of shapes ``a`` and ``b`` with equal products; None if impossible."""
    runs: list[tuple[list[int], list[int]]] = []
    i = j = 0
    while i < len(a) or j < len(b):
        ri: list[int] = []
        rj: list[int] = []
        pa = pb = 1
        if i < len(a):
            ri.append(i)
            pa *= a[i]
            i += 1
        if j < len(b):
            rj.append(j)
            pb *= b[j]
            j += 1
        while pa != pb:
            if pa < pb and i < len(a):
                ri.append(i)
                pa *= a[i]
                i += 1
            elif pb < pa and j < len(b):
                rj.append(j)
                pb *= b[j]
                j += 1
            else:
                return None
        runs.append((ri, rj))
    return runs


def _constant_along(field: np.ndarray, axis: int) -> bool:
    first = np.take(field, [0], axis=axis)
    return bool(np.all(field == first))


def reshape_axis(
    ctx: TraceContext,
    axis: Axis,
    in_shape: Sequence[int],
    out_shape: Sequence[int],
    dynamic: Sequence[bool],
    where: str,
) -> Axis | None:
    """Maps ``axis`` through a reshape from ``in_shape`` to ``out_shape``.

    Args:
        ctx: the trace context (for locks and couplings).
        dynamic: per output dim, whether the model computes its size at run time.
        where: the op, for messages.
    """
    runs = match_runs(list(in_shape), list(out_shape))
    if runs is None or 0 in in_shape:
        ctx.lock(axis, f"{where}: cannot follow channels through this reshape")
        return None
    touched = [k for k, (ri, _) in enumerate(runs) if set(ri) & set(axis.dims)]
    lo, hi = touched[0], touched[-1]
    in_range = [d for ri, _ in runs[lo : hi + 1] for d in ri]
    out_range = [d for _, rj in runs[lo : hi + 1] for d in rj]
    index = tuple(slice(None) if d in axis.dims else None for d in in_range)
    field = np.broadcast_to(axis.atoms[index], [in_shape[d] for d in in_range])
    field = np.ascontiguousarray(field).reshape([out_shape[d] for d in out_range])
    varying = [k for k in range(field.ndim) if field.shape[k] > 1 and not _constant_along(field, k)]
    if not varying:  # one channel spread over the range: keep all dims of the range
        return Axis(tuple(out_range), field)
    # drop dims along which the field is constant (spatial dims that were broadcast)
    keep_axes = varying
    reduced = field
    for k in sorted(set(range(field.ndim)) - set(keep_axes), reverse=True):
        reduced = np.take(reduced, 0, axis=k)
    dims = tuple(out_range[k] for k in keep_axes)
    free = [k for k, d in enumerate(dims) if dynamic[d]]
    if not free:
        sizes = [out_shape[d] for d in dims]
        ctx.lock(axis, f"{where} hard-codes the channel size {sizes}; compute it from x.size() or use -1")
        return None
    if len(free) > 1:
        ctx.lock(axis, f"{where} splits channels over several dims whose sizes all change")
        return None
    if len(dims) > 1:  # a split: slices across the fixed dims are removed together
        moved = np.moveaxis(reduced, free[0], 0).reshape(reduced.shape[free[0]], -1)
        for col in range(1, moved.shape[1]):
            ctx.union(moved[:, 0], moved[:, col], "shuffle")
    return Axis(dims, reduced)


def permute_axis(ctx: TraceContext, axis: Axis, perm: Sequence[int]) -> Axis:
    """Maps ``axis`` through ``x.permute(perm)``."""
    ndim = len(perm)
    perm = [p % ndim for p in perm]
    new_dims = [perm.index(d) for d in axis.dims]
    order = np.argsort(new_dims)
    atoms = np.transpose(axis.atoms, order) if axis.atoms.ndim > 1 else axis.atoms
    if axis.atoms.ndim > 1 and list(order) != sorted(order):
        ctx.tag(axis.flat, "shuffle")
    return Axis(tuple(sorted(new_dims)), atoms)
