"""Op rules for element-wise calls (with broadcasting): add, mul, activations, expand.

Element-wise ops couple the channels of their operands position by position: ``a + b`` means
channel ``i`` of ``a`` and channel ``i`` of ``b`` are removed together. An operand whose channels
prunekit cannot slice (a constant, a parameter view it cannot map) locks the channels instead.
"""

from __future__ import annotations

import builtins
import operator
from typing import Any

import torch
import torch.nn.functional as F

from prunekit.channels import Ann, Axis, ParamSource, TraceContext
from prunekit.graph.ops.registry import OpRule, base_name, op_rule, register_op_rule
from prunekit.graph.ops.sizes import merge_sizes

__all__ = ["align", "unary", "no_channels", "expand", "expand_axis", "UNARY_FUNCTIONS", "UNARY_METHODS"]


def _split_operands(values: list, anns: list, nd: int) -> tuple[list, list, list]:
    axes, params, opaque = [], [], []
    for v, a in zip(values, anns):
        if not isinstance(v, torch.Tensor):
            continue
        off = nd - v.ndim
        if isinstance(a, Axis):
            axes.append(a.shift(off))
        elif isinstance(a, ParamSource):
            params.append((a, v, off))
        else:
            opaque.append((v, off))
    return axes, params, opaque


def align(ctx: TraceContext, values: list, anns: list, result: Any, kind: str) -> Ann:
    """Couples the channels of tensors combined element-wise and returns the result's layout."""
    if not isinstance(result, torch.Tensor):
        ctx.lock(anns, f"{kind} at {ctx.where()} returns a non-tensor")
        return None
    axes, params, opaque = _split_operands(values, anns, result.ndim)
    if not axes:
        return None
    full = [ax for ax in axes if ax.atoms.shape == tuple(result.shape[d] for d in ax.dims)]
    if not full:
        ctx.lock(axes, f"{kind} at {ctx.where()} broadcasts a single channel over a tensor prunekit cannot follow")
        return None
    ref = full[0]
    for ax in axes:
        if ax.dims != ref.dims:
            ctx.lock(axes, f"{kind} at {ctx.where()} combines tensors whose channels lie on different dims")
            return None
        if ax.atoms.shape != ref.atoms.shape:
            ctx.lock(ax, f"{kind} at {ctx.where()} broadcasts a single channel")
            continue
        ctx.union(ref.atoms, ax.atoms, kind)
    for src, v, off in params:
        for d in ref.dims:
            pd = d - off
            if pd < 0 or v.shape[pd] == 1:
                continue
            if len(ref.dims) != 1 or not ctx.param_member(src, pd, ref.atoms):
                ctx.lock(
                    ref, f"{kind} at {ctx.where()} combines channels with a view of '{src.name}' prunekit cannot slice"
                )
                return None
    for v, off in opaque:
        if any(d - off >= 0 and v.shape[d - off] != 1 for d in ref.dims):
            ctx.lock(
                ref,
                f"{kind} at {ctx.where()} combines channels with a tensor prunekit cannot slice "
                "(a constant or the output of an op without a rule)",
            )
            return None
    return ref


def expand_axis(ctx: TraceContext, x: torch.Tensor, ann: Axis, result: torch.Tensor) -> Ann:
    """``x.expand(...)``: channels keep their dims (shifted); expanding a channel dim locks it."""
    off = result.ndim - x.ndim
    if any(x.shape[d] != result.shape[d + off] for d in ann.dims):
        ctx.lock(ann, f"expand at {ctx.where()} repeats a single channel")
        return None
    return ann.shift(off)


_BINARY: dict[str, tuple] = {
    "add": (operator.add, operator.iadd, torch.add, "add", "add_", "__add__", "__radd__", "__iadd__"),
    "sub": (operator.sub, operator.isub, torch.sub, torch.subtract, "sub", "sub_", "__sub__", "__rsub__"),
    "mul": (operator.mul, operator.imul, torch.mul, torch.multiply, "mul", "mul_", "__mul__", "__rmul__"),
    "div": (operator.truediv, operator.itruediv, torch.div, torch.true_divide, "div", "div_", "__truediv__"),
    "elementwise": (
        torch.maximum,
        torch.minimum,
        torch.where,
        torch.lerp,
        torch.addcmul,
        "maximum",
        "minimum",
        "where",
        "masked_fill",
        "masked_fill_",
        "lerp",
        "type_as",
        "expand_as",
    ),
}


def _make_elementwise(kind: str) -> OpRule:
    def rule(ctx, node, args, kwargs, anns, kwanns, result):
        values = list(args) + list(kwargs.values())
        annots = list(anns) + list(kwanns.values())
        if not any(isinstance(v, torch.Tensor) for v in values):  # arithmetic on sizes
            return merge_sizes(annots)
        name = base_name(node.target)
        if name in ("type_as", "expand_as"):  # only the first argument's channels flow on
            values, annots = values[:1], annots[:1]
            if name == "expand_as" and isinstance(annots[0], Axis):
                return expand_axis(ctx, args[0], annots[0], result)
        return align(ctx, values, annots, result, kind)

    return rule


for _kind, _targets in _BINARY.items():
    op_rule(*_targets)(_make_elementwise(_kind))

UNARY_FUNCTIONS = (
    torch.relu, torch.relu_, F.relu, F.relu_, F.relu6, F.leaky_relu, F.elu, F.selu, F.celu, F.gelu, F.silu,
    F.mish, F.hardswish, F.hardsigmoid, F.hardtanh, F.softplus, torch.sigmoid, F.sigmoid, torch.tanh, F.tanh,
    torch.exp, torch.log, torch.sqrt, torch.rsqrt, torch.abs, torch.neg, torch.clamp, torch.clip, torch.square,
    torch.erf, torch.sign, torch.reciprocal, F.dropout, F.dropout1d, F.dropout2d, F.dropout3d, F.alpha_dropout,
    F.feature_alpha_dropout, operator.neg, operator.pos, torch.clone, torch.nan_to_num, torch.pow, operator.pow,
    F.logsigmoid,
)  # fmt: skip
UNARY_METHODS = (
    "relu", "relu_", "sigmoid", "sigmoid_", "tanh", "tanh_", "exp", "log", "sqrt", "rsqrt", "abs", "neg",
    "clamp", "clamp_", "clip", "square", "sign", "reciprocal", "contiguous", "clone", "detach", "float", "half",
    "double", "bfloat16", "to", "cpu", "cuda", "pow", "__pow__", "erf", "requires_grad_", "nan_to_num", "gelu",
    "silu",
)  # fmt: skip


@op_rule(*UNARY_FUNCTIONS, *UNARY_METHODS)
def unary(ctx, node, args, kwargs, anns, kwanns, result):
    """A function applied to each element (an activation, a cast): channels flow through."""
    return align(ctx, list(args) + list(kwargs.values()), list(anns) + list(kwanns.values()), result, "elementwise")


# torchvision wraps stochastic_depth with torch.fx.wrap: identity in eval, a per-sample mask in
# train. Registered by name, so that ``import prunekit`` does not import torchvision.
register_op_rule("torchvision.ops.stochastic_depth:stochastic_depth", unary)


@op_rule(
    torch._assert, operator.eq, operator.ne, operator.lt, operator.le, operator.gt, operator.ge,
    builtins.len, torch.numel,
    "dim", "numel", "type", "is_contiguous", "get_device", "element_size", "nelement",
)  # fmt: skip
def no_channels(ctx, node, args, kwargs, anns, kwanns, result):
    """Shape queries and comparisons of sizes: no channels flow through."""
    return None


@op_rule("expand", "repeat", "tile")
def expand(ctx, node, args, kwargs, anns, kwanns, result):
    """``expand`` broadcasts; ``repeat``/``tile`` of a channel dim would repeat channels (locked)."""
    x, ann = args[0], anns[0]
    name = base_name(node.target)
    if isinstance(ann, ParamSource):
        off = result.ndim - x.ndim
        if name != "expand":
            return None
        return ParamSource(ann.name, (-1,) * off + ann.dim_map)
    if not isinstance(ann, Axis):
        return None
    if name != "expand":
        off = result.ndim - x.ndim
        if any(x.shape[d] != result.shape[d + off] for d in ann.dims):
            ctx.lock(ann, f"{name} at {ctx.where()} repeats channels")
            return None
        return ann.shift(off)
    return expand_axis(ctx, x, ann, result)
