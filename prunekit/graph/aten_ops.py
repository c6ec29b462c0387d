"""Channel rules for the ATen ops of a ``torch.export`` graph (the fallback when fx fails).

``torch.export`` keeps layer calls as high-level ATen ops whose weights are ``get_attr`` nodes
named by their qualified names (``aten.conv2d(x, conv1.weight, ...)``). The owner of the weight
is the layer, so its :class:`~prunekit.rules.LayerRule` applies exactly as for an fx
``call_module`` node. Other ops reuse the function/method rules by name. Export specialises
sizes, so a ``view`` there has literal sizes and locks the channels it touches (prunekit cannot
tell whether the model's own code computes them).
"""

from __future__ import annotations

from typing import Any

import torch

from prunekit.graph._atoms import ParamSource
from prunekit.graph.context import TraceContext
from prunekit.rules.base import get_rule

__all__ = ["handle_aten", "is_aten"]

_LAYER_OPS = {
    "conv1d",
    "conv2d",
    "conv3d",
    "convolution",
    "conv_transpose1d",
    "conv_transpose2d",
    "conv_transpose3d",
    "linear",
    "batch_norm",
    "_native_batch_norm_legit_no_training",
    "instance_norm",
    "prelu",
    "_prelu_kernel",
    "embedding",
}
_UNARY = {
    "relu",
    "relu_",
    "relu6",
    "hardtanh",
    "hardtanh_",
    "hardswish",
    "hardswish_",
    "hardsigmoid",
    "hardsigmoid_",
    "silu",
    "silu_",
    "gelu",
    "sigmoid",
    "tanh",
    "leaky_relu",
    "elu",
    "mish",
    "dropout",
    "dropout_",
    "feature_dropout",
    "feature_dropout_",
    "clone",
    "contiguous",
    "_to_copy",
    "alias",
    "detach",
    "exp",
    "neg",
    "abs",
    "sqrt",
    "rsqrt",
    "clamp",
    "clamp_min",
    "clamp_max",
    "softplus",
    "alpha_dropout",
}
_RENAMED = {
    "_softmax": "softmax",
    "_log_softmax": "log_softmax",
    "split_with_sizes": "split",
    "sum": "sum",
    "mean": "mean",
    "amax": "amax",
    "unsqueeze": "unsqueeze",
    "squeeze": "squeeze",
    "add_": "add",
    "mul_": "mul",
}


def is_aten(target: object) -> bool:
    return isinstance(target, torch._ops.OpOverload)


def _layer(ctx: TraceContext, name: str, args: tuple, anns: tuple, result: Any) -> Any:
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


def handle_aten(ctx: TraceContext, node, args: tuple, kwargs: dict, anns: tuple, kwanns: dict, result: Any) -> Any:
    """Annotation of an ATen op's result, or ``NotImplemented`` when no rule is known."""
    from prunekit.graph import ops

    name = node.target.overloadpacket.__name__
    if name in _LAYER_OPS:
        ann = _layer(ctx, name, args, anns, result)
        if ann is not None:
            return ann
    if name in _UNARY:
        return ops._unary(ctx, node, args[:1], {}, anns[:1], {}, result)
    if name == "cat":
        return ops._cat(ctx, node, args, kwargs, anns, kwanns, result)
    if name in ("max_pool2d_with_indices", "max_pool1d_with_indices", "max_pool3d_with_indices"):
        k = int(name[8])
        out = ops._spatial(k)(ctx, node, args, kwargs, anns, kwanns, result[0])
        return (out, out)
    if name in (
        "max_pool2d",
        "avg_pool2d",
        "adaptive_avg_pool2d",
        "max_pool1d",
        "avg_pool1d",
        "adaptive_avg_pool1d",
        "max_pool3d",
        "avg_pool3d",
        "adaptive_avg_pool3d",
        "adaptive_max_pool2d",
        "upsample_nearest2d",
        "upsample_bilinear2d",
    ):
        return ops._spatial(int(name.rstrip("d")[-1]))(ctx, node, args, kwargs, anns, kwanns, result)
    if name == "slice":  # slice(x, dim, start, end, step)
        dim = args[1] if len(args) > 1 else 0
        start = args[2] if len(args) > 2 else None
        end = args[3] if len(args) > 3 else None
        step = args[4] if len(args) > 4 else 1
        x = args[0]
        dim %= x.ndim
        stop = None if end is None or end >= x.shape[dim] else end
        index = (slice(None),) * dim + (slice(start or None, stop, step if step != 1 else None),)
        return ops._getitem_tensor(ctx, x, anns[0], index, node)
    if name in ("layer_norm", "group_norm"):
        handler = ops.OP_RULES[
            torch.nn.functional.layer_norm if name == "layer_norm" else torch.nn.functional.group_norm
        ]
        return handler(ctx, node, args, kwargs, anns, kwanns, result)
    if name in ("sym_size", "sym_numel", "sym_stride", "_assert_tensor_metadata", "_assert_scalar"):
        return None
    method = ops.METHOD_RULES.get(_RENAMED.get(name, name))
    if method is not None:
        return method(ctx, node, args, kwargs, anns, kwanns, result)
    return NotImplemented
