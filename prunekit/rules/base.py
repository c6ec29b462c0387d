"""Layer rules: how a layer type maps channels from input to output and how to slice it.

A rule is looked up by the module's type (most derived registered class first). It has two jobs:

* :meth:`LayerRule.propagate` runs during tracing: given the channel layouts
  (:class:`prunekit.channels.Axis`) of the layer's inputs, it registers the layer's members
  ("in"/"out" roles) on the :class:`prunekit.channels.TraceContext` and returns the layout of its
  output. Everything a rule needs is public in :mod:`prunekit.channels`.
* :meth:`LayerRule.slice_tensors` / :meth:`LayerRule.new_attributes` run during surgery: given
  the positions to keep per role, they return the layer's new tensors and attributes. They never
  mutate the module, so a failed prune can leave the model untouched.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn as nn

from prunekit.channels import Ann, TraceContext
from prunekit.errors import ConfigError, SurgeryError

__all__ = [
    "LayerRule",
    "register_rule",
    "register_rule_by_name",
    "unregister_rule",
    "get_rule",
    "mark_leaf",
    "unmark_leaf",
    "is_marked_leaf",
    "inherits_rule",
    "registered_rules",
]

_RULES: dict[type, LayerRule] = {}
_USER_LEAVES: set[type] = set()
#: Rules for third-party layers named by ``module.QualName``, bound to the class the first time a
#: model shows it, so prunekit never imports torchvision or timm to register them.
_NAMED_RULES: dict[str, LayerRule] = {}
_NAMED_CHECKED: set[type] = set()  # types whose classes were already looked up by name


class LayerRule:
    """Base class of layer rules. Subclasses override what they need.

    Attributes:
        roles: the channel roles the layer has ("in", "out").
    """

    roles: tuple[str, ...] = ("in", "out")

    def propagate(
        self, ctx: TraceContext, name: str, module: nn.Module, args: tuple[Any, ...], axes: tuple[Ann, ...], output: Any
    ) -> Ann:
        """Registers the layer's members and returns the output's annotation.

        Args:
            ctx: the trace context to report members, couplings and locks to.
            name: the module's qualified name.
            module: the module.
            args: the real values of its positional inputs on the example inputs.
            axes: their annotations (an :class:`~prunekit.channels.Axis` where channels flow).
            output: the module's real output.

        Returns:
            The output's annotation (an ``Axis``, a tuple of them, or None).
        """
        raise NotImplementedError(f"{type(self).__name__} does not implement propagate()")

    def role_tensors(self, module: nn.Module, role: str) -> list[tuple[str, int]]:
        """The (attribute name, dim) pairs a role slices; tensors that are None are skipped."""
        return []

    def position_views(self, module: nn.Module, role: str) -> list[torch.Tensor]:
        """Per-position views of the role's parameters, each of shape (positions, -1).

        Criteria such as L1 read these: row i holds every weight that position i owns.
        """
        views = []
        params, buffers = module._parameters, module._buffers
        for attr, dim in self.role_tensors(module, role):
            # a registered parameter or buffer is read off its table: isinstance(t, Parameter)
            # runs Parameter's Python-level metaclass check, a few microseconds per tensor
            p: torch.Tensor | None
            if attr in params:
                p = params[attr]
            elif attr in buffers:
                continue
            else:
                p = getattr(module, attr, None)
                p = p if isinstance(p, nn.Parameter) else None
            if p is not None:
                t = p.detach()
                views.append(t.reshape(t.shape[0], -1) if dim == 0 else t.movedim(dim, 0).reshape(t.shape[dim], -1))
        return views

    def slice_tensors(
        self, module: nn.Module, tensors: Mapping[str, torch.Tensor], keep: Mapping[str, torch.Tensor]
    ) -> dict[str, torch.Tensor]:
        """Returns the new tensors after keeping ``keep[role]`` positions of each role."""
        out = dict(tensors)
        for role, idx in keep.items():
            for attr, dim in self.role_tensors(module, role):
                if out.get(attr) is not None:
                    out[attr] = out[attr].index_select(dim, idx.to(out[attr].device))
        return out

    def new_attributes(self, module: nn.Module, tensors: Mapping[str, torch.Tensor]) -> dict[str, Any]:
        """The module's new int attributes (``out_channels``...) after slicing."""
        return {}

    def input_dim(self, module: nn.Module, ndim: int) -> int:
        """The channel dim of the layer's input (used by the equivalence oracle)."""
        return 1

    def mixes_inputs(self, module: nn.Module) -> bool:
        """True when each output reads several input channels (so the oracle must zero them)."""
        return True


def _check_type(layer_type: object) -> type:
    if not isinstance(layer_type, type) or not issubclass(layer_type, nn.Module):
        raise ConfigError(f"layer_type must be an nn.Module subclass, but got {layer_type!r}")
    return layer_type


def register_rule(layer_type: type, rule: LayerRule, *, replace: bool = False) -> None:
    """Registers ``rule`` for ``layer_type`` (and its subclasses) and makes the type a leaf.

    Args:
        layer_type: an ``nn.Module`` subclass.
        rule: a :class:`LayerRule` instance.
        replace: allow replacing an existing rule for exactly this type.
    """
    _check_type(layer_type)
    if not isinstance(rule, LayerRule):
        raise ConfigError(f"rule must be a prunekit LayerRule instance, but got {type(rule).__name__}")
    if layer_type in _RULES and not replace:
        raise ConfigError(
            f"a rule for {layer_type.__name__} is already registered; pass replace=True to override",
            module=layer_type.__name__,
        )
    _RULES[layer_type] = rule
    if not layer_type.__module__.startswith("torch.nn"):
        _USER_LEAVES.add(layer_type)


def register_rule_by_name(qualified_name: str, rule: LayerRule) -> None:
    """Registers ``rule`` for the class named ``qualified_name`` (``"package.module.ClassName"``)
    without importing it: the rule is bound (as :func:`register_rule` would) the first time a
    model holds an instance of that class or a subclass. For third-party layers such as
    torchvision's ``StochasticDepth``, whose packages ``import prunekit`` must not pull in."""
    if not isinstance(rule, LayerRule):
        raise ConfigError(f"rule must be a prunekit LayerRule instance, but got {type(rule).__name__}")
    if "." not in qualified_name:
        raise ConfigError(
            f"qualified_name must be 'package.module.ClassName', but got {qualified_name!r}", module=qualified_name
        )
    _NAMED_RULES[qualified_name] = rule
    _NAMED_CHECKED.clear()


def _bind_named(layer_type: type) -> None:
    """Binds a rule registered by name to ``layer_type`` and its bases, if one names them."""
    if not _NAMED_RULES or layer_type in _NAMED_CHECKED:
        return
    _NAMED_CHECKED.add(layer_type)
    for cls in layer_type.__mro__:
        if cls is nn.Module:
            break
        rule = _NAMED_RULES.pop(f"{cls.__module__}.{cls.__qualname__}", None)
        if rule is not None and cls not in _RULES:
            register_rule(cls, rule)


def unregister_rule(layer_type: type) -> None:
    """Removes the rule registered for exactly ``layer_type``."""
    _RULES.pop(layer_type, None)
    _USER_LEAVES.discard(layer_type)


def get_rule(layer_type: type) -> LayerRule | None:
    """The rule for ``layer_type`` or its nearest registered base class, or None."""
    _bind_named(layer_type)
    for cls in layer_type.__mro__:
        rule = _RULES.get(cls)
        if rule is not None:
            return rule
        if cls is nn.Module:
            break
    return None


def inherits_rule(layer_type: type) -> bool:
    """True when ``layer_type`` is a subclass of a registered type that keeps its ``forward``.

    Such a subclass (``class MyConv(nn.Conv2d): pass``, torchvision's ``Conv3DSimple``) computes
    what its registered base computes, so the base's rule applies and the tracer treats it as a
    leaf. A subclass that overrides ``forward`` may do anything (pad first, gate its output): it
    is traced through unless a rule is registered for it.
    """
    _bind_named(layer_type)
    for cls in layer_type.__mro__:
        if cls in _RULES:
            return getattr(cls, "forward", None) is getattr(layer_type, "forward", None)
        if cls is nn.Module:
            break
    return False


def mark_leaf(layer_type: type) -> None:
    """Tells the tracer not to trace into ``layer_type``.

    A leaf with no rule keeps its channels: everything flowing into it is locked. A leaf with
    parameters and no rule is an error at graph build (register a rule for it).
    """
    _USER_LEAVES.add(_check_type(layer_type))


def unmark_leaf(layer_type: type) -> None:
    _USER_LEAVES.discard(layer_type)


def is_marked_leaf(layer_type: type) -> bool:
    _bind_named(layer_type)
    return layer_type in _USER_LEAVES


def registered_rules() -> dict[type, LayerRule]:
    return dict(_RULES)


def require_balanced(idx: torch.Tensor, total: int, groups: int, what: str, module: str) -> torch.Tensor:
    """Splits kept global positions into per-group local positions, shape (groups, n); row g
    holds group g's positions in the order ``idx`` gives them."""
    per = total // groups
    idx = idx.to(torch.long).reshape(-1)
    group = idx // per
    counts = torch.bincount(group, minlength=groups)
    if len(counts) > groups or (groups and int(counts.min()) != int(counts.max())):
        raise SurgeryError(
            f"{module}: {what} of a grouped layer must keep the same number of channels in each of "
            f"its {groups} groups, but got {counts.tolist()}",
            module=module,
        )
    return (idx % per)[torch.argsort(group, stable=True)].reshape(groups, -1)
