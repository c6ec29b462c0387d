"""Op rules for reshapes and dim permutations: view, reshape, flatten, permute, transpose.

The channel bookkeeping is :func:`prunekit.channels.reshape_axis`; these rules work out which
output sizes the model computes at run time (``x.size(0)``, ``-1``) and which it hard-codes: a
channel dim with a literal size locks its channels, since the pruned model would still ask for
the old size.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.fx as fx

from prunekit.channels import Ann, Axis, ParamSource, TraceContext, permute_axis, reshape_axis
from prunekit.graph.attr_sizes import META_KEY, SIZE_ATTRIBUTES
from prunekit.graph.ops.args import norm_dim
from prunekit.graph.ops.registry import base_name, op_name, op_rule
from prunekit.graph.ops.sizes import link_sizes

__all__ = ["shape_args", "view", "param_view", "structural", "permute", "transpose", "movedim"]


def shape_args(args: tuple, node_args: tuple) -> tuple[list[int], list[bool]]:
    """Sizes given to view/reshape and whether each is computed at run time."""
    sizes, raw = args[1:], node_args[1:]
    if len(sizes) == 1 and isinstance(sizes[0], (tuple, list, torch.Size)):
        sizes, raw = tuple(sizes[0]), raw[0]
        if not isinstance(raw, (tuple, list)):  # the whole shape is a node: dynamic
            return list(sizes), [True] * len(sizes)
    dynamic = [not isinstance(r, int) or r == -1 for r in raw]
    return list(sizes), dynamic


@op_rule(torch.reshape, "view", "reshape")
def view(ctx, node, args, kwargs, anns, kwanns, result):
    if isinstance(anns[0], ParamSource):
        return param_view(args, node.args, anns[0], result)
    out = _view_axis(ctx, node, args, kwargs, anns, result)
    _link_attributes(ctx, out, node.meta.get(META_KEY, {}), f"{op_name(node.target)} at {ctx.where()}")
    sizes = list(anns[1]) if len(anns) == 2 and isinstance(anns[1], (tuple, list)) else list(anns[1:])
    link_sizes(ctx, sizes, 0, result, out, f"{op_name(node.target)} at {ctx.where()}")
    return out


def param_view(args: tuple, node_args: tuple, src: ParamSource, result: Any) -> ParamSource | None:
    """A view of a parameter that only adds or drops size-1 dims (``weight.reshape(1, -1, 1, 1)``
    for a per-channel scale): each dim of size > 1 is the parameter dim it was.

    Such a dim must be given as ``-1``: a literal size (or one computed from other channels) would
    not follow the pruned parameter, so the view is then opaque and its consumer locks.
    """
    x = args[0]
    if not isinstance(result, torch.Tensor) or len(args) < 2 or isinstance(args[1], torch.dtype):
        return None
    raw = node_args[1:]
    if len(raw) == 1 and isinstance(args[1], (tuple, list, torch.Size)):
        raw = raw[0]  # the sizes as one sequence
    if not isinstance(raw, (tuple, list)) or len(raw) != result.ndim:
        return None
    src_dims = [d for d in range(x.ndim) if x.shape[d] != 1]
    out_dims = [d for d in range(result.ndim) if result.shape[d] != 1]
    if [x.shape[d] for d in src_dims] != [result.shape[d] for d in out_dims]:
        return None
    if any(raw[d] != -1 for d in out_dims):
        return None
    dim_map = [-1] * result.ndim
    for s, d in zip(src_dims, out_dims):
        dim_map[d] = src.dim_map[s]
    return ParamSource(src.name, tuple(dim_map))


def _view_axis(ctx: TraceContext, node: fx.Node, args: tuple, kwargs: dict, anns: tuple, result: Any) -> Ann:
    x, ann = args[0], anns[0]
    if not isinstance(ann, Axis):
        return None
    if "shape" in kwargs or (len(args) > 1 and isinstance(args[1], torch.dtype)):
        ctx.lock(ann, f"{node.target} at {ctx.where()} with keyword or dtype arguments")
        return None
    _, dynamic = shape_args(args, node.args)
    if len(dynamic) != result.ndim:
        dynamic = [True] * result.ndim
    attrs = node.meta.get(META_KEY, {}) if len(dynamic) == result.ndim else {}
    for d in attrs:  # read from a layer attribute the surgery updates: checked by _link_attributes
        dynamic[d] = True
    return reshape_axis(ctx, ann, tuple(x.shape), tuple(result.shape), dynamic, f"{node.target} at {ctx.where()}")


def _link_attributes(ctx: TraceContext, out: Ann, attrs: dict[int, tuple[str, str]], what: str) -> None:
    """Ties each output dim sized by ``module.attribute`` to the channels that attribute counts
    (to none when the dim holds no channels: then that layer role is locked)."""
    for d, (module, attr) in attrs.items():
        held = np.zeros(0, np.int64)
        if isinstance(out, Axis) and d in out.dims:
            k = out.dims.index(d)
            held = np.moveaxis(out.atoms, k, 0).reshape(out.atoms.shape[k], -1)[:, 0]
        ctx.link_attribute(held, module, SIZE_ATTRIBUTES[attr], f"{what} reads its dim {d} from {module}.{attr}")


@op_rule(
    torch.flatten, torch.squeeze, torch.unsqueeze, torch.ravel,
    "flatten", "squeeze", "unsqueeze", "squeeze_", "unsqueeze_", "ravel", "unflatten",
)  # fmt: skip
def structural(ctx, node, args, kwargs, anns, kwanns, result):
    """Reshapes whose sizes follow the input (flatten, squeeze...); ``unflatten`` names its sizes."""
    x, ann = args[0], anns[0]
    if not isinstance(ann, Axis):
        return None
    what = f"{op_name(node.target)} at {ctx.where()}"
    dynamic = [True] * result.ndim
    if base_name(node.target) != "unflatten":
        if "flatten" in what or "ravel" in what:
            ctx.tag(ann.flat, "flatten")
        return reshape_axis(ctx, ann, tuple(x.shape), tuple(result.shape), dynamic, what)
    dim, sizes = norm_dim(args[1], x.ndim), list(args[2])
    for k, size in enumerate(sizes):  # the new dims have the given sizes; -1 is computed
        dynamic[dim + k] = size == -1
    out = reshape_axis(ctx, ann, tuple(x.shape), tuple(result.shape), dynamic, what)
    if len(anns) > 2 and isinstance(anns[2], (tuple, list)):
        link_sizes(ctx, list(anns[2]), dim, result, out, what)
    return out


@op_rule(torch.permute, "permute")
def permute(ctx, node, args, kwargs, anns, kwanns, result):
    ann = anns[0]
    if not isinstance(ann, Axis):
        return None
    perm = args[1:] if len(args) > 2 or isinstance(args[1], int) else args[1]
    return permute_axis(ctx, ann, list(perm))


@op_rule(torch.transpose, torch.swapaxes, torch.swapdims, "transpose", "swapaxes", "swapdims", "t")
def transpose(ctx, node, args, kwargs, anns, kwanns, result):
    x, ann = args[0], anns[0]
    if not isinstance(ann, Axis):
        return None
    if len(args) < 3:
        d0, d1 = 0, 1
    else:
        d0, d1 = norm_dim(args[1], x.ndim), norm_dim(args[2], x.ndim)
    perm = list(range(x.ndim))
    perm[d0], perm[d1] = perm[d1], perm[d0]
    return permute_axis(ctx, ann, perm)


@op_rule(torch.movedim, torch.moveaxis, "movedim", "moveaxis")
def movedim(ctx, node, args, kwargs, anns, kwanns, result):
    x, ann = args[0], anns[0]
    if not isinstance(ann, Axis):
        return None
    src, dst = args[1], args[2]
    src = [src] if isinstance(src, int) else list(src)
    dst = [dst] if isinstance(dst, int) else list(dst)
    perm = [d for d in range(x.ndim) if d not in [s % x.ndim for s in src]]
    for s, d in sorted(zip([s % x.ndim for s in src], [d % x.ndim for d in dst]), key=lambda p: p[1]):
        perm.insert(d, s)
    return permute_axis(ctx, ann, perm)
