"""The training log (the pipeline's CSV) read as columns, and the accuracy-vs-MACs points.

The pipeline writes one row per epoch with columns such as ``epoch, phase, lr, train_loss,
train_acc, val_loss, val_top1, val_top5, params, macs, sparsity, seconds``. Any of them may be
missing or empty: numeric cells that do not parse become ``None`` and plots use what is there.
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from prunekit.errors import ConfigError

__all__ = ["read_history", "accuracy_points"]


def _number(text: str | None) -> float | None:
    try:
        value = float(text) if text not in (None, "") else None
    except ValueError:
        return None
    return None if value is None or math.isnan(value) else value


def read_history(path: str | os.PathLike) -> dict[str, list[Any]]:
    """Columns of the CSV log: ``phase`` as strings, every other column as floats (or ``None``).

    Raises:
        ConfigError: the file does not exist or has no header row.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"history file {str(path)!r} does not exist (give the CSV log of a run)", module=str(path))
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        if not reader.fieldnames:
            raise ConfigError(
                f"history file {str(path)!r} is empty: expected a CSV with a header row", module=str(path)
            )
        rows = list(reader)
    columns: dict[str, list[Any]] = {}
    for name in reader.fieldnames:
        cells = [row.get(name) for row in rows]
        columns[name.strip()] = [c or "" for c in cells] if name.strip() == "phase" else [_number(c) for c in cells]
    return columns


def accuracy_points(
    metrics: Mapping[str, Any] | None,
    history: Mapping[str, list[Any]] | None,
    *,
    macs_before: int,
    macs_after: int,
) -> list[dict[str, Any]]:
    """Points ``{"label", "macs", "accuracy"}`` for the accuracy-vs-MACs plot.

    From ``metrics["accuracy"]`` (``before`` at the unpruned MACs, ``after_prune`` and
    ``after_finetune`` at the pruned MACs unless ``metrics["macs"]`` says otherwise), then every
    CSV row that has both ``val_top1`` and ``macs``, labelled by its phase.
    """
    points: list[dict[str, Any]] = []
    accuracy = dict((metrics or {}).get("accuracy") or {})
    macs = dict((metrics or {}).get("macs") or {})
    default_macs = {"before": macs_before, "after_prune": macs_after, "after_finetune": macs_after}
    for label in ("before", "after_prune", "after_finetune"):
        acc = accuracy.get(label)
        if isinstance(acc, (int, float)):
            # metrics["macs"] may name the points ("after_prune") or only "before" / "after"
            given = [macs.get(label), macs.get("before" if label == "before" else "after")]
            at = next((m for m in given if isinstance(m, (int, float))), default_macs[label])
            points.append({"label": label, "macs": float(at), "accuracy": float(acc)})
    if history:
        tops, row_macs = history.get("val_top1") or [], history.get("macs") or []
        phases = history.get("phase") or [""] * len(tops)
        for acc, m, phase in zip(tops, row_macs, phases):
            if acc is not None and m is not None:
                points.append({"label": f"epoch ({phase})" if phase else "epoch", "macs": m, "accuracy": acc})
    return points
