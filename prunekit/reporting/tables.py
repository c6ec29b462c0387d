"""The per-layer table: channels, params and MACs before and after, sparsity requested vs realised.

Rows come from comparing the two models module by module (a pruned model keeps its module
names), so the table is right after any number of prune steps. The prune reports only add what
was *requested*.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn as nn

from prunekit.batching import with_batch
from prunekit.errors import ConfigError
from prunekit.metrics import macs_per_module
from prunekit.prune import resolve_sparsity
from prunekit.report import LayerChange, PruneReport
from prunekit.surgery.standins import ConstantOutput, Emptied, is_standin

__all__ = ["LayerRow", "compare_layers", "requested_sparsity", "markdown_table"]


@dataclass
class LayerRow(LayerChange):
    """A :class:`~prunekit.report.LayerChange` (one module with its own parameters, in both
    models) plus its sparsity.

    ``sparsity_realised`` is ``1 - out_after / out_before`` (the fraction of output channels
    removed); ``sparsity_requested`` is set only for layers whose outputs a prune step cut.
    """

    sparsity_requested: float | None
    sparsity_realised: float | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _channels(module: nn.Module) -> tuple[int | None, int | None]:
    """(input, output) channels of a layer; from the weight shape for unknown types."""
    if isinstance(module, Emptied):  # computes nothing: reads and makes no channel
        return 0, 0
    if isinstance(module, ConstantOutput):
        return 0, module.out_channels
    if isinstance(module, nn.modules.conv._ConvNd):
        return module.in_channels, module.out_channels
    if isinstance(module, nn.Linear):
        return module.in_features, module.out_features
    if isinstance(module, nn.modules.batchnorm._NormBase):
        return module.num_features, module.num_features
    if isinstance(module, nn.GroupNorm):
        return module.num_channels, module.num_channels
    weight = getattr(module, "weight", None)
    if isinstance(weight, torch.Tensor) and weight.dim() >= 1:
        return (int(weight.shape[1]) if weight.dim() > 1 else int(weight.shape[0])), int(weight.shape[0])
    return None, None


def _own_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters(recurse=False))


def _step_requests(report: PruneReport) -> dict[str, float]:
    """What one prune step asked of each layer whose outputs it cut.

    The engine gives a coupled group the smallest request of the layers whose outputs it holds
    (``None``, "keep", counts as 0). Layers cut to the same kept indices in one step are taken
    as one group here: the report does not store the groups themselves.
    """
    default = float(report.config.get("sparsity") or 0.0)
    overrides = report.config.get("overrides") or {}
    by_kept: dict[tuple[int, ...], list[str]] = {}
    for name, roles in report.kept.items():
        if "out" in roles:
            by_kept.setdefault(tuple(roles["out"]), []).append(name)
    result: dict[str, float] = {}
    for names in by_kept.values():
        value = min(resolve_sparsity(n, default, overrides) or 0.0 for n in names)
        result.update(dict.fromkeys(names, value))
    return result


def requested_sparsity(prune_reports: Sequence[PruneReport]) -> dict[str, float | None]:
    """Per layer whose output channels were cut: the sparsity the prune steps asked for.

    Successive steps remove a fraction of what is left, so the fractions compose as
    ``1 - prod_i (1 - s_i)`` (a step that did not cut the layer asked for its default or
    override all the same). A layer's value is ``None`` when any step used ``scope="global"``:
    one ranking over all groups has no per-layer request.
    """
    steps = [_step_requests(r) for r in prune_reports]
    cut = sorted({name for step in steps for name in step})
    result: dict[str, float | None] = dict.fromkeys(cut)
    if any(r.config.get("scope", "local") == "global" for r in prune_reports):
        return result
    for name in cut:
        keep = 1.0
        for report, step in zip(prune_reports, steps):
            asked = step.get(name)
            if asked is None:
                asked = resolve_sparsity(
                    name, float(report.config.get("sparsity") or 0.0), report.config.get("overrides")
                )
            keep *= 1.0 - float(asked or 0.0)
        result[name] = 1.0 - keep
    return result


def compare_layers(
    model_before: nn.Module,
    model_after: nn.Module,
    example_inputs: torch.Tensor | Sequence[torch.Tensor],
    *,
    prune_reports: Sequence[PruneReport] = (),
) -> list[LayerRow]:
    """One :class:`LayerRow` per module that has its own parameters, in the order of the model.

    MACs are per sample: counted on the first example input alone (``prunekit.metrics``).

    Raises:
        ConfigError: a layer of one model is missing from the other (not the same architecture).
    """
    before = dict(model_before.named_modules())
    # a removed branch's stand-ins (the emptied layers hold no parameter) keep their rows
    after = {name: m for name, m in model_after.named_modules() if _own_params(m) or is_standin(m)}
    extra = [n for n in after if n not in before]
    missing = [n for n, m in before.items() if _own_params(m) and n not in after]
    if extra or missing:
        name = (extra or missing)[0]
        where = (
            "of the pruned model is not in the model before pruning" if extra else "is missing from the pruned model"
        )
        raise ConfigError(
            f"layer {name!r} {where}: compare a pruned model with the model it was pruned from", module=name
        )
    one = with_batch(example_inputs, 1)
    _, macs_before = macs_per_module(model_before, one)
    _, macs_after = macs_per_module(model_after, one)
    requested = requested_sparsity(prune_reports)
    rows = []
    for name, module in after.items():
        in_b, out_b = _channels(before[name])
        in_a, out_a = _channels(module)
        realised = 1.0 - out_a / out_b if out_a is not None and out_b else None
        rows.append(
            LayerRow(
                name=name,
                kind=type(module).__name__,
                in_before=in_b,
                in_after=in_a,
                out_before=out_b,
                out_after=out_a,
                params_before=_own_params(before[name]),
                params_after=_own_params(module),
                macs_before=macs_before.get(name, 0),
                macs_after=macs_after.get(name, 0),
                sparsity_requested=requested.get(name),
                sparsity_realised=realised,
            )
        )
    return rows


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A GitHub-flavoured markdown table; numbers right-aligned, ``None`` shown as ``-``."""

    def cell(v: Any) -> str:
        if v is None:
            return "-"
        if isinstance(v, float):
            return f"{v:.3g}" if abs(v) < 1e4 else f"{v:,.0f}"
        if isinstance(v, int) and not isinstance(v, bool):
            return f"{v:,}"
        return str(v).replace("|", "\\|")

    numeric = [
        bool(rows) and all(isinstance(r[i], (int, float)) or r[i] is None for r in rows) for i in range(len(header))
    ]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---:" if n else "---" for n in numeric) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"
