"""What a channel pruning with reconstruction did: the :class:`~prunekit.PruneReport` plus, per
refit layer, the reconstruction error on the sampled points."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from prunekit.report import PruneReport

__all__ = ["LayerReconstruction", "ReconstructionReport"]


@dataclass
class LayerReconstruction:
    """One consumer layer after its input channels were chosen.

    Attributes:
        name: the layer (a Conv2d or Linear reading the pruned channels).
        group: the id of the channel group whose removal it absorbed.
        selection: how the channels were chosen ("lasso", "thinet", or a criterion name).
        features_kept, features_total: input features (channels x kernel positions) kept / before.
        error_before: ``||Y - Y_hat||^2 / ||Y||^2`` on the samples with the channels removed and
            the weights unchanged (``Y`` the ORIGINAL model's output of this layer).
        error_after: the same after the least-squares refit (equal to ``error_before`` if the
            refit was off or could not improve it).
    """

    name: str
    group: int
    selection: str
    features_kept: int
    features_total: int
    error_before: float
    error_after: float


@dataclass
class ReconstructionReport(PruneReport):
    """A :class:`~prunekit.PruneReport` with ``reconstruction``: one row per refit layer, in the
    order they were processed."""

    reconstruction: list[LayerReconstruction] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        out["reconstruction"] = [vars(r) for r in self.reconstruction]
        return out

    def __str__(self) -> str:
        lines = [super().__str__(), "reconstruction error (relative, on the samples): before -> after refit"]
        for r in self.reconstruction:
            lines.append(
                f"  {r.name} [group {r.group}, {r.selection}, {r.features_kept}/{r.features_total} features]: "
                f"{r.error_before:.4f} -> {r.error_after:.4f}"
            )
        return "\n".join(lines)
