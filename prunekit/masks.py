"""Masked mode: the same groups and choices as ``prune_``, but channels are zeroed, not removed.

Use it to train with masks (call :meth:`ChannelMasks.apply_` after each optimizer step so the
zeroed weights stay zero) and thin later with :meth:`ChannelMasks.thin_`, which removes exactly
the masked channels. Parameters are zeroed; buffers (BatchNorm statistics) are left alone, which
is harmless because a zeroed channel's scale and shift are zero and its consumers' weights too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn as nn

from prunekit.engine import PruneOptions, analyse, check_model_options, plan_pruning, resolve_options
from prunekit.engine.latency_search import LatencySession
from prunekit.errors import ConfigError
from prunekit.graph.dependency import DependencyGraph
from prunekit.inputs import InputsLike, as_example_inputs
from prunekit.surgery.apply import apply_plan, compute_changes
from prunekit.surgery.plan import PrunePlan
from prunekit.surgery.standins import ConstantOutput, is_standin

__all__ = ["ChannelMasks", "mask_", "masks_for_plan"]


@dataclass
class ChannelMasks:
    """0/1 masks for the parameters a prune plan touches.

    Attributes:
        plan: the plan (which channels go); ``thin_`` carries it out.
        masks: parameter qualified name -> mask of the parameter's shape.
    """

    plan: PrunePlan
    masks: dict[str, torch.Tensor]

    @torch.no_grad()
    def apply_(self, model: nn.Module) -> None:
        """Zeroes the masked weights in place (call after every optimizer step)."""
        params = dict(model.named_parameters())
        for name, mask in self.masks.items():
            p = params[name]
            p.mul_(mask.to(device=p.device, dtype=p.dtype))

    def sparsity(self) -> float:
        """Fraction of the masked parameters' elements that are zeroed."""
        total = sum(m.numel() for m in self.masks.values())
        return 1.0 - sum(float(m.sum()) for m in self.masks.values()) / max(total, 1)

    def thin_(self, model: nn.Module) -> None:
        """Physically removes the masked channels (the model must not have been reshaped since)."""
        apply_plan(model, self.plan)


def masks_for_plan(model: nn.Module, plan: PrunePlan) -> dict[str, torch.Tensor]:
    """Masks equal to 1 where ``plan`` keeps a parameter element, 0 where it removes one."""
    names = {id(m): n for n, m in model.named_modules()}

    def ids_of(m: nn.Module) -> dict[str, torch.Tensor]:
        return {k: torch.arange(v.numel()).reshape(v.shape) for k, v in m._parameters.items() if v is not None}

    masks: dict[str, torch.Tensor] = {}
    for m, attr, value in compute_changes(model, plan, tensors_of=ids_of):
        if is_standin(value):  # a removed branch's layer: zero what its stand-in no longer computes
            prefix = names[id(m)]
            layer = getattr(m, attr)
            masks.update(_standin_masks(f"{prefix}.{attr}" if prefix else attr, layer, value, plan))
            continue
        if attr not in m._parameters or not isinstance(value, torch.Tensor):
            continue
        p = m._parameters[attr]
        if p is None:
            continue
        mask = torch.zeros(p.numel(), dtype=torch.float32)
        mask[value.reshape(-1)] = 1.0
        prefix = names[id(m)]
        masks[f"{prefix}.{attr}" if prefix else attr] = mask.reshape(p.shape)
    return masks


def _standin_masks(name: str, layer: nn.Module, standin: nn.Module, plan: PrunePlan) -> dict[str, torch.Tensor]:
    """Masks of a layer a removed branch replaces: every parameter zeroed, except the kept
    outputs' bias of a layer that becomes :class:`~prunekit.surgery.standins.ConstantOutput`
    (what it returns). The masked layer then computes what its stand-in does."""
    out: dict[str, torch.Tensor] = {}
    for pname, p in layer._parameters.items():
        if p is None:
            continue
        mask = torch.zeros(p.shape, dtype=torch.float32)
        if isinstance(standin, ConstantOutput) and pname == "bias":
            keep = plan.module_keep.get(name, {}).get("out")
            mask[torch.as_tensor(keep, dtype=torch.long) if keep is not None else slice(None)] = 1.0
        out[f"{name}.{pname}"] = mask
    return out


def mask_(
    model: nn.Module,
    example_inputs: InputsLike,
    options: PruneOptions | None = None,
    *,
    graph: DependencyGraph | None = None,
    **kwargs: Any,
) -> ChannelMasks:
    """Chooses channels like :func:`prunekit.prune_` and zeroes them in place, keeping shapes.

    ``options`` and the keyword arguments are those of :func:`prunekit.prune_`; a ``sparsity``
    is required (masks have no MACs, parameter or latency target); ``round_to="auto"`` is
    measured on ``latency_backend`` as in ``prune_``. ``graph``: the model's dependency graph
    if already traced (masking keeps shapes, so a schedule traces once); else traced here.
    """
    opts = resolve_options(options, **kwargs)
    sparsity = opts.sparsity
    if sparsity is None:
        raise ConfigError("sparsity: mask_ needs a sparsity", module="sparsity", detail="mask_ needs a sparsity")
    check_model_options(model, opts)
    inputs = as_example_inputs(example_inputs)
    if opts.round_to == "auto":  # the measured multiple, as prune_ uses it
        opts = LatencySession(model, inputs, opts).align(opts)
    if graph is None:
        graph = analyse(model, inputs, tracer=opts.tracer)[0]
    plan = plan_pruning(model, graph, opts, sparsity=sparsity)
    masks = ChannelMasks(plan, masks_for_plan(model, plan))
    masks.apply_(model)
    return masks
