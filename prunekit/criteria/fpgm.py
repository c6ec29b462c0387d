"""FPGM: rank channels by their distance to the geometric median of the group's channels.

He, Liu, Wang, Hu & Yang, "Filter Pruning via Geometric Median for Deep Convolutional Neural
Networks Acceleration", CVPR 2019. Filters near the geometric median are the ones the others can
best stand in for, so they are pruned first.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn

from prunekit.criteria.base import CRITERIA, Criterion, member_views
from prunekit.graph.groups import Group

__all__ = ["fpgm_scores", "FPGMCriterion"]


def fpgm_scores(vectors: torch.Tensor) -> torch.Tensor:
    """``s_c = sum_j ||v_c - v_j||_2`` for each row ``c`` of a (channels, features) matrix."""
    v = vectors.double()
    return torch.cdist(v, v, p=2).sum(dim=1)


def channel_vectors(model: nn.Module, group: Group) -> torch.Tensor:
    """One row per group channel: every per-position view of every member, concatenated.

    A channel that a member holds at several positions (e.g. after a flatten) gets the mean of
    those rows, so each member contributes the same number of features to every channel.
    """
    parts = []
    channels = torch.arange(group.size)
    for member in group.members:
        for view in member_views(model, member):
            rows = view.double().cpu()
            idx = torch.as_tensor(member.channels, dtype=torch.long)
            total = torch.zeros(group.size, rows.shape[1], dtype=torch.float64).index_add_(0, idx, rows)
            count = torch.zeros(group.size, dtype=torch.float64).index_add_(
                0, idx, torch.ones(len(idx), dtype=torch.float64)
            )
            parts.append(total / count.clamp(min=1).unsqueeze(1))
    if not parts:
        return torch.zeros(len(channels), 0, dtype=torch.float64)
    return torch.cat(parts, dim=1)


@CRITERIA.register("fpgm", description="distance to the other channels' geometric median (He et al. 2019)")
class FPGMCriterion(Criterion):
    """Sum of Euclidean distances from a channel's weights to every other channel's.

    For a group, ``v_c`` concatenates every per-position parameter view of channel ``c`` across
    the group's members (producing filters, BatchNorm affine, consumers' input slices). Then

        ``score_c = sum_j ||v_c - v_j||_2``

    A channel close to all others lies near the geometric median and is redundant: low score.
    (He et al., "Filter Pruning via Geometric Median", CVPR 2019.)

    Note:
        The paper uses only each layer's own filters; prunekit ranks a coupled group as one, so
        the vector spans every member. ``reduction`` is unused: the members are concatenated.
    """

    name = "fpgm"

    def scores(self, model: nn.Module, group: Group) -> np.ndarray:
        return fpgm_scores(channel_vectors(model, group)).numpy()
