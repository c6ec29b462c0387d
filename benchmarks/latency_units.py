"""Latency tables in NetAdapt's unit against tables of convs alone: the speed-up each allocation buys.

Run: ``python benchmarks/latency_units.py`` (one command; about 10 minutes on 2 cores). For each
``--backends`` and ``--models`` (ResNet-56 at batch 1 by default) and each MAC cut (2x and 3x fewer),
the model is pruned with ``latency_allocation`` four ways: the per-layer latency table in NetAdapt's
unit (a conv or linear timed with the batch norm and activation that read its output, what prunekit
does; Yang et al., ECCV 2018) or of each conv alone (``layer_specs(..., post=False)``, what it did
before), each at ``round_to`` 1 and 4. All four and the original are then timed in ``--rounds``
interleaved rounds within one session, so the four differ only by their cut (the latency benchmark
times each cut in its own session, and on this 2-CPU machine sessions differ by up to 0.1 in these
ratios). ``speed-up / MAC reduction`` is the median over rounds of ``t_original / t_pruned``,
divided by ``MACs_original / MACs_pruned``. Writes ``benchmarks/results/latency_units.json`` and
``latency_units.md``.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import statistics
import sys

import torch

import prunekit

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import machine_meta, run_line, write_atomic  # noqa: E402
from latency import SIZES, build, timed_prune  # noqa: E402

from prunekit.engine import latency_search  # noqa: E402
from prunekit.latency import Meter, layer_specs  # noqa: E402

TABLES = {"NetAdapt unit": True, "conv alone": False}


def prune_with(base: torch.nn.Module, x: torch.Tensor, unit: bool, **options) -> torch.nn.Module:
    """A pruned copy, the latency table built from ``layer_specs(post=unit)``."""
    saved = latency_search.layer_specs
    latency_search.layer_specs = functools.partial(layer_specs, post=unit)
    try:
        return timed_prune(base, x, **options)[0]
    finally:
        latency_search.layer_specs = saved


def time_cuts(base: torch.nn.Module, x: torch.Tensor, models: dict, backend: str, args) -> dict:
    """Each pruned model of ``models`` and the original timed in ``args.rounds`` interleaved
    rounds in one session: per key, the MAC reduction, the median times and the median over rounds
    of ``t_original / t_pruned`` divided by the MAC reduction."""
    macs0 = prunekit.count_macs(base, (x,))
    meter = Meter(backend, batch=1, threads=args.threads, min_run_time=args.min_run_time)
    runs = {"original": meter.prepare(base, x), **{k: meter.prepare(m, x) for k, m in models.items()}}
    times = {k: [t * 1e3 for t in v] for k, v in meter.interleaved(runs, args.rounds).items()}
    out = {}
    for key, model in models.items():
        reduction = macs0 / prunekit.count_macs(model, (x,))
        speedup = statistics.median(o / p for o, p in zip(times["original"], times[key]))
        out[key] = {
            "mac_reduction": reduction, "original_ms": statistics.median(times["original"]),
            "pruned_ms": statistics.median(times[key]), "speedup": speedup,
            "speedup_per_mac_reduction": speedup / reduction, "rounds_ms": times[key],
            "rounds_original_ms": times["original"], "loadavg_1min": os.getloadavg()[0],
        }  # fmt: skip
    return out


def run(name: str, backend: str, factor: int, args) -> list[dict]:
    base, size = build(name), SIZES[name]
    x = torch.randn(1, 3, size, size)
    common = dict(target_macs=1 / factor, latency_allocation=True, latency_backend=backend, scope="global")
    models = {
        (table, rt): prune_with(base, x, unit, round_to=rt, **common) for table, unit in TABLES.items() for rt in (1, 4)
    }
    rows = []
    for (table, rt), timing in time_cuts(base, x, models, backend, args).items():
        rows.append({"model": name, "backend": backend, "factor": factor, "table": table, "round_to": rt, **timing})
        print(f"{name} {backend} {factor}x {table:13s} round_to {rt}: {rows[-1]['speedup_per_mac_reduction']:.2f}")
    return rows


def render(meta: dict, rows: list[dict]) -> str:
    lines = [
        "# Latency tables: NetAdapt's unit against convs alone",
        "",
        run_line(meta) + ". Batch 1, random weights, `latency_allocation` to "
        f"the MAC cut; per model, backend and cut, the four pruned models and the original timed in {meta['rounds']} "
        "interleaved rounds in one session. Speed-up / MAC reduction: the median over rounds of original / pruned, "
        "divided by the MAC reduction.",
        "",
        "| model | backend | MAC cut | table | round_to | MAC reduction | original (ms) | pruned (ms) "
        "| speed-up / MAC reduction |",
        "|---" * 9 + "|",
    ]
    for r in rows:
        lines.append(
            f"| {r['model']} | {r['backend']} | {r['factor']}x | {r['table']} | {r['round_to']} | "
            f"{r['mac_reduction']:.2f}x | {r['original_ms']:.2f} | {r['pruned_ms']:.2f} | "
            f"{r['speedup_per_mac_reduction']:.2f} |"
        )
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", default=["resnet56"], choices=list(SIZES))
    ap.add_argument("--backends", nargs="+", default=["onnxruntime", "torch"])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--min-run-time", type=float, default=0.5)
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "results"))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    meta = {**machine_meta(), "threads": args.threads, "rounds": args.rounds, "loadavg_1min_before": os.getloadavg()[0]}
    rows: list[dict] = []
    for name in args.models:
        for backend in args.backends:
            for factor in (2, 3):
                rows += run(name, backend, factor, args)
    meta["loadavg_1min_after"] = os.getloadavg()[0]
    os.makedirs(args.out, exist_ok=True)
    write_atomic(os.path.join(args.out, "latency_units.json"), json.dumps({"meta": meta, "results": rows}, indent=2))
    write_atomic(os.path.join(args.out, "latency_units.md"), render(meta, rows))
    print(render(meta, rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
