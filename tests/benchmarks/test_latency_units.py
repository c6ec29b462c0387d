"""benchmarks/latency_units.py: the results table (no pruning, no timing)."""

import latency_units as bench


def test_render_lists_every_row():
    meta = {"command": "python benchmarks/latency_units.py", "platform": "Linux", "cpu_count": 2, "threads": 1,
            "torch": "2", "rounds": 7, "loadavg_1min_before": 1.0, "loadavg_1min_after": 1.2}  # fmt: skip
    rows = [
        {
            "model": "resnet56",
            "backend": "onnxruntime",
            "factor": f,
            "table": t,
            "round_to": rt,
            "mac_reduction": float(f),
            "original_ms": 2.5,
            "pruned_ms": 1.5,
            "speedup_per_mac_reduction": 0.8,
        }  # fmt: skip
        for f in (2, 3)
        for t in bench.TABLES
        for rt in (1, 4)
    ]
    text = bench.render(meta, rows)
    assert text.count("| resnet56 | onnxruntime |") == 8 and "| conv alone | 4 |" in text
    assert "7 interleaved rounds" in text and "load average (1 min) 1.0 before, 1.2 after" in text
