"""NaN and inf checks: a model with a non-finite weight is reported, never pruned silently.

A NaN weight poisons every score and every comparison it touches (``max(err, nan)`` keeps
``err``), so prunekit looks for one before it prunes and names the tensor and the channel.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn as nn

from prunekit.errors import NonFiniteError

__all__ = ["nonfinite_tensors", "check_finite", "check_finite_inputs"]


def nonfinite_tensors(model: nn.Module) -> dict[str, list[int]]:
    """``{tensor name: output channels (dim 0) holding a NaN or inf}`` over parameters and
    floating-point buffers; empty when every value is finite."""
    found: dict[str, list[int]] = {}
    with torch.no_grad():
        for name, t in [*model.named_parameters(), *model.named_buffers()]:
            if not t.is_floating_point() or t.numel() == 0 or t.is_meta:
                continue
            bad = ~torch.isfinite(t)
            if bool(bad.any()):
                rows = bad.reshape(t.shape[0], -1).any(dim=1) if t.dim() > 0 else bad.reshape(1)
                found[name] = [int(i) for i in torch.nonzero(rows).flatten()]
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


def check_finite_inputs(inputs: Sequence[torch.Tensor]) -> None:
    """Raises :class:`NonFiniteError` when an example input holds NaN or inf."""
    for i, x in enumerate(inputs):
        if isinstance(x, torch.Tensor) and x.is_floating_point() and not bool(torch.isfinite(x).all()):
            raise NonFiniteError(f"example_inputs[{i}] holds NaN or inf", module="example_inputs")
