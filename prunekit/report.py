"""What a prune did: ``PruneReport`` (per layer and in total) and ``ReconstructionReport`` (the
same plus, per refit layer, the reconstruction error). Rendering and plots are in
:mod:`prunekit.reporting`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["PruneReport", "LayerChange", "ReconstructionReport", "LayerReconstruction"]


@dataclass
class LayerChange:
    """One layer's channels, parameters and MACs before and after."""

    name: str
    kind: str
    in_before: int | None
    in_after: int | None
    out_before: int | None
    out_after: int | None
    params_before: int
    params_after: int
    macs_before: int
    macs_after: int


@dataclass
class PruneReport:
    """The result of :func:`prunekit.prune_`.

    Attributes:
        kept: ``{module: {"out": [...], "in": [...]}}``: kept indices in the ORIGINAL dims, a key
            only where that dim shrank.
        kept_params: ``{tensor name: {dim: [...]}}`` for bare parameters (layer scales, tokens).
        params_before, params_after, macs_before, macs_after: totals.
        layers: per-layer :class:`LayerChange` rows.
        groups_pruned: number of groups that lost channels; channels_removed: how many in total.
        config: the arguments of the call.
    """

    kept: dict[str, dict[str, list[int]]] = field(default_factory=dict)
    kept_params: dict[str, dict[int, list[int]]] = field(default_factory=dict)
    params_before: int = 0
    params_after: int = 0
    macs_before: int = 0
    macs_after: int = 0
    layers: list[LayerChange] = field(default_factory=list)
    groups_pruned: int = 0
    channels_removed: int = 0
    channels_total: int = 0
    config: dict[str, Any] = field(default_factory=dict)

    @property
    def params_ratio(self) -> float:
        return self.params_after / max(self.params_before, 1)

    @property
    def macs_ratio(self) -> float:
        return self.macs_after / max(self.macs_before, 1)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kept": self.kept,
            "kept_params": {k: {str(d): v for d, v in dims.items()} for k, dims in self.kept_params.items()},
            "params_before": self.params_before,
            "params_after": self.params_after,
            "macs_before": self.macs_before,
            "macs_after": self.macs_after,
            "groups_pruned": self.groups_pruned,
            "channels_removed": self.channels_removed,
            "channels_total": self.channels_total,
            "layers": [vars(r) for r in self.layers],
            "config": self.config,
        }

    def __str__(self) -> str:
        def arrow(a: int | None, b: int | None) -> str:
            return "-" if a is None else (f"{a}" if a == b else f"{a} -> {b}")

        rows = [("layer", "type", "in", "out", "params", "MACs")]
        for r in self.layers:
            rows.append(
                (
                    r.name,
                    r.kind,
                    arrow(r.in_before, r.in_after),
                    arrow(r.out_before, r.out_after),
                    arrow(r.params_before, r.params_after),
                    arrow(r.macs_before, r.macs_after),
                )
            )
        widths = [max(len(row[i]) for row in rows) for i in range(6)]
        table = "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows)
        return (
            f"{table}\n"
            f"groups pruned: {self.groups_pruned}, channels removed: {self.channels_removed} of {self.channels_total}\n"
            f"params: {self.params_before:,} -> {self.params_after:,} ({self.params_ratio:.1%})\n"
            f"MACs:   {self.macs_before:,} -> {self.macs_after:,} ({self.macs_ratio:.1%})"
        )


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
