"""Op rules for ops that mix spatial dims only: pooling, interpolation, padding, roll."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from prunekit.channels import Axis
from prunekit.graph.ops.args import arg, reduced_dims
from prunekit.graph.ops.registry import OpRule, op_name, op_rule, register_op_rule

__all__ = ["spatial_rule", "pad", "roll"]


def spatial_rule(ndims: int) -> OpRule:
    """The rule of an op mixing the last ``ndims`` dims (0: all but batch and channel)."""

    def rule(ctx, node, args, kwargs, anns, kwanns, result):
        x, ann = args[0], anns[0]
        if not isinstance(ann, Axis):
            return None
        k = ndims or (x.ndim - 2)
        mixed = set(range(x.ndim - k, x.ndim))
        if mixed & set(ann.dims) or result.ndim != x.ndim:
            ctx.lock(ann, f"{op_name(node.target)} at {ctx.where()} mixes dims holding channels")
            return None
        return ann

    return rule


for _f, _k in (
    (F.adaptive_avg_pool1d, 1),
    (F.adaptive_avg_pool2d, 2),
    (F.adaptive_avg_pool3d, 3),
    (F.adaptive_max_pool1d, 1),
    (F.adaptive_max_pool2d, 2),
    (F.adaptive_max_pool3d, 3),
    (F.avg_pool1d, 1),
    (F.avg_pool2d, 2),
    (F.avg_pool3d, 3),
    (F.max_pool1d, 1),
    (F.max_pool2d, 2),
    (F.max_pool3d, 3),
    (F.interpolate, 0),
    (F.upsample, 0),
    (F.lp_pool2d, 2),
):
    register_op_rule(_f, spatial_rule(_k))


@op_rule(F.pad)
def pad(ctx, node, args, kwargs, anns, kwanns, result):
    x, ann = args[0], anns[0]
    if not isinstance(ann, Axis):
        return None
    widths = list(arg(args, kwargs, 1, "pad"))
    touched = {x.ndim - 1 - i // 2 for i, p in enumerate(widths) if p}
    if touched & set(ann.dims):
        ctx.lock(ann, f"pad at {ctx.where()} pads the channel dim")
        return None
    return ann


@op_rule(torch.roll, "roll")
def roll(ctx, node, args, kwargs, anns, kwanns, result):
    x, ann = args[0], anns[0]
    if not isinstance(ann, Axis):
        return None
    dims = arg(args, kwargs, 2, "dims")
    if dims is None or set(reduced_dims(x, dims)) & set(ann.dims):
        ctx.lock(ann, f"roll at {ctx.where()} moves channels")
        return None
    return ann
