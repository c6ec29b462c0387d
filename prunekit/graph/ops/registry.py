"""The op-rule registry: how channels flow through functions and tensor methods.

An *op rule* is a function that receives one call's real argument values (the model is run on
the example inputs), their channel annotations, and the result, and returns the result's
annotation; it reports couplings and locks to the :class:`~prunekit.channels.TraceContext`.
Rules are looked up by the call's target:

* a function or builtin (``torch.add``, ``operator.getitem``, ``F.layer_norm``, a function you
  wrapped with ``torch.fx.wrap``) for ``call_function`` nodes;
* a string, the name of a tensor method (``"view"``, ``"chunk"``), for ``call_method`` nodes;
* an ATen op (``torch.ops.aten.roll.default`` or the packet ``torch.ops.aten.roll``) for the
  nodes of a ``torch.export`` graph.

A call with no rule locks every channel it touches: prunekit never guesses.

Example::

    def my_gate(ctx, node, args, kwargs, anns, kwanns, result):
        return anns[0]  # channel-wise: the output carries the input's channels

    prunekit.graph.ops.register_op_rule(my_gate_fn, my_gate)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeAlias

import torch.fx as fx

from prunekit.channels import Ann, TraceContext
from prunekit.errors import ConfigError

__all__ = [
    "OpRule",
    "OpTarget",
    "register_op_rule",
    "unregister_op_rule",
    "get_op_rule",
    "registered_op_rules",
    "op_rule",
    "op_name",
    "base_name",
]

#: ``rule(ctx, node, args, kwargs, anns, kwanns, result) -> annotation of result``: ``args`` and
#: ``kwargs`` are the call's real values, ``anns``/``kwanns`` their annotations.
OpRule: TypeAlias = Callable[
    [TraceContext, fx.Node, tuple[Any, ...], dict[str, Any], tuple[Ann, ...], dict[str, Ann], Any], Ann
]
#: A function / builtin / ATen op, or the name of a tensor method.
OpTarget: TypeAlias = Callable[..., Any] | str

_OP_RULES: dict[OpTarget, OpRule] = {}


def op_name(target: object) -> str:
    """A readable name for a call target (``'add'``, ``'view'``, ``'aten.roll.default'``)."""
    if isinstance(target, str):
        return target
    return str(getattr(target, "__name__", None) or target)


def base_name(target: object) -> str:
    """The bare name of a call target, the same for ``"view"``, ``torch.Tensor.view`` and
    ``aten.view.default`` (rules shared by methods and ATen ops compare this)."""
    packet = getattr(target, "overloadpacket", None)
    if packet is not None:
        return str(packet.__name__)
    return op_name(target)


def _check_target(target: object) -> OpTarget:
    if isinstance(target, str):
        module, _, name = target.partition(":")
        qualified = bool(name) and all(p.isidentifier() for p in module.split(".") + name.split("."))
        if not target.isidentifier() and not qualified:
            raise ConfigError(
                f"a method name must be an identifier (or 'package.module:function'), but got {target!r}",
                module=target,
            )
        return target
    if not callable(target):
        raise ConfigError(
            f"target must be a function, an ATen op or a tensor-method name, but got {type(target).__name__}",
            module=repr(target),
        )
    return target


def register_op_rule(target: OpTarget, rule: OpRule, *, replace: bool = False) -> None:
    """Registers ``rule`` for calls of ``target``.

    Args:
        target: a function or builtin (``call_function``), a function's qualified name
            (``"package.module:function"``, matched without importing it), the name of a tensor
            method (``call_method``), or an ATen op / op packet (``torch.export`` graphs).
        rule: ``rule(ctx, node, args, kwargs, anns, kwanns, result)`` returning the annotation of
            ``result`` (see :mod:`prunekit.channels`).
        replace: allow replacing an existing rule (built-in or not) for ``target``.

    Raises:
        ConfigError: ``target`` already has a rule and ``replace`` is False, or an argument has
            the wrong type.
    """
    target = _check_target(target)
    if not callable(rule):
        raise ConfigError(f"rule must be callable, but got {type(rule).__name__}", module=op_name(target))
    if target in _OP_RULES and not replace:
        raise ConfigError(
            f"an op rule for {op_name(target)!r} is already registered; pass replace=True to override",
            module=op_name(target),
        )
    _OP_RULES[target] = rule


def unregister_op_rule(target: OpTarget) -> None:
    """Removes the rule registered for ``target`` (its calls then lock their channels)."""
    _OP_RULES.pop(target, None)


def get_op_rule(target: object) -> OpRule | None:
    """The rule registered for ``target``, or None. A function may also be registered by its
    qualified name, ``"package.module:function"``, so that a rule for a library's op does not
    import that library (torchvision's ``stochastic_depth``) until a model calls it."""
    try:
        rule = _OP_RULES.get(target)  # type: ignore[call-overload]
    except TypeError:  # an unhashable target
        return None
    if rule is None and callable(target) and not isinstance(target, str):
        name = f"{getattr(target, '__module__', '')}:{getattr(target, '__qualname__', '')}"
        rule = _OP_RULES.get(name)  # type: ignore[call-overload]
    return rule


def registered_op_rules() -> dict[OpTarget, OpRule]:
    """A copy of the table: target -> rule."""
    return dict(_OP_RULES)


def op_rule(*targets: OpTarget) -> Callable[[OpRule], OpRule]:
    """Decorator: registers the decorated rule for every target.

    Targets that are the same object (``F.relu_ is torch.relu_``) count once; a target that
    already has a rule from elsewhere raises :class:`~prunekit.errors.ConfigError`.
    """

    def wrap(rule: OpRule) -> OpRule:
        for t in dict.fromkeys(targets):
            register_op_rule(t, rule)
        return rule

    return wrap
