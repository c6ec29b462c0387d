"""``write_report``: every figure of a prune run in ``report.json``, ``report.md`` and PNG plots."""

from __future__ import annotations

import dataclasses
import datetime
import importlib.metadata
import json
import logging
import os
import platform
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from prunekit.batching import as_inputs, with_batch
from prunekit.errors import ConfigError
from prunekit.fileio import write_text
from prunekit.metrics import count_macs, count_params
from prunekit.report import PruneReport, latency_summary
from prunekit.reporting.history import accuracy_points, read_history
from prunekit.reporting.markdown import render_markdown
from prunekit.reporting.tables import compare_layers

__all__ = ["write_report", "versions", "REPORT_VERSION"]

log = logging.getLogger(__name__)

REPORT_VERSION = 1
ACCURACY_KEYS = ("before", "after_prune", "after_finetune")


def versions() -> dict[str, str]:
    """Versions of Python, torch, torchvision, prunekit and the platform, for the record."""
    import torchvision

    return {
        "prunekit": importlib.metadata.version("prunekit"),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_count": str(os.cpu_count()),
    }


def _plain(config: Any) -> Any:
    """A resolved config (dataclass, mapping or anything with ``to_dict``) as JSON-ready data."""
    if config is None:
        return None
    if dataclasses.is_dataclass(config) and not isinstance(config, type):
        return dataclasses.asdict(config)
    if hasattr(config, "to_dict"):
        return config.to_dict()
    return json.loads(json.dumps(config, default=str))


def _sparsity_summary(rows: list, reports: Sequence[PruneReport]) -> dict[str, Any]:
    """Overall requested vs realised: channels (compose ``1 - prod(1 - s_i)``) and cost targets."""
    layers = [r for r in rows if r.out_before and "Norm" not in r.kind]
    out_b, out_a = sum(r.out_before for r in layers), sum(r.out_after or 0 for r in layers)
    keep = 1.0
    for r in reports:
        keep *= 1.0 - float(r.config.get("sparsity") or 0.0)
    summary: dict[str, Any] = {
        "channels_requested": 1.0 - keep if reports else None,
        "channels_realised": 1.0 - out_a / out_b if out_b else None,
    }
    for key in ("target_macs", "target_params", "target_latency"):
        # each step's target is a fraction of the model it was given: they compose as a product,
        # which is the overall request only when every step had one (else see "prune_steps")
        if reports and all(r.config.get(key) is not None for r in reports):
            ratio = 1.0
            for r in reports:
                ratio *= float(r.config[key])
            summary[key] = ratio
    if "target_latency" in summary and all(r.config.get("realised") is not None for r in reports):
        summary["target_latency_realised"] = float(np.prod([float(r.config["realised"]) for r in reports]))
    return summary


def write_report(
    out_dir: str | os.PathLike,
    *,
    model_before: nn.Module,
    model_after: nn.Module,
    example_inputs: torch.Tensor | Sequence[torch.Tensor],
    prune_reports: PruneReport | Sequence[PruneReport] = (),
    metrics: Mapping[str, Any] | None = None,
    history_csv: str | os.PathLike | None = None,
    config: Any = None,
    latency: bool = True,
    latency_batch: int = 32,
    latency_min_run_time: float = 0.5,
) -> dict[str, Path]:
    """Writes the report of a prune run to ``out_dir`` and returns ``{kind: path}`` of the files.

    Files: ``report.json`` (every figure, the versions and the resolved config), ``report.md``
    (a summary table and the per-layer table), and the PNG plots ``channels.png``,
    ``training_curves.png`` (with ``history_csv``) and ``accuracy_vs_macs.png`` (with accuracies in
    ``metrics`` or the CSV). Plots are skipped with a warning when matplotlib is not installed.

    Args:
        model_before: the model before pruning (any weights: only its shapes are compared, and
            timed when ``latency``).
        model_after: the pruned model; its module names are those of ``model_before``.
        example_inputs: a batch of inputs; MACs are counted per sample (the first one).
        prune_reports: the report of each prune step, in order: they add the requested sparsity.
        metrics: e.g. ``{"accuracy": {"before": .., "after_prune": .., "after_finetune": ..},
            "loss": {...}, "macs": {...}, "params": {...}}``; kept whole in ``report.json``.
        history_csv: the pipeline's CSV log (``epoch, phase, lr, train_loss, ..., val_top1``).
        config: the resolved config (dataclass or mapping), stored as is.
        latency: measure CPU latency before/after at batch 1 and ``latency_batch``
            (``torch.utils.benchmark``, 1 thread, ``latency_min_run_time`` seconds each), with
            the speed-up as a fraction of the MAC reduction; a warning is issued (and written
            in ``report.md``) when that fraction is under 0.5 or the model got slower.

    Raises:
        ConfigError: ``out_dir`` is a file, ``history_csv`` does not exist, the two models do not
            have the same layers, or a latency option is out of range.
    """
    out = Path(out_dir)
    _check_options(out, latency_batch, latency_min_run_time)
    reports = [prune_reports] if isinstance(prune_reports, PruneReport) else list(prune_reports)
    inputs = as_inputs(example_inputs)
    history = read_history(history_csv) if history_csv is not None else None
    rows = compare_layers(model_before, model_after, inputs, prune_reports=reports)
    one = with_batch(inputs, 1)
    macs_before, macs_after = count_macs(model_before, one), count_macs(model_after, one)
    params_before, params_after = count_params(model_before), count_params(model_after)
    accuracy = {k: v for k, v in dict((metrics or {}).get("accuracy") or {}).items() if k in ACCURACY_KEYS}
    timing = _latency(model_before, model_after, inputs, latency_batch, latency_min_run_time) if latency else None
    if timing is not None:
        _speedup_vs_macs(timing, macs_before, macs_after)
    data: dict[str, Any] = {
        "format": "prunekit-report",
        "version": REPORT_VERSION,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "summary": _summary(params_before, params_after, macs_before, macs_after, inputs),
        "sparsity": _sparsity_summary(rows, reports),
        "accuracy": accuracy,
        "latency": timing,
        "layers": [r.to_dict() for r in rows],
        "prune_steps": [
            {k: v for k, v in r.to_dict().items() if k not in ("kept", "kept_params", "layers")} for r in reports
        ],
        "metrics": _plain(metrics),
        "history": {"file": str(history_csv), "rows": max(map(len, history.values()), default=0)} if history else None,
        "versions": versions(),
        "config": _plain(config),
    }
    files = _write_plots(
        out, rows, history, accuracy_points(metrics, history, macs_before=macs_before, macs_after=macs_after)
    )
    data["files"] = {k: p.name for k, p in files.items()}
    files["markdown"] = write_text(out / "report.md", render_markdown(data, rows))
    data["files"]["markdown"] = "report.md"
    files["json"] = write_text(out / "report.json", json.dumps(data, indent=1, default=str) + "\n")
    log.info("report written to %s", out)
    return files


def _summary(params_before: int, params_after: int, macs_before: int, macs_after: int, inputs: Any) -> dict:
    return {
        "params_before": params_before,
        "params_after": params_after,
        "params_ratio": params_after / max(params_before, 1),
        "macs_before": macs_before,
        "macs_after": macs_after,
        "macs_ratio": macs_after / max(macs_before, 1),
        "input_shape": [list(x.shape[1:]) for x in inputs],
    }


def _latency(before: nn.Module, after: nn.Module, inputs: Any, batch: int, min_run_time: float) -> Any:
    from prunekit.latency import compare_latency  # torch.utils.benchmark: only when timing

    return compare_latency(before, after, inputs, batch_sizes=(1, batch), min_run_time=min_run_time)


def _speedup_vs_macs(timing: dict[str, Any], macs_before: int, macs_after: int) -> None:
    """Adds the MAC reduction, the speed-up per MAC reduction and a warning to each batch of
    ``timing`` (warned now, and listed in ``report.md``)."""
    for batch, t in timing["batches"].items():
        summary = latency_summary(
            t["before_ms"] / 1e3, t["after_ms"] / 1e3, macs_before, macs_after,
            backend=timing.get("backend", "torch"), batch=int(batch),
        )  # fmt: skip
        t.update({k: summary[k] for k in ("mac_reduction", "speedup_per_mac_reduction", "warning")})
        if t["warning"]:
            warnings.warn(t["warning"], stacklevel=3)


def _check_options(out: Path, latency_batch: object, latency_min_run_time: float) -> None:
    if out.exists() and not out.is_dir():
        raise ConfigError(f"out_dir {str(out)!r} is a file: give a folder for the report", module="out_dir")
    if isinstance(latency_batch, bool) or not isinstance(latency_batch, int) or latency_batch < 1:
        raise ConfigError(f"latency_batch must be an int >= 1, but got {latency_batch!r}", module="latency_batch")
    if not latency_min_run_time > 0:
        raise ConfigError(
            f"latency_min_run_time must be > 0 seconds, but got {latency_min_run_time!r}", module="latency_min_run_time"
        )


def _write_plots(out: Path, rows: list, history: Mapping[str, list] | None, points: list) -> dict[str, Path]:
    from prunekit.reporting import plots

    if not plots.have_matplotlib():
        warnings.warn(
            "matplotlib is not installed: report written without plots (pip install 'prunekit[report]')", stacklevel=3
        )
        return {}
    written = {
        "channels": plots.plot_channels(rows, out / "channels.png"),
        "training_curves": plots.plot_history(history, out / "training_curves.png") if history else None,
        "accuracy_vs_macs": plots.plot_accuracy_vs_macs(points, out / "accuracy_vs_macs.png"),
    }
    return {k: p for k, p in written.items() if p is not None}
