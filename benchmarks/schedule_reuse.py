"""Schedules reuse the traced graph: a 20-step schedule against 20 one-shot prunes.

Run::

    python benchmarks/schedule_reuse.py [--model resnet50] [--steps 20] [--threads 1]

Three timings on the same model (torchvision, random weights, eval, 224 px), each in this process
after an untimed warm-up:

* ``physical``: a :class:`~prunekit.schedules.PruningScheduler` ("agp", final 0.5, one cut per step over
  ``--steps`` steps) in physical mode; it traces at the first cut and derives the graph of the
  pruned model for every later cut;
* ``masked``: the same schedule in masked mode (masks recomputed at every step, one trace), then
  ``finalize``;
* ``one-shot x N``: ``--steps`` independent ``prune_(copy, x, sparsity=0.5)`` calls, each on a
  fresh copy (each traces): what the schedule would cost if every step paid for a full prune.

Also counts the ``DependencyGraph`` constructions of each. Writes
``benchmarks/results/schedule_reuse.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import sys
import time
from unittest import mock

import torch
import torchvision

import prunekit
from prunekit.schedules import PruningScheduler

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import machine_meta, write_atomic  # noqa: E402


def counted(fn, calls: list) -> object:
    real_init = prunekit.DependencyGraph.__init__

    def counting_init(self, *args, **kwargs):
        calls.append(1)
        real_init(self, *args, **kwargs)

    with mock.patch.object(prunekit.DependencyGraph, "__init__", counting_init):
        t0 = time.perf_counter()
        fn()
        return time.perf_counter() - t0


def run_schedule(model: torch.nn.Module, x: torch.Tensor, steps: int, mode: str) -> None:
    options = dict(initial=0.0, final=0.5, start=0, end=steps - 1, frequency=1)
    sched = PruningScheduler("agp", options=options, mode=mode)
    for step in range(steps):
        sched.step(model, x, step)
    sched.finalize(model)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="resnet50")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "results"))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    base = getattr(torchvision.models, args.model)(weights=None).eval()
    x = torch.randn(1, 3, 224, 224)
    prunekit.prune_(torchvision.models.resnet18(weights=None).eval(), torch.randn(1, 3, 64, 64), sparsity=0.5)
    load_before = os.getloadavg()[0]
    rows = []
    for label, fn in [
        ("physical schedule", lambda: run_schedule(copy.deepcopy(base), x, args.steps, "physical")),
        ("masked schedule", lambda: run_schedule(copy.deepcopy(base), x, args.steps, "masked")),
        (f"one-shot x {args.steps}", lambda: [prunekit.prune_(copy.deepcopy(base), x, sparsity=0.5) for _ in range(args.steps)]),
    ]:  # fmt: skip
        calls: list = []
        seconds = counted(fn, calls)
        rows.append({"run": label, "time_s": seconds, "traces": len(calls)})
        print(f"{label}: {seconds:.2f} s, {len(calls)} trace(s)", flush=True)
    meta = {**machine_meta(), "model": args.model, "steps": args.steps, "threads": args.threads}
    meta.update(loadavg_1min_before=load_before, loadavg_1min_after=os.getloadavg()[0])
    result = {"meta": meta, "rows": rows}
    os.makedirs(args.out, exist_ok=True)
    write_atomic(os.path.join(args.out, "schedule_reuse.json"), json.dumps(result, indent=2) + "\n")
    lines = [
        f"# Schedules reuse the graph: {args.steps}-step AGP schedule vs {args.steps} one-shot prunes ({args.model})",
        "",
        f"Command: `{meta['command']}`  ",
        f"torch {meta['torch']}, prunekit {meta['prunekit']}, {args.threads} thread(s), {meta['cpu_count']} CPUs, "
        f"load average (1 min) before {load_before:.2f}, after {meta['loadavg_1min_after']:.2f}.",
        "",
        "| run | time (s) | graph traces |",
        "|---|---:|---:|",
    ] + [f"| {r['run']} | {r['time_s']:.2f} | {r['traces']} |" for r in rows]  # fmt: skip
    write_atomic(os.path.join(args.out, "schedule_reuse.md"), "\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
