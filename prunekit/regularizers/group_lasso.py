"""Group lasso over prunekit's coupled channel groups.

Yuan & Lin, "Model Selection and Estimation in Regression with Grouped Variables", JRSS-B 2006;
applied to filters and channels by Wen, Wu, Wang, Chen & Li, "Learning Structured Sparsity in
Deep Neural Networks" (SSL), NeurIPS 2016; over dependency groups by Fang, Ma, Song, Mi & Wang,
"DepGraph: Towards Any Structural Pruning", CVPR 2023 (group-level sparse training).

For channel ``c`` of a coupled group, ``W_c`` is every slice that holds ``c``: the producing
filters and biases, the BatchNorm scale and shift, the consumers' input slices, and those of every
residual partner. The penalty

    R(W) = lambda * sum_groups sum_c sqrt(||W_c||_2^2 + eps)

drives whole channels (across all layers that share them) to zero together, so cutting them later
changes little. Its gradient on an element ``w`` of ``W_c`` is ``lambda * w / sqrt(||W_c||^2 + eps)``.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from prunekit.errors import option_error
from prunekit.regularizers.base import REGULARIZERS, Regularizer
from prunekit.regularizers.slices import channel_sq_norms

__all__ = ["group_lasso_penalty", "GroupLasso"]


def group_lasso_penalty(sq_norms: torch.Tensor, *, strength: float, eps: float = 1e-8) -> torch.Tensor:
    """``strength * sum_c sqrt(s_c + eps)`` for the squared channel norms ``s_c`` of one group."""
    return strength * torch.sqrt(sq_norms + eps).sum()


@REGULARIZERS.register(
    "group_lasso",
    description="lambda * sum of the L2 norms of whole coupled channels (Wen et al. 2016; DepGraph, Fang et al. 2023)",
)
class GroupLasso(Regularizer):
    """``lambda * sum_g sum_c sqrt(||W_{g,c}||^2 + eps)`` over the unlocked channels of the prunable groups.

    Args:
        strength: ``lambda`` (around 1e-4 to 1e-3 for a ResNet on SGD with LR 0.01-0.1).
        eps: smooths the kink at zero so the gradient stays finite.

    Note:
        Locked channels (kept by every prune) are not penalised. ``eps`` is a deviation from the
        plain norm, whose gradient is undefined at zero; SSL and DepGraph train with plain SGD
        on the (sub)gradient in the same way.
    """

    name = "group_lasso"

    def __init__(self, *, strength: float = 1e-4, eps: float = 1e-8) -> None:
        super().__init__(strength=strength)
        if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not eps > 0:
            raise option_error("eps", f"must be a number > 0, but got {eps!r}")
        self.eps = float(eps)

    def penalty(self, model: nn.Module, *, step: int = 0) -> torch.Tensor:
        self._require_ready()
        params = dict(model.named_parameters())
        total = torch.zeros((), device=next(iter(params.values())).device)
        for g in self.groups:
            free = torch.as_tensor(~g.locked, device=total.device)
            total = total + group_lasso_penalty(channel_sq_norms(params, g)[free], strength=self.strength, eps=self.eps)
        return total

    def describe(self) -> dict[str, object]:
        return {**super().describe(), "eps": self.eps}
