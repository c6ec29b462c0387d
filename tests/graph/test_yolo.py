"""Ultralytics YOLOv8n and YOLO11n, built from their yaml (no weights): prune to about half the
MACs with no change to ultralytics' classes, stay equivalent on the head's raw outputs, train a
step with ultralytics' own loss, and export to ONNX."""

from __future__ import annotations

import copy
import io

import pytest
import torch

import prunekit

ultralytics = pytest.importorskip("ultralytics")


@pytest.mark.parametrize("cfg", ["yolov8n.yaml", "yolo11n.yaml"])
def test_yolo_prunes_trains_and_exports(cfg):
    from ultralytics.cfg import get_cfg
    from ultralytics.utils import DEFAULT_CFG

    torch.manual_seed(0)
    model = ultralytics.YOLO(cfg, verbose=False).model.eval()
    x = torch.rand(1, 3, 160, 160)
    original = copy.deepcopy(model)
    report = prunekit.prune_(model, x, target_macs=0.5, exact_only=True)
    assert 0.4 < report.macs_ratio <= 0.5
    assert prunekit.check_equivalence(original, model, x, report).ok
    detect = type(model.model[-1]).__name__
    graph = prunekit.DependencyGraph(original, x)
    head = f"model.{len(original.model) - 1}"
    outputs = [g for g in graph.groups if any(m.module.startswith(head) and m.role == "out" for m in g.members)]
    assert detect == "Detect" and any(not g.prunable for g in outputs)  # box/class outputs stay
    model.args = get_cfg(DEFAULT_CFG)  # ultralytics' hyper-parameters, as its trainer sets them
    model.train()
    batch = {
        "img": torch.rand(2, 3, 160, 160),
        "batch_idx": torch.tensor([0.0, 1.0]),
        "cls": torch.tensor([[1.0], [2.0]]),
        "bboxes": torch.tensor([[0.5, 0.5, 0.2, 0.2], [0.3, 0.3, 0.1, 0.2]]),
    }
    loss, _ = model.loss(batch)
    loss.sum().backward()
    assert torch.isfinite(loss).all()
    model.eval()
    buf = io.BytesIO()
    torch.onnx.export(model, (x,), buf, dynamo=False, opset_version=17)
    assert len(buf.getvalue()) > 1_000_000
