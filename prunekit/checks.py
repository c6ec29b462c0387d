"""Checks of a model and its example inputs before prunekit touches them.

:func:`check_model` is what every entry point runs first: the model is an ``nn.Module`` with
real (not meta-device) tensors, the inputs fit the arity of its ``forward``, and every weight is
finite. A NaN weight poisons every score and every comparison it touches (``max(err, nan)``
keeps ``err``), so it is reported with its tensor and channel, never pruned silently.

Parameters and normalisation statistics (BatchNorm's running mean and variance) must be finite.
Other buffers may legitimately hold infinities: clamp bounds (timm's Gemma 4 ViT keeps
``input_min = -inf``), additive attention masks of ``-inf``; only a NaN there is an error.
"""

from __future__ import annotations

import inspect
from typing import Any

import torch
import torch.nn as nn

from prunekit.errors import ConfigError, ExampleInputError, NonFiniteError
from prunekit.inputs import as_example_inputs

__all__ = ["check_module", "check_arity", "check_model", "nonfinite_tensors", "check_finite", "check_finite_inputs"]


def check_module(model: object, *, argument: str = "model") -> nn.Module:
    """``model`` itself if it is an ``nn.Module`` whose tensors are real (not on the meta device).

    Raises:
        ConfigError: not a module (a function, a class, a state dict), or meta-device tensors.
    """
    if not isinstance(model, nn.Module):
        what = "a class: instantiate it" if isinstance(model, type) else type(model).__name__
        raise ConfigError(f"{argument}: must be a torch.nn.Module, but got {what}", module=argument)
    for name, t, _, _ in _own_tensors(model):
        if t.is_meta:
            raise ConfigError(
                f"{argument}: {name} is on the meta device (no values); load real weights first "
                "(e.g. model.to_empty(device='cpu') then load_state_dict)",
                module=name.rpartition(".")[0] or argument,
            )
    return model


def check_arity(model: nn.Module, inputs: Any) -> None:
    """Raises :class:`ExampleInputError` when ``model.forward`` cannot take ``inputs`` (any form
    :func:`~prunekit.inputs.as_example_inputs` reads; checked on the signature: nothing runs)."""
    ex = as_example_inputs(inputs)
    try:
        signature = inspect.signature(model.forward)
    except (TypeError, ValueError):  # a builtin or C forward: let the forward itself decide
        return
    try:
        signature.bind(*ex.args, **ex.kwargs)
    except TypeError as exc:
        raise ExampleInputError(
            f"example_inputs: {len(ex.args) + len(ex.kwargs)} input(s) given, but {type(model).__name__}.forward{signature} "
            f"does not take them ({exc})",
            module="example_inputs",
        ) from None


def check_model(model: object, inputs: Any, *, argument: str = "model", module_checked: bool = False) -> nn.Module:
    """:func:`check_module` (unless ``module_checked``: the caller just ran it), :func:`check_arity`,
    :func:`check_finite` and :func:`check_finite_inputs` in turn; returns the model."""
    module = model if module_checked and isinstance(model, nn.Module) else check_module(model, argument=argument)
    check_arity(module, inputs)
    check_finite(module, what=argument)
    check_finite_inputs(inputs)
    return module


def _finite_tensors(model: nn.Module) -> list[tuple[str, torch.Tensor, bool]]:
    """``(name, tensor, inf_allowed)`` for every parameter and buffer: infinities are allowed in
    buffers other than normalisation statistics (see the module docstring)."""
    params: list[tuple[str, torch.Tensor, bool]] = []
    buffers: list[tuple[str, torch.Tensor, bool]] = []
    seen: set[int] = set()
    for name, t, module, is_buffer in _own_tensors(model):
        if is_buffer:
            buffers.append((name, t, not isinstance(module, nn.modules.batchnorm._NormBase)))
        elif id(t) not in seen:  # a shared parameter once, as named_parameters
            seen.add(id(t))
            params.append((name, t, False))
    return params + buffers


def _own_tensors(model: nn.Module) -> list[tuple[str, torch.Tensor, nn.Module, bool]]:
    """``(qualified name, tensor, owning module, is a buffer)`` of every parameter and buffer, in
    one walk of the modules (``named_parameters`` and ``named_buffers`` walk them once each)."""
    return [
        (f"{owner}.{attr}" if owner else attr, t, module, is_buffer)
        for owner, module in model.named_modules()
        for is_buffer, table in ((False, module._parameters), (True, module._buffers))
        for attr, t in table.items()
        if t is not None
    ]


def nonfinite_tensors(model: nn.Module) -> dict[str, list[int]]:
    """``{tensor name: output channels (dim 0) holding a NaN or inf}`` over parameters and
    floating-point buffers; empty when every value is finite. In buffers other than
    normalisation statistics only NaN counts (an infinite clamp bound or mask is legitimate)."""
    found: dict[str, list[int]] = {}
    with torch.no_grad():
        named = [
            (name, t, inf_allowed)
            for name, t, inf_allowed in _finite_tensors(model)
            if t.is_floating_point() and t.numel() and not t.is_meta
        ]
        if not named:
            return found
        # screen: a tensor's sum is finite when all its values are (a sum that overflows, or an
        # allowed infinity, is only a false alarm, settled below), and one sum per tensor reads
        # the weights ~7x faster than an isfinite mask per tensor
        sums = torch.stack([t.sum(dtype=torch.float32 if t.element_size() < 4 else None).cpu() for _, t, _ in named])
        for i in torch.nonzero(~torch.isfinite(sums)).flatten().tolist():
            name, t, inf_allowed = named[i]
            bad = torch.isnan(t) if inf_allowed else ~torch.isfinite(t)
            if bool(bad.any()):
                rows = bad.reshape(t.shape[0], -1).any(dim=1) if t.dim() > 0 else bad.reshape(1)
                found[name] = [int(c) for c in torch.nonzero(rows).flatten()]
    return found


def check_finite(model: nn.Module, *, what: str = "model") -> None:
    """Raises :class:`NonFiniteError` naming the first tensor (layer and channels) with NaN/inf."""
    found = nonfinite_tensors(model)
    if not found:
        return
    name, channels = next(iter(found.items()))
    layer = name.rpartition(".")[0] or "<root>"
    more = f" (and {len(found) - 1} more tensors)" if len(found) > 1 else ""
    shown = ", ".join(map(str, channels[:8])) + (", ..." if len(channels) > 8 else "")
    raise NonFiniteError(
        f"{what}: {name} holds NaN or inf in channel(s) {shown} of layer {layer!r}{more}; "
        "fix or re-initialise those weights before pruning",
        module=layer,
    )


def check_finite_inputs(inputs: Any) -> None:
    """Raises :class:`NonFiniteError` when an example input holds NaN or inf."""
    for i, x in enumerate(as_example_inputs(inputs).tensors()):
        if isinstance(x, torch.Tensor) and x.is_floating_point() and not bool(torch.isfinite(x).all()):
            raise NonFiniteError(f"example_inputs[{i}] holds NaN or inf", module="example_inputs")
