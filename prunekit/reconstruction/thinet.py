"""Greedy channel selection (Luo, Wu & Lin 2017, "ThiNet", ICCV 2017, Algorithm 1).

ThiNet removes, one at a time, the channel whose removal changes the next layer's sampled outputs
least: with ``Z_c`` the contribution of channel ``c`` and ``T`` the removed set,

    T <- T + argmin_c || sum_{j in T + {c}} Z_j ||^2  =  argmin_c  G_cc + 2 sum_{j in T} G_jc,

using the Gram matrix of :mod:`~prunekit.reconstruction.contributions`. Running the greedy loop
over every free channel gives a full removal order, so the first ``k`` removed are exactly
ThiNet's choice for any ``k``.

Note:
    Deviations: ThiNet samples one output channel per point; the Gram matrix here sums over all
    output channels (and over every consumer of a residual stream, each weighed by its relative
    error). ThiNet's final per-channel least-squares scaling is replaced by the full
    least-squares refit of the consumer's weights (:mod:`~prunekit.reconstruction.refit`), which
    fits the samples at least as well.
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["thinet_scores"]


def thinet_scores(gram: torch.Tensor, *, free: np.ndarray) -> np.ndarray:
    """Scores by greedy removal order: the first channel removed scores 0, the next 1, ...

    Locked (not ``free``) channels score above every free one.
    """
    g = gram.double().numpy()
    n = g.shape[0]
    scores = np.full(n, float(n), dtype=np.float64)
    acc = np.zeros(n)  # sum_{j in T} G_jc
    left = np.asarray(free, dtype=bool).copy()
    for rank in range(int(left.sum())):
        cost = np.where(left, np.diag(g) + 2.0 * acc, np.inf)
        c = int(np.argmin(cost))
        scores[c] = rank
        left[c] = False
        acc += g[c]
    return scores
