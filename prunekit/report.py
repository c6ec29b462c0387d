"""What a prune did: ``PruneReport`` (per layer and in total) and ``ReconstructionReport`` (the
same plus, per refit layer, the reconstruction error). Rendering and plots are in
:mod:`prunekit.reporting`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "PruneReport",
    "LayerChange",
    "ReconstructionReport",
    "LayerReconstruction",
    "latency_summary",
    "latency_warning",
    "SPEEDUP_WARNING",
]

SPEEDUP_WARNING = 0.5  # warn below this fraction of the MAC reduction delivered as speed-up


def latency_summary(before_s: float, after_s: float, macs_before: int, macs_after: int, **meta: Any) -> dict[str, Any]:
    """Measured latency before / after a prune and how much of the MAC reduction it delivers:
    ``speedup = before / after``, ``mac_reduction = macs_before / macs_after`` and
    ``speedup_per_mac_reduction`` their ratio (1.0: the model got as much faster as it got
    smaller), plus ``meta`` (backend, batch, threads...) and ``warning`` (or None)."""
    speedup = before_s / max(after_s, 1e-12)
    reduction = macs_before / max(macs_after, 1)
    out = {
        **meta,
        "before_ms": before_s * 1e3,
        "after_ms": after_s * 1e3,
        "speedup": speedup,
        "mac_reduction": reduction,
        "speedup_per_mac_reduction": speedup / reduction,
    }
    out["warning"] = latency_warning(out)
    return out


def latency_warning(summary: dict[str, Any]) -> str | None:
    """The warning a latency summary deserves: slower after pruning, or less than half of the
    MAC reduction delivered as speed-up; None when neither."""
    where = f"on {summary.get('backend', 'this backend')} at batch {summary.get('batch', '?')}"
    if summary.get("budget_ms") is None:
        advice = "try round_to='auto' or target_latency"
    else:  # already a latency target: what is left is what channel pruning does not shrink
        advice = "the rest is per-layer overhead channel pruning does not shrink (a larger batch shows more of the cut)"
    if summary["speedup"] < 1.0 and summary["mac_reduction"] > 1.0:
        return (
            f"the pruned model is SLOWER {where} ({summary['before_ms']:.3f} -> {summary['after_ms']:.3f} ms) "
            f"despite fewer MACs: {advice}"
        )
    if summary["mac_reduction"] > 1.0 + 1e-9 and summary["speedup_per_mac_reduction"] < SPEEDUP_WARNING:
        return (
            f"the prune delivers {summary['speedup']:.2f}x speed-up {where} for {summary['mac_reduction']:.2f}x "
            f"fewer MACs ({summary['speedup_per_mac_reduction']:.2f} of the MAC reduction, under "
            f"{SPEEDUP_WARNING}): {advice}"
        )
    return None


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
        latency: measured latency before/after (:func:`latency_summary`: ``before_ms``,
            ``after_ms``, ``speedup``, ``mac_reduction``, ``speedup_per_mac_reduction``,
            ``warning``, the backend, batch, threads and ``round_to``), or None when not
            measured (see ``PruneOptions.report_latency``).
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
    latency: dict[str, Any] | None = None

    @property
    def removed_branches(self) -> list[str]:
        """The layers that now return a constant because every channel they read was removed
        (``remove_branches``): one per removed branch, in the order of ``kept``."""
        return [n for n, roles in self.kept.items() if "in" in roles and not roles["in"] and roles.get("out", [0])]

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
            "removed_branches": self.removed_branches,
            "layers": [vars(r) for r in self.layers],
            "config": self.config,
            "latency": self.latency,
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
        text = (
            f"{table}\n"
            f"groups pruned: {self.groups_pruned}, channels removed: {self.channels_removed} of {self.channels_total}\n"
            f"params: {self.params_before:,} -> {self.params_after:,} ({self.params_ratio:.1%})\n"
            f"MACs:   {self.macs_before:,} -> {self.macs_after:,} ({self.macs_ratio:.1%})"
        )
        if self.removed_branches:
            shown = ", ".join(self.removed_branches[:6]) + (" ..." if len(self.removed_branches) > 6 else "")
            text += f"\nbranches removed (the layer that now returns its bias): {len(self.removed_branches)}: {shown}"
        lat = self.latency
        if lat:
            text += (
                f"\nlatency ({lat.get('backend')}, batch {lat.get('batch')}, {lat.get('threads')} thread(s), "
                f"round_to {lat.get('round_to')}): {lat['before_ms']:.3f} -> {lat['after_ms']:.3f} ms "
                f"({lat['speedup']:.2f}x faster; {lat['speedup_per_mac_reduction']:.2f} of the "
                f"{lat['mac_reduction']:.2f}x MAC reduction)"
            )
            if lat.get("warning"):
                text += f"\nWARNING: {lat['warning']}"
        return text


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
