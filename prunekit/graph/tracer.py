"""Symbolic tracing of a model into ``torch.fx`` graphs, with prunekit's leaf modules.

The model is traced once in eval mode and once in train mode when the two differ (GoogLeNet and
Inception have auxiliary heads only in training): channels must stay consistent in both.
"""

from __future__ import annotations

import torch
import torch.fx as fx
import torch.nn as nn

from prunekit.errors import TraceError
from prunekit.rules.base import is_marked_leaf

__all__ = ["trace", "PrunekitTracer"]


class PrunekitTracer(fx.Tracer):
    """fx tracer that also stops at layer types the user registered or marked as leaves."""

    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
        if is_marked_leaf(type(m)):
            return True
        return super().is_leaf_module(m, module_qualified_name)


def trace(model: nn.Module) -> fx.GraphModule:
    """Traces ``model`` in its current mode; raises :class:`TraceError` with advice on failure."""
    tracer = PrunekitTracer()
    try:
        graph = tracer.trace(model)
    except Exception as exc:  # fx raises many types; all mean "cannot trace"
        raise TraceError(
            f"torch.fx cannot trace {type(model).__name__}: {type(exc).__name__}: {exc}. "
            "Usually a Python construct that depends on tensor values (if/for on a tensor, "
            ".item(), len() of a tensor) inside some module. Mark that module as a leaf with "
            "prunekit.mark_leaf(ModuleType) (its channels are then kept) or give it a rule with "
            "prunekit.register_rule(ModuleType, rule).",
            module=type(model).__name__,
        ) from exc
    return fx.GraphModule(tracer.root, graph, type(model).__name__)


def trace_modes(model: nn.Module) -> list[tuple[bool, fx.GraphModule]]:
    """Traces in eval mode and, if its graph differs, in train mode; restores the model's mode.

    Returns:
        ``[(training, graph_module), ...]`` with the eval graph first.
    """
    modes = {name: m.training for name, m in model.named_modules()}
    try:
        model.eval()
        graphs = [(False, trace(model))]
        model.train()
        train_gm = trace(model)
        if train_gm.code != graphs[0][1].code:
            graphs.append((True, train_gm))
    finally:
        for name, m in model.named_modules():
            m.training = modes[name]
    return graphs


def snapshot_buffers(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.named_buffers()}


def restore_buffers(model: nn.Module, saved: dict[str, torch.Tensor]) -> None:
    with torch.no_grad():
        for k, v in model.named_buffers():
            if k in saved:
                v.copy_(saved[k])
