"""PNG plots of a report, drawn with matplotlib's Agg backend (no display needed).

matplotlib is imported inside each function, so ``import prunekit.reporting`` stays light and
prunekit works without it (``pip install 'prunekit[report]'`` for the plots). Each function
returns the path written (atomically), or ``None`` when there is nothing to draw.
"""

from __future__ import annotations

import io
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from prunekit.errors import ConfigError
from prunekit.fileio import write_bytes
from prunekit.reporting.tables import LayerRow

__all__ = ["plot_channels", "plot_history", "plot_accuracy_vs_macs", "plot_sensitivity", "have_matplotlib"]

SENSITIVITY_METRICS = ("top1", "top5", "loss")


def have_matplotlib() -> bool:
    """Whether matplotlib can be imported."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError as exc:
        raise ConfigError("plots need matplotlib: pip install 'prunekit[report]'", module="matplotlib") from exc
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: str | os.PathLike) -> Path:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    _pyplot().close(fig)
    return write_bytes(path, buf.getvalue())


def plot_channels(rows: Sequence[LayerRow], path: str | os.PathLike) -> Path | None:
    """Output channels per layer before and after (normalisation layers left out: they follow)."""
    rows = [r for r in rows if r.out_before is not None and "Norm" not in r.kind]
    if not rows:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(max(6.0, 0.28 * len(rows) + 2), 4))
    xs = range(len(rows))
    ax.bar([x - 0.2 for x in xs], [r.out_before for r in rows], width=0.4, label="before", color="#9aa9c2")
    ax.bar([x + 0.2 for x in xs], [r.out_after for r in rows], width=0.4, label="after", color="#2b5fad")
    ax.set_xticks(list(xs), [r.name for r in rows], rotation=90, fontsize=7)
    ax.set_ylabel("output channels")
    ax.set_title("Channels per layer")
    ax.legend()
    return _save(fig, path)


_PANELS = (
    ("loss", ("train_loss", "val_loss")),
    ("accuracy", ("train_acc", "val_top1", "val_top5")),
    ("learning rate", ("lr",)),
)


def plot_history(history: Mapping[str, list[Any]], path: str | os.PathLike) -> Path | None:
    """Training curves from the CSV log: loss, accuracy and LR against the epoch.

    Phases (train / prune / finetune) are separated by dashed vertical lines. Columns that are
    missing or empty are skipped; with none of them, nothing is drawn.
    """
    panels = [(t, [c for c in cols if any(v is not None for v in history.get(c) or [])]) for t, cols in _PANELS]
    panels = [(t, cols) for t, cols in panels if cols]
    if not panels:
        return None
    n = max(len(history.get(c) or []) for _, cols in panels for c in cols)
    epochs = history.get("epoch") or []
    # the row index when epochs are missing or restart per phase: x must keep increasing
    xs = list(range(1, n + 1))
    label = "row of the log"
    if len(epochs) == n and all(e is not None for e in epochs) and all(a < b for a, b in zip(epochs, epochs[1:])):
        xs, label = list(epochs), "epoch"
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.4), squeeze=False)
    phases = history.get("phase") or []
    for ax, (title, cols) in zip(axes[0], panels):
        for c in cols:
            pts = [(x, v) for x, v in zip(xs, history[c]) if v is not None]
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker=".", label=c)
        for i in range(1, min(len(phases), n)):
            if phases[i] != phases[i - 1]:
                ax.axvline((xs[i - 1] + xs[i]) / 2, color="grey", linestyle="--", linewidth=0.8)
        ax.set_title(title)
        ax.set_xlabel(label)
        ax.legend(fontsize=7)
    return _save(fig, path)


def plot_accuracy_vs_macs(points: Sequence[Mapping[str, Any]], path: str | os.PathLike) -> Path | None:
    """Accuracy against MACs per sample, one colour per label (see ``accuracy_points``)."""
    if not points:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 4))
    for label in dict.fromkeys(p["label"] for p in points):
        pts = [p for p in points if p["label"] == label]
        epoch = label.startswith("epoch")  # many small points from the log; the named ones stand out
        xs, ys = [p["macs"] / 1e6 for p in pts], [p["accuracy"] for p in pts]
        ax.scatter(
            xs, ys, label=label, s=14 if epoch else 45, alpha=0.6 if epoch else 1.0, marker="." if epoch else "o"
        )
    ax.set_xlabel("MACs per sample (millions)")
    ax.set_ylabel("accuracy")
    ax.set_title("Accuracy vs MACs")
    ax.legend(fontsize=7)
    return _save(fig, path)


def plot_sensitivity(result: Any, path: str | os.PathLike[str], *, metric: str = "top1") -> Path:
    """Writes the curves of a :class:`~prunekit.analysis.SensitivityResult` to the PNG ``path``:
    one line per group, ``metric`` ("top1", "top5" or "loss") against the group's sparsity."""
    if metric not in SENSITIVITY_METRICS:
        raise ConfigError(f"metric must be one of {SENSITIVITY_METRICS}, but got {metric!r}", module="metric")
    plt = _pyplot()
    scale = 1 if metric == "loss" else 100
    fig, ax = plt.subplots(figsize=(9, 6))
    cmap = plt.get_cmap("viridis", max(len(result.modules), 2))
    for i, gid in enumerate(result.modules):
        s, v = result.curve(gid, metric)
        ax.plot(s, v * scale, marker="o", ms=3, color=cmap(i), label=result.labels[gid])
    base = result.baseline[SENSITIVITY_METRICS.index(metric)]
    ax.axhline(base * scale, color="k", ls="--", lw=1, label="unpruned")
    ax.set_xlabel("sparsity of the group (fraction of channels removed)")
    ax.set_ylabel({"top1": "top-1 accuracy (%)", "top5": "top-5 accuracy (%)", "loss": "cross-entropy"}[metric])
    ax.set_title(f"Sensitivity to pruning one group at a time ({result.criterion})")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2, loc="best")
    fig.tight_layout()
    return _save(fig, path)
