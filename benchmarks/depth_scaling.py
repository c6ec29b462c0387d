"""Depth scaling: analysis and pruning time and memory of a generated net, 250 to 2,000 convolutions.

Run::

    python benchmarks/depth_scaling.py [--depths 250 500 1000 2000] [--repeats 3] [--threads 1]

The net (:class:`DeepNet`) repeats two kinds of stage: a residual block (conv-BN-ReLU-conv-BN plus
the identity) and a concat block (two conv branches concatenated, then a 1x1 conv back to the
stage width), so the coupled groups span residual chains and concatenations as in ResNets and
DenseNets. Every stage is four convolutions; ``depth`` counts convolutions (the stem plus whole stages:
250 gives 249). Inputs are 1x16x8x8
so that compute stays negligible and the figures are the engine's own cost.

For each depth, each repeat runs in a fresh subprocess: it times ``DependencyGraph`` alone and
then ``prune_`` (graph + 50% L1 + surgery + report) on a fresh model, and records the peak Python
memory of ``prune_`` (tracemalloc, a separate run) and the growth of the peak RSS. Time and memory
per convolution should stay flat if the engine is linear in depth. Writes
``benchmarks/results/depth_scaling.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import statistics
import subprocess
import sys
import time
import tracemalloc

import torch
import torch.nn as nn

import prunekit

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import machine_meta, rss_mib, write_atomic  # noqa: E402

WIDTH = 16
RESULT_TAG = "RESULT "


def conv_bn(cin: int, cout: int, k: int = 3) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, k, padding=k // 2, bias=False), nn.BatchNorm2d(cout))


class Residual(nn.Module):
    """Two conv-BN on a residual path plus two on the identity side's 1x1 (four convolutions)."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.a, self.b = conv_bn(c, c), conv_bn(c, c)
        self.c, self.d = conv_bn(c, c, 1), conv_bn(c, c, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x + self.b(torch.relu(self.a(x)))
        return y + self.d(torch.relu(self.c(y)))


class Concat(nn.Module):
    """Two branches concatenated, a 1x1 back to the width, and a residual conv (four convolutions)."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.left, self.right = conv_bn(c, c // 2), conv_bn(c, c // 2, 1)
        self.merge, self.out = conv_bn(c, c, 1), conv_bn(c, c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.merge(torch.cat([torch.relu(self.left(x)), torch.relu(self.right(x))], dim=1))
        return x + self.out(torch.relu(y))


class DeepNet(nn.Module):
    """About ``depth`` convolutions: a stem and ``(depth - 1) // 4`` alternating residual and
    concat stages of four."""

    def __init__(self, depth: int, width: int = WIDTH) -> None:
        super().__init__()
        self.stem = conv_bn(3, width)
        stages = [Residual(width) if i % 2 == 0 else Concat(width) for i in range((depth - 1) // 4)]
        self.stages = nn.Sequential(*stages)
        self.head = nn.Linear(width, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.stages(self.stem(x)).mean(dim=(2, 3)))


def build(depth: int) -> DeepNet:
    torch.manual_seed(0)
    return DeepNet(depth).eval()


def worker(depth: int, threads: int) -> dict:
    torch.set_num_threads(threads)
    x = torch.randn(1, 3, 8, 8)
    prunekit.prune_(build(8), x, sparsity=0.5)  # warm-up: imports and one-time initialisation
    row: dict = {"depth": depth}
    model = build(depth)
    row["convs"] = sum(isinstance(m, nn.Conv2d) for m in model.modules())
    gc.collect()
    t0 = time.perf_counter()
    graph = prunekit.DependencyGraph(model, x)
    row["graph_s"] = time.perf_counter() - t0
    row["groups"] = len(graph.groups)
    del graph
    gc.collect()
    rss0 = rss_mib()
    t0 = time.perf_counter()
    report = prunekit.prune_(model, x, sparsity=0.5)
    row["prune_s"] = time.perf_counter() - t0
    row["peak_rss_growth_mib"] = max(0.0, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - rss0)
    row["channels_removed"] = report.channels_removed
    model = build(depth)
    gc.collect()
    tracemalloc.start()
    prunekit.prune_(model, x, sparsity=0.5)
    row["peak_python_mib"] = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    return row


def spawn(depth: int, args: argparse.Namespace) -> dict:
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", str(depth), "--threads", str(args.threads)]
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=args.timeout)
    for line in done.stdout.splitlines():
        if line.startswith(RESULT_TAG):
            return json.loads(line[len(RESULT_TAG) :])
    raise RuntimeError(f"worker for depth {depth} failed: {done.stderr.strip()[-500:]}")


def summarize(runs: list[dict]) -> dict:
    out = dict(runs[0])
    for key in ("graph_s", "prune_s", "peak_rss_growth_mib"):
        values = [r[key] for r in runs]
        out[key] = statistics.median(values)
        out[f"all_{key}"] = values
    out["prune_ms_per_conv"] = 1000 * out["prune_s"] / out["convs"]
    out["graph_ms_per_conv"] = 1000 * out["graph_s"] / out["convs"]
    out["python_kib_per_conv"] = 1024 * out["peak_python_mib"] / out["convs"]
    return out


def render(result: dict) -> str:
    meta = result["meta"]
    lines = [
        "# Depth scaling: analysis and pruning of a generated residual + concat net",
        "",
        f"Command: `{meta['command']}`  ",
        f"torch {meta['torch']}, prunekit {meta['prunekit']}, {meta['threads']} thread(s), "
        f"{meta['cpu_count']} CPUs ({meta['processor']}), load average (1 min) before "
        f"{meta['loadavg_1min_before']:.2f}, after {meta['loadavg_1min_after']:.2f}. "
        f"Median of {meta['repeats']} runs, each in its own process. Input 1x3x8x8, width {WIDTH}.",
        "",
        "| convs | groups | graph (s) | prune_ (s) | prune_ ms/conv | peak Python (MiB) | KiB/conv | peak RSS growth (MiB) | prune_ runs (s) |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]  # fmt: skip
    for r in result["rows"]:
        runs = ", ".join(f"{t:.2f}" for t in r["all_prune_s"])
        lines.append(
            f"| {r['convs']} | {r['groups']} | {r['graph_s']:.2f} | {r['prune_s']:.2f} | "
            f"{r['prune_ms_per_conv']:.2f} | {r['peak_python_mib']:.1f} | {r['python_kib_per_conv']:.1f} | "
            f"{r['peak_rss_growth_mib']:.0f} | {runs} |"
        )
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--depths", nargs="+", type=int, default=[250, 500, 1000, 2000])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--timeout", type=float, default=900.0)
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "results"))
    ap.add_argument("--worker", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        print(RESULT_TAG + json.dumps(worker(args.worker, args.threads)), flush=True)
        return 0
    bad = [d for d in args.depths if d < 5]
    if bad:
        ap.error(f"--depths must be at least 5, but got {bad}")
    load_before = os.getloadavg()[0]
    rows = []
    for depth in args.depths:
        runs = [spawn(depth, args) for _ in range(args.repeats)]
        rows.append(summarize(runs))
        r = rows[-1]
        print(f"depth {depth}: prune_ {r['prune_s']:.2f} s ({r['prune_ms_per_conv']:.2f} ms/conv), "
              f"peak Python {r['peak_python_mib']:.1f} MiB", flush=True)  # fmt: skip
    meta = {**machine_meta(), "threads": args.threads, "repeats": args.repeats}
    meta.update(loadavg_1min_before=load_before, loadavg_1min_after=os.getloadavg()[0])
    result = {"meta": meta, "rows": rows}
    os.makedirs(args.out, exist_ok=True)
    write_atomic(os.path.join(args.out, "depth_scaling.json"), json.dumps(result, indent=2) + "\n")
    write_atomic(os.path.join(args.out, "depth_scaling.md"), render(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
