"""Sensitivity analysis: prune one group alone at increasing sparsity and measure the damage.

Li, Kadav, Durdanovic, Samet & Graf 2017 ("Pruning Filters for Efficient ConvNets", ICLR 2017,
sec. 4.1; Distiller's ``--sense``): for each prunable group ``g`` and each sparsity ``s`` in
``0.0, 0.1, ..., 0.9``, the ``removal_count(|g|, s)`` lowest-scoring channels of ``g`` (the same
criterion, locks and balanced cells as :func:`prunekit.prune_`) are zeroed, the model is evaluated
on validation data (top-1, top-5, cross-entropy), and the weights are restored.

The model is traced once; each (group, sparsity) point only zeroes parameters through the masks of
:func:`prunekit.masks.masks_for_plan` (no re-tracing, no copy of the model), which for an exact
group computes exactly what the physically pruned model computes.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from prunekit.engine import PruneOptions, build_criterion, candidates, check_model_options, resolve_options
from prunekit.engine.options import check_fraction, round_multiple
from prunekit.fileio import write_text
from prunekit.graph.dependency import DependencyGraph
from prunekit.graph.groups import Group
from prunekit.masks import masks_for_plan
from prunekit.surgery.plan import make_plan
from prunekit.surgery.selection import removal_count, select_channels

__all__ = ["SensitivityPoint", "SensitivityResult", "sensitivity_analysis", "DEFAULT_SPARSITIES"]

DEFAULT_SPARSITIES = tuple(round(0.1 * i, 1) for i in range(10))
CSV_COLUMNS = ("group", "layer", "modules", "sparsity", "channels_removed", "top1", "top5", "loss")


@dataclass(frozen=True)
class SensitivityPoint:
    """The model evaluated with ``channels_removed`` channels of one group zeroed."""

    group: int
    layer: str
    sparsity: float
    channels_removed: int
    top1: float
    top5: float
    loss: float


@dataclass
class SensitivityResult:
    """All points of an analysis, and what is needed to turn them into a schedule.

    Attributes:
        points: one per (group, sparsity), groups in graph order.
        baseline: ``(top1, top5, loss)`` of the unpruned model.
        modules: group id -> the modules whose output channels the group holds (the names a
            per-layer override must list).
        labels: group id -> a short name: the first of its producing layers.
        criterion: the criterion's name; ignore: the modules left out.
    """

    points: list[SensitivityPoint]
    baseline: tuple[float, float, float]
    modules: dict[int, list[str]]
    labels: dict[int, str]
    criterion: str = "l1"
    ignore: tuple[str, ...] = field(default_factory=tuple)

    def curve(self, group: int, metric: str = "top1") -> tuple[np.ndarray, np.ndarray]:
        """``(sparsities, values)`` of one group's curve."""
        pts = sorted((p for p in self.points if p.group == group), key=lambda p: p.sparsity)
        return np.array([p.sparsity for p in pts]), np.array([getattr(p, metric) for p in pts])

    def to_csv(self, path: str | os.PathLike[str] | None = None) -> str:
        """The points as CSV (``group, layer, modules, sparsity, channels_removed, top1, top5, loss``);
        written atomically to ``path`` when given."""
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(CSV_COLUMNS)
        for p in self.points:
            row = (p.group, p.layer, ";".join(self.modules[p.group]), p.sparsity, p.channels_removed)
            writer.writerow(row + tuple(f"{v:.6f}" for v in (p.top1, p.top5, p.loss)))
        text = buf.getvalue()
        if path is not None:
            write_text(Path(path), text)
        return text


def _label(model: nn.Module, group: Group) -> str:
    outs = [m.module for m in group.members if m.role == "out"]
    mixing = [n for n in outs if isinstance(model.get_submodule(n), (nn.modules.conv._ConvNd, nn.Linear))]
    return (mixing or outs or [f"group{group.id}"])[0]


def sensitivity_analysis(
    model: nn.Module,
    example_inputs: torch.Tensor | Sequence[torch.Tensor],
    data: Iterable[tuple[torch.Tensor, torch.Tensor]],
    options: PruneOptions | None = None,
    *,
    sparsities: Sequence[float] = DEFAULT_SPARSITIES,
    max_batches: int | None = None,
    progress: bool = True,
    device: torch.device | str | None = None,
    **kwargs: Any,
) -> SensitivityResult:
    """Evaluates ``model`` with each prunable group pruned alone at each sparsity (see module doc).

    Args:
        model: the trained model; its weights are restored after every point.
        example_inputs: inputs for tracing (once).
        data: validation batches ``(input, target)``, e.g. a DataLoader.
        options: :class:`~prunekit.engine.PruneOptions` (keyword arguments override it):
            ``criterion`` (a name or an instance; data-driven ones need their data), ``ignore``,
            ``round_to``, ``exact_only`` and ``tracer`` apply; the scope is local.
        sparsities: fractions in [0, 1) to try for every group.
        max_batches: evaluate on at most this many batches (all by default).
        progress: a tqdm progress bar over the groups.
        device: where to evaluate (default: where the model's parameters are).

    Returns:
        A :class:`SensitivityResult`; ``suggest_sparsities`` and ``schedule_config`` in
        :mod:`prunekit.analysis.suggest` turn it into a schedule.
    """
    from prunekit.pipeline.train import evaluate, progress_bar  # lazy: the pipeline imports more

    opts = resolve_options(options, **kwargs)
    sparsities = [check_fraction("sparsities", s) for s in sparsities]
    check_model_options(model, opts)
    crit = build_criterion(opts)
    graph = DependencyGraph(model, example_inputs, tracer=opts.tracer)
    if device is None:
        device = next((p.device for p in model.parameters()), torch.device("cpu"))

    def measure() -> tuple[float, float, float]:
        r = evaluate(model, data, device=device, max_batches=max_batches)
        return r.top1, r.top5, r.loss

    baseline = measure()
    params = dict(model.named_parameters())
    groups = candidates(graph, opts)
    points: list[SensitivityPoint] = []
    for g in progress_bar(groups, enabled=progress, desc="sensitivity", unit="group"):
        scores = np.asarray(crit.scores(model, g), dtype=np.float64)
        label = _label(model, g)
        for s in sparsities:
            removed = select_channels(g, scores, removal_count(g.size, s, round_to=round_multiple(opts)))
            if len(removed) == 0:
                points.append(SensitivityPoint(g.id, label, s, 0, *baseline))
                continue
            masks = masks_for_plan(model, make_plan(graph, {g.id: removed}))
            saved = {n: params[n].detach().clone() for n in masks}
            try:
                with torch.no_grad():
                    for n, mask in masks.items():
                        params[n].mul_(mask.to(params[n]))
                top1, top5, loss = measure()
            finally:
                with torch.no_grad():
                    for n, value in saved.items():
                        params[n].copy_(value)
            points.append(SensitivityPoint(g.id, label, s, len(removed), top1, top5, loss))
    modules = {g.id: sorted({m.module for m in g.members if m.role == "out"}) for g in groups}
    name = getattr(crit, "name", type(crit).__name__)
    return SensitivityResult(points, baseline, modules, {g.id: _label(model, g) for g in groups}, name, opts.ignore)
