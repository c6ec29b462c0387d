"""Runs a traced model on the example inputs and follows its channels node by node."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.fx as fx
import torch.nn as nn
from torch.fx.immutable_collections import immutable_dict, immutable_list
from torch.fx.node import map_arg

from prunekit.channels import ParamSource, TraceContext, iter_axes, node_label
from prunekit.errors import ExampleInputError, PrunekitError, TraceError, UnsupportedLayerError
from prunekit.graph.ops import handle_call
from prunekit.graph.tracer import Traced
from prunekit.inputs import ExampleInputs
from prunekit.rules import get_rule

__all__ = ["ChannelInterpreter", "LeafCall", "run_analysis"]

#: ``call_leaf(qualified name, module, args, kwargs)``: a leaf module's output computed another
#: way (the shape-only mode's stand-in for a convolution), or ``NotImplemented``.
LeafCall = Callable[[str, nn.Module, tuple, dict], Any]


class ChannelInterpreter(fx.Interpreter):
    """An ``fx.Interpreter`` that computes each node's value and its channel annotation.

    Args:
        root: the module the graph's ``get_attr`` / ``call_module`` targets are looked up in.
        ctx: the shared trace context (several graphs, e.g. eval and train, share one).
        graph: the graph (``root.graph`` when omitted).
    """

    def __init__(
        self,
        root: nn.Module,
        ctx: TraceContext,
        graph: fx.Graph | None = None,
        *,
        call_leaf: LeafCall | None = None,
    ) -> None:
        super().__init__(root, garbage_collect_values=True, graph=graph)
        self.ctx = ctx
        self.ann: dict[fx.Node, Any] = {}
        self.call_leaf = call_leaf

    def run_node(self, n: fx.Node) -> Any:
        # fx's run_node also enters _set_current_node (two generator context managers that
        # publish the node for fx's tracebacks: 4% of a MobileNetV3 analysis); this
        # interpreter names the node in its own errors instead
        env = self.env
        args, kwargs = _values(n.args, env), _values(n.kwargs, env)
        try:
            result = getattr(self, n.op)(n.target, args, kwargs)
        except Exception as exc:
            self.ctx.node = n
            raise ExampleInputError(
                f"the model failed on the example inputs at {self.ctx.where(n)}: "
                f"{type(exc).__name__}: {exc}. Pass example inputs of the shape and dtype "
                "the model expects (see prunekit.inputs for the accepted forms).",
                module=str(n.target),
            ) from exc
        self.ctx.node = n
        self.ctx.num_nodes += 1
        anns = map_arg(n.args, self.ann.get)
        kwanns = map_arg(n.kwargs, self.ann.get)
        try:
            self.ann[n] = self._annotate(n, args, kwargs, anns, kwanns, result)
        except PrunekitError:
            raise
        except Exception as exc:  # a rule failed: name the op, the node and the module
            raise self._rule_failure(n, exc) from exc
        return result

    def run(self, *args: Any) -> Any:  # type: ignore[override]
        """Runs the graph on ``args`` (one per placeholder) and returns the output's value.

        ``fx.Interpreter.run`` without its progress bar, whose creation (a tqdm, with its lock)
        costs more than interpreting a small model's nodes: values are dropped after their last
        use, as fx does with ``garbage_collect_values``.
        """
        self.env = {}
        self.args_iter = iter(self.graph.process_inputs(*args))
        last_uses = self.user_to_last_uses
        for node in self.graph.nodes:
            self.env[node] = self.run_node(node)
            for dead in last_uses.get(node, ()):
                del self.env[dead]
            if node.op == "output":
                return self.graph.process_outputs(self.env[node])
        return None

    def call_module(self, target: Any, args: Any, kwargs: Any) -> Any:
        module = self._module_at(str(target))
        if self.call_leaf is not None:
            out = self.call_leaf(str(target), module, args, kwargs)
            if out is not NotImplemented:
                return out
        return module(*args, **kwargs)

    def _module_at(self, target: str) -> nn.Module:
        # fx looks the module up attribute by attribute for every call; the interpreter's
        # name -> module table answers at once (it lists a shared module under one name only)
        return self.submodules.get(target) or self.module.get_submodule(target)

    def _rule_failure(self, n: fx.Node, exc: Exception) -> TraceError:
        op, module = node_label(n)
        if n.op == "call_module":
            layer = self.module.get_submodule(str(n.target))
            op, kind = type(layer).__name__, "layer rule"
        else:
            kind = "op rule"
        return TraceError(
            f"the channel analysis failed at graph node '{n.name}' (op '{op}' in module "
            f"'{module or '<model>'}'): the {kind} raised {type(exc).__name__}: {exc}. If the rule is "
            "yours, fix it; otherwise report it, and meanwhile mark the module a leaf with "
            "prunekit.mark_leaf(ModuleType) so its channels are kept.",
            module=module or str(n.target),
        )

    def _annotate(self, n: fx.Node, args, kwargs, anns, kwanns, result) -> Any:
        ctx = self.ctx
        if n.op == "placeholder":
            return None
        if n.op == "get_attr":
            if isinstance(result, torch.Tensor):
                return ParamSource(str(n.target), tuple(range(result.ndim)))
            return None
        if n.op == "call_module":
            module = self._module_at(str(n.target))
            rule = get_rule(type(module))
            if rule is None:
                if any(True for _ in module.parameters()):
                    raise UnsupportedLayerError(
                        f"module '{n.target}' of type {type(module).__name__} has parameters and no "
                        f"layer rule. Register one with prunekit.register_rule({type(module).__name__}, "
                        "rule) (subclass prunekit.rules.LayerRule), or "
                        f"prunekit.register_rule({type(module).__name__}, prunekit.rules.OpaqueRule()) "
                        "to keep its channels.",
                        module=str(n.target),
                    )
                ctx.lock(
                    list(anns) + list(kwanns.values()),
                    f"leaf {type(module).__name__} '{n.target}' has no layer rule, so its channels are kept",
                )
                return None
            return rule.propagate(ctx, str(n.target), module, args, tuple(anns), result)
        if n.op in ("call_function", "call_method"):
            return handle_call(ctx, n, args, kwargs, tuple(anns), dict(kwanns), result)
        if n.op == "output":
            for axis in iter_axes(anns):
                ctx.atoms.lock(axis.flat, "reaches the model output (output dims never change)")
            return None
        return None


def _values(arg: Any, env: dict[fx.Node, Any]) -> Any:
    """``arg`` (a node's arguments) with each node replaced by its value in ``env``, in fresh
    mutable containers (a named tuple keeps its type, any other tuple becomes a plain one, as in
    fx's ``map_arg``).

    ``fx.Interpreter`` hands a call the node's list arguments as fx's immutable containers, where
    the code fx generates (and the model itself) would build a fresh list. A function that edits
    its list argument in place (torchvision's ``_get_window_and_shift_size`` in Swin3D) then fails
    only under prunekit: each call gets its own mutable copy, as it would when the model runs.
    """
    kind = type(arg)
    if kind is fx.Node:
        return env[arg]
    if kind is immutable_list or kind is list:
        return [_values(a, env) for a in arg]
    if kind is immutable_dict or kind is dict:
        return {k: _values(v, env) for k, v in arg.items()}
    if isinstance(arg, tuple):
        values = tuple(_values(a, env) for a in arg)
        return kind(*values) if hasattr(arg, "_fields") else values
    if kind is slice:
        return slice(_values(arg.start, env), _values(arg.stop, env), _values(arg.step, env))
    return arg


def run_analysis(
    traced: Traced, ctx: TraceContext, inputs: ExampleInputs, *, model: nn.Module, call_leaf: LeafCall | None = None
) -> None:
    """Interprets a traced graph on ``inputs`` under ``no_grad``, filling ``ctx``.

    An fx graph has one placeholder per parameter of ``model.forward``; an exported or recorded
    graph has one per leaf of the flattened inputs. ``call_leaf(name, module, args, kwargs)``,
    when given, is asked first for each leaf module's output (``NotImplemented``: call the
    module).
    """
    placeholders = inputs.bind(model) if traced.backend == "fx" else tuple(inputs.leaves())
    with torch.no_grad():
        ChannelInterpreter(traced.root, ctx, traced.graph, call_leaf=call_leaf).run(*placeholders)
