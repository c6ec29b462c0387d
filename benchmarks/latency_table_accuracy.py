"""How well a per-layer latency table predicts a layer's latency at widths it did not time.

Run: ``python benchmarks/latency_table_accuracy.py`` (one command; about 15 minutes on 2 cores).
For each ``--models`` / ``--backends`` / ``--multiples`` (the ``round_to`` a prune uses), every
distinct conv and linear of the model (NetAdapt's unit: with the batch norm and activation that
read its output) is timed at ``--points`` random width pairs, multiples of ``round_to``; each pair
is then predicted two ways from the grid of eighths of the full widths:

- **bilinear**: bilinear interpolation on the two-dimensional grid, timing the four grid points
  around the pair (what ``LatencyTable.estimate`` does; NetAdapt's look-up tables, Yang et al. 2018);
- **separable**: ``T(ci, C_out) * T(C_in, co) / T(C_in, C_out)``, each factor interpolated on one
  row or column of the grid (what prunekit did before: 15 timings per layer instead of up to 64).

The error of a prediction is ``log(predicted / measured)``; the table gives the median and 90th
percentile of its size and its mean (negative: the table predicts the layer faster than it is,
overstating what a cut saves). The measured figure is a separate timing from the grid's, and
``repeat`` times every pair a second time, so its row is the noise floor of one timing against
another. Writes ``benchmarks/results/latency_table_accuracy.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import math
import os
import random
import statistics
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import machine_meta, run_line  # noqa: E402
from latency import SIZES, build  # noqa: E402
from render import write_results  # noqa: E402

from prunekit.latency import LatencyTable, LayerSpec, Meter, layer_specs  # noqa: E402
from prunekit.latency.table import grid_widths  # noqa: E402

METHODS = ("bilinear", "separable", "repeat")


def separable(table: LatencyTable, spec: LayerSpec, cin: int, cout: int) -> float:
    """The earlier estimate: one row and one column of the grid, multiplied."""
    full = table.latency(spec, spec.in_channels, spec.out_channels)
    wi, wo = grid_widths(spec.in_channels, table.multiple), grid_widths(spec.out_channels, table.multiple)
    t_in = np.interp(cin, wi, [table.latency(spec, w, spec.out_channels) for w in wi])
    t_out = np.interp(cout, wo, [table.latency(spec, spec.in_channels, w) for w in wo])
    return float(t_in * t_out / full)


def _width(rng: random.Random, full: int, multiple: int) -> int:
    return multiple * rng.randint(1, max(1, full // multiple)) if full >= multiple else full


def summary(errors: list[float]) -> dict:
    """Median and 90th percentile of ``|log(predicted / measured)|`` and the mean signed error."""
    size = sorted(abs(e) for e in errors)
    return {
        "n": len(errors),
        "median_abs": statistics.median(size),
        "p90_abs": size[min(len(size) - 1, int(math.ceil(0.9 * len(size))) - 1)],
        "max_abs": size[-1],
        "mean": statistics.fmean(errors),
    }


def run(name: str, backend: str, multiple: int, args) -> dict:
    model, size = build(name), SIZES[name]
    specs = layer_specs(model, (torch.randn(1, 3, size, size),))
    distinct = list(dict.fromkeys(s for s in specs.values() if not s.depthwise and s.groups == 1))
    rng = random.Random(args.seed)

    def table() -> LatencyTable:
        meter = Meter(backend, batch=1, threads=args.threads)
        return LatencyTable(meter, persist=False, min_run_time=args.min_run_time, multiple=multiple)

    grid, sep_grid, truth, again = table(), table(), table(), table()
    errors: dict[str, list[float]] = {m: [] for m in METHODS}
    start = time.perf_counter()
    for spec in distinct:
        for _ in range(args.points):
            cin, cout = _width(rng, spec.in_channels, multiple), _width(rng, spec.out_channels, multiple)
            measured = truth.latency(spec, cin, cout)
            errors["bilinear"].append(math.log(grid.estimate(spec, cin, cout) / measured))
            errors["separable"].append(math.log(separable(sep_grid, spec, cin, cout) / measured))
            errors["repeat"].append(math.log(again.latency(spec, cin, cout) / measured))
    row = {
        "model": name, "backend": backend, "round_to": multiple, "layers": len(distinct),
        "seconds": time.perf_counter() - start, "loadavg_1min": os.getloadavg()[0],
        "timings": {"bilinear": grid.measured, "separable": sep_grid.measured},
        **{m: summary(e) for m, e in errors.items()},
    }  # fmt: skip
    print(
        f"{name} {backend} round_to {multiple}: "
        + ", ".join(f"{m} {row[m]['median_abs']:.3f}/{row[m]['p90_abs']:.3f}" for m in METHODS),
        flush=True,
    )
    return row


def _pct(x: float) -> str:
    return f"{math.expm1(x):.0%}".replace("-0%", "0%")


def render(data: dict) -> str:
    meta, rows = data["meta"], data["results"]
    lines = [
        "# Latency tables: predicted against measured layer latency",
        "",
        run_line(meta, f", onnxruntime {meta['onnxruntime']}" if meta.get("onnxruntime") else "")
        + f". Batch 1, {meta['points']} random width pairs per distinct conv / linear (multiples of "
        f"round_to), each timed for {meta['min_run_time']} s. Error of a prediction: predicted / measured - 1, "
        "as the size of log(predicted / measured); mean < 0: the table predicts layers faster than they are "
        "(it overstates what a cut saves). *repeat*: a second timing of the same pairs (the noise floor). "
        "*timings*: grid points the method timed.",
        "",
        "| model | backend | round_to | layers | method | median error | p90 error | largest error | mean (bias) "
        "| timings |",
        "|---" * 10 + "|",
    ]
    for r in rows:
        for m in METHODS:
            s = r[m]
            lines.append(
                f"| {r['model']} | {r['backend']} | {r['round_to']} | {r['layers']} | {m} | "
                f"{_pct(s['median_abs'])} | {_pct(s['p90_abs'])} | {_pct(s['max_abs'])} | {_pct(s['mean'])} | "
                f"{r['timings'].get(m, '-')} |"
            )
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", default=["resnet50", "resnet56"], choices=list(SIZES))
    ap.add_argument("--backends", nargs="+", default=["torch", "onnxruntime"])
    ap.add_argument("--multiples", nargs="+", type=int, default=[1, 16])
    ap.add_argument("--points", type=int, default=4)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--min-run-time", type=float, default=0.1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "results"))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    meta = {
        **machine_meta(), "threads": args.threads, "points": args.points, "min_run_time": args.min_run_time,
        "loadavg_1min_before": os.getloadavg()[0],
    }  # fmt: skip
    if "onnxruntime" in args.backends:
        import onnxruntime

        meta["onnxruntime"] = onnxruntime.__version__
    rows = [
        run(name, backend, multiple, args)
        for name in args.models
        for backend in args.backends
        for multiple in args.multiples
        if not (name == "resnet56" and multiple > 4)  # 16 is all of a ResNet-56 stage-1 layer
    ]
    meta["loadavg_1min_after"] = os.getloadavg()[0]
    write_results(args.out, "latency_table_accuracy", {"meta": meta, "results": rows}, render)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
