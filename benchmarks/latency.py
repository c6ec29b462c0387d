"""Measured speed-up after pruning: does it follow the MAC cut, and is a latency target met?

Run: ``python benchmarks/latency.py`` (one command; prints progress; about 40 minutes on 2 cores).
For each backend (PyTorch eager on the CPU, ONNX Runtime on the CPU; ``--threads`` intra-op
threads) and model:

* resnet50 (224x224) and ResNet-56 (CIFAR, 32x32) at 2x and 3x fewer MACs, pruned three ways:
  ``L1 global, round_to=1`` (score ranking only: the old default), ``round_to=auto + latency
  allocation`` (the multiple measured for the backend, channels cut where the per-layer latency
  table says they buy the most latency per importance, still to the same MAC target),
  ``target_latency=1/2`` / ``1/3`` (the measured latency as the budget), and ``latency
  allocation + remove_branches`` (the same allocation, whole residual branches allowed to go:
  depth pruning; ``--no-branches`` skips these rows);
* MobileNetV2 (224x224) with ``target_latency=0.5`` measured at batch 1 and at batch 32, next
  to ``target_macs=0.5`` with round_to=1.

In PyTorch eager, every row is also timed as deployed (the original too): batch norms folded into
their convs (``prunekit.fold_batchnorm``; ONNX Runtime folds them itself when it loads a model) and
removed branches' constants folded into the additions that read them (``prunekit.fold_constants``,
which returns an fx ``GraphModule``; a removed block then computes ``relu(x + c)``): the
``deployed`` columns, ``--no-fold`` skips them.

Every pruned model is timed against the original in the same run: ``--rounds`` interleaved
rounds (original, pruned, original, ...) of ``Meter`` medians, the median of the rounds kept.
``speed-up / MAC reduction`` is ``(t_original / t_pruned) / (MACs_original / MACs_pruned)``.
Writes ``benchmarks/results/latency.json`` and ``latency.md`` (the command, versions, machine
and load average before and after each model); the JSON is rewritten after each model, so a
partial run keeps what it measured.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import sys
import tempfile
import time
import warnings

import torch
import torchvision

import prunekit

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import machine_meta, run_line, write_atomic  # noqa: E402

from prunekit.latency import Meter
from prunekit.models import get_model

SIZES = {"resnet50": 224, "resnet56": 32, "mobilenet_v2": 224}
BACKENDS = ("onnxruntime", "torch")
# the goals: minimum speed-up / MAC reduction at batch 1, per model and backend
GOALS = {("resnet50", "onnxruntime"): 0.9, ("resnet50", "torch"): 0.85, ("resnet56", "onnxruntime"): 0.8,
         ("resnet56", "torch"): 0.8}  # fmt: skip
MOBILENET_TARGET, MOBILENET_GOAL = 0.5, 0.55


def build(name: str) -> torch.nn.Module:
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if name == "resnet56":
            return get_model("resnet56", num_classes=10, in_channels=3).eval()
        return getattr(torchvision.models, name)(weights=None).eval()


def timed_prune(base: torch.nn.Module, x: torch.Tensor, **options) -> tuple[torch.nn.Module, dict, float]:
    """A pruned copy, its report as a dict (without the per-layer rows) and the seconds it took."""
    model = copy.deepcopy(base)
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        report = prunekit.prune_(model, x, **options)
    info = {k: v for k, v in report.to_dict().items() if k not in ("kept", "kept_params", "layers")}
    return model.eval(), info, time.perf_counter() - t0


def paired(meter: Meter, original: torch.nn.Module, pruned: torch.nn.Module, x: torch.Tensor, rounds: int):
    """Median over interleaved rounds of (original, pruned) medians, in ms."""
    times = meter.interleaved({"o": meter.prepare(original, x), "p": meter.prepare(pruned, x)}, rounds)
    t_o, t_p = ([t * 1e3 for t in times[k]] for k in ("o", "p"))
    return statistics.median(t_o), statistics.median(t_p), t_o, t_p


def variants(name: str, base: torch.nn.Module, x: torch.Tensor, backend: str, args, shared: dict):
    """(label, batches to time at, pruned model, report info, prune seconds) for one backend."""
    lat = dict(latency_backend=backend, latency_threads=args.threads, scope="global")
    out = []
    if name == "mobilenet_v2":
        plan = [("target_macs=0.5, round_to=1", None, dict(target_macs=0.5, scope="global"))]
        plan += [(f"target_latency={MOBILENET_TARGET} at batch {b}", b,
                  dict(target_latency=MOBILENET_TARGET, latency_batch=b, **lat)) for b in args.batches]  # fmt: skip
        for label, batch, options in plan:
            key = (name, label)
            if batch is None and key in shared:
                out.append((label, args.batches, *shared[key]))
                continue
            pruned = timed_prune(base, x, **options)
            if batch is None:
                shared[key] = pruned
            out.append((label, args.batches, *pruned))
        return out
    for f in (2, 3):
        key = (name, f)
        if key not in shared:
            shared[key] = timed_prune(base, x, target_macs=1 / f, scope="global", round_to=1)
        out.append((f"{f}x fewer MACs: L1 global, round_to=1", [1], *shared[key]))
        out.append(
            (
                f"{f}x fewer MACs: round_to=auto + latency allocation",
                [1],
                *timed_prune(base, x, target_macs=1 / f, round_to="auto", latency_allocation=True, **lat),
            )
        )
        out.append((f"target_latency=1/{f}", [1], *timed_prune(base, x, target_latency=1 / f, **lat)))  # fmt: skip
        if args.branches:
            out.append(
                (
                    f"{f}x fewer MACs: latency allocation + remove_branches",
                    [1],
                    *timed_prune(
                        base,
                        x,
                        target_macs=1 / f,
                        round_to="auto",
                        latency_allocation=True,
                        remove_branches=True,
                        **lat,
                    ),
                )
            )
    return out


def deployed(model: torch.nn.Module, x: torch.Tensor) -> torch.nn.Module:
    """``model`` as deployed in eager: batch norms and removed branches' constants folded."""
    return prunekit.fold_constants(prunekit.fold_batchnorm(model, x), x)


def folded_timing(meter: Meter, base_folded: torch.nn.Module | None, model: torch.nn.Module, x: torch.Tensor, args):
    """The pair timed again as deployed (eager rows; empty when not asked for)."""
    if base_folded is None:
        return {}
    t_o, t_p, _, _ = paired(meter, base_folded, deployed(model, x), x, args.rounds)
    return {"folded_original_ms": t_o, "folded_pruned_ms": t_p, "folded_speedup": t_o / t_p}


def run_model(name: str, backend: str, args, shared: dict) -> list[dict]:
    size = SIZES[name]
    base = build(name)
    x1 = torch.randn(1, 3, size, size)
    macs0 = prunekit.count_macs(base, (x1,))
    base_folded = deployed(base, x1) if args.fold and backend == "torch" else None
    rows = []
    for label, batches, model, info, seconds in variants(name, base, x1, backend, args, shared):
        macs = prunekit.count_macs(model, (x1,))
        for b in batches:
            meter = Meter(backend, batch=b, threads=args.threads, min_run_time=args.min_run_time)
            t_o, t_p, all_o, all_p = paired(meter, base, model, x1, args.rounds)
            row = {
                "model": name, "backend": backend, "batch": b, "variant": label, "threads": args.threads,
                "macs_original": macs0, "macs": macs, "params": prunekit.count_params(model),
                "round_to": info["config"].get("round_to"), "original_ms": t_o, "pruned_ms": t_p,
                "rounds_original_ms": all_o, "rounds_pruned_ms": all_p, "speedup": t_o / t_p,
                "mac_reduction": macs0 / macs, "prune_seconds": seconds,
                "search_latency": info.get("latency"), "loadavg_1min": os.getloadavg()[0],
                "removed_branches": info.get("removed_branches", []),
                "round_to_auto": info["config"].get("round_to_auto"),
            }  # fmt: skip
            row["speedup_per_mac_reduction"] = row["speedup"] / row["mac_reduction"]
            row.update(folded_timing(meter, base_folded, model, x1, args))
            if "folded_speedup" in row:
                row["folded_speedup_per_mac_reduction"] = row["folded_speedup"] / row["mac_reduction"]
            row["latency_ratio"] = t_p / t_o
            rows.append(row)
            print(
                f"{name:12s} {backend:11s} b{b:<2d} {label:48s} MACs {macs / 1e6:8.1f}M  {t_o:8.2f} -> {t_p:8.2f} ms  "
                f"{row['speedup']:.2f}x / {row['mac_reduction']:.2f}x = {row['speedup_per_mac_reduction']:.2f}  "
                f"(round_to {row['round_to']}, prune {seconds:.0f}s, load {row['loadavg_1min']:.1f})"
                + (f"  deployed {row['folded_speedup_per_mac_reduction']:.2f}" if "folded_speedup" in row else ""),
                flush=True,
            )
    return rows


def verdict(r: dict) -> str:
    """Whether the row meets the issue's goal (empty when no goal applies)."""
    if r["model"] == "mobilenet_v2" and r["variant"].startswith("target_latency"):
        own = r["variant"].endswith(f"batch {r['batch']}")
        if own:
            return "yes" if r["latency_ratio"] <= MOBILENET_GOAL else "NO"
        return "yes (not slower)" if r["latency_ratio"] <= 1.0 else "NO (slower)"
    goal = GOALS.get((r["model"], r["backend"]))
    if goal is None or r["model"] == "mobilenet_v2":
        return "yes (not slower)" if r["latency_ratio"] <= 1.0 else "NO (slower)"
    met = ("yes" if r["speedup_per_mac_reduction"] >= goal else "NO") + f" (>= {goal})"
    if "folded_speedup_per_mac_reduction" in r:
        met += "; deployed: " + ("yes" if r["folded_speedup_per_mac_reduction"] >= goal else "NO")
    return met


def render(meta: dict, rows: list[dict]) -> str:
    lines = [
        "# Latency-aware pruning: measured speed-up against the MAC reduction",
        "",
        run_line(meta, f", onnxruntime {meta.get('onnxruntime', '-')}") + " (per row in the JSON). Random weights "
        f"(latency does not depend on them). Each time is the median of {meta['rounds']} interleaved rounds "
        f"(original, pruned) of a median over {meta['min_run_time']} s. Goals (issue 13): resnet50 speed-up / MAC "
        "reduction >= 0.9 on ONNX Runtime and >= 0.85 in PyTorch at batch 1, ResNet-56 >= 0.8; MobileNetV2 with "
        "target_latency=0.5 at <= 0.55 of the original latency at batch 1 and 32, never slower.",
        "",
        "| model | backend | batch | variant | round_to | MACs (M) | original (ms) | pruned (ms) | latency ratio "
        "| speed-up | MAC reduction | speed-up / MAC reduction | deployed: original / pruned (ms) "
        "| deployed: speed-up / MAC reduction | goal met |",
        "|---" * 15 + "|",
    ]
    for r in rows:
        folded = ("-", "-")
        if "folded_speedup" in r:
            folded = (f"{r['folded_original_ms']:.2f} / {r['folded_pruned_ms']:.2f}",
                      f"{r['folded_speedup_per_mac_reduction']:.2f}")  # fmt: skip
        lines.append(
            f"| {r['model']} | {r['backend']} | {r['batch']} | {r['variant']} | {r['round_to']} | "
            f"{r['macs'] / 1e6:.1f} | {r['original_ms']:.2f} | {r['pruned_ms']:.2f} | {r['latency_ratio']:.2f} | "
            f"{r['speedup']:.2f}x | {r['mac_reduction']:.2f}x | {r['speedup_per_mac_reduction']:.2f} | "
            f"{folded[0]} | {folded[1]} | {verdict(r)} |"
        )
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", default=["resnet56", "mobilenet_v2", "resnet50"], choices=list(SIZES))
    ap.add_argument("--backends", nargs="+", default=list(BACKENDS), choices=list(BACKENDS) + ["cuda"])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batches", nargs="+", type=int, default=[1, 32], help="MobileNetV2's batch sizes")
    ap.add_argument("--min-run-time", type=float, default=0.5)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--fresh-tables", action="store_true", help="measure the latency tables again (a temp cache)")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results"))
    ap.add_argument("--stem", default="latency")
    ap.add_argument(
        "--no-fold", dest="fold", action="store_false", help="skip the deployed (BN and constants folded) eager timings"
    )
    ap.add_argument(
        "--no-branches", dest="branches", action="store_false", help="skip the remove_branches rows (depth pruning)"
    )
    args = ap.parse_args()
    if args.fresh_tables:
        os.environ["PRUNEKIT_CACHE_DIR"] = tempfile.mkdtemp(prefix="prunekit-tables-")
    torch.set_num_threads(args.threads)
    os.makedirs(args.out, exist_ok=True)
    meta = {**machine_meta(), "threads": args.threads, "rounds": args.rounds, "min_run_time": args.min_run_time,
            "loadavg_1min_before": os.getloadavg()[0], "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}  # fmt: skip
    try:
        import onnxruntime

        meta["onnxruntime"] = onnxruntime.__version__
    except ImportError:
        pass
    rows: list[dict] = []
    shared: dict = {}
    for name in args.models:
        for backend in args.backends:
            rows += run_model(name, backend, args, shared)
            meta["loadavg_1min_after"] = os.getloadavg()[0]
            path = os.path.join(args.out, f"{args.stem}.json")
            write_atomic(path, json.dumps({"meta": meta, "results": rows}, indent=1) + "\n")
            write_atomic(os.path.join(args.out, f"{args.stem}.md"), render(meta, rows))
    print(render(meta, rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
