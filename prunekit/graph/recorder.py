"""Recording what runs: the tracer for models whose Python control flow ``torch.fx`` cannot follow.

``torch.fx`` traces symbolically and fails on control flow that depends on tensor values (a
detection head that branches on its predictions, NMS); ``torch.export`` fails on it too. The
recorder instead runs the model once on the example inputs under a
:class:`~torch.overrides.TorchFunctionMode` and writes every torch function and tensor method that
runs into an ``fx.Graph``, plus one ``call_module`` node per leaf layer (caught with forward
hooks, so a conv is one node, not its internals). Python ``if``/``for`` simply take the branch
they took on the example inputs.

Note:
    The graph is the path the example inputs took. Channels used only on another path (another
    branch of an ``if`` on tensor values) are not seen, which is why ``tracer="auto"`` never
    chooses the recorder: ask for it with ``tracer="record"``. Sizes are recorded as the numbers
    they were, so a ``view`` whose channel size the model computes is treated as hard-coded and
    locks its channels (as with ``torch.export``). Tensors that appear from nowhere the recorder
    saw (a tensor built from Python numbers inside a leaf, an iterator) are constants, whose
    channels prunekit cannot slice.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

import torch
import torch.fx as fx
import torch.nn as nn
from torch.overrides import TorchFunctionMode

from prunekit.inputs import ExampleInputs, iter_leaves

__all__ = ["record", "RecordedConstant", "snapshot_buffers", "restore_buffers"]


class RecordedConstant:
    """A call target that returns a tensor the recorder saw but did not see being made."""

    __name__ = "recorded_constant"

    def __init__(self, value: torch.Tensor) -> None:
        self.value = value

    def __call__(self) -> torch.Tensor:
        return self.value


class _Recorder(TorchFunctionMode):
    """Writes the torch calls made outside leaf layers into ``graph``."""

    def __init__(self, model: nn.Module, is_leaf: Callable[[nn.Module, str], bool]) -> None:
        super().__init__()
        self.graph = fx.Graph()
        self.nodes: dict[int, fx.Node] = {}
        self.keep: list[Any] = []  # keeps recorded tensors alive, so their ids are not reused
        self.params = {id(t): name for name, t in model.named_parameters(remove_duplicate=False)}
        self.params.update({id(t): name for name, t in model.named_buffers(remove_duplicate=False)})
        self.names = {m: name for name, m in model.named_modules(remove_duplicate=False)}
        self.is_leaf = is_leaf
        self.stack: list[tuple[str, type]] = []
        self.leaf_depth = 0

    # ---- values
    def bind(self, value: Any, node: fx.Node) -> None:
        """Records that ``value`` (a tensor, or a container of them) is produced by ``node``."""
        if isinstance(value, torch.Tensor):
            self.nodes[id(value)] = node
            self.keep.append(value)
        elif isinstance(value, (tuple, list)):
            for i, v in enumerate(value):
                if _has_tensor(v):
                    self.bind(v, self.graph.call_function(operator.getitem, (node, i)))

    def arg(self, value: Any) -> Any:
        """``value`` with every tensor replaced by the node that produced it."""
        if isinstance(value, torch.Tensor):
            node = self.nodes.get(id(value))
            if node is None:
                name = self.params.get(id(value))
                node = self.graph.get_attr(name) if name is not None else self._constant(value)
            return node
        if isinstance(value, (tuple, list)) and not isinstance(value, torch.Size):
            mapped = [self.arg(v) for v in value]
            return type(value)(*mapped) if hasattr(value, "_fields") else type(value)(mapped)
        if isinstance(value, dict):
            return {k: self.arg(v) for k, v in value.items()}
        return value

    def _constant(self, value: torch.Tensor) -> fx.Node:
        node = self.graph.call_function(RecordedConstant(value), ())
        self.bind(value, node)
        return node

    def node(self, kind: str, target: Any, args: tuple, kwargs: dict) -> fx.Node:
        node = self.graph.create_node(kind, target, self.arg(tuple(args)), self.arg(dict(kwargs)))
        if self.stack:
            node.meta["nn_module_stack"] = {name: (name, cls) for name, cls in self.stack}
        return node

    # ---- torch calls
    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        if self.leaf_depth:
            return out
        name = getattr(func, "__name__", "")
        if name == "__setitem__":  # a mutation: recorded so its rule sees (and locks) the channels
            self.node("call_function", operator.setitem, args, kwargs)
        elif _has_tensor(out):
            if name == "__getitem__":
                node = self.node("call_function", operator.getitem, args, kwargs)
            elif getattr(torch.Tensor, name, None) is func:
                node = self.node("call_method", name, args, kwargs)
            else:
                node = self.node("call_function", func, args, kwargs)
            self.bind(out, node)
        return out

    # ---- layers
    def pre_hook(self, module: nn.Module, args: tuple, kwargs: dict) -> None:
        name = self.names.get(module, "")
        if not self.leaf_depth:
            self.stack.append((name, type(module)))
        if self.leaf_depth or (name and self.is_leaf(module, name)):
            self.leaf_depth += 1

    def post_hook(self, module: nn.Module, args: tuple, kwargs: dict, out: Any) -> None:
        name = self.names.get(module, "")
        if self.leaf_depth:
            self.leaf_depth -= 1
            if self.leaf_depth == 0:
                self.bind(out, self.node("call_module", name, args, kwargs))
        if not self.leaf_depth and self.stack:
            self.stack.pop()


def _has_tensor(value: Any) -> bool:
    return any(isinstance(v, torch.Tensor) for v in iter_leaves(value))


def record(model: nn.Module, inputs: ExampleInputs, is_leaf: Callable[[nn.Module, str], bool]) -> fx.Graph:
    """Runs ``model`` on ``inputs`` and returns the graph of what ran (see the module docstring).

    The graph has one placeholder per leaf of ``inputs.leaves()``; ``get_attr`` and
    ``call_module`` targets are names in ``model``.
    """
    rec = _Recorder(model, is_leaf)
    for i, leaf in enumerate(inputs.leaves()):
        node = rec.graph.placeholder(f"input_{i}")
        if isinstance(leaf, torch.Tensor):
            rec.bind(leaf, node)
    handles = []
    for m in model.modules():
        handles.append(m.register_forward_pre_hook(rec.pre_hook, with_kwargs=True))
        handles.append(m.register_forward_hook(rec.post_hook, with_kwargs=True))
    try:
        with torch.no_grad(), rec:
            out = inputs.call(model)
    finally:
        for h in handles:
            h.remove()
    rec.graph.output(rec.arg(out))
    return rec.graph


def snapshot_buffers(model: nn.Module) -> dict[str, torch.Tensor]:
    """Copies of every buffer (BatchNorm statistics), to undo a forward in train mode."""
    return {k: v.detach().clone() for k, v in model.named_buffers()}


def restore_buffers(model: nn.Module, saved: dict[str, torch.Tensor]) -> None:
    with torch.no_grad():
        for k, v in model.named_buffers():
            if k in saved:
                v.copy_(saved[k])
