"""How well the allocation search's score ranks cuts: the score against top-1 after fine-tuning.

Run: ``python benchmarks/allocation_proxy.py [--seed 0]``. ResNet-20 trained on the embedded
Fashion-MNIST subset (``_fmnist_resnet``, 10 epochs, cached) is cut five ways near a quarter of
its MACs (the cuts the latency-aware search chooses between on this model):

* ``s64``: uniform halving, stage 3's inner convs at a quarter and its residual stream whole;
* ``uniform``: every group halved (uniform L1);
* ``uniform 0.55``: every group at sparsity 0.55 (uniform L1 a step further);
* ``greedy``: uniform halving with stage 3's inner convs at a quarter;
* ``greedy, stream 8``: that, and stage 2's residual stream at a quarter.

Each cut is scored by :func:`prunekit.engine.allocation_search.adaptive_bn_score` with
``--steps`` SGD steps first (0: EagleEye's re-estimated batch-norm statistics alone), on two
draws of ``--batches`` labelled training batches (``--data-seeds``), then fine-tuned as
``latency_accuracy.py`` does (``--finetune-epochs`` at ``--finetune-lr``) and evaluated on the
10k Fashion-MNIST test split. Per score setting: the rank correlation (Spearman) of the loss
(lower is better) and of top-1 with the top-1 after fine-tuning. Writes
``benchmarks/results/allocation_proxy.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings

import numpy as np
import torch

import prunekit

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import machine_meta  # noqa: E402
from _fmnist_resnet import labelled_batches, trained_resnet20  # noqa: E402
from latency_accuracy import evaluate_top1, finetune  # noqa: E402
from render import write_results  # noqa: E402

from prunekit.data import get_dataset, make_loader
from prunekit.engine.allocation_search import adaptive_bn_score


def _holds(group, name: str) -> bool:  # noqa: ANN001
    return any(m.module == name and m.role == "out" for m in group.members)


def _inner(group, stage: int) -> bool:  # noqa: ANN001
    return any(
        m.module.startswith(f"layer{stage}.") and m.module.endswith("conv1") and m.role == "out" for m in group.members
    )


CUTS = {
    "s64": (0.5, lambda g: 0.0 if _holds(g, "layer3.0.conv2") else (0.75 if _inner(g, 3) else 0.5)),
    "uniform": (0.5, None),
    "uniform 0.55": (0.55, None),
    "greedy": (0.5, lambda g: 0.75 if _inner(g, 3) else 0.5),
    "greedy, stream 8": (0.5, lambda g: 0.75 if _inner(g, 3) or _holds(g, "layer2.0.conv2") else 0.5),
}


def spearman(a: list[float], b: list[float]) -> float:
    ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    return float(np.corrcoef(ra, rb)[0, 1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--steps", nargs="+", type=int, default=[0, 16, 64])
    ap.add_argument("--batches", type=int, default=16)
    ap.add_argument("--data-seeds", nargs="+", type=int, default=[1, 7])
    ap.add_argument("--finetune-epochs", type=int, default=3)
    ap.add_argument("--finetune-lr", type=float, default=0.01)
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    base, info = trained_resnet20(epochs=10, seed=args.seed)
    x = torch.randn(1, 1, 28, 28)
    test = make_loader(get_dataset("fashion-mnist", train=False, download=False), batch_size=500)
    full = prunekit.count_macs(base, (x,))
    rows = []
    for name, (sparsity, per_group) in CUTS.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model, _ = prunekit.prune(base, x, sparsity=sparsity, group_sparsity=per_group)
        row = {"cut": name, "macs_kept": prunekit.count_macs(model, (x,)) / full, "scores": {}}
        row["widths"] = [m.out_channels for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
        for data_seed in args.data_seeds:
            data = labelled_batches(args.batches, seed=data_seed)
            for steps in args.steps:
                s = adaptive_bn_score(model, data, steps=steps)
                row["scores"][f"{steps}/{data_seed}"] = {"loss": s.loss, "top1": s.top1}
        finetune(model, args.seed, args.finetune_epochs, args.finetune_lr)
        row["finetuned_top1"] = evaluate_top1(model, test)
        rows.append(row)
        print(json.dumps(row), flush=True)
    meta = {**machine_meta(), **{k: v for k, v in vars(args).items() if k != "out"}, "baseline": info,
            "baseline_top1": evaluate_top1(base, test), "wall_s": time.perf_counter() - t0}  # fmt: skip
    write_results(args.out, "allocation_proxy", {"meta": meta, "rows": rows}, lambda d: render(d["meta"], d["rows"]))
    return 0


def render(meta: dict, rows: list[dict]) -> str:
    keys = list(rows[0]["scores"])
    truth = [r["finetuned_top1"] for r in rows]
    lines = [
        "# How well the allocation search's score ranks cuts",
        "",
        f"`{meta['command']}` on {meta['platform']} ({meta['cpu_count']} CPUs, 1 thread), torch {meta['torch']}. "
        f"ResNet-20 (seed {meta['seed']}, {meta['baseline_top1']:.2%} top-1 on the 10k Fashion-MNIST test split) cut "
        "five ways near a quarter of its MACs; each cut scored by `adaptive_bn_score` (steps of SGD at lr 0.01 "
        f"on the first half of {meta['batches']} labelled training batches of 128, batch-norm statistics estimated "
        "again on that half, loss and top-1 on the second half) for two draws of the batches (`steps/data seed`), "
        f"then fine-tuned {meta['finetune_epochs']} epochs at lr {meta['finetune_lr']} and scored on the test "
        f"split. Wall time {meta['wall_s'] / 60:.0f} min.",
        "",
        "| cut | MACs kept | top-1 after fine-tuning | " + " | ".join(f"loss / top-1 at {k}" for k in keys) + " |",
        "|---" * (3 + len(keys)) + "|",
    ]
    for r in rows:
        cells = " | ".join(f"{r['scores'][k]['loss']:.3f} / {r['scores'][k]['top1']:.1%}" for k in keys)
        lines.append(f"| {r['cut']} | {r['macs_kept']:.1%} | {r['finetuned_top1']:.2%} | {cells} |")
    lines += [
        "",
        "Rank correlation (Spearman) with the top-1 after fine-tuning: of the loss (negated: lower is better) and "
        "of the top-1.",
        "",
        "| steps/data seed | loss | top-1 |",
        "|---|---|---|",
    ]
    for k in keys:
        loss = spearman([-r["scores"][k]["loss"] for r in rows], truth)
        top1 = spearman([r["scores"][k]["top1"] for r in rows], truth)
        lines.append(f"| {k} | {loss:+.2f} | {top1:+.2f} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
