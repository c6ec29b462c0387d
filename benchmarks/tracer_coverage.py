"""Tracer coverage: the models issue 11 named, traced, pruned and equivalence-checked.

For each model: which backend traced it, how many groups are prunable, whether ``prune_`` at 20 %
sparsity (exact groups only, so the equivalence check applies) succeeds, the parameter count
before and after, and whether the pruned model matches the zeroed-channel original. Models are
built without weights (timm ``pretrained=False``, ultralytics from its yaml, torchvision
``weights=None``).

Run: ``OMP_NUM_THREADS=1 python benchmarks/tracer_coverage.py`` (writes
``benchmarks/results/tracer_coverage.{json,md}``).
"""

from __future__ import annotations

import copy
import json
import os
import sys
import time
import warnings
from collections.abc import Callable

import torch
import torch.nn as nn

import prunekit

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import machine_meta, write_atomic  # noqa: E402


def _timm(name: str) -> Callable[[], tuple[nn.Module, torch.Tensor]]:
    def build() -> tuple[nn.Module, torch.Tensor]:
        import timm

        model = timm.create_model(name, pretrained=False).eval()
        return model, torch.randn(1, *model.default_cfg.get("input_size", (3, 224, 224)))

    return build


def _yolo() -> tuple[nn.Module, torch.Tensor]:
    import ultralytics

    return ultralytics.YOLO("yolov8n.yaml").model.eval(), torch.randn(1, 3, 64, 64)


def _r3d() -> tuple[nn.Module, torch.Tensor]:
    import torchvision

    return torchvision.models.video.r3d_18(weights=None).eval(), torch.randn(1, 3, 4, 32, 32)


MODELS: list[tuple[str, Callable[[], tuple[nn.Module, torch.Tensor]], str]] = [
    *((n, _timm(n), "auto") for n in ("cait_s24_224", "pit_s_224", "halonet26t", "davit_tiny", "pvt_v2_b0")),
    ("edgenext_small", _timm("edgenext_small"), "auto"),
    ("yolov8n", _yolo, "auto"),
    ("yolov8n", _yolo, "record"),
    ("r3d_18", _r3d, "auto"),
]


def run_one(name: str, build: Callable[[], tuple[nn.Module, torch.Tensor]], tracer: str) -> dict:
    row: dict = {"model": name, "tracer": tracer}
    start = time.perf_counter()
    try:
        model, x = build()
        graph = prunekit.DependencyGraph(model, x, tracer=tracer)
        row.update(backend=graph.backend, groups=len(graph.groups), prunable=len(graph.prunable_groups))
        original = copy.deepcopy(model)
        report = prunekit.prune_(model, x, sparsity=0.2, exact_only=True, tracer=tracer)
        row.update(
            params_before=sum(p.numel() for p in original.parameters()),
            params_after=sum(p.numel() for p in model.parameters()),
            equivalent=bool(prunekit.check_equivalence(original, model, x, report).ok),
            result="ok",
        )
    except Exception as exc:  # a benchmark row records the failure and goes on
        row.update(result=f"{type(exc).__module__}.{type(exc).__name__}: {str(exc)[:300]}")
    row["seconds"] = round(time.perf_counter() - start, 1)
    return row


def main() -> None:
    warnings.filterwarnings("ignore")
    rows = [run_one(*m) for m in MODELS]
    write_atomic(
        "benchmarks/results/tracer_coverage.json", json.dumps({"meta": machine_meta(), "rows": rows}, indent=2)
    )
    cols = [
        "model",
        "tracer",
        "backend",
        "groups",
        "prunable",
        "params_before",
        "params_after",
        "equivalent",
        "seconds",
        "result",
    ]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(str(r.get(c, "")) for c in cols) + " |" for r in rows]
    write_atomic("benchmarks/results/tracer_coverage.md", "# Tracer coverage\n\n" + "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
