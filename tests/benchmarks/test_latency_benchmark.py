"""benchmarks/latency.py: the goal verdicts and the results table (no timing)."""

import latency as bench


def row(**kw):
    base = {"model": "resnet50", "backend": "onnxruntime", "batch": 1, "variant": "x", "round_to": 8, "macs": 2e9,
            "original_ms": 40.0, "pruned_ms": 21.0, "latency_ratio": 21 / 40, "speedup": 40 / 21,
            "mac_reduction": 2.0, "speedup_per_mac_reduction": 40 / 21 / 2}  # fmt: skip
    base.update(kw)
    return base


def test_verdicts():
    assert bench.verdict(row()) == "yes (>= 0.9)"
    assert bench.verdict(row(speedup_per_mac_reduction=0.8)) == "NO (>= 0.9)"
    assert bench.verdict(row(backend="torch", speedup_per_mac_reduction=0.86)) == "yes (>= 0.85)"
    mobile = row(model="mobilenet_v2", variant="target_latency=0.5 at batch 32", batch=32, latency_ratio=0.54)
    assert bench.verdict(mobile) == "yes"
    assert bench.verdict({**mobile, "latency_ratio": 0.6}) == "NO"
    assert bench.verdict({**mobile, "batch": 1, "latency_ratio": 1.1}) == "NO (slower)"


def test_render_lists_every_row():
    meta = {"command": "python benchmarks/latency.py", "platform": "Linux", "cpu_count": 2, "threads": 1,
            "torch": "2", "rounds": 3, "min_run_time": 0.5, "loadavg_1min_before": 1.0, "loadavg_1min_after": 1.5}  # fmt: skip
    text = bench.render(meta, [row(), row(backend="torch")])
    assert text.count("| resnet50 |") == 2 and "load average (1 min) 1.0 before, 1.5 after" in text
