"""Symbolic tracing of a model into ``torch.fx`` graphs, with prunekit's leaf modules.

The model is traced once in eval mode and once in train mode when the two differ (GoogLeNet and
Inception have auxiliary heads only in training): channels must stay consistent in both. The
train-mode trace is skipped when no code fx traces through (the methods of the non-leaf modules
and the Python functions they call) reads ``training``: then the two graphs cannot differ.
"""

from __future__ import annotations

import types
import warnings
from dataclasses import dataclass

import torch
import torch.fx as fx
import torch.nn as nn

from prunekit.errors import ExampleInputError, TraceError
from prunekit.graph.attr_sizes import probe_size_attributes
from prunekit.graph.recorder import record, restore_buffers, snapshot_buffers
from prunekit.inputs import ExampleInputs
from prunekit.modes import restore_training_flags, save_training_flags
from prunekit.rules.base import inherits_rule, is_marked_leaf

__all__ = ["TRACERS", "Traced", "trace", "trace_modes", "PrunekitTracer", "may_differ_in_training"]

#: The tracer choices: "auto" (fx, then torch.export), "fx", "export", "record" (opt-in: see
#: :mod:`prunekit.graph.recorder`).
TRACERS = ("auto", "fx", "export", "record")


#: Argument types that are never a parameter, a buffer or a module (exact types: a NamedTuple
#: is a tuple subclass and fx lowers it differently).
_PLAIN_ARGS = frozenset(
    {fx.Proxy, int, float, bool, str, type(None), type(...), slice, tuple, list, dict}
    | {torch.dtype, torch.device, torch.memory_format, torch.layout}
)


class PrunekitTracer(fx.Tracer):
    """fx tracer that also stops at layer types the user registered or marked as leaves, and at
    subclasses of registered layers that keep their base's ``forward`` (see ``inherits_rule``)."""

    def call_module(self, m: nn.Module, forward, args, kwargs):
        try:
            return self._call_module(m, forward, args, kwargs)
        except Exception as exc:  # remember the innermost module, for the error message
            if not hasattr(exc, "_prunekit_module"):
                exc._prunekit_module = (self.path_of_module(m), type(m).__name__)  # type: ignore[attr-defined]
            raise

    def _call_module(self, m: nn.Module, forward, args, kwargs):
        """fx's ``Tracer.call_module`` (the same scope, module stack and call counts, so the
        nodes get the same names and ``nn_module_stack``) without its ``ScopeContextManager``,
        which ``copy.copy``-s the scope on every module call (7% of tracing a RegNet). An fx
        without those fields gets its own method."""
        scope, stack, calls = (
            getattr(self, "scope", None),
            getattr(self, "module_stack", None),
            self.__dict__.get("num_calls"),
        )
        if scope is None or stack is None or calls is None:
            return super().call_module(m, forward, args, kwargs)
        name = self.path_of_module(m)
        outer = scope.module_path, scope.module_type
        scope.module_path, scope.module_type = name, type(m)
        try:
            n = calls.get(name, 0)
            key = f"{name}@{n}" if n > 0 else name
            stack[key] = (name, type(m))
            calls[name] = n + 1
            if self.is_leaf_module(m, name):
                out = self.create_proxy("call_module", name, args, kwargs)
            else:
                out = forward(*args, **kwargs)
            if stack.popitem(last=True)[0] != key:
                raise TraceError(f"module stack out of order after '{name}'", module=name)
            return out
        finally:
            scope.module_path, scope.module_type = outer

    def create_arg(self, a: object) -> fx.node.Argument:
        # fx's Tracer.create_arg first asks isinstance(a, nn.Parameter), which runs Parameter's
        # Python-level metaclass check on every argument (5% of a RegNet prune): a proxy, a
        # number or a plain container never is one, so those go straight to the base lowering
        # (which calls back here for a container's elements)
        if type(a) in _PLAIN_ARGS:
            return fx.proxy.TracerBase.create_arg(self, a)
        return super().create_arg(a)

    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
        if is_marked_leaf(type(m)) or inherits_rule(type(m)):
            return True
        return super().is_leaf_module(m, module_qualified_name)


@dataclass(frozen=True)
class Traced:
    """One traced graph, ready to interpret.

    Attributes:
        root: what the graph's ``get_attr`` / ``call_module`` targets are looked up in.
        graph: the graph.
        backend: "fx", "export" or "record".
        training: the mode the model was traced in.
    """

    root: nn.Module
    graph: fx.Graph
    backend: str
    training: bool = False


def _trace_fx(model: nn.Module, inputs: ExampleInputs | None) -> Traced:
    fx_tracer = PrunekitTracer()
    constants = inputs.constants(model) if inputs is not None else None
    before = set(vars(model))
    try:
        graph = fx_tracer.trace(model, concrete_args=constants)
        probe_size_attributes(model, graph, lambda: PrunekitTracer().trace(model, concrete_args=constants))
        added = set(vars(model)) - before  # fx stores tensor constants on the model
        if not added:
            # the graph's targets are qualified names in the model itself: interpret it against
            # the model, without a GraphModule (which copies every submodule and compiles code)
            return Traced(fx_tracer.root, graph, "fx", model.training)
        gm = fx.GraphModule(fx_tracer.root, graph, type(model).__name__)  # copies what the graph uses
    finally:
        for key in set(vars(model)) - before:  # take fx's constants off the user's model
            delattr(model, key)
    return Traced(gm, gm.graph, "fx", model.training)


def _trace_export(model: nn.Module, inputs: ExampleInputs) -> Traced:
    # a forward that caches values on its module (ultralytics' Detect stores its anchors and the
    # shape they are for) would keep export's fake tensors there: put every attribute back
    saved = [(m, dict(vars(m))) for m in model.modules()]
    try:
        program = torch.export.export(model, tuple(inputs.args), dict(inputs.kwargs), strict=False)
    finally:
        for m, attrs in saved:
            vars(m).clear()
            vars(m).update(attrs)
    gm = program.module()
    return Traced(gm, gm.graph, "export", model.training)


def _trace_record(model: nn.Module, inputs: ExampleInputs) -> Traced:
    saved = snapshot_buffers(model)
    try:
        with torch.random.fork_rng(devices=[]):
            graph = record(model, inputs, PrunekitTracer().is_leaf_module)
    except Exception as exc:  # recording only runs the model: a failure is the model's, on these inputs
        raise ExampleInputError(
            f"{type(model).__name__} failed on the example inputs while its run was recorded: "
            f"{type(exc).__name__}: {exc}. Pass example inputs of the form and shape the model expects "
            "(see prunekit.inputs).",
            module="example_inputs",
        ) from exc
    finally:
        restore_buffers(model, saved)
    return Traced(model, graph, "record", model.training)


def _trace_error(model: nn.Module, errors: dict[str, Exception]) -> TraceError:
    fx_error = errors.get("fx")
    culprit, culprit_type = getattr(fx_error, "_prunekit_module", (None, None))
    inside = f" inside module '{culprit}' ({culprit_type})" if culprit else ""
    parts = []
    for backend, exc in errors.items():
        head = {"fx": f"torch.fx cannot trace it{inside}", "export": "torch.export cannot either"}.get(
            backend, "recording it failed"
        )
        parts.append(f"{head}: {type(exc).__name__}: {str(exc)[:300]}")
    hint = (
        ' or, if the example inputs take the path you prune for, record what runs with tracer="record"'
        if "record" not in errors
        else ""
    )
    return TraceError(
        f"cannot trace {type(model).__name__}: " + "; ".join(parts) + ". "
        "Usually a Python construct that depends on tensor values (if/for on a tensor, "
        ".item(), len() of a tensor) inside some module. Mark that module as a leaf with "
        "prunekit.mark_leaf(ModuleType) (its channels are then kept) or give it a rule with "
        f"prunekit.register_rule(ModuleType, rule){hint}.",
        module=culprit or type(model).__name__,
    )


def trace(model: nn.Module, inputs: ExampleInputs | None = None, *, tracer: str = "auto") -> Traced:
    """Traces ``model`` in its current mode.

    "auto" tries ``torch.fx``, then ``torch.export`` (needs ``inputs``); "fx", "export" and
    "record" (:mod:`prunekit.graph.recorder`) use that backend only.

    Raises:
        TraceError: no backend works; the message names the construct and what to do.
    """
    order = {"auto": ("fx", "export"), "fx": ("fx",), "export": ("export",), "record": ("record",)}[tracer]
    errors: dict[str, Exception] = {}
    for backend in order:
        if backend != "fx" and inputs is None:
            continue
        try:
            if backend == "fx":
                return _trace_fx(model, inputs)
            if backend == "export":
                return _trace_export(model, inputs)  # type: ignore[arg-type]
            return _trace_record(model, inputs)  # type: ignore[arg-type]
        except ExampleInputError:
            raise
        except Exception as exc:  # the tracers raise many types; all mean "cannot trace"
            errors[backend] = exc
    first = next(iter(errors.values()))
    raise _trace_error(model, errors) from first


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
    model: nn.Module, inputs: ExampleInputs, train_inputs: ExampleInputs, *, tracer: str = "auto"
) -> list[Traced]:
    """Traces in eval mode and, if its graph differs, in train mode; restores the model's mode.

    Returns:
        The eval graph, then the train graph when it differs.
    """
    flags = save_training_flags(model)
    try:
        if any(flags.values()):  # an eval model needs no write
            model.eval()
        eval_traced = trace(model, inputs, tracer=tracer)
        graphs = [eval_traced]
        if not may_differ_in_training(model):
            return graphs
        model.train()
        try:
            train_traced = trace(model, train_inputs, tracer=tracer)
        except TraceError:
            if eval_traced.backend == "fx":
                raise
            train_traced = eval_traced  # the train graph failed to export: eval only
        except ExampleInputError as exc:  # e.g. a detection model that needs targets in training
            warnings.warn(
                f"{type(model).__name__} does not run in train mode on the example inputs ({exc}); "
                "channels used only in training mode (auxiliary heads) are not analysed",
                stacklevel=4,
            )
            train_traced = eval_traced
        if str(train_traced.graph) != str(eval_traced.graph):
            graphs.append(train_traced)
    finally:
        restore_training_flags(flags)
    return graphs
