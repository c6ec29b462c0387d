"""Example inputs of any structure: positional arguments, keyword arguments, nested containers.

Every prunekit function that runs the model takes ``example_inputs``. :func:`as_example_inputs`
turns what the user gives into one :class:`ExampleInputs` value:

=====================================  =======================================================
given                                  meaning
=====================================  =======================================================
a ``Tensor``                           ``model(x)``
a ``tuple``                            one positional argument per item: ``model(*items)``
a ``list``                             a single argument that is a list: ``model([img0, img1])``
                                       (torchvision detection models take ``list[Tensor]``)
a ``dict``                             keyword arguments: ``model(**d)``
an :class:`ExampleInputs`              ``model(*args, **kwargs)``
=====================================  =======================================================

Items may themselves be tensors, lists, tuples, dicts or plain values (ints, None...); at least
one tensor must be somewhere.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn as nn

from prunekit.errors import ExampleInputError

__all__ = ["ExampleInputs", "InputsLike", "as_example_inputs", "as_input_tuple", "iter_leaves"]


def iter_leaves(value: Any) -> Iterator[Any]:
    """Leaves of a nested tuple/list/dict, depth first, dicts in insertion order (as torch's pytree)."""
    if isinstance(value, (tuple, list)):
        for v in value:
            yield from iter_leaves(v)
    elif isinstance(value, dict):
        for v in value.values():
            yield from iter_leaves(v)
    else:
        yield value


def _map_tensors(value: Any, fn: Callable[[torch.Tensor], torch.Tensor]) -> Any:
    if isinstance(value, torch.Tensor):
        return fn(value)
    if isinstance(value, tuple):
        return (
            type(value)(*(_map_tensors(v, fn) for v in value))
            if hasattr(value, "_fields")
            else tuple(_map_tensors(v, fn) for v in value)
        )
    if isinstance(value, list):
        return [_map_tensors(v, fn) for v in value]
    if isinstance(value, dict):
        return {k: _map_tensors(v, fn) for k, v in value.items()}
    return value


@dataclass(frozen=True)
class ExampleInputs:
    """The arguments of one forward call: ``model(*args, **kwargs)``.

    Attributes:
        args: positional arguments (each a tensor or a nested container holding tensors).
        kwargs: keyword arguments.
    """

    args: tuple[Any, ...] = ()
    kwargs: Mapping[str, Any] = field(default_factory=dict)

    def call(self, fn: Callable[..., Any]) -> Any:
        """``fn(*args, **kwargs)``: runs a model (or any callable) on these inputs."""
        return fn(*self.args, **self.kwargs)

    def leaves(self) -> list[Any]:
        """Every leaf value of ``(args, kwargs)`` in pytree order (what ``torch.export`` flattens)."""
        return list(iter_leaves((tuple(self.args), dict(self.kwargs))))

    def tensors(self) -> list[torch.Tensor]:
        """Every tensor among the leaves."""
        return [v for v in self.leaves() if isinstance(v, torch.Tensor)]

    def map(self, fn: Callable[[torch.Tensor], torch.Tensor]) -> ExampleInputs:
        """The same structure with ``fn`` applied to every tensor (``.to(device)``, a new batch...)."""
        return ExampleInputs(_map_tensors(tuple(self.args), fn), _map_tensors(dict(self.kwargs), fn))

    def _bound(self, module: nn.Module) -> inspect.BoundArguments:
        try:
            bound = inspect.signature(module.forward).bind(*self.args, **self.kwargs)
        except TypeError as exc:
            raise ExampleInputError(
                f"example inputs do not match {type(module).__name__}.forward: {exc}", module="example_inputs"
            ) from exc
        bound.apply_defaults()
        return bound

    def bind(self, module: nn.Module) -> tuple[Any, ...]:
        """The values of ``module.forward``'s parameters in order, defaults filled in.

        ``torch.fx`` makes one placeholder per parameter of ``forward``; this is what they take.

        Raises:
            ExampleInputError: the inputs do not match the signature.
        """
        bound = self._bound(module)
        values: list[Any] = []
        for name, p in bound.signature.parameters.items():
            value = bound.arguments[name]
            if p.kind is inspect.Parameter.VAR_POSITIONAL:
                values.extend(value)
            elif p.kind is inspect.Parameter.VAR_KEYWORD:
                values.extend(value.values())
            else:
                values.append(value)
        return tuple(values)

    def constants(self, module: nn.Module) -> dict[str, Any]:
        """``forward``'s named parameters whose value holds no tensor (None, flags, numbers).

        ``torch.fx`` specialises the traced graph on them (``concrete_args``), so an optional
        input left at ``None`` does not put its branch in the graph.
        """
        bound = self._bound(module)
        plain = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
        return {
            name: value
            for name, value in bound.arguments.items()
            if bound.signature.parameters[name].kind in plain
            and not any(isinstance(v, torch.Tensor) for v in iter_leaves(value))
        }


#: What every prunekit function that runs the model accepts as ``example_inputs``.
InputsLike = torch.Tensor | Sequence[Any] | Mapping[str, Any] | ExampleInputs


def as_example_inputs(example_inputs: Any) -> ExampleInputs:
    """Normalises example inputs of any supported form (see the module docstring).

    Raises:
        ExampleInputError: a form that is not supported, or no tensor anywhere.
    """
    if isinstance(example_inputs, ExampleInputs):
        inputs = example_inputs
    elif isinstance(example_inputs, torch.Tensor):
        inputs = ExampleInputs((example_inputs,))
    elif isinstance(example_inputs, tuple):
        inputs = ExampleInputs(tuple(example_inputs))
    elif isinstance(example_inputs, list):
        inputs = ExampleInputs((example_inputs,))
    elif isinstance(example_inputs, dict) and all(isinstance(k, str) for k in example_inputs):
        inputs = ExampleInputs((), dict(example_inputs))
    else:
        raise ExampleInputError(
            "example_inputs must be a Tensor, a tuple (positional arguments), a list (one list "
            "argument), a dict (keyword arguments) or prunekit.ExampleInputs, but got "
            f"{type(example_inputs).__name__}",
            module="example_inputs",
        )
    if not inputs.tensors():
        kind = type(example_inputs).__name__
        raise ExampleInputError(f"example_inputs (a {kind}) holds no tensor", module="example_inputs")
    return inputs


def as_input_tuple(example_inputs: object) -> tuple[torch.Tensor, ...]:
    """Normalises example inputs to a tuple of tensors, or raises :class:`ExampleInputError`.

    The older, narrower form: a Tensor or a non-empty tuple/list of Tensors, one per positional
    argument. Use :func:`as_example_inputs` for anything else.
    """
    if isinstance(example_inputs, torch.Tensor):
        return (example_inputs,)
    if (
        isinstance(example_inputs, (tuple, list))
        and example_inputs
        and all(isinstance(t, torch.Tensor) for t in example_inputs)
    ):
        return tuple(example_inputs)
    kind = type(example_inputs).__name__
    raise ExampleInputError(
        f"example_inputs must be a Tensor or a non-empty tuple of Tensors (one per forward argument), but got {kind}",
        module="example_inputs",
    )
