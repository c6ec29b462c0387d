"""Element-wise (unstructured) magnitude masks on weight tensors.

Distiller's element-wise pruners (``AutomatedGradualPruner``, ``SparsityLevelParameterPruner``,
``MagnitudeParameterPruner``) zero single weights rather than channels. prunekit runs them as
0/1 masks on the named parameters, re-applied after every optimizer step so the zeros stay
through the run and any fine-tune phase after it (the pipeline keeps re-applying them).

Note:
    Unstructured zeros do not shrink a dense layer: the parameter count, MACs and latency of
    the model are unchanged unless a sparse kernel runs it. Reports say so.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn as nn

from prunekit.errors import ConfigError

__all__ = [
    "magnitude_mask",
    "threshold_mask",
    "column_mask",
    "apply_weight_masks_",
    "mask_sparsity",
    "DENSE_NOTE",
]

DENSE_NOTE = "element-wise (unstructured) zeros: they do not shrink dense compute, params or MACs"


def magnitude_mask(weight: torch.Tensor, sparsity: float) -> torch.Tensor:
    """A 0/1 mask zeroing the ``floor(sparsity * numel)`` smallest ``|w|`` (Han et al. 2015).

    Ties are broken by position (a stable sort), so the count is exact.
    """
    if isinstance(sparsity, bool) or not isinstance(sparsity, (int, float)) or not 0.0 <= sparsity < 1.0:
        raise ConfigError(f"sparsity must be in [0, 1), but got {sparsity!r}", module="sparsity")
    flat = weight.detach().abs().reshape(-1).float().cpu()
    k = int(sparsity * flat.numel() + 1e-6)
    if not k:
        return torch.ones_like(flat).reshape(weight.shape)
    # the k-th smallest value, then the values below it and the first ties by position: the same
    # mask as a stable sort, in linear time (an AlexNet fc layer has 38M weights)
    threshold = torch.kthvalue(flat, k).values
    below = flat < threshold
    ties = torch.nonzero(flat == threshold).flatten()[: k - int(below.sum())]
    mask = (~below).float()
    mask[ties] = 0.0
    return mask.reshape(weight.shape)


def threshold_mask(weight: torch.Tensor, threshold: float) -> torch.Tensor:
    """A 0/1 mask zeroing every ``|w| <= threshold`` (Distiller's ``MagnitudeParameterPruner``)."""
    return (weight.detach().abs().float().cpu() > threshold).float()


def column_mask(weight: torch.Tensor, sparsity: float, *, norm: str = "l1") -> torch.Tensor:
    """A 0/1 mask zeroing the ``floor(sparsity * in_features)`` input columns of a 2-D weight with
    the smallest L1 (or ``norm="l2"``) norm, at least one column kept (Distiller's ``Rows``
    pruning of a Linear layer). Ties are broken by position."""
    w = weight.detach().float().cpu()
    norms = w.abs().sum(0) if norm == "l1" else w.norm(dim=0)
    n = min(int(sparsity * w.shape[1] + 1e-6), w.shape[1] - 1)
    mask = torch.ones_like(w)
    mask[:, torch.argsort(norms, stable=True)[:n]] = 0.0
    return mask


@torch.no_grad()
def apply_weight_masks_(model: nn.Module, masks: Mapping[str, torch.Tensor]) -> None:
    """Multiplies every named parameter by its mask, in place.

    Raises:
        ConfigError: a mask names a parameter the model does not have, or has another shape.
    """
    params = dict(model.named_parameters())
    for name, mask in masks.items():
        p = params.get(name)
        if p is None:
            raise ConfigError(f"weight mask for {name!r}: the model has no such parameter", module=name)
        if tuple(p.shape) != tuple(mask.shape):
            raise ConfigError(
                f"weight mask for {name!r} has shape {tuple(mask.shape)} but the parameter has {tuple(p.shape)}",
                module=name,
            )
        p.mul_(mask.to(device=p.device, dtype=p.dtype))


def mask_sparsity(masks: Mapping[str, torch.Tensor]) -> float:
    """The fraction of zeros over all masks."""
    total = sum(m.numel() for m in masks.values())
    return 1.0 - sum(float(m.sum()) for m in masks.values()) / max(total, 1)
