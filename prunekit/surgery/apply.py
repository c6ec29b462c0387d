"""Physical surgery: replace every member's tensors by their kept slices, all or nothing.

A layer that keeps no channel of a role (a removed branch) is replaced as a whole by its
stand-in (:mod:`prunekit.surgery.standins`), swapped in and put back like any tensor.

Everything is computed first (the rules never mutate a module); only then are the new tensors
and attributes swapped in. If anything fails, including the check forward that follows, every
swapped value is put back, so the user's model is exactly as it was.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn as nn

from prunekit.errors import EquivalenceError, PrunekitError, SurgeryError
from prunekit.rules.base import get_rule
from prunekit.submodules import submodule
from prunekit.surgery.plan import PrunePlan
from prunekit.surgery.standins import standin_for

__all__ = ["apply_plan", "apply_changes", "compute_changes", "measure_plan"]

Change = tuple[nn.Module, str, Any]


def _tensors(m: nn.Module) -> dict[str, torch.Tensor]:
    out: dict[str, torch.Tensor] = {k: v for k, v in m._parameters.items() if v is not None}
    out.update({k: v for k, v in m._buffers.items() if v is not None})
    return out


def compute_changes(model: nn.Module, plan: PrunePlan, *, tensors_of: Callable = _tensors) -> list[Change]:
    """The (module, attribute, new value) triples that carry out ``plan``; mutates nothing."""
    changes: list[Change] = []
    for name, keeps in plan.module_keep.items():
        m = submodule(model, name)
        rule = get_rule(type(m))
        if rule is None:
            raise SurgeryError(f"'{name}' ({type(m).__name__}) has no layer rule", module=name)
        keep_t = {role: torch.as_tensor(idx, dtype=torch.long) for role, idx in keeps.items() if role in rule.roles}
        if any(t.numel() == 0 for t in keep_t.values()):  # a removed branch: the layer is replaced
            parent, _, attr = name.rpartition(".")
            changes.append((submodule(model, parent), attr, standin_for(name, m, keep_t)))
            continue
        old = tensors_of(m)
        try:
            new = rule.slice_tensors(m, old, keep_t)
            attrs = rule.new_attributes(m, new)
        except PrunekitError as exc:
            raise SurgeryError(f"cannot prune '{name}': {exc}", module=name) from exc
        except Exception as exc:  # a rule bug must not leave a half-pruned model
            raise SurgeryError(
                f"cannot prune '{name}' ({type(m).__name__}): {type(exc).__name__}: {exc}", module=name
            ) from exc
        changes += [(m, k, v.contiguous()) for k, v in new.items() if v is not old.get(k)]
        changes += [(m, k, v) for k, v in attrs.items()]
    by_owner: dict[str, dict[str, torch.Tensor]] = {}
    for tname, dims in plan.param_keep.items():
        owner_name, _, attr = tname.rpartition(".")
        t = tensors_of(submodule(model, owner_name))[attr]
        for dim, idx in dims.items():
            t = t.index_select(dim, torch.as_tensor(idx, dtype=torch.long, device=t.device))
        by_owner.setdefault(owner_name, {})[attr] = t.contiguous()
    for owner_name, new in by_owner.items():
        owner = submodule(model, owner_name)
        changes += [(owner, attr, t) for attr, t in new.items()]
        rule = get_rule(type(owner))  # e.g. a LayerNorm subclass traced through: fix normalized_shape
        if rule is not None:
            changes += [(owner, k, v) for k, v in rule.new_attributes(owner, {**tensors_of(owner), **new}).items()]
    return changes


def _swap(m: nn.Module, attr: str, value: Any) -> Any:
    if attr in m._parameters:
        old = m._parameters[attr]
        # an exact Tensor (what the rules' slicing returns) is no Parameter: skip Parameter's
        # Python-level isinstance check, a few microseconds per tensor swapped
        if value is None or (type(value) is not torch.Tensor and isinstance(value, nn.Parameter)):
            m._parameters[attr] = value
        else:
            grad = True if old is None else old.requires_grad
            m._parameters[attr] = nn.Parameter(value.detach(), requires_grad=grad)
        return old
    if attr in m._buffers:
        old_buffer = m._buffers[attr]
        m._buffers[attr] = value
        return old_buffer
    old = getattr(m, attr)
    if type(m).__setattr__ is nn.Module.__setattr__ and attr in vars(m) and attr not in m._modules:
        # a plain attribute (out_channels...): Module.__setattr__ would first ask whether the
        # value is a Parameter, through Parameter's Python-level metaclass check
        object.__setattr__(m, attr, value)
    else:
        setattr(m, attr, value)
    return old


def apply_changes(
    changes: list[Change], *, verify: Callable[[], Any] | None = None, subject: str = "the pruned model"
) -> Any:
    """Swaps in every ``(module, attribute, new value)`` of ``changes`` (tensors, attributes or
    whole submodules) and returns ``verify()``'s result. If a swap or ``verify`` fails, every
    swapped value is put back first.

    Raises:
        SurgeryError: a swap or ``verify`` failed (an ``EquivalenceError`` from ``verify`` is
            raised as it is); the model is restored.
    """
    undo: list[tuple[nn.Module, str, Any]] = []
    try:
        for m, attr, value in changes:
            undo.append((m, attr, _swap(m, attr, value)))
        return verify() if verify is not None else None
    except Exception as exc:
        for m, attr, old in reversed(undo):
            _swap(m, attr, old)
        if isinstance(exc, (SurgeryError, EquivalenceError)):
            raise
        raise SurgeryError(
            f"{subject} failed its check forward ({type(exc).__name__}: {exc}); the model was restored unchanged",
        ) from exc


def apply_plan(model: nn.Module, plan: PrunePlan, *, verify: Callable[[], Any] | None = None) -> Any:
    """Applies ``plan`` to ``model`` in place; returns ``verify()``'s result.

    Raises:
        SurgeryError: a rule refused, or ``verify`` failed; the model is restored.
    """
    return apply_changes(compute_changes(model, plan), verify=verify)


def measure_plan(model: nn.Module, plan: PrunePlan, measure: Callable[[], Any]) -> Any:
    """Applies ``plan``, returns ``measure()``, and always puts the model back as it was.

    A budget search measures many plans this way without copying the model.
    """
    undo: list[tuple[nn.Module, str, Any]] = []
    try:
        for m, attr, value in compute_changes(model, plan):
            undo.append((m, attr, _swap(m, attr, value)))
        return measure()
    finally:
        for m, attr, old in reversed(undo):
            _swap(m, attr, old)
