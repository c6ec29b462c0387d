"""benchmarks/latency_accuracy.py: the results table and its summary (no training, no timing)."""

import latency_accuracy as bench

WIDTHS = {"conv1": 8, "layer2.0.conv2": 16, "layer3.0.conv2": 64, **{f"layer{s}.{b}.conv1": 4 * s for s in (1, 2, 3) for b in range(3)}}  # fmt: skip


def row(seed, method, top1, ratio=0.5):
    return {"seed": seed, "method": method, "round_to": 1, "macs_ratio": 0.3, "search_latency_ratio": ratio,
            "latency_ratio": ratio, "baseline_top1": 0.9, "after_prune_top1": 0.5, "after_finetune_top1": top1,
            "loadavg_1min": 1.0, "widths": WIDTHS}  # fmt: skip


def test_width_summary_names_stream_and_inner_widths():
    assert bench.width_summary(WIDTHS) == "stream 8/16/64; inner 4,4,4 \\| 8,8,8 \\| 12,12,12"
    assert bench.width_summary({}) == "-"


def test_render_gives_per_seed_differences_to_uniform():
    meta = {"command": "python benchmarks/latency_accuracy.py", "platform": "Linux", "cpu_count": 2, "threads": 1,
            "torch": "2", "loadavg_1min_before": 0.5, "loadavg_1min_after": 1.0, "dataset": "fmnist", "epochs": 10,
            "target": 0.5, "backend": "torch", "batch": 32, "finetune_epochs": 3, "finetune_lr": 0.01, "rounds": 3,
            "methods": ["uniform L1", "latency-aware"]}  # fmt: skip
    rows = [row(0, "uniform L1", 0.80), row(0, "latency-aware", 0.81), row(1, "uniform L1", 0.82),
            row(1, "latency-aware", 0.815)]  # fmt: skip
    text = bench.render(meta, rows)
    assert text.count("| latency-aware |") == 3 and "Inconclusive" not in text
    assert "| latency-aware | 2 | 81.25% | +0.25% (+1.00%, -0.50%) | 0.50 |" in text
