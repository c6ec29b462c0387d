"""benchmarks/latency_estimators.py: the estimate swap and the results table (no timing)."""

import latency_estimators as bench

from prunekit.latency import LatencyTable


def test_prune_with_restores_the_shipped_estimate(monkeypatch):
    seen = []
    monkeypatch.setattr(bench, "timed_prune", lambda *a, **k: (seen.append(LatencyTable.estimate), None, 0.0)[1:])
    shipped = LatencyTable.estimate
    bench.prune_with("separable", None, None)
    assert seen == [bench.separable] and LatencyTable.estimate is shipped


def test_render_lists_every_row():
    meta = {"command": "python benchmarks/latency_estimators.py", "platform": "Linux", "cpu_count": 2, "threads": 1,
            "torch": "2", "rounds": 7, "loadavg_1min_before": 1.0, "loadavg_1min_after": 1.1}  # fmt: skip
    rows = [
        {
            "model": "resnet56",
            "backend": "torch",
            "factor": f,
            "estimate": e,
            "round_to": 4,
            "mac_reduction": 2.0,
            "original_ms": 8.0,
            "pruned_ms": 5.0,
            "speedup_per_mac_reduction": 0.8,
        }
        for f in (2, 3)
        for e in bench.ESTIMATES
    ]
    text = bench.render({"meta": meta, "results": rows})
    assert text.count("| resnet56 | torch |") == 4 and "| 3x | separable | 4 | 2.00x | 8.00 | 5.00 | 0.80 |" in text
    assert "7 interleaved rounds" in text
