"""How much of a model's batch-1 latency no channel cut can remove: the per-op overhead.

Run: ``python benchmarks/latency_overhead.py [--models resnet56 resnet50] [--backends ...]``.
For each model and backend, the model is cut UNIFORMLY (local scope, L1, round_to=1) to width
multipliers 1, 0.75, 0.5, 0.33, 0.25 and 0.1, and every width is timed at batch 1 with the
library's :class:`~prunekit.latency.Meter` (``--rounds`` interleaved rounds, median kept).
A least-squares line ``t = a + b * MACs`` over the widths gives the width-independent part
``f = a / t(1)``. If latency were ``a + b * MACs`` for every channel allocation, a cut to ``1/R``
of the MACs could at best run ``1 / (R f + 1 - f)`` of the MAC reduction faster (the "linear
bound" columns); an allocation beats it only by cutting latency super-linearly (channels that
cost more than their MACs, e.g. unaligned widths or memory-bound layers). The 0.1 width is the
floor: what is left when almost every channel is gone. ``needed`` is the pruned latency the
issue's goal asks for, ``t(1) / (goal * R)``.

The eager backend runs the model under ``torch.inference_mode``; the table also times the
original under ``torch.no_grad`` and ``inference_mode`` directly (``torch.utils.benchmark``) to
show what the context costs per call. Writes ``benchmarks/results/latency_overhead.{json,md}``.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import sys
import time
import warnings

import numpy as np
import torch

import prunekit

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import machine_meta, run_line, write_atomic  # noqa: E402
from latency import GOALS, SIZES, build  # noqa: E402

from prunekit.latency import Meter

WIDTHS = (1.0, 0.75, 0.5, 0.33, 0.25, 0.1)


def uniform(base: torch.nn.Module, x: torch.Tensor, width: float) -> torch.nn.Module:
    model = copy.deepcopy(base)
    if width < 1:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            prunekit.prune_(model, x, sparsity=1 - width, scope="local", round_to=1, max_group_sparsity=0.95)
    return model.eval()


def context_cost(model: torch.nn.Module, x: torch.Tensor, rounds: int, min_run_time: float) -> dict[str, float]:
    """Median ms of the original under no_grad and under inference_mode (interleaved rounds)."""
    from torch.utils import benchmark

    def no_grad() -> None:
        with torch.no_grad():
            model(x)

    def inference() -> None:
        with torch.inference_mode():
            model(x)

    out: dict[str, list[float]] = {"no_grad": [], "inference_mode": []}
    for _ in range(rounds):
        for name, fn in (("no_grad", no_grad), ("inference_mode", inference)):
            timer = benchmark.Timer(stmt="fn()", globals={"fn": fn}, num_threads=1)
            out[name].append(timer.blocked_autorange(min_run_time=min_run_time).median * 1e3)
    return {k: statistics.median(v) for k, v in out.items()}


def run(name: str, backend: str, args) -> dict:
    base = build(name)
    x = torch.randn(1, 3, SIZES[name], SIZES[name])
    models = {w: uniform(base, x, w) for w in WIDTHS}
    macs = {w: prunekit.count_macs(m, (x,)) for w, m in models.items()}
    meter = Meter(backend, batch=1, threads=args.threads, min_run_time=args.min_run_time)
    runs = {w: meter.prepare(models[w], x) for w in WIDTHS}
    times = {w: [t * 1e3 for t in v] for w, v in meter.interleaved(runs, args.rounds).items()}
    t = {w: statistics.median(v) for w, v in times.items()}
    slope, icpt = np.polyfit([macs[w] for w in WIDTHS], [t[w] for w in WIDTHS], 1)
    f = float(icpt) / t[1.0]
    goal = GOALS[(name, backend)] if (name, backend) in GOALS else float("nan")
    row = {
        "model": name, "backend": backend, "threads": args.threads, "widths": list(WIDTHS),
        "macs": [macs[w] for w in WIDTHS], "ms": [t[w] for w in WIDTHS], "rounds_ms": [times[w] for w in WIDTHS],
        "fixed_ms": float(icpt), "ms_per_gmac": float(slope) * 1e9, "fixed_share": f, "floor_ms": t[0.1],
        "goal": goal, "loadavg_1min": os.getloadavg()[0],
    }  # fmt: skip
    for r in (2, 3):
        row[f"linear_bound_{r}x"] = 1 / (r * f + 1 - f)
        row[f"needed_ms_{r}x"] = t[1.0] / (goal * r)
    if backend == "torch":
        row["context_ms"] = context_cost(models[1.0], x, args.rounds, args.min_run_time)
        row["context_floor_ms"] = context_cost(models[0.1], x, args.rounds, args.min_run_time)
    print(json.dumps({k: v for k, v in row.items() if k != "rounds_ms"}), flush=True)
    return row


def render(meta: dict, rows: list[dict]) -> str:
    lines = [
        "# Width-independent latency (per-op overhead) at batch 1",
        "",
        run_line(meta) + ". Each model cut uniformly to the width multipliers shown, timed with "
        f"prunekit's Meter (median of {meta['rounds']} interleaved rounds of a median over {meta['min_run_time']} s). "
        "Fit t = a + b * MACs; f = a / t(1); linear bound at R = 1 / (R f + 1 - f): the best speed-up / MAC "
        "reduction any allocation reaches if latency is a + b * MACs; needed = t(1) / (goal * R).",
        "",
        "| model | backend | " + " | ".join(f"w={w:g} (ms)" for w in WIDTHS) + " | a (ms) | f | linear bound 2x | "
        "linear bound 3x | goal | needed 2x (ms) | needed 3x (ms) |",
        "|---" * (2 + len(WIDTHS) + 7) + "|",
    ]
    for r in rows:
        lines.append(
            f"| {r['model']} | {r['backend']} | "
            + " | ".join(f"{v:.2f}" for v in r["ms"])
            + f" | {r['fixed_ms']:.2f} | "
            f"{r['fixed_share']:.2f} | {r['linear_bound_2x']:.2f} | {r['linear_bound_3x']:.2f} | {r['goal']:g} | "
            f"{r['needed_ms_2x']:.2f} | {r['needed_ms_3x']:.2f} |"
        )
    lines += ["", "MACs (M) per width: "]
    for r in rows[:: max(1, len(meta["backends"]))]:
        lines.append(f"- {r['model']}: " + ", ".join(f"w={w:g} {m / 1e6:.1f}" for w, m in zip(r["widths"], r["macs"])))
    eager = [r for r in rows if "context_ms" in r]
    if eager:
        lines += ["", "Eager per-call context (torch.utils.benchmark, ms): original / floor (w=0.1)", ""]
        lines += ["| model | no_grad | inference_mode | floor no_grad | floor inference_mode |", "|---" * 5 + "|"]
        for r in eager:
            c, cf = r["context_ms"], r["context_floor_ms"]
            lines.append(
                f"| {r['model']} | {c['no_grad']:.2f} | {c['inference_mode']:.2f} | {cf['no_grad']:.2f} | "
                f"{cf['inference_mode']:.2f} |"
            )
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", default=["resnet56", "resnet50"], choices=["resnet56", "resnet50"])
    ap.add_argument("--backends", nargs="+", default=["torch", "onnxruntime"], choices=["torch", "onnxruntime"])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--min-run-time", type=float, default=0.5)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results"))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    meta = {**machine_meta(), "threads": args.threads, "rounds": args.rounds, "min_run_time": args.min_run_time,
            "backends": args.backends, "loadavg_1min_before": os.getloadavg()[0],
            "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}  # fmt: skip
    rows = [run(name, backend, args) for name in args.models for backend in args.backends]
    meta["loadavg_1min_after"] = os.getloadavg()[0]
    write_atomic(os.path.join(args.out, "latency_overhead.json"), json.dumps({"meta": meta, "results": rows}, indent=1))
    write_atomic(os.path.join(args.out, "latency_overhead.md"), render(meta, rows))
    print(render(meta, rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
