"""The comparison script end to end on one small model, its renderers, and the Torch-Pruning recipe."""

import copy
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from _oracle import check_against_zeroed
from compare_torch_pruning import make_observable, summarize
from render import render_benchmarks, render_compare

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "compare_torch_pruning.py"


def test_one_command_writes_json_and_markdown(tmp_path):
    cmd = [sys.executable, str(SCRIPT), "--models", "mobilenet_v3_small", "--runs", "1", "--tools", "prunekit"]
    done = subprocess.run(cmd + ["--threads", "1", "--out", str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "[1/1] mobilenet_v3_small run 1/1 prunekit:" in done.stdout  # progress
    data = json.loads((tmp_path / "compare_torch_pruning.json").read_text())
    (row,) = data["results"]
    assert row["finished"] and row["equivalent"] is True and row["scale"] > 1e-3  # not vacuous
    assert row["cpu_s"] > 0 and row["all_cpu_s"] == [row["cpu_s"]]
    assert 0 < row["macs_ratio"] < 0.6 and row["peak_python_mib"] > 0 and row["conv_layers"] == 52
    assert {"loadavg_1min_before", "loadavg_1min_after", "command", "torch", "runs"} <= set(data["meta"])
    assert "| mobilenet_v3_small | 224 |" in (tmp_path / "compare_torch_pruning.md").read_text()


def _row(model, tool, times, **extra):
    base = {"model": model, "tool": tool, "input": 224, "finished": True, "conv_layers": 10, "time_s": times[0]}
    return [{**base, "peak_rss_growth_mib": 5.0, "time_s": t, **extra} for t in times]


def test_summary_takes_the_median_and_keeps_a_failure():
    ok = summarize(_row("resnet50", "prunekit", [3.0, 1.0, 2.0], equivalent=True))
    assert ok["time_s"] == 2.0 and ok["all_time_s"] == [3.0, 1.0, 2.0] and ok["finished"]
    assert "cpu_s" not in ok  # runs from before the CPU-time column
    runs = [{**r, "cpu_s": c} for r, c in zip(_row("resnet50", "prunekit", [3.0, 1.0, 2.0]), [0.5, 0.7, 0.6])]
    assert summarize(runs)["cpu_s"] == 0.6 and summarize(runs)["all_cpu_s"] == [0.5, 0.7, 0.6]
    failed = summarize([{"model": "swin_t", "tool": "torch-pruning", "finished": False, "error": "boom"}])
    assert not failed["finished"] and failed["error"] == "boom"


def test_render_compare_tables_ratio_and_depth():
    meta = {
        "command": "python x", "platform": "linux", "cpu_count": 2, "threads": 2, "python": "3.11",
        "torch": "2", "torchvision": "0", "prunekit": "0.1", "torch_pruning": "1.6.1", "runs": 3,
        "sparsity": 0.5, "rtol": 1e-4, "loadavg_1min_before": 0.1, "loadavg_1min_after": 2.0, "wall_s": 60.0,
    }  # fmt: skip
    rows = []
    for name, layers, t in (("resnet50", 53, 1.0), ("resnet101", 104, 2.0), ("resnet152", 155, 3.0)):
        for tool, k in (("prunekit", 1), ("torch-pruning", 4)):
            r = summarize(
                _row(name, tool, [t * k], cpu_s=t * k / 2, equivalent=True, max_error=1e-7, scale=1, reason="")
            )
            rows.append({**r, "conv_layers": layers, "macs_ratio": 0.25, "peak_python_mib": 3.0})
    rows.append({"model": "swin_t", "tool": "torch-pruning", "finished": False, "error": "timed out after 300 s"})
    text = render_compare({"meta": meta, "results": rows})
    assert (
        "| resnet50 | 224 | 1.000 | 1.00-1.00 | 4.000 | 4.00-4.00 | 4.00x "
        "| 0.500 / 2.000 | 0.50-0.50 / 2.00-2.00 | 4.00x | 3 / 3 | 5 / 5 |"
    ) in text
    assert "**no**: timed out after 300 s" in text and "removal of 50% of the channels" in text
    assert "prunekit, resnet: resnet101 1.96x layers -> 2.00x time" in text


def test_benchmarks_md_says_not_run_yet_without_results(tmp_path):
    text = render_benchmarks(str(tmp_path))
    assert text.count("Not run yet") == 7
    assert "accuracy_study.py" in text and "compare_torch_pruning.py" in text


def test_torch_pruning_recipe_on_a_tiny_vit():
    pytest.importorskip("torch_pruning")
    from _tp import tp_prune_
    from torchvision.models.vision_transformer import VisionTransformer

    torch.manual_seed(0)
    model = VisionTransformer(image_size=32, patch_size=16, num_layers=1, num_heads=2, hidden_dim=8, mlp_dim=16)
    model = make_observable(model).eval()  # the zero-initialised head would hide every cut
    x = torch.randn(1, 3, 32, 32)
    pruned = copy.deepcopy(model)
    info = tp_prune_(pruned, x, ratio=0.5, num_classes=1000)
    assert info["graph_s"] > 0 and pruned.hidden_dim == 4  # halved, a multiple of num_heads
    res = check_against_zeroed(model, pruned, [x])
    assert res.equivalent is False and res.cross_channel  # pruned through LayerNorms


def test_benchmarks_md_includes_other_results_verbatim_with_the_load_caveat(tmp_path):
    (tmp_path / "latency.md").write_text("# CPU latency\n\n| model | ms |\n|---|---|\n| r50 | 41.6 |\n")
    (tmp_path / "latency.json").write_text(json.dumps({"meta": {"command": "python benchmarks/latency.py"}}))
    (tmp_path / "new_bench.md").write_text("# Something new\n")
    text = render_benchmarks(str(tmp_path))
    assert "## CPU latency\n\n| model | ms |" in text and "| r50 | 41.6 |" in text  # one level down
    assert text.count("does not record the load average") == 1
    assert "## Something new" in text and text.count("Not run yet") == 6
