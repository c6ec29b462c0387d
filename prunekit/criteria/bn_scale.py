"""Network Slimming: rank channels by the magnitude of their BatchNorm scale.

Liu, Li, Shen, Huang, Yan & Zhang, "Learning Efficient Convolutional Networks through Network
Slimming", ICCV 2017.
"""

from __future__ import annotations

import logging

import numpy as np
import torch
import torch.nn as nn

from prunekit.criteria.base import CRITERIA, Criterion, reduce_to_channels
from prunekit.errors import ConfigError
from prunekit.graph.groups import Group

__all__ = ["bn_scale_scores", "BNScaleCriterion", "MISSING"]

log = logging.getLogger(__name__)
MISSING = ("error", "skip")


def bn_scale_scores(gamma: torch.Tensor) -> torch.Tensor:
    """``|gamma_c|`` for each BatchNorm channel."""
    return gamma.detach().abs()


@CRITERIA.register(
    "bn_scale", description="|gamma| of the group's BatchNorm layers (Liu et al. 2017, Network Slimming)"
)
class BNScaleCriterion(Criterion):
    """``score_c = |gamma_c|``, reduced over the group's BatchNorm "out" members.

    (Liu et al., "Learning Efficient Convolutional Networks through Network Slimming", ICCV 2017.)

    Args:
        missing: what to do with a group that has no affine BatchNorm: "error" (default; no
            silent fallback) or "skip" (the group keeps all its channels: every channel gets
            the same score and is locked out of selection, with a logged note).
        reduction: how several BatchNorm layers of one group are combined.

    Raises:
        ConfigError: ``missing="error"`` and the group has no affine BatchNorm layer.
    """

    name = "bn_scale"

    def __init__(self, *, missing: str = "error", reduction: str = "sum") -> None:
        super().__init__(reduction=reduction)
        if missing not in MISSING:
            raise ConfigError(f"missing must be one of {MISSING}, but got {missing!r}", module="missing")
        self.missing = missing

    def scores(self, model: nn.Module, group: Group) -> np.ndarray:
        per_member = []
        for member in group.members:
            module = model.get_submodule(member.module) if member.role == "out" else None
            if isinstance(module, nn.modules.batchnorm._BatchNorm) and module.weight is not None:
                gamma = bn_scale_scores(module.weight[torch.as_tensor(member.positions, dtype=torch.long)])
                per_member.append((member, gamma.double().cpu().numpy()))
        if not per_member:
            names = ", ".join(sorted(group.modules()))
            if self.missing == "skip":
                log.info("bn_scale: group %d (%s) has no affine BatchNorm; its channels are kept", group.id, names)
                group.locked[:] = True
                group.lock_reasons.append("bn_scale: no affine BatchNorm (missing='skip')")
                return np.zeros(group.size)
            raise ConfigError(
                f"criterion 'bn_scale': group {group.id} ({names}) has no affine BatchNorm layer; "
                "use another criterion such as 'l1' or 'fpgm' for models without BatchNorm",
                module=names,
            )
        return reduce_to_channels(group, per_member, self.reduction)
