"""benchmarks/allocation_proxy.py: the rank correlation and the table (no training)."""

import allocation_proxy as bench
import pytest


def test_spearman_of_orders():
    assert bench.spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert bench.spearman([1, 2, 3, 4], [40, 30, 20, 10]) == pytest.approx(-1.0)


def test_render_gives_each_score_setting_its_correlation():
    meta = {"command": "python benchmarks/allocation_proxy.py", "platform": "Linux", "cpu_count": 2, "torch": "2",
            "seed": 0, "baseline_top1": 0.89, "batches": 16, "finetune_epochs": 3, "finetune_lr": 0.01,
            "wall_s": 60}  # fmt: skip
    rows = [
        {"cut": name, "macs_kept": 0.25, "finetuned_top1": top1, "scores": {"16/1": {"loss": loss, "top1": 0.8}}}
        for name, top1, loss in [("a", 0.87, 0.5), ("b", 0.86, 0.6), ("c", 0.85, 0.7)]
    ]
    text = bench.render(meta, rows)
    assert "| a | 25.0% | 87.00% | 0.500 / 80.0% |" in text
    assert "| 16/1 | +1.00 |" in text
