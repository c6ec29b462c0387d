"""What a run leaves behind: the saved models, the resolved config and the report (rank 0).

``out/model/`` is the final model (:func:`prunekit.save`: weights plus the composed cut, loadable
with :func:`prunekit.load`), ``out/original/`` the model before the prune phase (the teacher of a
later ``prunekit finetune --distill``), ``out/config.json`` the resolved configuration, and
``out/report/`` the report of :func:`prunekit.reporting.write_report`.
"""

from __future__ import annotations

import copy
import json
import logging
from pathlib import Path
from typing import Any

import torch.nn as nn

from prunekit.fileio import write_text
from prunekit.report import PruneReport
from prunekit.serialization import save as save_model

__all__ = ["write_outputs", "cut_reports", "write_prune_report"]

log = logging.getLogger("prunekit.pipeline")


def cut_reports(runner: Any) -> list[PruneReport]:
    """The cuts the final model went through, oldest first, as reports :func:`prunekit.save`
    composes: the saved source's cut, then one per physical decision of the run (a masked
    recipe's ``finalize`` cut included, which comes with no report of its own)."""
    own = [
        PruneReport(kept=d.module_keep, kept_params={t: dict(dims) for t, dims in d.param_keep.items()})
        for _, d in runner.decisions
        if d.kind == "physical"
    ]
    return runner.source.base_reports() + own


def _cpu(model: nn.Module) -> nn.Module:
    return copy.deepcopy(model).cpu().eval()


def write_prune_report(
    runner: Any, out: Path, *, config: dict[str, Any] | None, latency: bool = True
) -> dict[str, Path]:
    """Calls :func:`prunekit.reporting.write_report` for a run that pruned (latency included)."""
    from prunekit.reporting import write_report

    return write_report(
        out / "report",
        model_before=_cpu(runner.original if runner.original is not None else runner.teacher),
        model_after=_cpu(runner.model),
        example_inputs=runner.example.cpu(),
        prune_reports=runner.reports,
        metrics=runner.metrics,
        history_csv=out / "history.csv",
        config=config,
        latency=latency,
    )


def write_outputs(
    runner: Any, out: Path, *, config: dict[str, Any] | None, save: bool, report: bool, latency: bool = True
) -> dict[str, Path]:
    """Writes the files described in the module docstring; returns ``{kind: path}``."""
    files: dict[str, Path] = {"history": out / "history.csv", "checkpoint": out / "checkpoint.pt"}
    src = runner.source
    if config is not None:
        files["config"] = write_text(out / "config.json", json.dumps(config, indent=1, default=str) + "\n")
    if save:
        # input_shape lets `prunekit report` and `prunekit export` rebuild an example input
        extra = {"config": config, "metrics": runner.metrics, "input_shape": list(runner.example.shape)}
        save_model(
            _cpu(runner.model), out / "model", reports=cut_reports(runner), builder=src.spec,
            builder_kwargs=src.builder_kwargs, extra=json.loads(json.dumps(extra, default=str)),
        )  # fmt: skip
        files["model"] = out / "model"
        if runner.original is not None:
            save_model(
                _cpu(runner.original), out / "original", reports=src.base_reports(), builder=src.spec,
                builder_kwargs=src.builder_kwargs,
            )  # fmt: skip
            files["original"] = out / "original"
    if report and (runner.original is not None or runner.teacher is not None):
        for kind, path in write_prune_report(runner, out, config=config, latency=latency).items():
            files[f"report_{kind}"] = path
    log.info("outputs written to %s", out)
    return files
