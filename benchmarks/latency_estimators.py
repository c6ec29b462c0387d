"""The table's estimate between grid points, bilinear against separable: the speed-up each allocation buys.

Run: ``python benchmarks/latency_estimators.py`` (one command; about 15 minutes on 2 cores). For
each ``--models`` / ``--backends`` and each MAC cut (2x and 3x fewer), the model is pruned with
``latency_allocation`` at a fixed ``round_to`` (16 for resnet50, 4 for ResNet-56: the multiples
``round_to="auto"`` picks there, fixed so that only the estimate differs) twice: with
``LatencyTable.estimate`` as shipped (bilinear on the two-dimensional grid) and with the
row-and-column product prunekit used before (``latency_table_accuracy.separable``). Both draw on
the same table of timings (one fresh cache folder per run). Both cuts and the original are then
timed in ``--rounds`` interleaved rounds within one session, so they differ only by the cut.
``speed-up / MAC reduction`` is the median over rounds of ``t_original / t_pruned``, divided by
``MACs_original / MACs_pruned``. Writes ``benchmarks/results/latency_estimators.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import machine_meta, run_line  # noqa: E402
from latency import SIZES, build, timed_prune  # noqa: E402
from latency_table_accuracy import separable  # noqa: E402
from latency_units import time_cuts  # noqa: E402
from render import write_results  # noqa: E402

from prunekit.latency import LatencyTable  # noqa: E402

ESTIMATES = {"bilinear": LatencyTable.estimate, "separable": separable}
ROUND_TO = {"resnet50": 16, "resnet56": 4, "mobilenet_v2": 8}


def prune_with(estimate: str, base: torch.nn.Module, x: torch.Tensor, **options) -> torch.nn.Module:
    """A pruned copy, the allocation reading the table through ``ESTIMATES[estimate]``."""
    saved = LatencyTable.estimate
    LatencyTable.estimate = ESTIMATES[estimate]  # type: ignore[method-assign]
    try:
        return timed_prune(base, x, **options)[0]
    finally:
        LatencyTable.estimate = saved  # type: ignore[method-assign]


def run(name: str, backend: str, factor: int, args) -> list[dict]:
    base, size = build(name), SIZES[name]
    x = torch.randn(1, 3, size, size)
    common = dict(
        target_macs=1 / factor, latency_allocation=True, latency_backend=backend, scope="global",
        round_to=ROUND_TO[name], latency_threads=args.threads,
    )  # fmt: skip
    models = {e: prune_with(e, base, x, **common) for e in ESTIMATES}
    rows = []
    for e, timing in time_cuts(base, x, models, backend, args).items():
        rows.append({"model": name, "backend": backend, "factor": factor, "estimate": e, "round_to": ROUND_TO[name],
                     **timing})  # fmt: skip
        print(f"{name} {backend} {factor}x {e:9s}: {rows[-1]['speedup_per_mac_reduction']:.2f}", flush=True)
    return rows


def render(data: dict) -> str:
    meta, rows = data["meta"], data["results"]
    lines = [
        "# Latency tables: bilinear against separable estimates, the cuts they choose",
        "",
        run_line(meta) + ". Batch 1, random weights, `latency_allocation` to the MAC cut at a fixed round_to; per "
        f"model, backend and cut, both pruned models and the original timed in {meta['rounds']} interleaved rounds "
        "in one session. Speed-up / MAC reduction: the median over rounds of original / pruned, divided by the "
        "MAC reduction.",
        "",
        "| model | backend | MAC cut | estimate | round_to | MAC reduction | original (ms) | pruned (ms) "
        "| speed-up / MAC reduction |",
        "|---" * 9 + "|",
    ]
    for r in rows:
        lines.append(
            f"| {r['model']} | {r['backend']} | {r['factor']}x | {r['estimate']} | {r['round_to']} | "
            f"{r['mac_reduction']:.2f}x | {r['original_ms']:.2f} | {r['pruned_ms']:.2f} | "
            f"{r['speedup_per_mac_reduction']:.2f} |"
        )
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", default=["resnet56", "resnet50"], choices=list(SIZES))
    ap.add_argument("--backends", nargs="+", default=["onnxruntime", "torch"])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--min-run-time", type=float, default=0.5)
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "results"))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    meta = {**machine_meta(), "threads": args.threads, "rounds": args.rounds, "loadavg_1min_before": os.getloadavg()[0]}
    rows: list[dict] = []
    with tempfile.TemporaryDirectory() as cache:
        os.environ["PRUNEKIT_CACHE_DIR"] = cache  # fresh tables, shared by both estimates
        for name in args.models:
            for backend in args.backends:
                for factor in (2, 3):
                    rows += run(name, backend, factor, args)
    meta["loadavg_1min_after"] = os.getloadavg()[0]
    write_results(args.out, "latency_estimators", {"meta": meta, "results": rows}, render)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
