"""Sparsity training before pruning: ResNet-20 on Fashion-MNIST, pruned to half the MACs.

Run (one seed per process fits the 2-core machine; merge the files afterwards)::

    python benchmarks/sparsity_study.py --seeds 0 --out /tmp/s0
    python benchmarks/sparsity_study.py --seeds 1 --out /tmp/s1
    python benchmarks/sparsity_study.py --merge /tmp/s0/sparsity_study.json /tmp/s1/sparsity_study.json

Per seed, every arm starts from the same pretrained ResNet-20 (``accuracy_study.baseline``, cached
in ``benchmarks/.cache/``), trains ``--sparsify-epochs`` more epochs, prunes to ``--target-macs``
of the MACs with prunekit's L1 criterion (``prune_(..., target_macs=...)``), and fine-tunes
``--finetune-epochs``; every arm has the same epoch budget after pretraining:

* ``plain``: the extra epochs without a penalty (train -> L1 prune -> fine-tune);
* ``group_lasso``: the extra epochs with group lasso over the coupled groups;
* ``greg``: the extra epochs with GReg-1 on the channels an L1 prune at the same sparsity would cut;
* ``slimming`` (optional): L1 on the BatchNorm scales, pruned with the ``bn_scale`` criterion.

Test accuracy is recorded after the extra epochs (unpruned), right after pruning and after
fine-tuning. Writes ``<out>/sparsity_study.json`` after every arm (partial results say so) and
``.md``.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import sys
import time

import torch
import torch.nn as nn

import prunekit
from prunekit.data import get_dataset, make_loaders
from prunekit.pipeline import StepLR, TrainOptions, build_optimizer, evaluate, train_epoch
from prunekit.pipeline.sparsify import RegularizedLoss
from prunekit.pipeline.train import cross_entropy_loss
from prunekit.regularizers import GroupLasso, GrowingRegularizer, Regularizer, Slimming

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import load_runs, machine_meta, write_atomic  # noqa: E402
from accuracy_study import CACHE, baseline, pick_dataset  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ARMS = ("plain", "group_lasso", "greg", "slimming")
SAME_SETTINGS = ("model", "dataset", "pretrain_epochs", "sparsify_epochs", "finetune_epochs", "lr", "sparsify_lr",
                 "finetune_lr", "batch_size", "max_batches", "target_macs", "threshold", "prunekit")  # fmt: skip


def fit(model: nn.Module, loader, *, epochs: int, lr: float, args, label: str, reg: Regularizer | None = None,
        x: torch.Tensor | None = None) -> list[dict]:  # fmt: skip
    """SGD (momentum 0.9, Nesterov, weight decay 5e-4), cosine LR from ``lr``, plus ``reg``'s penalty."""
    options = TrainOptions(epochs=epochs, lr=lr, nesterov=True, amp=False, max_batches=args.max_batches)
    steps = min(len(loader), args.max_batches or len(loader))
    optimizer, schedule = build_optimizer(model, options), StepLR(options, steps_per_epoch=steps)
    if reg is not None:
        reg.setup(model, prunekit.DependencyGraph(model, x))
    log = []
    for epoch in range(epochs):
        loss = cross_entropy_loss()
        if reg is not None:
            loss = RegularizedLoss(loss, reg, model, start_step=epoch * steps)
        stats = train_epoch(model, loader, optimizer, loss_fn=loss, step=epoch * steps, schedule=schedule,
                            device=args.device, max_batches=args.max_batches)  # fmt: skip
        row = {"epoch": epoch, "loss": stats.loss, "train_acc": stats.acc}
        if reg is not None:
            row["penalty"] = loss.mean_penalty
            row["below"] = reg.below(model, args.threshold)
        log.append(row)
        print(
            f"    {label} epoch {epoch + 1}/{epochs}: " + ", ".join(f"{k} {v:.4g}" for k, v in row.items()), flush=True
        )
    return log


def arm_labels(args) -> list[str]:
    """The arms in run order; group lasso once per ``--gl-strengths`` value (``group_lasso@0.1``)."""
    out = []
    for arm in args.arms:
        out += [f"group_lasso@{s:g}" for s in args.gl_strengths] if arm == "group_lasso" else [arm]
    return out


def make_regularizer(arm: str, args, sparsity: float) -> tuple[Regularizer | None, str]:
    """The arm's regularizer and the criterion its prune uses."""
    if arm == "plain":
        return None, "l1"
    if arm.startswith("group_lasso@"):
        return GroupLasso(strength=float(arm.partition("@")[2])), "l1"
    if arm == "greg":
        return GrowingRegularizer(strength=args.greg_ceiling, sparsity=sparsity, delta=args.greg_delta,
                                  interval=args.greg_interval), "l1"  # fmt: skip
    return Slimming(strength=args.slim_strength), "bn_scale"


def study(args: argparse.Namespace, dataset: str, meta: dict, save) -> list[dict]:
    rows: list[dict] = []
    x = torch.randn(1, 1, 28, 28)
    base_args = argparse.Namespace(epochs=args.pretrain_epochs, lr=args.lr, batch_size=args.batch_size,
                                   max_batches=None, cache=args.cache, device=args.device)  # fmt: skip
    for seed in args.seeds:
        print(f"seed {seed}", flush=True)
        train, test = make_loaders(dataset, batch_size=args.batch_size, seed=seed, augment=True, download=False)

        def acc(model: nn.Module, test=test) -> float:
            return evaluate(model, test, device=args.device, max_batches=args.eval_batches).top1

        base = baseline(base_args, dataset, seed, train).to(args.device)
        acc_base = acc(base)
        base.cpu()
        macs0 = prunekit.count_macs(base, (x,))
        # the local sparsity an L1 prune to the MACs target uses: GReg pushes those channels
        sparsity = float(prunekit.prune(base, x, target_macs=args.target_macs, criterion="l1")[1].config["sparsity"])
        print(f"  pretrained: test acc {acc_base:.4f}; L1 sparsity for {args.target_macs:.0%} MACs: {sparsity:.4f}")
        for arm in arm_labels(args):
            model = copy.deepcopy(base).to(args.device)
            reg, criterion = make_regularizer(arm, args, sparsity)
            t0 = time.perf_counter()
            torch.manual_seed(seed)
            log = fit(model, train, epochs=args.sparsify_epochs, lr=args.sparsify_lr, args=args, label=arm, reg=reg,
                      x=x.to(args.device))  # fmt: skip
            row = {"seed": seed, "arm": arm, "criterion": criterion, "acc_pretrained": acc_base,
                   "regularizer": reg.describe() if reg is not None else None, "sparsify_log": log,
                   "acc_before_prune": acc(model)}  # fmt: skip
            model.cpu()
            report = prunekit.prune_(model, x, target_macs=args.target_macs, criterion=criterion)
            row["macs_ratio"] = prunekit.count_macs(model, (x,)) / macs0
            row["prune_sparsity"] = report.config["sparsity"]
            model.to(args.device)
            row["acc_pruned"] = acc(model)
            torch.manual_seed(seed)
            fit(model, train, epochs=args.finetune_epochs, lr=args.finetune_lr, args=args, label=f"{arm} fine-tune")
            row["acc_finetuned"] = acc(model)
            row["seconds"] = time.perf_counter() - t0
            print(f"  {arm}: {row['acc_before_prune']:.4f} before pruning -> {row['acc_pruned']:.4f} right after "
                  f"(MACs {row['macs_ratio']:.1%}) -> {row['acc_finetuned']:.4f} fine-tuned", flush=True)  # fmt: skip
            rows.append(row)
            save(rows, partial=True)
    return rows


def render(data: dict) -> str:
    meta = data["meta"]
    partial = meta.get("partial")
    lines = [
        "# Sparsity training before pruning (ResNet-20, Fashion-MNIST, half the MACs)"
        + (" -- PARTIAL" if partial else ""),
        "",
        f"`{meta['command']}`",
        "",
        f"{meta['model']} on {meta['dataset']}; every arm starts from the same model pretrained for "
        f"{meta['pretrain_epochs']} full epochs (cosine from {meta['lr']}), trains {meta['sparsify_epochs']} more "
        f"epoch(s) of {meta['max_batches'] or 'all'} batches "
        f"(cosine from {meta['sparsify_lr']}) with its regularizer (none for `plain`), is pruned to "
        f"{meta['target_macs']:.0%} of the MACs (local sparsity found by bisection) and fine-tuned "
        f"{meta['finetune_epochs']} epoch(s) of {meta['max_batches'] or 'all'} batches (cosine from "
        f"{meta['finetune_lr']}): the same budget for every arm. "
        f"Batch {meta['batch_size']}, SGD with Nesterov momentum 0.9, weight decay 5e-4. Strengths: "
        f"{meta['strengths']}. Seeds {meta['seeds']}; torch {meta['torch']}, prunekit {meta['prunekit']}; "
        f"{meta['cpu_count']} CPUs, {meta['torch_threads']} thread(s) per run, 1-min load {meta['loadavg_1min_before']:.1f}"
        f" before / {meta['loadavg_1min_after']:.1f} after; {meta['wall_s'] / 60:.1f} min in all.",
        "",
        "Test accuracy, mean over seeds (per seed in parentheses). `below`: fraction of the prunable "
        f"channels whose norm (group lasso, GReg: over the whole coupled group; slimming: |gamma|) is under "
        f"{meta['threshold']} at the end of the extra epochs.",
        "",
        "| arm | prune criterion | MACs kept | pretrained | after the extra epochs | below | right after pruning | after fine-tuning |",
        "|---|---|---|---|---|---|---|---|",
    ]
    if partial:
        lines[1:1] = ["", f"**Partial results**: {partial}", ""]

    def cell(rows: list[dict], key: str) -> str:
        values = [r[key] for r in rows]
        each = ", ".join(f"{v:.2%}" for v in values)
        return f"{sum(values) / len(values):.2%} ({each})"

    for arm in dict.fromkeys(r["arm"] for r in data["results"]):
        rows = [r for r in data["results"] if r["arm"] == arm]
        if not rows:
            continue
        below = [r["sparsify_log"][-1].get("below") for r in rows]
        below_s = ", ".join(f"{b:.0%}" for b in below) if None not in below else "-"
        macs = sum(r["macs_ratio"] for r in rows) / len(rows)
        lines.append(f"| {arm} | {rows[0]['criterion']} | {macs:.1%} | {cell(rows, 'acc_pretrained')} | "
                     f"{cell(rows, 'acc_before_prune')} | {below_s} | {cell(rows, 'acc_pruned')} | "
                     f"{cell(rows, 'acc_finetuned')} |")  # fmt: skip
    if meta.get("note"):
        lines += ["", meta["note"]]
    return "\n".join(lines) + "\n"


def write(out: str, data: dict) -> None:
    os.makedirs(out, exist_ok=True)
    write_atomic(os.path.join(out, "sparsity_study.json"), json.dumps(data, indent=2) + "\n")
    write_atomic(os.path.join(out, "sparsity_study.md"), render(data))


def merge(paths: list[str]) -> dict:
    """Combines the files of runs with other seeds or other arms (each row records its own
    regularizer and strength); refuses files whose shared settings differ or that repeat a row."""
    runs = load_runs(paths, SAME_SETTINGS)
    first = runs[0]["meta"]
    rows = [row for r in runs for row in r["results"]]
    keys = [(row["seed"], row["arm"]) for row in rows]
    if len(set(keys)) != len(keys):
        raise SystemExit(f"--merge: some (seed, arm) rows repeat across the files: {sorted(keys)}")
    meta = {**first, "seeds": sorted({s for r in runs for s in r["meta"]["seeds"]})}
    meta["arms"] = list(dict.fromkeys(a for r in runs for a in r["meta"]["arms"]))
    meta["strengths"] = {
        **first["strengths"],
        "group_lasso": sorted({g for r in runs for g in r["meta"]["strengths"]["group_lasso"]
                               if any(row["arm"] == f"group_lasso@{g:g}" for row in rows)}),
    }  # fmt: skip
    meta["wall_s"] = max(r["meta"]["wall_s"] for r in runs)  # the runs ran side by side
    meta["command"] = " + ".join(r["meta"]["command"] for r in runs) + " (side by side, merged with --merge)"
    meta["loadavg_1min_before"] = max(r["meta"]["loadavg_1min_before"] for r in runs)
    meta["loadavg_1min_after"] = max(r["meta"]["loadavg_1min_after"] for r in runs)
    partial = [r["meta"]["partial"] for r in runs if r["meta"].get("partial")]
    meta["partial"] = "; ".join(partial) if partial else None
    return {"meta": meta, "results": rows}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--merge", nargs="+", metavar="JSON", help="combine result files of runs with other seeds")
    ap.add_argument("--note", help="with --merge: a paragraph added under the table (how the runs were started)")
    ap.add_argument("--seeds", nargs="+", type=int, default=[0])
    ap.add_argument("--arms", nargs="+", default=["plain", "group_lasso", "greg"], choices=ARMS)
    ap.add_argument("--pretrain-epochs", type=int, default=2)
    ap.add_argument("--sparsify-epochs", type=int, default=1, help="extra epochs before pruning, every arm")
    ap.add_argument("--finetune-epochs", type=int, default=1)
    ap.add_argument("--lr", type=float, default=0.1, help="pretraining peak LR (cosine)")
    ap.add_argument("--sparsify-lr", type=float, default=0.01)
    ap.add_argument("--finetune-lr", type=float, default=0.01)
    ap.add_argument("--gl-strengths", type=float, nargs="+", default=[0.1], help="group lasso lambda(s), one arm each")
    ap.add_argument("--greg-ceiling", type=float, default=1.0, help="GReg's lambda_max")
    ap.add_argument("--greg-delta", type=float, default=1e-2, help="GReg's increment")
    ap.add_argument("--greg-interval", type=int, default=2, help="GReg's steps between increments")
    ap.add_argument("--slim-strength", type=float, default=1e-3, help="slimming lambda")
    ap.add_argument("--threshold", type=float, default=1e-2, help="a channel norm under this counts as zero")
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--max-batches", type=int, default=None, help="cap every sparsify / fine-tune epoch")
    ap.add_argument("--eval-batches", type=int, default=None, help="cap every evaluation (smoke runs)")
    ap.add_argument("--target-macs", type=float, default=0.5)
    ap.add_argument("--dataset", default="auto", choices=["auto", "fashion-mnist", "fashion-mnist-embedded"])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default=os.path.join(HERE, "results"))
    ap.add_argument("--cache", default=CACHE)
    args = ap.parse_args()
    if args.merge:
        data = merge(args.merge)
        data["meta"]["note"] = args.note
        write(args.out, data)
        print(render(data))
        return 0
    torch.set_num_threads(args.threads)
    dataset = pick_dataset(args.dataset)
    sizes = f"{len(get_dataset(dataset, train=True, download=False))}/{len(get_dataset(dataset, train=False, download=False))}"
    started, load_before = time.perf_counter(), os.getloadavg()[0]
    meta = {
        **machine_meta(),
        "model": "CIFAR-style ResNet-20 (1 input channel)",
        "dataset": f"{dataset} ({sizes} train/test)" + (" -- the embedded subset, not the full set" if "embedded" in dataset else ""),
        "seeds": args.seeds, "arms": args.arms, "pretrain_epochs": args.pretrain_epochs,
        "sparsify_epochs": args.sparsify_epochs, "finetune_epochs": args.finetune_epochs, "lr": args.lr,
        "sparsify_lr": args.sparsify_lr, "finetune_lr": args.finetune_lr, "batch_size": args.batch_size,
        "max_batches": args.max_batches, "eval_batches": args.eval_batches, "target_macs": args.target_macs,
        "threshold": args.threshold, "device": args.device, "threads": args.threads,
        "strengths": {"group_lasso": args.gl_strengths, "greg": {"ceiling": args.greg_ceiling, "delta": args.greg_delta,
                      "interval": args.greg_interval}, "slimming": args.slim_strength},
        "loadavg_1min_before": load_before,
    }  # fmt: skip

    def save(rows: list[dict], *, partial: bool) -> None:
        done = {(r["seed"], r["arm"]) for r in rows}
        todo = [f"seed {s} {a}" for s in args.seeds for a in arm_labels(args) if (s, a) not in done]
        meta.update(wall_s=time.perf_counter() - started, loadavg_1min_after=os.getloadavg()[0])
        meta["partial"] = f"not yet run: {', '.join(todo)}" if todo else None
        write(args.out, {"meta": meta, "results": rows})

    rows = study(args, dataset, meta, save)
    save(rows, partial=False)
    print(render({"meta": meta, "results": rows}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
