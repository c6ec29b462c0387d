"""Per-channel contributions of a group's channels to its consumers' outputs, as a Gram matrix.

For a consumer ``j`` with sampled input rows ``A_j`` and weight matrix ``W_j``, channel ``c`` of
the group contributes ``Z_jc = A_j[:, F_jc] @ W_j[:, F_jc]^T`` to the output (``F_jc``: the
features that read channel ``c``). Keeping channel ``c`` with scale ``beta_c`` gives the output
``sum_c beta_c Z_jc``; the target ``y_j`` is the ORIGINAL model's output minus what the features
outside the group (and the bias) contribute. Both selection methods only need

    G[c, d] = sum_j <Z_jc, Z_jd> / ||y_j||^2,        g[c] = sum_j <Z_jc, y_j> / ||y_j||^2,

so ``||y - Z beta||^2 / ||y||^2`` summed over the consumers is ``beta^T G beta - 2 g^T beta + k``.
Dividing by ``||y_j||^2`` weighs every consumer by its relative error, so a residual stream read
by several layers is selected jointly (the "stack the regression problems" choice). The matrices
are accumulated over chunks of rows, so memory stays ``O(chunk * C_out * channels)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

__all__ = ["Problem", "contribution_gram"]

_CHUNK = 512


@dataclass
class Problem:
    """One consumer's regression: ``target ~ sum_c beta_c A[:, F_c] @ W[:, F_c]^T``.

    Attributes:
        name: the consumer module.
        inputs: sampled input rows ``A`` (points, features).
        weight: ``W`` (live outputs, features), the current weights.
        target: (points, live outputs): original output minus bias minus features outside the group.
        feature_channel: per feature, the group channel it reads, or -1.
    """

    name: str
    inputs: torch.Tensor
    weight: torch.Tensor
    target: torch.Tensor
    feature_channel: np.ndarray


def contribution_gram(problems: list[Problem], size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(G, g)`` in float64 for a group of ``size`` channels (see the module docstring)."""
    gram = torch.zeros(size, size, dtype=torch.float64)
    lin = torch.zeros(size, dtype=torch.float64)
    for p in problems:
        chans = [c for c in np.unique(p.feature_channel).tolist() if c >= 0]
        cols = {c: torch.as_tensor(np.nonzero(p.feature_channel == c)[0]) for c in chans}
        scale = 1.0 / max(float(p.target.double().pow(2).sum()), 1e-30)
        idx = torch.as_tensor(chans, dtype=torch.long)
        for lo in range(0, p.inputs.shape[0], _CHUNK):
            a = p.inputs[lo : lo + _CHUNK].double()
            w = p.weight.double()
            z = torch.stack([(a[:, cols[c]] @ w[:, cols[c]].T).reshape(-1) for c in chans])  # (k, rows*out)
            y = p.target[lo : lo + _CHUNK].double().reshape(-1)
            gram[idx[:, None], idx[None, :]] += scale * (z @ z.T)
            lin[idx] += scale * (z @ y)
    return gram, lin
