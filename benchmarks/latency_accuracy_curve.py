"""Accuracy at equal measured latency, read off uniform L1's accuracy-latency curve.

Run: ``python benchmarks/latency_accuracy_curve.py [--seeds 0 1]``. ``latency_accuracy.py``
compares each method with one uniform L1 cut, aiming the method's search at that cut's measured
latency. On the 2-CPU machine of the results a reading moves by 5-10%, so a search aimed at a
cut's own latency lands a step either side of it by chance (ResNet-20 cuts a step apart differ
by 4-5% in latency and 16% in MACs), and that coin flip decides the comparison. Here uniform L1
is cut at several sparsities (``--sparsities``), each fine-tuned, and every model of a seed
(the original, the uniform cuts and the methods' cuts) is timed in the same ``--rounds``
interleaved rounds; a model's latency ratio is the median over rounds of its time over the
original's in that round. Each method is then compared with uniform L1's top-1 interpolated
(linearly, between the two uniform cuts around it) at the method's own measured latency: the
accuracy-latency trade-off, wherever the method's search landed. A method outside the uniform
cuts' latency range is not compared (``outside``). A method whose cut is one of the uniform cuts
exactly (the allocation search keeping its uniform candidate) is that model: it is not timed or
fine-tuned a second time, and its difference is 0.

The methods are pruned as in ``latency_accuracy.py`` (``prune_method``: ``target_latency`` is
the uniform cut at ``--target-from``'s timed ratio, or ``--target-latency`` as given: a user's
budget, which no cut sits on exactly, where a search aimed at a cut's own latency decides by a
coin flip whether that very cut fits), fine-tuned the same way and scored on the
10k Fashion-MNIST test split. Writes ``benchmarks/results/latency_accuracy_curve.json`` and
``.md`` after every seed.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import warnings

import numpy as np
import torch

import prunekit

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import machine_meta  # noqa: E402
from _fmnist_resnet import trained_resnet20  # noqa: E402
from latency_accuracy import (  # noqa: E402
    METHODS,
    evaluate_top1,
    finetune,
    paired_timing,
    prune_method,
    width_summary,
)
from render import write_results  # noqa: E402

from prunekit.data import get_dataset, make_loader
from prunekit.latency import Meter


def interpolate(points: list[tuple[float, float]], ratio: float) -> float | None:
    """The top-1 of the uniform curve ``points`` ((latency ratio, top-1), any order) at ``ratio``,
    linearly between the two points around it; ``None`` outside their range."""
    xs, ys = zip(*sorted(points), strict=True)
    if not xs[0] <= ratio <= xs[-1]:
        return None
    return float(np.interp(ratio, xs, ys))


def same_cut(state: dict[str, torch.Tensor], cuts: dict[str, dict[str, torch.Tensor]]) -> str | None:
    """The uniform cut whose weights before fine-tuning are ``state`` exactly (same tensors, same
    shapes), or None. Such a method's model is that cut (fine-tuning is seeded), so it takes the
    cut's latency ratio and top-1: timing the same model twice would compare it with itself at
    two readings, and interpolating between them turns the noise into a difference."""
    for name, other in cuts.items():
        if other.keys() == state.keys() and all(torch.equal(other[k], v) for k, v in state.items()):
            return name
    return None


def time_all(meter: Meter, models: dict[str, torch.nn.Module], x: torch.Tensor, rounds: int) -> dict[str, float]:
    """Every model's latency ratio to ``models["original"]``: the median over ``rounds`` interleaved rounds of its
    time over the original's in the same round."""
    times = meter.interleaved({k: meter.prepare(m, x) for k, m in models.items()}, rounds)
    base = times["original"]
    return {k: statistics.median(t / o for t, o in zip(v, base, strict=True)) for k, v in times.items()}


def run_seed(seed: int, args: argparse.Namespace, test: torch.utils.data.DataLoader, x: torch.Tensor) -> list[dict]:
    base, _ = trained_resnet20(epochs=args.epochs, seed=seed)
    meter = Meter(args.backend, batch=args.batch, threads=args.threads, min_run_time=0.5)
    models: dict[str, torch.nn.Module] = {"original": base}
    rows: dict[str, dict] = {}
    fresh: dict[str, dict[str, torch.Tensor]] = {}  # each uniform cut's weights before fine-tuning
    target = args.target_latency  # else the --target-from cut's timed ratio
    for s in args.sparsities:
        name = f"uniform L1 {s:g}"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model, report = prunekit.prune(base, x, sparsity=s)
        if s == args.target_from and args.target_latency is None:
            target = paired_timing(meter, base, model, x, args.target_rounds)["ratio"]
        fresh[name] = {k: v.clone() for k, v in model.state_dict().items()}
        finetune(model, seed, args.finetune_epochs, args.finetune_lr)
        models[name] = model
        rows[name] = {"method": name, "sparsity": s, "macs_ratio": report.macs_ratio}
    if target is None:
        raise SystemExit("--target-from must be one of --sparsities")
    for name in args.methods:
        model, report = prune_method(name, base, x, target, args)
        rows[name] = {"method": name, "target_latency": target, "macs_ratio": report.macs_ratio,
                      "allocation_search": report.config.get("allocation_search")}  # fmt: skip
        same = same_cut(model.state_dict(), fresh)
        if same is not None:  # the very model of a uniform cut: its latency and top-1, not a second reading
            rows[name]["same_as"] = same
            continue
        finetune(model, seed, args.finetune_epochs, args.finetune_lr)
        models[name] = model
    ratios = time_all(meter, models, x, args.rounds)
    for name, row in rows.items():
        if "same_as" in row:
            continue
        model = models[name]
        row.update(seed=seed, latency_ratio=ratios[name], top1=evaluate_top1(model, test), loadavg=os.getloadavg()[0])
        row["widths"] = {n: m.out_channels for n, m in model.named_modules() if isinstance(m, torch.nn.Conv2d)}
    for row in rows.values():
        if "same_as" in row:
            twin = rows[row["same_as"]]
            row.update({k: twin[k] for k in ("seed", "latency_ratio", "top1", "loadavg", "widths")})
    curve = [(r["latency_ratio"], r["top1"]) for r in rows.values() if "sparsity" in r]
    for name in args.methods:
        row = rows[name]
        at = interpolate(curve, row["latency_ratio"])
        row["uniform_top1_at_latency"] = at
        row["difference"] = None if at is None else row["top1"] - at
    return list(rows.values())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1])
    ap.add_argument("--sparsities", nargs="+", type=float, default=[0.4, 0.5, 0.6])
    ap.add_argument("--target-from", type=float, default=0.5)
    ap.add_argument("--target-latency", type=float, help="the methods' target_latency as given (not --target-from's)")
    ap.add_argument("--methods", nargs="+", default=["latency-aware", "latency-aware, searched"], choices=list(METHODS))
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--finetune-epochs", type=int, default=3)
    ap.add_argument("--finetune-lr", type=float, default=0.01)
    ap.add_argument("--calib-batches", type=int, default=8)
    ap.add_argument("--allocation-batches", type=int, default=16)
    ap.add_argument("--backend", default="torch")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=9, help="interleaved rounds timing every model of a seed")
    ap.add_argument("--target-rounds", type=int, default=7, help="interleaved pairs timing the target's uniform cut")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results"))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    test = make_loader(get_dataset("fashion-mnist", train=False, download=False), batch_size=500)
    meta = {**machine_meta(), **{k: v for k, v in vars(args).items() if k != "out"},
            "loadavg_before": os.getloadavg()[0]}  # fmt: skip
    x = torch.randn(1, 1, 28, 28)
    rows: list[dict] = []
    t0 = time.perf_counter()
    for seed in args.seeds:
        rows += run_seed(seed, args, test, x)
        meta.update(wall_s=time.perf_counter() - t0, loadavg_after=os.getloadavg()[0])
        # written after every seed, so a run cut short keeps the seeds it finished
        write_results(args.out, "latency_accuracy_curve", {"meta": meta, "results": rows},
                      lambda d: render(d["meta"], d["results"]))  # fmt: skip
        print(f"seed {seed} done at {meta['wall_s']:.0f} s", flush=True)
    return 0


def target_words(meta: dict) -> str:
    """What the methods' target_latency was, for the header."""
    if meta.get("target_latency") is not None:
        return f"target_latency={meta['target_latency']:g} as given"
    return f"target_latency = the {meta['target_from']:g} cut's ratio timed in {meta['target_rounds']} pairs"


def render(meta: dict, rows: list[dict]) -> str:
    lines = [
        "# Accuracy at equal measured latency, against uniform L1's accuracy-latency curve",
        "",
        f"`{meta['command']}` on {meta['platform']} ({meta['cpu_count']} CPUs, {meta['threads']} thread(s)), torch "
        f"{meta['torch']}; load average {meta['loadavg_before']:.1f} before, {meta.get('loadavg_after', 0):.1f} "
        f"after. ResNet-20 trained {meta['epochs']} epochs on the embedded Fashion-MNIST subset (10k images); "
        f"uniform L1 cut at sparsities {', '.join(f'{s:g}' for s in meta['sparsities'])}; the methods pruned to "
        + target_words(meta)
        + f" (latency on {meta['backend']} at batch {meta['batch']}); every model fine-tuned {meta['finetune_epochs']} "
        f"epochs at lr {meta['finetune_lr']} and scored on the 10k Fashion-MNIST test split. Latency ratio: every "
        f"model of a seed timed in the same {meta['rounds']} interleaved rounds, the median over rounds of its time "
        "over the original's. `uniform L1 at that latency`: uniform L1's top-1 interpolated between the two uniform "
        "cuts around the method's ratio." + (f" Wall time {meta['wall_s'] / 60:.0f} min." if "wall_s" in meta else ""),
        *(["", meta["note"]] if meta.get("note") else []),
        "",
        "| seed | model | MACs kept | latency ratio | top-1 after fine-tuning | uniform L1 at that latency | "
        "difference | kept by the search | widths kept |",
        "|---" * 9 + "|",
    ]
    for r in rows:
        at, diff = r.get("uniform_top1_at_latency"), r.get("difference")
        search = r.get("allocation_search")
        kept = search["kept"] if search else "-"
        if r.get("same_as"):
            kept += f" (the {r['same_as']} model itself)"
        lines.append(
            f"| {r['seed']} | {r['method']} | {r['macs_ratio']:.1%} | {r['latency_ratio']:.3f} | {r['top1']:.2%} | "
            f"{'-' if 'sparsity' in r else ('outside' if at is None else f'{at:.2%}')} | "
            f"{'-' if diff is None else f'{diff:+.2%}'} | {kept} | "
            f"{width_summary(r['widths'])} |"
        )
    lines += ["", "Widths kept: the residual stream of stages 1/2/3 (of 16/32/64), then each stage's three inner convs.",
              "", "| method | seeds compared | mean difference (per seed) | seeds at or above uniform L1's curve |",
              "|---|---|---|---|"]  # fmt: skip
    for m in meta["methods"]:
        diffs = [r["difference"] for r in rows if r["method"] == m and r.get("difference") is not None]
        shown = ", ".join(f"{d:+.2%}" for d in diffs)
        mean = f"{statistics.mean(diffs):+.2%} ({shown})" if diffs else "-"
        lines.append(f"| {m} | {len(diffs)} | {mean} | {sum(d >= 0 for d in diffs)} of {len(diffs)} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
