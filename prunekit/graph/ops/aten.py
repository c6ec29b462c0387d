"""Channel rules for the ATen ops of a ``torch.export`` graph (the fallback when fx fails).

``torch.export`` keeps layer calls as high-level ATen ops whose weights are ``get_attr`` nodes
named by their qualified names (``aten.conv2d(x, conv1.weight, ...)``). The owner of the weight
is the layer, so its :class:`~prunekit.rules.LayerRule` applies exactly as for an fx
``call_module`` node. Other ops reuse the function/method rules by name. Export specialises
sizes, so a ``view`` there has literal sizes and locks the channels it touches (prunekit cannot
tell whether the model's own code computes them).

A rule registered with :func:`~prunekit.graph.ops.register_op_rule` for an ATen op (or its
packet) takes precedence over this table.
"""

from __future__ import annotations

from typing import Any

import torch

from prunekit.channels import Ann, ParamSource, TraceContext
from prunekit.graph.ops.cat_split import cat, getitem_tensor
from prunekit.graph.ops.elementwise import unary
from prunekit.graph.ops.norm import group_norm, layer_norm
from prunekit.graph.ops.registry import get_op_rule
from prunekit.graph.ops.spatial import spatial_rule
from prunekit.rules import get_rule

__all__ = ["is_aten", "aten_rule"]

_LAYER_OPS = {
    "conv1d", "conv2d", "conv3d", "convolution", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d",
    "linear", "batch_norm", "_native_batch_norm_legit_no_training", "instance_norm", "prelu", "_prelu_kernel",
    "embedding",
}  # fmt: skip
_UNARY = {
    "relu", "relu_", "relu6", "hardtanh", "hardtanh_", "hardswish", "hardswish_", "hardsigmoid", "hardsigmoid_",
    "silu", "silu_", "gelu", "sigmoid", "tanh", "leaky_relu", "elu", "mish", "dropout", "dropout_",
    "feature_dropout", "feature_dropout_", "clone", "contiguous", "_to_copy", "alias", "detach", "exp", "neg",
    "abs", "sqrt", "rsqrt", "clamp", "clamp_min", "clamp_max", "softplus", "alpha_dropout",
}  # fmt: skip
_SPATIAL = {
    "max_pool1d": 1, "max_pool2d": 2, "max_pool3d": 3, "avg_pool1d": 1, "avg_pool2d": 2, "avg_pool3d": 3,
    "adaptive_avg_pool1d": 1, "adaptive_avg_pool2d": 2, "adaptive_avg_pool3d": 3, "adaptive_max_pool2d": 2,
    "upsample_nearest2d": 2, "upsample_bilinear2d": 2,
}  # fmt: skip
_WITH_INDICES = {"max_pool1d_with_indices": 1, "max_pool2d_with_indices": 2, "max_pool3d_with_indices": 3}
_NO_CHANNELS = {"sym_size", "sym_numel", "sym_stride", "_assert_tensor_metadata", "_assert_scalar"}
_RENAMED = {
    "_softmax": "softmax",
    "_log_softmax": "log_softmax",
    "split_with_sizes": "split",
    "add_": "add",
    "mul_": "mul",
}


def is_aten(target: object) -> bool:
    """True for an ATen op overload (the call targets of a ``torch.export`` graph)."""
    return isinstance(target, torch._ops.OpOverload)


def _layer(ctx: TraceContext, name: str, args: tuple, anns: tuple, result: Any) -> Ann:
    """A layer call: the rule of the module that owns the weight argument applies."""
    owner_name = None
    for a in anns[1:]:
        if isinstance(a, ParamSource):
            owner_name = a.name.rpartition(".")[0]
            break
    if owner_name is None or ctx.model is None:
        return None
    module = ctx.model.get_submodule(owner_name)
    rule = get_rule(type(module))
    if rule is None:
        return None
    if name == "embedding":  # embedding(weight, indices)
        return rule.propagate(ctx, owner_name, module, (args[1],), (anns[1],), result)
    out = result[0] if isinstance(result, tuple) else result
    ann = rule.propagate(ctx, owner_name, module, (args[0],), (anns[0],), out)
    return (ann,) + (None,) * (len(result) - 1) if isinstance(result, tuple) else ann


def _slice(ctx: TraceContext, args: tuple, anns: tuple) -> Ann:
    """``aten.slice(x, dim, start, end, step)`` as the equivalent ``x[..., start:end:step]``."""
    x = args[0]
    dim = (args[1] if len(args) > 1 else 0) % x.ndim
    start = args[2] if len(args) > 2 else None
    end = args[3] if len(args) > 3 else None
    step = args[4] if len(args) > 4 else 1
    stop = None if end is None or end >= x.shape[dim] else end
    index = (slice(None),) * dim + (slice(start or None, stop, step if step != 1 else None),)
    return getitem_tensor(ctx, x, anns[0], index)


def aten_rule(ctx: TraceContext, node, args: tuple, kwargs: dict, anns: tuple, kwanns: dict, result: Any) -> Any:
    """Annotation of an ATen op's result, or ``NotImplemented`` when no rule is known."""
    name = node.target.overloadpacket.__name__
    if name in _LAYER_OPS:
        ann = _layer(ctx, name, args, anns, result)
        if ann is not None:
            return ann
    if name in _UNARY:
        return unary(ctx, node, args[:1], {}, anns[:1], {}, result)
    if name == "cat":
        return cat(ctx, node, args, kwargs, anns, kwanns, result)
    if name in _WITH_INDICES:
        out = spatial_rule(_WITH_INDICES[name])(ctx, node, args, kwargs, anns, kwanns, result[0])
        return (out, out)
    if name in _SPATIAL:
        return spatial_rule(_SPATIAL[name])(ctx, node, args, kwargs, anns, kwanns, result)
    if name == "slice":
        return _slice(ctx, args, anns)
    if name in ("layer_norm", "rms_norm", "group_norm"):
        rule = group_norm if name == "group_norm" else layer_norm
        return rule(ctx, node, args, kwargs, anns, kwanns, result)
    if name in _NO_CHANNELS:
        return None
    method = get_op_rule(_RENAMED.get(name, name))
    if method is not None:
        return method(ctx, node, args, kwargs, anns, kwanns, result)
    return NotImplemented
