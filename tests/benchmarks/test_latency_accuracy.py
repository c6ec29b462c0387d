"""benchmarks/latency_accuracy.py: the results table and its summary (no training, no timing)."""

import latency_accuracy as bench
import pytest

WIDTHS = {"conv1": 8, "layer2.0.conv2": 16, "layer3.0.conv2": 64, **{f"layer{s}.{b}.conv1": 4 * s for s in (1, 2, 3) for b in range(3)}}  # fmt: skip


def row(seed, method, top1, ratio=0.5):
    return {"seed": seed, "method": method, "round_to": 1, "macs_ratio": 0.3, "search_latency_ratio": ratio,
            "latency_ratio": ratio, "baseline_top1": 0.9, "after_prune_top1": 0.5, "after_finetune_top1": top1,
            "loadavg_1min": 1.0, "widths": WIDTHS, "target_latency": 0.5, "zeroed_original_top1": 0.1}  # fmt: skip


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


def test_equal_latency_protocol_prunes_uniform_first_and_needs_it():
    assert bench.method_order(["latency-aware", "uniform L1"], "equal-latency") == ["uniform L1", "latency-aware"]
    assert bench.method_order(["latency-aware"], "same-target") == ["latency-aware"]
    with pytest.raises(SystemExit, match="uniform L1"):
        bench.method_order(["latency-aware"], "equal-latency")


def test_render_states_the_protocol_targets_and_zeroed_original():
    meta = {"command": "python benchmarks/latency_accuracy.py", "platform": "Linux", "cpu_count": 2, "threads": 1,
            "torch": "2", "loadavg_1min_before": 0.5, "loadavg_1min_after": 1.0, "dataset": "fmnist", "epochs": 10,
            "target": 0.5, "backend": "torch", "batch": 32, "finetune_epochs": 3, "finetune_lr": 0.01, "rounds": 3,
            "methods": ["uniform L1", "latency-aware"], "protocol": "equal-latency", "test_images": 10000}  # fmt: skip
    rows = [{**row(0, "uniform L1", 0.80, ratio=0.44), "target_latency": 0.5, "zeroed_original_top1": 0.1},
            {**row(0, "latency-aware", 0.79, ratio=0.43), "target_latency": 0.44, "zeroed_original_top1": 0.1}]  # fmt: skip
    text = bench.render(meta, rows)
    assert "Protocol: equal measured latency" in text and "10k test images" in text
    # the row says where its target came from and whether it ran at or under uniform L1's latency
    assert (
        "| 0 | latency-aware | 1 | 0.440 (-) | 30.0% | 0.430 | 0.430 | yes | 90.00% | 50.00% | 10.00% | 79.00% | -1.00% |"
        in text
    )
    assert "| latency-aware | 1 | 79.00% | -1.00% (-1.00%) | 0.43 | 0 of 1 | 1 of 1 | 0 of 1 | 0.43 (0.43) |" in text
    # how the equal-latency target was timed: uniform L1 against the original in interleaved pairs
    timed = {"ratio": 0.44, "rounds": 2, "original_ms": 10.0, "pruned_ms": 4.4, "pair_ratios": [0.43, 0.45]}
    text = bench.render(meta, [{**rows[0], "equal_latency_target": timed}, rows[1]])
    assert "| 0 | 0.440 | 2 | 10.00 | 4.40 | 0.440 | 0.430, 0.450 | 0.440 |" in text


def test_at_or_under_reads_the_direct_timing_against_uniform_when_there_is_one():
    uniform = row(0, "uniform L1", 0.8, ratio=0.45)
    timed = {**row(0, "latency-aware", 0.8, ratio=0.47), "vs_uniform": {"ratio": 1.015, "control": 0.99, "rounds": 9}}
    assert bench.at_or_under(timed, uniform)  # within TOLERANCE of uniform L1, timed against it
    assert not bench.at_or_under({**timed, "vs_uniform": {"ratio": 1.03, "control": 1.0, "rounds": 9}}, uniform)
    assert not bench.at_or_under(row(0, "latency-aware", 0.8, ratio=0.47), uniform)  # older runs: the two ratios
