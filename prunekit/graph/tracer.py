"""Symbolic tracing of a model into ``torch.fx`` graphs, with prunekit's leaf modules.

The model is traced once in eval mode and once in train mode when the two differ (GoogLeNet and
Inception have auxiliary heads only in training): channels must stay consistent in both. The
train-mode trace is skipped when no code fx traces through (the methods of the non-leaf modules
and the Python functions they call) reads ``training``: then the two graphs cannot differ.
"""

from __future__ import annotations

import types

import torch
import torch.fx as fx
import torch.nn as nn

from prunekit.errors import TraceError
from prunekit.rules.base import is_marked_leaf

__all__ = ["trace", "PrunekitTracer", "may_differ_in_training"]


class PrunekitTracer(fx.Tracer):
    """fx tracer that also stops at layer types the user registered or marked as leaves."""

    def call_module(self, m: nn.Module, forward, args, kwargs):
        try:
            return super().call_module(m, forward, args, kwargs)
        except Exception as exc:  # remember the innermost module, for the error message
            if not hasattr(exc, "_prunekit_module"):
                exc._prunekit_module = (self.path_of_module(m), type(m).__name__)  # type: ignore[attr-defined]
            raise

    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
        if is_marked_leaf(type(m)):
            return True
        return super().is_leaf_module(m, module_qualified_name)


def trace(
    model: nn.Module, inputs: tuple[torch.Tensor, ...] | None = None, *, tracer: str = "auto"
) -> tuple[fx.GraphModule, str]:
    """Traces ``model`` in its current mode with fx, else with ``torch.export``.

    Returns:
        ``(graph_module, backend)`` with backend "fx" or "export".

    Raises:
        TraceError: neither works; the message names the construct and what to do.
    """
    fx_error: Exception | None = None
    if tracer in ("auto", "fx"):
        fx_tracer = PrunekitTracer()
        try:
            graph = fx_tracer.trace(model)
            return fx.GraphModule(fx_tracer.root, graph, type(model).__name__), "fx"
        except Exception as exc:  # fx raises many types; all mean "cannot trace"
            fx_error = exc
            if tracer == "fx":
                inputs = None
    export_error: Exception | None = None
    if inputs is not None:
        try:
            program = torch.export.export(model, inputs, strict=False)
            return program.module(), "export"
        except Exception as exc:  # export raises many types too
            export_error = exc
    culprit, culprit_type = getattr(fx_error, "_prunekit_module", (None, None))
    inside = f" inside module '{culprit}' ({culprit_type})" if culprit else ""
    fx_msg = f"torch.fx cannot trace it{inside}: {type(fx_error).__name__}: {str(fx_error)[:300]}" if fx_error else ""
    ex_msg = (
        f"torch.export cannot either: {type(export_error).__name__}: {str(export_error)[:300]}" if export_error else ""
    )
    raise TraceError(
        f"cannot trace {type(model).__name__}: " + "; ".join(m for m in (fx_msg, ex_msg) if m) + ". "
        "Usually a Python construct that depends on tensor values (if/for on a tensor, "
        ".item(), len() of a tensor) inside some module. Mark that module as a leaf with "
        "prunekit.mark_leaf(ModuleType) (its channels are then kept) or give it a rule with "
        "prunekit.register_rule(ModuleType, rule).",
        module=culprit or type(model).__name__,
    ) from (fx_error or export_error)


def _reads_training(code: types.CodeType, globals_: dict, seen: set[int]) -> bool:
    """True if ``code`` (or a nested function, or a Python function it calls by global name)
    mentions ``training``."""
    if id(code) in seen:
        return False
    seen.add(id(code))
    if "training" in code.co_names or "training" in code.co_consts:
        return True
    for const in code.co_consts:
        if isinstance(const, types.CodeType) and _reads_training(const, globals_, seen):
            return True
    for name in code.co_names:
        fn = globals_.get(name)
        if isinstance(fn, types.FunctionType) and _reads_training(fn.__code__, fn.__globals__, seen):
            return True
    return False


def may_differ_in_training(model: nn.Module) -> bool:
    """False when the train-mode graph is certainly the eval-mode graph: no method of a module
    fx traces through (not a leaf) reads ``training``. Leaves (BatchNorm, Dropout...) are single
    nodes whatever their mode."""
    tracer = PrunekitTracer()
    seen: set[int] = set()
    for name, m in model.named_modules():
        if name and tracer.is_leaf_module(m, name):
            continue
        for cls in type(m).__mro__:
            if cls in (nn.Module, object):
                continue
            for attr in vars(cls).values():
                fn = getattr(attr, "__func__", attr)
                if isinstance(fn, property):
                    fn = fn.fget
                if isinstance(fn, types.FunctionType) and _reads_training(fn.__code__, fn.__globals__, seen):
                    return True
    return False


def trace_modes(
    model: nn.Module, inputs: tuple[torch.Tensor, ...], train_inputs: tuple[torch.Tensor, ...], *, tracer: str = "auto"
) -> list[tuple[bool, fx.GraphModule, str]]:
    """Traces in eval mode and, if its graph differs, in train mode; restores the model's mode.

    Returns:
        ``[(training, graph_module, backend), ...]`` with the eval graph first.
    """
    modes = {name: m.training for name, m in model.named_modules()}
    try:
        model.eval()
        eval_gm, backend = trace(model, inputs, tracer=tracer)
        graphs = [(False, eval_gm, backend)]
        if not may_differ_in_training(model):
            return graphs
        model.train()
        try:
            train_gm, train_backend = trace(model, train_inputs, tracer=tracer)
        except TraceError:
            if backend == "fx":
                raise
            train_gm, train_backend = eval_gm, backend  # export of the train graph failed: eval only
        if train_gm.code != eval_gm.code:
            graphs.append((True, train_gm, train_backend))
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
