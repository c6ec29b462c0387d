"""Activation statistics criteria: APoZ, mean activation, and activation entropy.

Each reads the output of a group's producing layer (its BatchNorm when it has one) over the
calibration batches; see :class:`~prunekit.criteria.data_driven.ActivationCriterion`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import torch

from prunekit.criteria.base import CRITERIA
from prunekit.criteria.data_driven import ActivationCriterion
from prunekit.errors import ConfigError

__all__ = [
    "apoz_scores",
    "mean_activation_scores",
    "entropy_scores",
    "APoZCriterion",
    "MeanActivationCriterion",
    "EntropyCriterion",
]


def apoz_scores(act: torch.Tensor) -> torch.Tensor:
    """``1 - APoZ_c``: the fraction of non-zero ``relu(a)`` per channel of a (N, C, L) tensor."""
    return 1.0 - (torch.relu(act) == 0).double().mean(dim=(0, 2))


def mean_activation_scores(act: torch.Tensor) -> torch.Tensor:
    """``mean(relu(a))`` per channel of a (N, C, L) tensor."""
    return torch.relu(act).double().mean(dim=(0, 2))


def entropy_scores(pooled: torch.Tensor, *, bins: int = 32) -> torch.Tensor:
    """``H_c = -sum_i p_i log p_i`` of a histogram of each column of a (N, C) pooled matrix.

    The ``bins`` equal-width bins span the column's min to max; a constant column has entropy 0.
    """
    pooled = pooled.double()
    out = torch.zeros(pooled.shape[1], dtype=torch.float64)
    for c in range(pooled.shape[1]):
        col = pooled[:, c]
        lo, hi = float(col.min()), float(col.max())
        if hi <= lo:
            continue
        p = torch.histc(col, bins=bins, min=lo, max=hi)
        p = p[p > 0] / col.numel()
        out[c] = -(p * p.log()).sum()
    return out


@CRITERIA.register(
    "apoz", description="1 - average percentage of zeros after ReLU, on calibration data (Hu et al. 2016)"
)
class APoZCriterion(ActivationCriterion):
    """``score_c = 1 - APoZ_c``, APoZ the fraction of zeros of channel ``c`` after the ReLU.

        ``APoZ_c = #{(n, l): relu(a_{n,c,l}) = 0} / (N * L)``

    over the batch and spatial positions of all calibration batches. A channel that is mostly
    zero (high APoZ) is unimportant. (Hu, Peng, Tai & Tang, "Network Trimming: A Data-Driven
    Neuron Pruning Approach towards Efficient Deep Architectures", 2016.)

    Note:
        The activation is the producing layer's output (its BatchNorm when the group has one)
        passed through ``relu`` here, whatever activation the model applies next.
    """

    name = "apoz"

    def _update(self, state: dict[str, Any], act: torch.Tensor) -> None:
        state["zeros"] = state.get("zeros", 0) + (torch.relu(act) == 0).double().sum(dim=(0, 2))
        state["count"] = state.get("count", 0) + act.shape[0] * act.shape[2]

    def _finish(self, state: dict[str, Any]) -> np.ndarray:
        return (1.0 - state["zeros"] / state["count"]).cpu().numpy()


@CRITERIA.register("mean_activation", description="mean of relu(activation) on calibration data (Distiller)")
class MeanActivationCriterion(ActivationCriterion):
    """``score_c = mean_{n,l} relu(a_{n,c,l})`` over all calibration batches.

    As Distiller's ``ActivationMeanRankedFilterPruner`` (after Molchanov et al. 2017's
    mean-activation baseline). The activation is read as in ``apoz`` (ReLU applied here).
    """

    name = "mean_activation"

    def _update(self, state: dict[str, Any], act: torch.Tensor) -> None:
        state["sum"] = state.get("sum", 0) + torch.relu(act).double().sum(dim=(0, 2))
        state["count"] = state.get("count", 0) + act.shape[0] * act.shape[2]

    def _finish(self, state: dict[str, Any]) -> np.ndarray:
        return (state["sum"] / state["count"]).cpu().numpy()


@CRITERIA.register(
    "entropy", description="entropy of each channel's pooled activation on calibration data (Luo & Wu 2017)"
)
class EntropyCriterion(ActivationCriterion):
    """Entropy of the histogram of each channel's globally average-pooled activation.

    For every sample ``n``, ``g_{n,c} = mean_l a_{n,c,l}``; the values ``g_{.,c}`` over all
    calibration samples go into ``bins`` equal-width bins between their min and max, and

        ``score_c = H_c = -sum_i p_i log p_i``

    A channel whose pooled output barely varies carries little information: low score. (Luo &
    Wu, "An Entropy-based Pruning Method for CNN Compression", 2017.)

    Note:
        The activation is the producing layer's output without ReLU (the paper pools the conv's
        output feature maps).

    Args:
        bins: number of histogram bins.
    """

    name = "entropy"

    def __init__(
        self, *, data: Iterable[Any] | None, num_batches: int = 4, bins: int = 32, reduction: str = "sum"
    ) -> None:
        super().__init__(data=data, num_batches=num_batches, reduction=reduction)
        if isinstance(bins, bool) or not isinstance(bins, int) or bins < 1:
            raise ConfigError(f"bins must be an int >= 1, but got {bins!r}", module="bins")
        self.bins = bins

    def _update(self, state: dict[str, Any], act: torch.Tensor) -> None:
        state.setdefault("pooled", []).append(act.double().mean(dim=2).cpu())

    def _finish(self, state: dict[str, Any]) -> np.ndarray:
        return entropy_scores(torch.cat(state["pooled"]), bins=self.bins).numpy()
