"""Network Slimming: an L1 penalty on the BatchNorm scales of the prunable channels.

Liu, Li, Shen, Huang, Yan & Zhang, "Learning Efficient Convolutional Networks through Network
Slimming", ICCV 2017:

    R(W) = lambda * sum_{BN layers} sum_c |gamma_c|

whose subgradient on ``gamma_c`` is ``lambda * sign(gamma_c)``. Channels whose scale reaches
zero output a constant (the BN shift), so the ``bn_scale`` criterion then removes them.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn

from prunekit.errors import ConfigError
from prunekit.graph.dependency import DependencyGraph
from prunekit.regularizers.base import REGULARIZERS, Regularizer
from prunekit.regularizers.slices import GroupSlices, Slice

__all__ = ["bn_l1_penalty", "Slimming"]


def bn_l1_penalty(gamma: torch.Tensor, *, strength: float) -> torch.Tensor:
    """``strength * sum_c |gamma_c|``."""
    return strength * gamma.abs().sum()


@REGULARIZERS.register("slimming", description="lambda * sum |gamma| of the BatchNorm scales (Liu et al. 2017)")
class Slimming(Regularizer):
    """``lambda * sum |gamma_c|`` over the affine BatchNorm layers of the prunable groups.

    Args:
        strength: ``lambda`` (the paper uses 1e-4 to 1e-5).

    Note:
        Only BatchNorm channels in prunable groups, and not locked ones, are penalised (the
        paper penalises every BatchNorm layer): a scale that can never be cut is left alone.
        Several BatchNorm layers in one coupled group (a residual stage) are each penalised;
        ``channel_norms`` is their sum per channel.
    """

    name = "slimming"

    def __init__(self, *, strength: float = 1e-4) -> None:
        super().__init__(strength=strength)

    def setup(
        self, model: nn.Module, graph: DependencyGraph, *, example_inputs: tuple[torch.Tensor, ...] | None = None
    ) -> None:
        super().setup(model, graph)
        kept = []
        for g in self.groups:
            bn = tuple(s for s in g.slices if _is_bn_scale(model, s))
            if bn:
                kept.append(GroupSlices(g.group_id, g.size, g.locked, bn))
        if not kept:
            raise ConfigError(
                f"regularizer 'slimming': {type(model).__name__} has no affine BatchNorm in a prunable group; "
                "use 'group_lasso' instead",
                module="slimming",
            )
        self.groups = kept

    def _gammas(self, model: nn.Module, g: GroupSlices) -> tuple[torch.Tensor, torch.Tensor]:
        params = dict(model.named_parameters())
        values = [params[s.param].reshape(-1)[s.index.to(params[s.param].device)[:, 0]] for s in g.slices]
        channels = [s.channels.to(values[0].device) for s in g.slices]
        return torch.cat(values), torch.cat(channels)

    def penalty(self, model: nn.Module, *, step: int = 0) -> torch.Tensor:
        self._require_ready()
        total = None
        for g in self.groups:
            gamma, channels = self._gammas(model, g)
            free = torch.as_tensor(~g.locked, device=gamma.device)[channels]
            term = bn_l1_penalty(gamma[free], strength=self.strength)
            total = term if total is None else total + term
        assert total is not None  # setup keeps at least one group (internal invariant)
        return total

    @torch.no_grad()
    def channel_norms(self, model: nn.Module) -> dict[int, np.ndarray]:
        self._require_ready()
        out = {}
        for g in self.groups:
            gamma, channels = self._gammas(model, g)
            out[g.group_id] = torch.zeros(g.size).index_add(0, channels.cpu(), gamma.abs().float().cpu()).numpy()
        return out


def _is_bn_scale(model: nn.Module, s: Slice) -> bool:
    """The slice is the scale (``weight``) of an affine BatchNorm's output channels."""
    if s.role != "out" or s.param != (f"{s.module}.weight" if s.module else "weight"):
        return False
    module = model.get_submodule(s.module)
    return isinstance(module, nn.modules.batchnorm._BatchNorm) and module.affine
