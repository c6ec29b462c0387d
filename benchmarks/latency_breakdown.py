"""Where eager latency goes after pruning: per layer kind and per convolution, before and after.

Run: ``python benchmarks/latency_breakdown.py`` (about 3 minutes on 2 cores, the tables cached). ``latency.py``
gives each pruned model's speed-up over its MAC reduction; in PyTorch eager at batch 1 that
ratio stays under the issue's 0.85 for resnet50 raw while the deployed form (batch norms folded)
meets it. This script says why, by timing every leaf module of the original and of each pruned
model (a forward pre-hook and a forward hook reading ``time.perf_counter``; the rest of a forward,
``x + identity`` and the Python between modules, is the whole forward's time minus the leaves'):

* per kind (convolution, batch norm, activation, pooling, linear, the rest): milliseconds before
  and after, and each kind's speed-up next to the MAC reduction (batch norm, activation and
  additions scale with the channels kept, ``r``, while a convolution's MACs scale with
  ``r_in * r_out``, so with every width at ``r`` a 2x MAC cut (``r = 0.71``) speeds a batch norm up
  by at most 1.41x);
* per convolution: its own speed-up over its own MAC reduction, the worst ones listed with their
  widths (a width the kernels handle badly shows up here).

Each model is timed in ``--rounds`` interleaved rounds of ``--iters`` forwards (after warm-up),
the median over rounds kept per module. The hooks add about a microsecond per module call, the
same before and after. Models are pruned as in ``latency.py``: ``target_macs=1/f`` with L1 global
at round_to=1, and with ``round_to="auto"`` and the latency allocation on the eager backend.
Writes ``benchmarks/results/latency_breakdown.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections import defaultdict

import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import machine_meta, run_line  # noqa: E402
from latency import SIZES, build, timed_prune  # noqa: E402
from render import write_results  # noqa: E402

from prunekit.metrics import macs_per_module

KINDS = {
    "convolution": (nn.Conv1d, nn.Conv2d, nn.Conv3d),
    "batch norm": (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d),
    "activation": (nn.ReLU, nn.ReLU6, nn.SiLU, nn.Hardswish, nn.GELU),
    "pooling": (nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d),
    "linear": (nn.Linear,),
}
REST = "the rest (additions, Python)"


def kind_of(module: nn.Module) -> str | None:
    for kind, types in KINDS.items():
        if isinstance(module, types):
            return kind
    return None


class LeafClock:
    """Seconds spent in each leaf module of ``model`` whose kind is in :data:`KINDS`, summed over
    calls since ``seconds`` was last cleared; :meth:`remove` takes the hooks off."""

    def __init__(self, model: nn.Module) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.starts: dict[str, list[float]] = defaultdict(list)
        self.handles = []
        for name, module in model.named_modules():
            if kind_of(module) is not None:
                self.handles.append(module.register_forward_pre_hook(self._pre(name)))
                self.handles.append(module.register_forward_hook(self._post(name)))

    def _pre(self, name: str):
        def hook(module, args):
            self.starts[name].append(time.perf_counter())

        return hook

    def _post(self, name: str):
        def hook(module, args, out):
            self.seconds[name] += time.perf_counter() - self.starts[name].pop()

        return hook

    def remove(self) -> None:
        for h in self.handles:
            h.remove()


@torch.no_grad()
def profile_once(model: nn.Module, clock: LeafClock, x: torch.Tensor, iters: int) -> tuple[dict[str, float], float]:
    """Per-leaf ms and whole-forward ms, per forward, over ``iters`` forwards."""
    for _ in range(2):
        model(x)
    clock.seconds.clear()
    t0 = time.perf_counter()
    for _ in range(iters):
        model(x)
    total = (time.perf_counter() - t0) / iters * 1e3
    return {k: v / iters * 1e3 for k, v in clock.seconds.items()}, total


def profile(models: dict[str, nn.Module], x: torch.Tensor, iters: int, rounds: int) -> dict[str, dict]:
    """Per model: the median over interleaved rounds of each leaf's ms and of the whole forward."""
    clocks = {key: LeafClock(m) for key, m in models.items()}
    leaf: dict[str, dict[str, list[float]]] = {key: defaultdict(list) for key in models}
    whole: dict[str, list[float]] = {key: [] for key in models}
    try:
        for _ in range(rounds):
            for key, model in models.items():
                per, total = profile_once(model, clocks[key], x, iters)
                for name, ms in per.items():
                    leaf[key][name].append(ms)
                whole[key].append(total)
    finally:
        for c in clocks.values():
            c.remove()
    return {
        key: {
            "leaf_ms": {n: statistics.median(v) for n, v in leaf[key].items()},
            "forward_ms": statistics.median(whole[key]),
        }
        for key in models
    }


def by_kind(model: nn.Module, timing: dict) -> dict[str, float]:
    kinds: dict[str, float] = defaultdict(float)
    modules = dict(model.named_modules())
    for name, ms in timing["leaf_ms"].items():
        kinds[kind_of(modules[name])] += ms
    kinds[REST] = timing["forward_ms"] - sum(timing["leaf_ms"].values())
    return dict(kinds)


def conv_rows(
    base: nn.Module, pruned: nn.Module, t_base: dict, t_pruned: dict, macs_b: dict[str, int], macs_p: dict[str, int]
) -> list[dict]:
    """Per convolution: widths, ms and MACs before / after, and speed-up over MAC reduction
    (``macs_b`` / ``macs_p``: MACs per module name, from :func:`~prunekit.metrics.macs_per_module`)."""
    mods_b, mods_p = dict(base.named_modules()), dict(pruned.named_modules())
    rows = []
    for name, m in mods_b.items():
        if not isinstance(m, KINDS["convolution"]) or name not in t_pruned["leaf_ms"]:
            continue
        p = mods_p[name]
        ms_b, ms_p = t_base["leaf_ms"][name], t_pruned["leaf_ms"][name]
        mac_red = macs_b[name] / max(macs_p[name], 1)
        rows.append(
            {
                "layer": name,
                "widths_before": [m.in_channels, m.out_channels],
                "widths_after": [p.in_channels, p.out_channels],
                "ms_before": ms_b,
                "ms_after": ms_p,
                "mac_reduction": mac_red,
                "efficiency": (ms_b / ms_p) / mac_red,
            }
        )
    return rows


def run_model(name: str, args) -> list[dict]:
    base = build(name)
    x = torch.randn(1, 3, SIZES[name], SIZES[name])
    lat = dict(latency_backend="torch", latency_threads=args.threads, scope="global")
    cuts: dict[str, tuple[nn.Module, dict]] = {}
    for f in args.factors:
        model, info, _ = timed_prune(base, x, target_macs=1 / f, scope="global", round_to=1)
        cuts[f"{f}x fewer MACs: L1 global, round_to=1"] = (model, info)
        model, info, _ = timed_prune(base, x, target_macs=1 / f, round_to="auto", latency_allocation=True, **lat)
        cuts[f"{f}x fewer MACs: round_to=auto + latency allocation"] = (model, info)
        print(f"{name}: pruned {f}x", flush=True)
    timings = profile({"original": base, **{k: m for k, (m, _) in cuts.items()}}, x, args.iters, args.rounds)
    kinds_b = by_kind(base, timings["original"])
    macs_b, per_b = macs_per_module(base, (x,))
    rows = []
    for label, (model, info) in cuts.items():
        kinds_p = by_kind(model, timings[label])
        macs_p, per_p = macs_per_module(model, (x,))
        mac_red = macs_b / macs_p
        convs = conv_rows(base, model, timings["original"], timings[label], per_b, per_p)
        convs.sort(key=lambda r: r["efficiency"])
        conv_b, conv_p = kinds_b["convolution"], kinds_p["convolution"]
        whole_b, whole_p = timings["original"]["forward_ms"], timings[label]["forward_ms"]
        norm_b, norm_p = kinds_b.get("batch norm", 0.0), kinds_p.get("batch norm", 0.0)
        rows.append(
            {
                "model": name,
                "variant": label,
                "round_to": info["config"].get("round_to"),
                "mac_reduction": mac_red,
                "forward_ms": [whole_b, whole_p],
                "kinds_ms": {k: [kinds_b.get(k, 0.0), kinds_p.get(k, 0.0)] for k in kinds_b},
                "speedup_over_macs": (whole_b / whole_p) / mac_red,
                "conv_speedup_over_macs": (conv_b / conv_p) / mac_red,
                "without_norms_over_macs": ((whole_b - norm_b) / (whole_p - norm_p)) / mac_red,
                "worst_convs": convs[: args.worst],
            }
        )
        print(f"{name} {label}: speed-up/MACs {rows[-1]['speedup_over_macs']:.2f}", flush=True)
    return rows


def render(data: dict) -> str:
    meta = data["meta"]
    out = [
        "# Where eager latency goes after pruning",
        "",
        f"{run_line(meta)}. PyTorch eager on the CPU at batch 1, {meta['iters']} forwards per round, "
        f"{meta['rounds']} interleaved rounds, median per module. Speed-up / MAC reduction: the whole "
        "forward's, the convolutions' alone, and the forward's without its batch norms (what folding them "
        "leaves). Wall time " + f"{meta.get('wall_minutes', float('nan')):.0f} min.",
        "",
        "| model | variant | round_to | MAC reduction | forward ms (before -> after) | speed-up / MAC reduction | "
        "convolutions only | without batch norms | per kind: ms before -> after (speed-up) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in data["results"]:
        kinds = "; ".join(f"{k} {b:.1f} -> {p:.1f} ({b / max(p, 1e-9):.2f}x)" for k, (b, p) in r["kinds_ms"].items())
        out.append(
            f"| {r['model']} | {r['variant']} | {r['round_to']} | {r['mac_reduction']:.2f}x | "
            f"{r['forward_ms'][0]:.1f} -> {r['forward_ms'][1]:.1f} | {r['speedup_over_macs']:.2f} | "
            f"{r['conv_speedup_over_macs']:.2f} | {r['without_norms_over_macs']:.2f} | {kinds} |"
        )
    out += ["", "The convolutions furthest under their own MAC reduction, per cut:", ""]
    out += ["| model | variant | layer | widths (in/out) before -> after | ms before -> after | MAC reduction | "
            "speed-up / MAC reduction |", "|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in data["results"]:
        for c in r["worst_convs"]:
            wb, wa = c["widths_before"], c["widths_after"]
            out.append(
                f"| {r['model']} | {r['variant']} | {c['layer']} | {wb[0]}/{wb[1]} -> {wa[0]}/{wa[1]} | "
                f"{c['ms_before']:.2f} -> {c['ms_after']:.2f} | {c['mac_reduction']:.2f}x | {c['efficiency']:.2f} |"
            )
    return "\n".join(out) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=["resnet50", "resnet56"], choices=list(SIZES))
    ap.add_argument("--factors", nargs="+", type=int, default=[2, 3])
    ap.add_argument("--iters", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--worst", type=int, default=5, help="convolutions listed per cut")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results"))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    meta = {**machine_meta(), "threads": args.threads, "iters": args.iters, "rounds": args.rounds}
    meta["loadavg_1min_before"] = os.getloadavg()[0]
    start, results = time.perf_counter(), []
    for name in args.models:
        results += run_model(name, args)
    meta["loadavg_1min_after"] = os.getloadavg()[0]
    meta["wall_minutes"] = (time.perf_counter() - start) / 60
    write_results(args.out, "latency_breakdown", {"meta": meta, "results": results}, render)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
