"""LAMP: layer-adaptive magnitude scores, comparable across groups for global ranking.

Lee, Park, Mo, Ahn & Shin, "Layer-adaptive Sparsity for the Magnitude-based Pruning", ICLR 2021.
"""

from __future__ import annotations

import numpy as np
import torch.nn as nn

from prunekit.criteria.base import CRITERIA, Criterion
from prunekit.criteria.magnitude import L2Criterion
from prunekit.graph.groups import Group

__all__ = ["lamp_scores", "LAMPCriterion"]


def lamp_scores(energy: np.ndarray) -> np.ndarray:
    """``s_c = w_c^2 / sum_{k: w_k^2 >= w_c^2} w_k^2`` for squared magnitudes ``energy``.

    Ties share the same denominator (every tied channel is in every tied channel's sum).
    """
    e = np.asarray(energy, dtype=np.float64)
    order = np.sort(e)
    tail = np.cumsum(order[::-1])[::-1]  # tail[i] = sum of order[i:]
    first = np.searchsorted(order, e, side="left")
    denom = tail[first] if len(e) else tail
    return np.divide(e, denom, out=np.zeros_like(e), where=denom > 0)


@CRITERIA.register("lamp", description="layer-adaptive magnitude score for global ranking (Lee et al. 2021)")
class LAMPCriterion(Criterion):
    """LAMP score of each channel's squared L2 magnitude within its group.

    With ``w_c^2`` the channel's squared L2 norm over the group (see ``l2``, combined with
    ``reduction``), sorted ascending:

        ``score_c = w_c^2 / sum_{k: w_k^2 >= w_c^2} w_k^2``

    The largest channel of every group scores 1, so scores are comparable across groups; meant
    for ``scope="global"``. (Lee et al., "Layer-adaptive Sparsity for the Magnitude-based
    Pruning", ICLR 2021.)

    Note:
        The paper scores single weights; prunekit applies it to channels of a coupled group.
    """

    name = "lamp"

    def scores(self, model: nn.Module, group: Group) -> np.ndarray:
        l2 = L2Criterion(reduction=self.reduction).scores(model, group)
        energy = l2**2 if self.reduction == "sum" else l2  # l2 takes the sqrt only for "sum"
        return lamp_scores(energy)
