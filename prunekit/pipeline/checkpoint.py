"""Checkpoints: written atomically every epoch, loaded with ``torch.load(weights_only=True)``.

A checkpoint is a dict of tensors and plain containers only (no pickled classes), so loading it
never runs code from the file. :class:`~prunekit.schedules.recipe.Decision` objects and
:class:`~prunekit.PruneReport` objects are stored as plain dicts (``decision_to_dict`` of
:mod:`prunekit.schedules.recipe`, :func:`report_to_data` here); numpy arrays become lists. A run killed at any moment leaves the previous checkpoint or the new one, never a
half-written file (:func:`prunekit.fileio.torch_save`).
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from prunekit.errors import ConfigError
from prunekit.fileio import load_error_summary, torch_save
from prunekit.report import LayerChange, PruneReport

__all__ = [
    "CHECKPOINT_VERSION",
    "save_checkpoint",
    "load_checkpoint",
    "rng_state",
    "set_rng_state",
    "report_to_data",
    "report_from_data",
]

CHECKPOINT_VERSION = 1


def _plain(value: Any) -> Any:
    """Numpy arrays and scalars to lists and Python numbers, recursively."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_plain(v) for v in value)
    return value


def rng_state() -> dict[str, Any]:
    """The Python, numpy, torch and CUDA generator states, as tensors and plain data."""
    state: dict[str, Any] = {
        "python": _plain(random.getstate()),
        "numpy": _plain(np.random.get_state()),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restores :func:`rng_state` (the CUDA part only where CUDA is available)."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def report_to_data(report: PruneReport) -> dict[str, Any]:
    """A :class:`PruneReport` as plain data (see :meth:`PruneReport.to_dict`)."""
    return _plain(report.to_dict())


def report_from_data(data: dict[str, Any]) -> PruneReport:
    """Inverse of :func:`report_to_data`."""
    # removed_branches is derived from kept: written for readers, not read back
    fields = {k: v for k, v in data.items() if k not in ("layers", "kept_params", "removed_branches")}
    return PruneReport(
        kept_params={t: {int(d): i for d, i in dims.items()} for t, dims in data.get("kept_params", {}).items()},
        layers=[LayerChange(**row) for row in data.get("layers", [])],
        **fields,
    )


def save_checkpoint(state: dict[str, Any], path: str | os.PathLike[str]) -> Path:
    """Writes ``state`` (plus the format version) to ``path`` atomically."""
    return torch_save({"version": CHECKPOINT_VERSION, **state}, path)


def load_checkpoint(path: str | os.PathLike[str], *, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Loads a checkpoint written by :func:`save_checkpoint` with ``weights_only=True``.

    Raises:
        ConfigError: the file is missing, unreadable, or not a prunekit checkpoint.
    """
    path = Path(path)
    if path.is_dir():
        path = path / "checkpoint.pt"
    if not path.is_file():
        raise ConfigError(f"checkpoint {str(path)!r} not found", module="checkpoint")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # a foreign pickle or a truncated file: say which file
        raise ConfigError(
            f"checkpoint {str(path)!r} cannot be read: {load_error_summary(exc)}", module="checkpoint"
        ) from None
    if not isinstance(state, dict) or state.get("version") != CHECKPOINT_VERSION:
        raise ConfigError(
            f"{str(path)!r} is not a prunekit checkpoint of version {CHECKPOINT_VERSION}", module="checkpoint"
        )
    return state
