"""Op rules that join or cut along dims: cat, stack, split, chunk, unbind, narrow, indexing.

Joining along the channel dim concatenates the atom arrays (offsets after a cat); cutting takes
slices of them. A cut at a position the model fixes in code (``x[:, :16]``, ``split(x, [16, 48])``)
locks the channels before it: after pruning the same literal would cut elsewhere.
"""

from __future__ import annotations

import operator
from typing import Any

import numpy as np
import torch

from prunekit.channels import Ann, Axis, ParamSource, TraceContext
from prunekit.graph.ops.args import arg, norm_dim
from prunekit.graph.ops.elementwise import align
from prunekit.graph.ops.registry import op_rule

__all__ = ["cat", "stack", "chunk", "split", "unbind", "narrow", "getitem", "getitem_tensor"]


@op_rule(torch.cat, torch.concat, torch.concatenate)
def cat(ctx, node, args, kwargs, anns, kwanns, result):
    """Along the channel dim: the atom arrays are concatenated. Elsewhere: element-wise."""
    tensors = arg(args, kwargs, 0, "tensors")
    tanns = anns[0] if anns else kwanns.get("tensors")
    if not isinstance(tanns, (tuple, list)):  # the list itself is an input: no channels to follow
        return None
    dim = norm_dim(arg(args, kwargs, 1, "dim", 0), result.ndim)
    axes = [a for a in tanns if isinstance(a, Axis)]
    if not axes:
        return None
    if any(dim in a.dims for a in axes):
        if any(a.dims != (dim,) for a in axes):
            ctx.lock(axes, f"cat at {ctx.where()} joins channels laid out on several dims")
            return None
        pieces = []
        for v, a in zip(tensors, tanns):
            if isinstance(a, Axis):
                pieces.append(a.atoms)
            else:
                why = f"cat at {ctx.where()} joins channels with a tensor prunekit cannot slice"
                pieces.append(ctx.opaque(v.shape[dim], why))
        atoms = np.concatenate(pieces)
        ctx.tag(atoms, "cat")
        return Axis((dim,), atoms)
    return align(ctx, list(tensors), list(tanns), result, "cat")


@op_rule(torch.stack)
def stack(ctx, node, args, kwargs, anns, kwanns, result):
    """A new dim is inserted; the operands are then combined element-wise."""
    tensors = arg(args, kwargs, 0, "tensors")
    tanns = anns[0] if anns else kwanns.get("tensors")
    if not isinstance(tanns, (tuple, list)):
        return None
    dim = norm_dim(arg(args, kwargs, 1, "dim", 0), result.ndim)
    shifted: list[Ann] = []
    for a in tanns:
        if isinstance(a, Axis):
            shifted.append(Axis(tuple(d + (d >= dim) for d in a.dims), a.atoms))
        else:
            shifted.append(a if isinstance(a, ParamSource) else None)
    fake = [v.unsqueeze(dim) for v in tensors]
    return align(ctx, fake, shifted, result, "stack")


def _split_positions(
    ctx: TraceContext, ann: Axis, dim: int, bounds: list[tuple[int, int]], fixed: bool, what: str
) -> tuple[Ann, ...]:
    """Annotations of the pieces ``[start, stop)`` of dim ``dim``."""
    if ann.dims != (dim,):
        ctx.lock(ann, f"{what} splits channels laid out on dims {ann.dims}")
        return tuple(None for _ in bounds)
    if fixed:
        ctx.lock(ann, f"{what} uses fixed sizes {[b - a for a, b in bounds]} along channels")
    ctx.tag(ann.atoms, "split")
    return tuple(Axis((dim,), ann.atoms[a:b]) for a, b in bounds)


@op_rule(torch.chunk, "chunk")
def chunk(ctx, node, args, kwargs, anns, kwanns, result):
    """``chunk(k)`` along channels: k equal pieces, so every piece must lose equally many."""
    x, ann = args[0], anns[0]
    k = arg(args, kwargs, 1, "chunks")
    dim = norm_dim(arg(args, kwargs, 2, "dim", 0), x.ndim)
    if not isinstance(ann, Axis):
        return tuple(None for _ in result)
    if dim not in ann.dims:
        return tuple(ann for _ in result)
    what = f"chunk at {ctx.where()}"
    size = x.shape[dim]
    if ann.dims != (dim,) or size % k or len(result) != k:
        ctx.lock(ann, f"{what} does not split {size} channels into {k} equal parts")
        return tuple(None for _ in result)
    step = size // k
    pieces = _split_positions(ctx, ann, dim, [(i * step, (i + 1) * step) for i in range(k)], False, what)
    ctx.partition([p.atoms for p in pieces], what)
    ctx.tag(ann.atoms, "chunk")
    return pieces


@op_rule(torch.split, torch.tensor_split, "split", "tensor_split", "split_with_sizes")
def split(ctx, node, args, kwargs, anns, kwanns, result):
    """``split`` with literal sizes along channels locks them (the sizes would not follow)."""
    x, ann = args[0], anns[0]
    dim = norm_dim(arg(args, kwargs, 2, "dim", 0), x.ndim)
    if not isinstance(ann, Axis):
        return tuple(None for _ in result)
    if dim not in ann.dims:
        return tuple(ann for _ in result)
    bounds, start = [], 0
    for piece in result:
        bounds.append((start, start + piece.shape[dim]))
        start += piece.shape[dim]
    return _split_positions(ctx, ann, dim, bounds, True, f"split at {ctx.where()}")


@op_rule(torch.unbind, "unbind")
def unbind(ctx, node, args, kwargs, anns, kwanns, result):
    x, ann = args[0], anns[0]
    dim = norm_dim(arg(args, kwargs, 1, "dim", 0), x.ndim)
    if not isinstance(ann, Axis):
        return tuple(None for _ in result)
    if dim in ann.dims:
        ctx.lock(ann, f"unbind at {ctx.where()} turns each channel into its own tensor")
        return tuple(None for _ in result)
    return tuple(Axis(tuple(d - (d > dim) for d in ann.dims), ann.atoms) for _ in result)


@op_rule(torch.narrow, "narrow")
def narrow(ctx, node, args, kwargs, anns, kwanns, result):
    x, ann = args[0], anns[0]
    if not isinstance(ann, Axis):
        return None
    dim = norm_dim(args[1], x.ndim)
    if dim not in ann.dims:
        return ann
    start, length = int(args[2]), int(args[3])
    if ann.dims != (dim,):
        ctx.lock(ann, f"narrow at {ctx.where()} slices channels laid out on several dims")
        return None
    why = f"narrow at {ctx.where()} takes fixed channel positions [{start}:{start + length}]"
    ctx.atoms.lock(ann.atoms[: start + length], why)
    return Axis((dim,), ann.atoms[start : start + length])


def _expand_index(items: tuple, ndim: int) -> list[Any]:
    """The index with ``...`` replaced by full slices and trailing full slices added."""
    n_real = sum(1 for i in items if i is not None and i is not Ellipsis)
    expanded: list[Any] = []
    for i in items:
        if i is Ellipsis:
            expanded.extend([slice(None)] * (ndim - n_real))
        else:
            expanded.append(i)
    expanded.extend([slice(None)] * (ndim - sum(1 for i in expanded if i is not None)))
    return expanded


def getitem_tensor(ctx: TraceContext, x: torch.Tensor, ann: Ann, idx: Any) -> Ann:
    """``x[idx]`` for basic indexing (ints, slices, None, ...); advanced indexing locks."""
    if not isinstance(ann, Axis):
        return None
    items = idx if isinstance(idx, tuple) else (idx,)
    if any(isinstance(i, (torch.Tensor, list)) for i in items):
        ctx.lock(ann, f"indexing at {ctx.where()} with a tensor or list")
        return None
    new_dims: dict[int, int] = {}
    atoms = ann.atoms
    src, dst = 0, 0
    for i in _expand_index(items, x.ndim):
        if i is None:
            dst += 1
            continue
        if isinstance(i, int):
            if src in ann.dims:
                ctx.lock(ann, f"indexing at {ctx.where()} picks a single channel")
                return None
            src += 1
            continue
        if src in ann.dims:  # a slice along channels
            if ann.dims != (src,):
                ctx.lock(ann, f"slicing at {ctx.where()} cuts channels laid out on several dims")
                return None
            start, stop, _ = i.indices(x.shape[src])
            if (i.step or 1) != 1:
                ctx.lock(ann, f"slicing at {ctx.where()} with a step along channels")
                return None
            if i.start is not None or i.stop is not None:
                fixed_to = stop if i.stop is not None else start
                why = f"slicing at {ctx.where()} takes fixed channel positions [{i.start}:{i.stop}]"
                ctx.atoms.lock(atoms[:fixed_to], why)
            atoms = atoms[start:stop]
        new_dims[src] = dst
        src += 1
        dst += 1
    return Axis(tuple(new_dims[d] for d in ann.dims), atoms)


@op_rule(operator.getitem)
def getitem(ctx, node, args, kwargs, anns, kwanns, result):
    """Indexing a tensor, or picking one annotation out of a tuple-valued op's result."""
    obj, idx = args[0], args[1]
    if isinstance(obj, torch.Tensor):
        return getitem_tensor(ctx, obj, anns[0], idx)
    container = anns[0]
    if isinstance(container, (tuple, list)):
        try:
            return container[idx]
        except (IndexError, TypeError):
            return None
    if isinstance(container, dict):
        return container.get(idx)
    return None
