"""Engine speed: DependencyGraph build and graph + 50% L1 pruning on torchvision models.

Run: ``python benchmarks/engine_speed.py`` (or ``make bench``). Writes
``benchmarks/results/engine_speed.json`` and ``engine_speed.md`` with the command, versions and
machine. Each repeat works on a fresh deep copy; the figure is the median over repeats.
"""

from __future__ import annotations

import argparse
import copy
import gc
import json
import os
import statistics
import sys
import time
import tracemalloc
import warnings

import torch
import torchvision

import prunekit

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import machine_meta, write_atomic  # noqa: E402

TARGETS = {"resnet50": 1.0, "googlenet": 1.0, "mobilenet_v2": 1.0, "densenet201": 2.0, "swin_t": 2.0}
DEFAULT = ["resnet50", "googlenet", "mobilenet_v2", "densenet121", "densenet169", "densenet201", "swin_t"]


def build(name: str) -> torch.nn.Module:
    kwargs = {"aux_logits": False, "init_weights": False} if name == "googlenet" else {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return getattr(torchvision.models, name)(weights=None, **kwargs).eval()


def measure(name: str, repeats: int, size: int) -> dict:
    model = build(name)
    x = torch.randn(1, 3, size, size)
    graph_times, prune_times = [], []
    for _ in range(repeats):
        # Collect the previous repeat's garbage before the clock starts, so that a repeat is not
        # charged for freeing its predecessor's copies. The collector stays on while timing: a
        # user's call pays for its own collections too.
        m = copy.deepcopy(model)
        gc.collect()
        t0 = time.perf_counter()
        graph = prunekit.DependencyGraph(m, x)
        graph_times.append(time.perf_counter() - t0)
        m = copy.deepcopy(model)
        gc.collect()
        t0 = time.perf_counter()
        report = prunekit.prune_(m, x, sparsity=0.5, criterion="l1")
        prune_times.append(time.perf_counter() - t0)
    m = copy.deepcopy(model)
    tracemalloc.start()
    prunekit.prune_(m, x, sparsity=0.5, criterion="l1")
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    convs = sum(isinstance(mod, torch.nn.Conv2d) for mod in model.modules())
    return {
        "model": name,
        "graph_s": statistics.median(graph_times),
        "graph_prune_s": statistics.median(prune_times),
        "all_graph_prune_s": prune_times,
        "peak_python_mib": peak / 2**20,
        "fx_nodes": getattr(graph, "num_nodes", None),
        "groups": len(graph.groups),
        "prunable_groups": len(graph.prunable_groups),
        "conv_layers": convs,
        "macs_ratio": report.macs_ratio,
        "target_s": TARGETS.get(name),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--models", nargs="+", default=DEFAULT)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results"))
    args = ap.parse_args()
    if args.repeats < 1:
        ap.error(f"--repeats must be at least 1, but got {args.repeats}")
    torch.set_num_threads(2)
    os.makedirs(args.out, exist_ok=True)
    load_before = os.getloadavg()[0]
    rows = []
    for name in args.models:
        print(f"[{len(rows) + 1}/{len(args.models)}] {name} ...", flush=True)
        rows.append(measure(name, args.repeats, args.size))
        r = rows[-1]
        print(
            f"    graph {r['graph_s']:.3f} s, graph+prune {r['graph_prune_s']:.3f} s, peak {r['peak_python_mib']:.0f} MiB",
            flush=True,
        )
    meta = {
        **machine_meta(),
        "input": f"1x3x{args.size}x{args.size}",
        "repeats": args.repeats,
        # 1-minute load average before and after: other work on a small shared machine can slow
        # the runs many times over (thread pools wait on threads that are not scheduled). The
        # "after" figure includes this script's own threads (about 2), so only "before" speaks
        # for the neighbours.
        "loadavg_1min_before": load_before,
        "loadavg_1min_after": os.getloadavg()[0],
    }
    write_atomic(
        os.path.join(args.out, "engine_speed.json"), json.dumps({"meta": meta, "results": rows}, indent=2) + "\n"
    )
    lines = [
        "# Engine speed",
        "",
        f"`{meta['command']}` on {meta['platform']} ({meta['cpu_count']} CPUs, {meta['torch_threads']} torch threads), "
        f"Python {meta['python']}, torch {meta['torch']}, torchvision {meta['torchvision']}, input {meta['input']}, "
        f"median of {args.repeats} runs, each on a fresh copy. Graph + prune includes tracing, analysis, L1 scoring, "
        "surgery and the MAC counts before and after (shape-only: no convolution computed). "
        f"1-minute load average {meta['loadavg_1min_before']:.2f} before, {meta['loadavg_1min_after']:.2f} after.",
        "",
        "| model | fx nodes | groups (prunable) | graph build (s) | graph + prune 50% (s) | min-max (s) "
        "| target (s) | met | peak Python mem (MiB) | MACs kept |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        met = "" if r["target_s"] is None else ("yes" if r["graph_prune_s"] < r["target_s"] else "**no**")
        lines.append(
            f"| {r['model']} | {r['fx_nodes']} | {r['groups']} ({r['prunable_groups']}) | {r['graph_s']:.3f} | "
            f"{r['graph_prune_s']:.3f} | {min(r['all_graph_prune_s']):.2f}-{max(r['all_graph_prune_s']):.2f} | "
            f"{r['target_s'] or ''} | {met} | {r['peak_python_mib']:.0f} | {r['macs_ratio']:.1%} |"
        )
    by = {r["model"]: r for r in rows}
    if "densenet121" in by and "densenet201" in by:
        a, b = by["densenet121"], by["densenet201"]
        lines += [
            "",
            f"Growth with depth: densenet121 -> densenet201 has {b['conv_layers'] / a['conv_layers']:.2f}x the conv "
            f"layers and takes {b['graph_prune_s'] / a['graph_prune_s']:.2f}x the time (linear growth would be "
            f"about the same ratio; quadratic would be {(b['conv_layers'] / a['conv_layers']) ** 2:.2f}x).",
        ]
    write_atomic(os.path.join(args.out, "engine_speed.md"), "\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
