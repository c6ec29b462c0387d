"""Op rules for functional normalisations: layer_norm, rms_norm, batch_norm, instance_norm, group_norm.

Their affine parameters are members of the channel group they normalise. LayerNorm over
channels and GroupNorm compute statistics across channels, so removing one is not the same as
zeroing it: the group is marked inexact.
"""

from __future__ import annotations

import torch.nn.functional as F

from prunekit.channels import Ann, Axis, ParamSource, TraceContext
from prunekit.graph.ops.args import arg
from prunekit.graph.ops.registry import base_name, op_name, op_rule

__all__ = ["layer_norm", "batch_norm", "group_norm"]


def _param_members(ctx: TraceContext, anns: list[Ann], ref: Axis, what: str) -> bool:
    for a in anns:
        if isinstance(a, ParamSource) and not ctx.param_member(a, 0, ref.atoms):
            ctx.lock(ref, f"{what} uses a parameter prunekit cannot slice")
            return False
    return True


@op_rule(F.layer_norm, F.rms_norm)
def layer_norm(ctx, node, args, kwargs, anns, kwanns, result):
    x, ann = args[0], anns[0]
    if not isinstance(ann, Axis):
        return None
    shape = arg(args, kwargs, 1, "normalized_shape")
    k = len(shape)
    normed = set(range(x.ndim - k, x.ndim))
    if not normed & set(ann.dims):
        return ann
    what = f"{op_name(node.target)} at {ctx.where()}"
    if ann.dims != (x.ndim - 1,) or k != 1:
        ctx.lock(ann, f"{what} normalises over several dims holding channels")
        return None
    extra = [kwanns.get("weight"), kwanns.get("bias")] + list(anns[2:4])
    if not _param_members(ctx, extra, ann, what):
        return None
    rms = base_name(node.target) == "rms_norm"
    kind, stat = ("RMSNorm", "root mean square") if rms else ("LayerNorm", "mean and variance")
    ctx.inexact(ann.atoms, f"{kind} ({what}) normalises across channels: removing one changes the {stat}")
    return ann


def _per_channel(ctx: TraceContext, ann: Ann, params: list[Ann], what: str) -> Axis | None:
    """The input's layout when its channels are on dim 1 and ``params`` can be sliced with them."""
    if not isinstance(ann, Axis):
        return None
    if ann.dims != (1,):
        ctx.lock(ann, f"{what}: channels are not on dim 1")
        return None
    return ann if _param_members(ctx, params, ann, what) else None


@op_rule(F.batch_norm, F.instance_norm)
def batch_norm(ctx, node, args, kwargs, anns, kwanns, result):
    what = f"{op_name(node.target)} at {ctx.where()}"
    return _per_channel(ctx, anns[0], list(anns[1:]) + list(kwanns.values()), what)


@op_rule(F.group_norm)
def group_norm(ctx, node, args, kwargs, anns, kwanns, result):
    what = f"group_norm at {ctx.where()}"
    ann = _per_channel(ctx, anns[0], list(anns[2:]) + list(kwanns.values()), what)
    if ann is None:
        return None
    groups = arg(args, kwargs, 1, "num_groups")
    ctx.partition(ann.atoms.reshape(groups, -1), what)
    ctx.inexact(ann.atoms, f"GroupNorm ({what}) normalises across channels of a group")
    return ann
