"""benchmarks/latency_accuracy_curve.py: interpolation on uniform L1's curve and the table (no training, no timing)."""

import latency_accuracy_curve as bench
import pytest

WIDTHS = {"conv1": 8, "layer2.0.conv2": 16, "layer3.0.conv2": 32, **{f"layer{s}.{b}.conv1": 8 * s for s in (1, 2, 3) for b in range(3)}}  # fmt: skip


def test_uniform_top1_is_interpolated_between_the_cuts_around_a_latency():
    curve = [(0.75, 0.88), (0.45, 0.87), (0.40, 0.86)]
    assert bench.interpolate(curve, 0.45) == pytest.approx(0.87)
    assert bench.interpolate(curve, 0.60) == pytest.approx(0.875)
    assert bench.interpolate(curve, 0.30) is None and bench.interpolate(curve, 0.80) is None


def test_render_compares_each_method_with_the_curve():
    meta = {"command": "python benchmarks/latency_accuracy_curve.py", "platform": "Linux", "cpu_count": 2,
            "threads": 1, "torch": "2", "loadavg_before": 0.5, "loadavg_after": 1.0, "epochs": 10,
            "sparsities": [0.4, 0.5], "target_from": 0.5, "target_rounds": 7, "backend": "torch", "batch": 32,
            "finetune_epochs": 3, "finetune_lr": 0.01, "rounds": 9, "methods": ["latency-aware"]}  # fmt: skip
    base = {"widths": WIDTHS, "macs_ratio": 0.25}
    rows = [
        {**base, "seed": 0, "method": "uniform L1 0.5", "sparsity": 0.5, "latency_ratio": 0.46, "top1": 0.87},
        {**base, "seed": 0, "method": "latency-aware", "latency_ratio": 0.5, "top1": 0.88, "allocation_search": None,
         "uniform_top1_at_latency": 0.872, "difference": 0.008},
        {**base, "seed": 1, "method": "latency-aware", "latency_ratio": 0.3, "top1": 0.85,
         "allocation_search": {"kept": "uniform"}, "uniform_top1_at_latency": None, "difference": None},
    ]  # fmt: skip
    text = bench.render(meta, rows)
    assert "| 0 | latency-aware | 25.0% | 0.500 | 88.00% | 87.20% | +0.80% | - | stream 8/16/32;" in text
    assert "| 1 | latency-aware | 25.0% | 0.300 | 85.00% | outside | - | uniform |" in text
    assert "| latency-aware | 1 | +0.80% (+0.80%) | 1 of 1 |" in text


def test_a_method_whose_cut_is_a_uniform_cut_is_recognised_by_its_weights():
    import torch

    cut = {"conv.weight": torch.ones(8, 1, 3, 3), "bn.running_mean": torch.zeros(8)}
    cuts = {"uniform L1 0.4": {"conv.weight": torch.ones(10, 1, 3, 3), "bn.running_mean": torch.zeros(10)},
            "uniform L1 0.5": {k: v.clone() for k, v in cut.items()}}  # fmt: skip
    assert bench.same_cut(cut, cuts) == "uniform L1 0.5"
    other = {**cut, "conv.weight": cut["conv.weight"] * 2}  # same widths, other channels kept
    assert bench.same_cut(other, cuts) is None
    assert bench.same_cut({"conv.weight": cut["conv.weight"]}, cuts) is None


def test_render_names_the_uniform_cut_a_method_kept():
    meta = {"command": "c", "platform": "Linux", "cpu_count": 2, "threads": 1, "torch": "2", "loadavg_before": 0.5,
            "epochs": 10, "sparsities": [0.5], "target_from": 0.5, "target_rounds": 7, "backend": "torch",
            "batch": 32, "finetune_epochs": 3, "finetune_lr": 0.01, "rounds": 9,
            "methods": ["latency-aware, searched"]}  # fmt: skip
    row = {"widths": WIDTHS, "macs_ratio": 0.25, "seed": 0, "method": "latency-aware, searched", "latency_ratio": 0.46,
           "top1": 0.87, "allocation_search": {"kept": "uniform"}, "same_as": "uniform L1 0.5",
           "uniform_top1_at_latency": 0.87, "difference": 0.0}  # fmt: skip
    text = bench.render(meta, [row])
    assert "| +0.00% | uniform (the uniform L1 0.5 model itself) |" in text
    assert "| latency-aware, searched | 1 | +0.00% (+0.00%) | 1 of 1 |" in text


def test_header_says_where_the_target_came_from():
    meta = {"target_from": 0.5, "target_rounds": 7}
    assert bench.target_words(meta) == "target_latency = the 0.5 cut's ratio timed in 7 pairs"
    assert bench.target_words({**meta, "target_latency": 0.5}) == "target_latency=0.5 as given"
