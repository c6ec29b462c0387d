"""First-order Taylor importance: the squared change of the loss a channel's removal causes.

Molchanov, Mallya, Tyree, Frosio & Kautz, "Importance Estimation for Neural Network Pruning",
CVPR 2019.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from prunekit.criteria.base import CRITERIA, reduce_to_channels
from prunekit.criteria.data_driven import (
    ActivationCriterion,
    as_ncl,
    channel_dim,
    combine_producers,
    evaluating,
    model_device,
)
from prunekit.errors import ConfigError
from prunekit.graph.groups import Group, Member
from prunekit.rules.base import get_rule

__all__ = ["taylor_activation_scores", "taylor_weight_scores", "TaylorCriterion"]

VARIANTS = ("activation", "weight")


def taylor_activation_scores(act: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
    """``(sum_{n,l} a_{n,c,l} * dL/da_{n,c,l})^2`` per channel of (N, C, L) tensors."""
    return (act.double() * grad.double()).sum(dim=(0, 2)).pow(2)


def taylor_weight_scores(weight: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
    """``(w * dL/dw)^2`` elementwise; sum the rows of a member's views for a channel score."""
    return (weight.double() * grad.double()).pow(2)


@CRITERIA.register("taylor", description="first-order Taylor estimate of the loss change (Molchanov et al. 2019)")
class TaylorCriterion(ActivationCriterion):
    """First-order Taylor importance on calibration batches (needs targets).

    For each batch: forward in eval mode, ``L = loss_fn(model(x), y)``, backward. Then

    * ``variant="activation"``: ``score_c = sum_batches (sum_{n,l} a_{n,c,l} dL/da_{n,c,l})^2``,
      ``a`` the producing layer's output (its BatchNorm when the group has one);
    * ``variant="weight"``: ``score_c = sum_batches sum_{w in channel c} (w dL/dw)^2`` over every
      parameter slice the group's members hold for ``c``, combined with ``reduction``.

    (Molchanov et al., "Importance Estimation for Neural Network Pruning", CVPR 2019.)

    Note:
        The paper averages per-minibatch scores over many training steps; here they are summed over
        ``num_batches`` calibration batches. Parameters, their ``.grad`` and ``requires_grad`` are
        restored afterwards; no optimizer step is taken.

    Args:
        loss_fn: ``loss_fn(output, target) -> scalar``; cross-entropy by default.
        variant: "activation" or "weight".
    """

    name = "taylor"

    def __init__(
        self,
        *,
        data: Iterable[Any] | None,
        num_batches: int = 4,
        variant: str = "activation",
        loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
        reduction: str = "sum",
    ) -> None:
        super().__init__(data=data, num_batches=num_batches, reduction=reduction)
        if variant not in VARIANTS:
            raise ConfigError(f"variant must be one of {VARIANTS}, but got {variant!r}", module="variant")
        self.variant = variant
        self.loss_fn = loss_fn if loss_fn is not None else F.cross_entropy

    def _collect(self, model: nn.Module) -> dict[str, Any]:
        params = dict(model.named_parameters())
        saved = {n: (p.requires_grad, p.grad) for n, p in params.items()}
        acc: dict[str, torch.Tensor] = {}
        acts: dict[str, torch.Tensor] = {}
        handles = []

        def hook_for(name: str, dim: int):
            def hook(module: nn.Module, args: tuple, output: Any) -> None:
                if isinstance(output, torch.Tensor) and output.dim() >= 2 and output.requires_grad:
                    output.retain_grad()
                    acts[name] = (output, dim)  # type: ignore[assignment]

            return hook

        if self.variant == "activation":
            for name, module in model.named_modules():
                if name and get_rule(type(module)) is not None:
                    handles.append(module.register_forward_hook(hook_for(name, channel_dim(module))))
        device = model_device(model)
        try:
            for p in params.values():
                p.requires_grad_(True)
                p.grad = None
            with evaluating(model), torch.enable_grad():
                for x, y in self.batches():
                    if y is None:
                        raise ConfigError(
                            "criterion 'taylor' needs targets: each batch must be (input, target)", module="data"
                        )
                    acts.clear()
                    loss = self.loss_fn(model(x.to(device)), y.to(device))
                    loss.backward()
                    if self.variant == "activation":
                        for name, (out, dim) in acts.items():  # type: ignore[misc]
                            if out.grad is not None:
                                s = taylor_activation_scores(as_ncl(out.detach(), dim), as_ncl(out.grad, dim))
                                acc[name] = acc.get(name, 0) + s.cpu()
                    else:
                        for n, p in params.items():
                            if p.grad is not None:
                                acc[n] = acc.get(n, 0) + taylor_weight_scores(p.detach(), p.grad).cpu()
                    for p in params.values():
                        p.grad = None
        finally:
            acts.clear()
            for h in handles:
                h.remove()
            for n, p in params.items():
                p.requires_grad_(saved[n][0])
                p.grad = saved[n][1]
        return {n: v.numpy() for n, v in acc.items()}

    def scores(self, model: nn.Module, group: Group) -> np.ndarray:
        stats = self.channel_stats(model)
        if self.variant == "activation":
            return combine_producers(
                model, group, lambda m: stats[m.module][m.positions] if m.module in stats else None, self.reduction
            )
        per_member = []
        for member in group.members:
            views = _member_views_of(model, member, stats)
            if views:
                per_member.append((member, torch.stack([v.sum(dim=1) for v in views]).sum(dim=0).numpy()))
        return reduce_to_channels(group, per_member, self.reduction)


def _member_views_of(model: nn.Module, member: Member, tensors: dict[str, np.ndarray]) -> list[torch.Tensor]:
    """Like :func:`member_views`, but of ``tensors[qualified parameter name]`` instead of the weights."""
    idx = torch.as_tensor(member.positions, dtype=torch.long)
    if member.role == "param":
        t = tensors.get(member.key.tensor)
        if t is None:
            return []
        v = torch.from_numpy(t).movedim(member.key.dim, 0)
        return [v.reshape(v.shape[0], -1).index_select(0, idx)]
    module = model.get_submodule(member.module)
    prefix = f"{member.module}." if member.module else ""
    if any(prefix + n not in tensors for n, p in module._parameters.items() if p is not None):
        return []  # a parameter got no gradient (unused): no score from this member
    shadow = copy.copy(module)  # the rule reads shadow.weight etc.; the real module is untouched
    shadow._parameters = {
        k: (nn.Parameter(torch.from_numpy(tensors[prefix + k]), requires_grad=False) if prefix + k in tensors else None)
        for k in module._parameters
    }
    rule = get_rule(type(module))
    views = rule.position_views(shadow, member.role) if rule is not None else []
    return [v.index_select(0, idx) for v in views]
