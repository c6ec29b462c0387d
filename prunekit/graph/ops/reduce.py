"""Op rules for reductions and normalising ops: mean, sum, max, softmax, cumsum.

Reducing over spatial dims keeps the channels; reducing (or normalising) across the channel dim
mixes them, which locks them.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from prunekit.channels import Axis
from prunekit.graph.ops.args import arg, norm_dim, reduced_dims
from prunekit.graph.ops.elementwise import align
from prunekit.graph.ops.registry import op_name, op_rule

__all__ = ["reduce", "softmax"]

_REDUCTIONS = (
    "mean",
    "sum",
    "amax",
    "amin",
    "max",
    "min",
    "std",
    "var",
    "logsumexp",
    "prod",
    "norm",
    "argmax",
    "argmin",
)


@op_rule(*(getattr(torch, n) for n in _REDUCTIONS), *_REDUCTIONS)
def reduce(ctx, node, args, kwargs, anns, kwanns, result):
    x, ann = args[0], anns[0]
    if not isinstance(ann, Axis):
        return None
    name = op_name(node.target)
    dim = arg(args, kwargs, 1, "dim", None)
    if name == "norm":
        dim = kwargs.get("dim", args[2] if len(args) > 2 else None)
    if isinstance(dim, torch.Tensor):  # torch.max(a, b) is element-wise
        return align(ctx, list(args), list(anns), result, "elementwise")
    reduced = reduced_dims(x, dim)
    if set(reduced) & set(ann.dims):
        ctx.lock(ann, f"{name} at {ctx.where()} reduces across channels")
        return None
    keepdim = bool(arg(args, kwargs, 2, "keepdim", False))
    dims = tuple(d if keepdim else d - sum(1 for r in reduced if r < d) for d in ann.dims)
    out = Axis(dims, ann.atoms)
    if isinstance(result, tuple):  # values, indices
        return tuple(out for _ in result)
    return out


@op_rule(F.softmax, F.log_softmax, torch.softmax, torch.log_softmax, torch.cumsum, "softmax", "log_softmax", "cumsum")
def softmax(ctx, node, args, kwargs, anns, kwanns, result):
    x, ann = args[0], anns[0]
    if not isinstance(ann, Axis):
        return None
    dim = arg(args, kwargs, 1, "dim")
    if dim is None or norm_dim(dim, x.ndim) in ann.dims:
        ctx.lock(ann, f"softmax at {ctx.where()} normalises across channels")
        return None
    return ann
