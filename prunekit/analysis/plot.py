"""A PNG of the sensitivity curves: one line per group, metric against sparsity.

matplotlib is imported here, lazily, with the Agg backend (no display needed), so
``import prunekit`` stays light; install it with ``pip install prunekit[report]``.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

from prunekit.analysis.sensitivity import SensitivityResult
from prunekit.errors import ConfigError
from prunekit.fileio import write_bytes

__all__ = ["plot_sensitivity"]

METRICS = ("top1", "top5", "loss")


def plot_sensitivity(result: SensitivityResult, path: str | os.PathLike[str], *, metric: str = "top1") -> Path:
    """Writes the curves of ``metric`` ("top1", "top5" or "loss") to the PNG ``path``."""
    if metric not in METRICS:
        raise ConfigError(f"metric must be one of {METRICS}, but got {metric!r}", module="metric")
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ConfigError("plotting needs matplotlib: pip install 'prunekit[report]'", module="matplotlib") from exc
    fig, ax = plt.subplots(figsize=(9, 6))
    cmap = plt.get_cmap("viridis", max(len(result.modules), 2))
    for i, gid in enumerate(result.modules):
        s, v = result.curve(gid, metric)
        ax.plot(s, v * (100 if metric != "loss" else 1), marker="o", ms=3, color=cmap(i), label=result.labels[gid])
    base = result.baseline[METRICS.index(metric)]
    ax.axhline(base * (100 if metric != "loss" else 1), color="k", ls="--", lw=1, label="unpruned")
    ax.set_xlabel("sparsity of the group (fraction of channels removed)")
    ax.set_ylabel({"top1": "top-1 accuracy (%)", "top5": "top-5 accuracy (%)", "loss": "cross-entropy"}[metric])
    ax.set_title(f"Sensitivity to pruning one group at a time ({result.criterion})")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2, loc="best")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return write_bytes(Path(path), buf.getvalue())
