"""Op rules for reductions and normalising ops: mean, sum, max, softmax, cumsum, normalize.

Reducing over spatial dims keeps the channels. A statistic over all the channels (an RMS norm's
``x.pow(2).mean(1, keepdim=True)``, ``F.normalize(x, dim=1)``) is a function of every channel,
so removing one is not the same as zeroing it where it is consumed: like LayerNorm, the channels
are marked inexact, not locked. The statistic itself holds no channels (its channel dim is gone
or of size 1, so broadcasting it back is per-channel). Reducing some of the dims that hold
channels but not all, returning indices into the channels (argmax), and softmax or cumsum across
channels lock them.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.fx as fx
import torch.nn.functional as F

from prunekit.channels import Axis, TraceContext
from prunekit.graph.ops.args import arg, norm_dim, reduced_dims
from prunekit.graph.ops.elementwise import align
from prunekit.graph.ops.registry import base_name, op_name, op_rule

__all__ = ["reduce", "normalize", "softmax"]

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
# where ``dim`` and ``keepdim`` are positionally, when not at 1 and 2: norm(x, p, dim, keepdim),
# var(x, dim, unbiased, keepdim)
_DIM_KEEPDIM = {"norm": (2, 3), "linalg_vector_norm": (2, 3), "vector_norm": (2, 3), "std": (1, 3), "var": (1, 3)}


@op_rule(*(getattr(torch, n) for n in _REDUCTIONS), *_REDUCTIONS, torch.linalg.vector_norm, "linalg_vector_norm")
def reduce(ctx, node, args, kwargs, anns, kwanns, result):
    x, ann = args[0], anns[0]
    if not isinstance(ann, Axis):
        return None
    dim_at, keepdim_at = _DIM_KEEPDIM.get(base_name(node.target), (1, 2))
    dim = arg(args, kwargs, dim_at, "dim", None)
    if isinstance(dim, torch.Tensor):  # torch.max(a, b) is element-wise
        return align(ctx, list(args), list(anns), result, "elementwise")
    reduced = reduced_dims(x, dim)
    if set(reduced) & set(ann.dims):
        return _across_channels(ctx, node, ann, reduced, result)
    keepdim = bool(arg(args, kwargs, keepdim_at, "keepdim", False))
    dims = tuple(d if keepdim else d - sum(1 for r in reduced if r < d) for d in ann.dims)
    out = Axis(dims, ann.atoms)
    if isinstance(result, tuple):  # values, indices
        return tuple(out for _ in result)
    return out


def _across_channels(ctx: TraceContext, node: fx.Node, ann: Axis, reduced: list[int], result: Any) -> None:
    """A reduction over channel dims: inexact when it takes a statistic of all of them."""
    what = f"{op_name(node.target)} at {ctx.where()}"
    indices = base_name(node.target) in ("argmax", "argmin") or isinstance(result, tuple)
    if not set(ann.dims) <= set(reduced) or indices:
        ctx.lock(ann, f"{what} reduces across channels")
        return None
    ctx.inexact(ann.atoms, f"{what} reduces across channels: removing one changes the statistic, zeroing it does not")
    return None


@op_rule(F.normalize)
def normalize(ctx, node, args, kwargs, anns, kwanns, result):
    """``F.normalize(x, p, dim)``: per channel along other dims; across channels it is inexact."""
    x, ann = args[0], anns[0]
    if not isinstance(ann, Axis):
        return None
    d = norm_dim(arg(args, kwargs, 2, "dim", 1), x.ndim)
    if d not in ann.dims:
        return ann
    what = f"normalize at {ctx.where()}"
    if ann.dims != (d,):
        ctx.lock(ann, f"{what} normalises over a dim holding only some of the channels' dims")
        return None
    ctx.inexact(ann.atoms, f"{what} normalises across channels: removing one changes the norm")
    return ann


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
