"""The per-epoch CSV log of a run, rewritten atomically after every epoch.

The rows live in the checkpoint too, so a resumed run continues the same file.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from prunekit.fileio import write_text

__all__ = ["HISTORY_COLUMNS", "write_history", "read_history"]

#: Columns of ``history.csv``. Accuracies are fractions in [0, 1]; ``sparsity`` is the fraction
#: of the original parameters that are gone or zero; ``seconds`` is the epoch's wall time.
#: ``penalty`` (mean regularizer penalty over the epoch) and ``reg_below`` (fraction of the
#: prunable channels whose norm is under the phase's threshold) are filled in ``sparsify`` phases.
HISTORY_COLUMNS = (
    "epoch",
    "phase",
    "lr",
    "train_loss",
    "train_acc",
    "val_loss",
    "val_top1",
    "val_top5",
    "params",
    "macs",
    "sparsity",
    "seconds",
    "penalty",
    "reg_below",
)


def write_history(path: str | os.PathLike[str], rows: Sequence[dict[str, Any]]) -> Path:
    """Writes ``rows`` (dicts keyed by :data:`HISTORY_COLUMNS`) as CSV, atomically."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=HISTORY_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _fmt(row.get(k, "")) for k in HISTORY_COLUMNS})
    return write_text(path, buf.getvalue())


def read_history(path: str | os.PathLike[str]) -> list[dict[str, str]]:
    """The rows of a ``history.csv`` as dicts of strings."""
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _fmt(value: Any) -> Any:
    return f"{value:.6g}" if isinstance(value, float) else value
