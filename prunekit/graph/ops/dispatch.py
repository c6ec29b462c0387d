"""Finding and applying the op rule of one ``call_function`` / ``call_method`` node."""

from __future__ import annotations

from typing import Any

import torch
import torch.fx as fx

from prunekit.channels import Ann, ParamSource, TraceContext, iter_axes
from prunekit.graph.ops.aten import aten_rule, is_aten
from prunekit.graph.ops.registry import get_op_rule, op_name

__all__ = ["handle_call"]


def _no_rule(ctx: TraceContext, node: fx.Node, anns: tuple[Ann, ...], kwanns: dict[str, Ann]) -> Ann:
    """A call prunekit has no rule for: its channels are locked and its parameters noted."""
    if isinstance(node.target, type) and issubclass(node.target, tuple):  # a namedtuple of outputs
        return tuple(anns) + tuple(kwanns.values())
    if isinstance(anns[0] if anns else None, ParamSource) and node.target in ("unsqueeze", torch.unsqueeze):
        return None
    everything = list(anns) + list(kwanns.values())
    touched = list(iter_axes(everything))
    name = op_name(node.target)
    if touched:
        ctx.lock(touched, f"'{name}' at {ctx.where()} is not understood by prunekit (no op rule)")
    params = [a.name for a in everything if isinstance(a, ParamSource)]
    if params:
        note = (
            f"'{name}' at {ctx.where()} uses {', '.join(params)} and has no rule: those channels are "
            "kept; register a rule for the layer that owns them to prune it"
        )
        if note not in ctx.notes:
            ctx.notes.append(note)
    return None


def handle_call(
    ctx: TraceContext,
    node: fx.Node,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    anns: tuple[Ann, ...],
    kwanns: dict[str, Ann],
    result: Any,
) -> Ann:
    """Annotation of a call_function / call_method node's result.

    A registered rule for the exact target wins; an ATen op then tries its packet and the
    built-in ATen table; a call with no rule locks the channels it touches.
    """
    rule = get_op_rule(node.target)
    if rule is None and is_aten(node.target):
        rule = get_op_rule(node.target.overloadpacket)  # type: ignore[union-attr]
        if rule is None:
            ann = aten_rule(ctx, node, args, kwargs, anns, kwanns, result)
            if ann is not NotImplemented:
                return ann
    if rule is not None:
        return rule(ctx, node, args, kwargs, anns, kwanns, result)
    return _no_rule(ctx, node, anns, kwanns)
