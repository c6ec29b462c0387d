"""benchmarks/latency_table_accuracy.py: the summary and the results table (no timing)."""

import math

import latency_table_accuracy as bench
import pytest

from prunekit.latency import LatencyTable, LayerSpec, Meter
from tests.latency import fakes


def test_summary_of_log_errors():
    s = bench.summary([math.log(1.1), math.log(0.8), 0.0, math.log(1.02)])
    assert s["n"] == 4 and s["max_abs"] == pytest.approx(-math.log(0.8))
    assert s["median_abs"] == pytest.approx((math.log(1.02) + math.log(1.1)) / 2)
    assert s["mean"] < 0  # the 0.8 weighs most: predicted too fast on average


def test_separable_is_the_row_and_column_product(tmp_path, monkeypatch):
    monkeypatch.setenv("PRUNEKIT_CACHE_DIR", str(tmp_path))
    table = LatencyTable(Meter(fakes.register_not_separable()), persist=False)
    spec = LayerSpec("conv2d", 32, 64, (3, 3), (1, 1), (1, 1), (1, 1), 1, (8, 8), False)
    # 20 x 40: both widths off multiples of 16, the slow kernel; the product counts it twice
    assert bench.separable(table, spec, 20, 40) == pytest.approx(20 * 40 * 4e-9, rel=1e-6)


def test_render_lists_every_method():
    meta = {"command": "python benchmarks/latency_table_accuracy.py", "platform": "Linux", "cpu_count": 2,
            "threads": 1, "torch": "2", "points": 4, "min_run_time": 0.1, "loadavg_1min_before": 0.5,
            "loadavg_1min_after": 0.7, "onnxruntime": "1.2"}  # fmt: skip
    stats = {"n": 4, "median_abs": 0.02, "p90_abs": 0.2, "max_abs": 0.5, "mean": -0.1}
    row = {"model": "resnet50", "backend": "torch", "round_to": 16, "layers": 20,
           "timings": {"bilinear": 300, "separable": 250}, **{m: stats for m in bench.METHODS}}  # fmt: skip
    text = bench.render({"meta": meta, "results": [row]})
    assert text.count("| resnet50 | torch | 16 | 20 |") == 3
    assert "| bilinear | 2% | 22% | 65% | -10% | 300 |" in text and "| repeat |" in text and "onnxruntime 1.2" in text
