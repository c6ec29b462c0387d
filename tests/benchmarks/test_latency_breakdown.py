"""benchmarks/latency_breakdown.py: the leaf clock, the grouping by kind and the table (no timing
is asserted, only what is timed and how it is added up)."""

import latency_breakdown as bench
import torch
import torch.nn as nn

import prunekit


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
        nn.Conv2d(16, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 4),
    ).eval()  # fmt: skip


def test_profile_times_every_leaf_of_a_kind_and_the_rest_closes_the_sum():
    net, x = _net(), torch.randn(1, 3, 8, 8)
    timings = bench.profile({"net": net}, x, iters=2, rounds=2)["net"]
    assert set(timings["leaf_ms"]) == {"0", "1", "2", "3", "4", "5", "6", "8"}  # Flatten is not a kind
    kinds = bench.by_kind(net, timings)
    assert set(kinds) == {"convolution", "batch norm", "activation", "pooling", "linear", bench.REST}
    assert abs(sum(kinds.values()) - timings["forward_ms"]) < 1e-9
    assert not any(m._forward_hooks or m._forward_pre_hooks for m in net.modules())  # hooks removed


def test_conv_rows_compare_each_conv_with_its_own_mac_reduction():
    net, x = _net(), torch.randn(1, 3, 8, 8)
    pruned, _ = prunekit.prune(net, x, sparsity=0.5)
    timed = bench.profile({"a": net, "b": pruned}, x, iters=1, rounds=1)
    macs = [prunekit.metrics.macs_per_module(m, (x,))[1] for m in (net, pruned)]
    rows = {r["layer"]: r for r in bench.conv_rows(net, pruned, timed["a"], timed["b"], *macs)}
    assert rows["0"]["widths_before"] == [3, 16] and rows["0"]["widths_after"] == [3, 8]
    assert rows["3"]["widths_after"] == [8, 8] and abs(rows["3"]["mac_reduction"] - 4.0) < 1e-9
    r = rows["3"]
    assert abs(r["efficiency"] - (r["ms_before"] / r["ms_after"]) / 4.0) < 1e-9


def test_render_lists_each_cut_and_its_worst_convolutions():
    meta = {"command": "python benchmarks/latency_breakdown.py", "platform": "Linux", "cpu_count": 2, "threads": 1,
            "torch": "2", "iters": 10, "rounds": 5, "loadavg_1min_before": 1.0, "loadavg_1min_after": 1.1,
            "wall_minutes": 9.0}  # fmt: skip
    conv = {"layer": "layer1.0.conv2", "widths_before": [64, 64], "widths_after": [48, 48], "ms_before": 2.0,
            "ms_after": 1.5, "mac_reduction": 1.78, "efficiency": 0.75}  # fmt: skip
    row = {"model": "resnet50", "variant": "2x fewer MACs: L1 global, round_to=1", "round_to": 1, "mac_reduction": 2.0,
           "forward_ms": [100.0, 60.0], "kinds_ms": {"convolution": [80.0, 45.0], "batch norm": [10.0, 8.0]},
           "speedup_over_macs": 0.83, "conv_speedup_over_macs": 0.89, "without_norms_over_macs": 0.86,
           "worst_convs": [conv]}  # fmt: skip
    text = bench.render({"meta": meta, "results": [row]})
    assert (
        "| resnet50 | 2x fewer MACs: L1 global, round_to=1 | 1 | 2.00x | 100.0 -> 60.0 | 0.83 | 0.89 | 0.86 |" in text
    )
    assert "batch norm 10.0 -> 8.0 (1.25x)" in text and "| layer1.0.conv2 | 64/64 -> 48/48 |" in text
