"""Weight-magnitude criteria: L1 and L2 norms of every weight a channel owns.

Li, Kadav, Durdanovic, Samet & Graf, "Pruning Filters for Efficient ConvNets", ICLR 2017, rank a
conv's filters by ``s_j = sum |W[j]|`` (L1). prunekit scores a coupled group as a whole: for
channel ``c`` it sums (or averages / maxes, see ``reduction``) the norms of every slice that
holds ``c`` -- the producing filters, BatchNorm affine parameters, and the consumers' input
slices -- so coupled layers are ranked together.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn

from prunekit.criteria.base import CRITERIA, Criterion, member_row_scores, reduce_to_channels
from prunekit.graph.groups import Group

__all__ = ["l1_scores", "l2_scores", "L1Criterion", "L2Criterion"]


def l1_scores(weight: torch.Tensor) -> torch.Tensor:
    """``||W[i]||_1`` for each row ``i`` of a (positions, -1) view."""
    return weight.abs().sum(dim=1)


def l2_scores(weight: torch.Tensor) -> torch.Tensor:
    """``||W[i]||_2^2`` for each row (squared, so a group's sum is its total energy)."""
    return weight.pow(2).sum(dim=1)


class _NormCriterion(Criterion):
    fn = staticmethod(l1_scores)

    def scores(self, model: nn.Module, group: Group) -> np.ndarray:
        per_member = []
        for member in group.members:
            values = member_row_scores(model, member, self.fn)
            if values is not None:
                per_member.append((member, values))
        scores = reduce_to_channels(group, per_member, self.reduction)
        return np.sqrt(scores) if self.fn is l2_scores and self.reduction == "sum" else scores


@CRITERIA.register("l1", description="L1 norm of every weight a channel owns, over the group (Li et al. 2017)")
class L1Criterion(_NormCriterion):
    """Sum of ``|w|`` over every parameter slice of the channel in the group (Li et al. 2017)."""

    name = "l1"
    fn = staticmethod(l1_scores)


@CRITERIA.register("l2", description="L2 norm of every weight a channel owns, over the group")
class L2Criterion(_NormCriterion):
    """``sqrt(sum w^2)`` over every parameter slice of the channel in the group."""

    name = "l2"
    fn = staticmethod(l2_scores)
