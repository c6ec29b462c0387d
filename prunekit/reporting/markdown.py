"""``report.md``: the summary table, the per-layer table and links to the plots."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from prunekit.reporting.tables import LayerRow, markdown_table

__all__ = ["render_markdown", "summary_rows", "latency_warnings"]


def _pct(v: float | None) -> str | None:
    return None if v is None else f"{v:.1%}"


def _acc(v: Any) -> str | None:
    """Accuracies are shown as given: fractions as percent, values above 1 as percent already."""
    if not isinstance(v, (int, float)):
        return None
    return f"{v:.2%}" if v <= 1.0 else f"{v:.2f}%"


def summary_rows(data: dict[str, Any]) -> list[tuple[str, Any, Any, Any]]:
    """(figure, before, after, change) rows of the summary table."""
    s = data["summary"]
    rows: list[tuple[str, Any, Any, Any]] = [
        ("parameters", s["params_before"], s["params_after"], _pct(s["params_ratio"] - 1.0)),
        ("MACs per sample", s["macs_before"], s["macs_after"], _pct(s["macs_ratio"] - 1.0)),
    ]
    sp = data["sparsity"]
    rows.append(
        ("channel sparsity (requested / realised)", _pct(sp["channels_requested"]), _pct(sp["channels_realised"]), None)
    )
    for key in ("target_macs", "target_params", "target_latency"):
        if key in sp:
            realised = {"target_macs": s["macs_ratio"], "target_params": s["params_ratio"]}.get(
                key, sp.get("target_latency_realised")
            )
            rows.append((f"{key} (requested / realised)", _pct(sp[key]), _pct(realised), None))
    acc = data["accuracy"]
    if "before" in acc or "after_prune" in acc:
        rows.append(
            ("accuracy before pruning / right after", _acc(acc.get("before")), _acc(acc.get("after_prune")), None)
        )
    if "after_finetune" in acc:
        delta = None
        if isinstance(acc.get("before"), (int, float)):
            scale = 100.0 if acc["after_finetune"] <= 1.0 else 1.0
            delta = f"{(acc['after_finetune'] - acc['before']) * scale:+.2f} points"
        rows.append(
            ("accuracy before pruning / after fine-tuning", _acc(acc.get("before")), _acc(acc["after_finetune"]), delta)
        )
    lat = data.get("latency") or {}
    for batch, t in lat.get("batches", {}).items():
        rows.append(
            (
                f"{lat.get('backend', 'torch')} CPU latency, batch {batch}, {lat['threads']} thread(s) (ms)",
                f"{t['before_ms']:.3f}",
                f"{t['after_ms']:.3f}",
                _speed(t),
            )
        )
    for i, step in enumerate(data.get("prune_steps") or []):
        t = step.get("latency")
        if t:
            rows.append(
                (
                    f"step {i + 1}: {t['backend']} latency, batch {t['batch']}, {t['threads']} thread(s), "
                    f"round_to {t.get('round_to')} (ms)",
                    f"{t['before_ms']:.3f}",
                    f"{t['after_ms']:.3f}",
                    _speed(t),
                )
            )
    return rows


def _speed(t: dict[str, Any]) -> str:
    """``1.50x faster (0.75 of the 2.00x MAC reduction)``."""
    text = f"{t['speedup']:.2f}x faster"
    if "speedup_per_mac_reduction" in t:
        text += f" ({t['speedup_per_mac_reduction']:.2f} of the {t['mac_reduction']:.2f}x MAC reduction)"
    return text


def latency_warnings(data: dict[str, Any]) -> list[str]:
    """Every latency warning of the report: the measured batches, then the prune steps."""
    found = [t.get("warning") for t in ((data.get("latency") or {}).get("batches") or {}).values()]
    found += [(s.get("latency") or {}).get("warning") for s in data.get("prune_steps") or []]
    return [w for w in found if w]


def render_markdown(data: dict[str, Any], rows: Sequence[LayerRow]) -> str:
    """The whole ``report.md`` from the figures of ``report.json`` and the layer rows."""
    parts = [
        "# Pruning report\n",
        f"prunekit {data['versions']['prunekit']}, torch {data['versions']['torch']}; written {data['created']}.\n",
        "## Summary\n",
        markdown_table(("figure", "before", "after", "change"), summary_rows(data)),
    ]
    warned = latency_warnings(data)
    if warned:
        parts += ["## Warnings\n", "\n".join(f"* {w}" for w in warned) + "\n"]
    removed = [(i, n) for i, s in enumerate(data.get("prune_steps") or []) for n in s.get("removed_branches") or []]
    if removed:
        parts += [
            "## Removed branches\n",
            "Every channel these layers read was removed (`remove_branches`): each now returns its bias, "
            "and the layers before it in the branch compute nothing.\n",
            "\n".join(f"* step {i + 1}: `{n}`" for i, n in removed) + "\n",
        ]
    for label, name in (
        ("Channels per layer", "channels"),
        ("Training curves", "training_curves"),
        ("Accuracy vs MACs", "accuracy_vs_macs"),
    ):
        if name in data.get("files", {}):
            parts.append(f"![{label}]({data['files'][name]})\n")
    parts += [
        "## Per layer\n",
        "Sparsity is the fraction of output channels removed; MACs are per sample.\n",
        markdown_table(
            ("layer", "type", "in", "out", "params", "MACs", "sparsity requested", "sparsity realised"),
            [
                (
                    r.name,
                    r.kind,
                    _arrow(r.in_before, r.in_after),
                    _arrow(r.out_before, r.out_after),
                    _arrow(r.params_before, r.params_after),
                    _arrow(r.macs_before, r.macs_after),
                    _pct(r.sparsity_requested),
                    _pct(r.sparsity_realised),
                )
                for r in rows
            ],
        ),
    ]
    return "\n".join(parts)


def _arrow(a: int | None, b: int | None) -> str:
    if a is None:
        return "-"
    return f"{a:,}" if a == b else f"{a:,} -> {b:,}"
