"""Accuracy on real data: ResNet-20 on Fashion-MNIST, pruned to 2x fewer MACs by each criterion.

Run (Torch-Pruning's row needs the benchmark environment, ``bash benchmarks/setup_env.sh``)::

    .venv-bench/bin/python benchmarks/accuracy_study.py [--seeds 0 1] [--epochs E] [--finetune-epochs F]

Per seed: train a CIFAR-style ResNet-20 (1 input channel) from scratch for ``--epochs``, then for
each method prune a copy to ``--target-macs`` of the MACs (prunekit's ``target_macs``; for
Torch-Pruning, its pruning ratio is found by bisection to the same MACs), and fine-tune it for
``--finetune-epochs`` with the same optimiser and schedule for every method. Test accuracy is
recorded before, right after pruning, and after fine-tuning. The data is the full Fashion-MNIST
(60k/10k, Debian's ``dataset-fashion-mnist`` in ``/usr/share/datasets/fashion-mnist``) when
installed, else the 10k/2k subset embedded in prunekit; the table says which. Training uses
prunekit's pipeline loop (``prunekit.pipeline.train_epoch`` / ``evaluate``). Baselines are cached
in ``benchmarks/.cache/`` (not committed) and re-created when absent. Writes
``benchmarks/results/accuracy_study.json`` and ``.md``.

Defaults (3 + 1 epochs, one seed) are sized for 2 CPU cores: about one epoch per method on the
full set. Use ``--device cuda`` and more epochs where a GPU is available.
"""

from __future__ import annotations

import argparse
import copy
import os
import sys
import time
from collections.abc import Callable

import torch
import torch.nn as nn

import prunekit
from prunekit.data import get_dataset, make_loader, make_loaders
from prunekit.data.fashion_mnist import find_fashion_mnist
from prunekit.errors import ConfigError
from prunekit.fileio import torch_save
from prunekit.models import get_model
from prunekit.pipeline import StepLR, TrainOptions, build_optimizer, evaluate, train_epoch
from prunekit.pipeline.train import cross_entropy_loss

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import load_runs, machine_meta  # noqa: E402
from _tp import tp_prune_, tp_version  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
CACHE = os.path.join(HERE, ".cache")
NUM_CLASSES = 10


class Unavailable(Exception):
    """A method whose code is not installed here; the row says why instead of a number."""


def pick_dataset(choice: str) -> str:
    if choice != "auto":
        return choice
    try:
        find_fashion_mnist(download=False)
        return "fashion-mnist"
    except ConfigError:
        return "fashion-mnist-embedded"


# ---- methods: each prunes ``model`` (on CPU) in place to ``target`` of its MACs --------------------
Method = Callable[[nn.Module, torch.Tensor, list, int, float], None]


def _criterion(name: str, **options: object) -> Method:
    def prune(model: nn.Module, x: torch.Tensor, calib: list, seed: int, target: float) -> None:
        opts = {k: (calib if v == "calib" else seed if v == "seed" else v) for k, v in options.items()}
        prunekit.prune_(model, x, target_macs=target, criterion=prunekit.get_criterion(name, **opts))

    return prune


def _reconstruction(model: nn.Module, x: torch.Tensor, calib: list, seed: int, target: float) -> None:
    try:
        from prunekit.reconstruction import channel_prune_
    except ImportError as exc:
        raise Unavailable(f"prunekit.reconstruction is not available ({exc})") from exc
    channel_prune_(model, x, calibration=calib, target_macs=target, seed=seed)


def _tp_magnitude(model: nn.Module, x: torch.Tensor, calib: list, seed: int, target: float) -> None:
    """Torch-Pruning's L1 magnitude pruner, its uniform ratio bisected on copies to ``target`` MACs."""
    if tp_version() is None:
        raise Unavailable("torch-pruning is not installed here (run benchmarks/setup_env.sh, use .venv-bench)")
    macs0 = prunekit.count_macs(model, (x,))
    lo, hi = 0.0, 0.95
    for _ in range(14):
        mid = (lo + hi) / 2
        trial = copy.deepcopy(model)
        tp_prune_(trial, x, ratio=mid, num_classes=NUM_CLASSES)
        lo, hi = (mid, hi) if prunekit.count_macs(trial, (x,)) / macs0 > target else (lo, mid)
    tp_prune_(model, x, ratio=hi, num_classes=NUM_CLASSES)


METHODS: dict[str, tuple[str, Method]] = {
    "l1": ("prunekit", _criterion("l1")),
    "fpgm": ("prunekit", _criterion("fpgm")),
    "bn_scale": ("prunekit", _criterion("bn_scale")),
    "taylor": ("prunekit", _criterion("taylor", data="calib")),
    "entropy": ("prunekit", _criterion("entropy", data="calib")),
    "random": ("prunekit", _criterion("random", seed="seed")),
    "reconstruction": ("prunekit", _reconstruction),
    "tp-magnitude": ("torch-pruning", _tp_magnitude),
}


# ---- training -----------------------------------------------------------------------------------
def fit(model: nn.Module, loader, *, epochs: int, lr: float, device: str, max_batches: int | None, label: str) -> None:
    """SGD (momentum 0.9, Nesterov, weight decay 5e-4), cosine LR from ``lr`` over ``epochs``."""
    options = TrainOptions(epochs=epochs, lr=lr, nesterov=True, amp=False, max_batches=max_batches)
    steps = min(len(loader), max_batches or len(loader))
    optimizer, schedule = build_optimizer(model, options), StepLR(options, steps_per_epoch=steps)
    for epoch in range(epochs):
        stats = train_epoch(
            model, loader, optimizer, loss_fn=cross_entropy_loss(), step=epoch * steps,
            schedule=schedule, device=device, max_batches=max_batches,
        )  # fmt: skip
        print(f"    {label} epoch {epoch + 1}/{epochs}: loss {stats.loss:.3f}, train acc {stats.acc:.3f}", flush=True)


def baseline(args: argparse.Namespace, dataset: str, seed: int, train) -> nn.Module:
    """The trained ResNet-20 for ``seed``, from the cache when the same settings trained it before."""
    tag = f"{dataset}_e{args.epochs}_lr{args.lr}_b{args.batch_size}_m{args.max_batches}_s{seed}"
    path = os.path.join(args.cache, f"accuracy_resnet20_{tag}.pt")
    torch.manual_seed(seed)
    model = get_model("resnet20", num_classes=NUM_CLASSES, in_channels=1)
    if os.path.exists(path):
        model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        print(f"  baseline loaded from {os.path.relpath(path)}", flush=True)
        return model
    model.to(args.device)
    fit(
        model, train, epochs=args.epochs, lr=args.lr, device=args.device, max_batches=args.max_batches, label="baseline"
    )
    model.cpu()
    torch_save(model.state_dict(), path)
    return model


def study(args: argparse.Namespace, dataset: str) -> list[dict]:
    rows = []
    x = torch.randn(1, 1, 28, 28)
    for seed in args.seeds:
        print(f"seed {seed}", flush=True)
        train, test = make_loaders(dataset, batch_size=args.batch_size, seed=seed, augment=True, download=False)

        def acc(model: nn.Module, test=test) -> float:
            return evaluate(model, test, device=args.device, max_batches=args.max_batches).top1

        calib_set = get_dataset(dataset, train=True, download=False)
        calib = [
            b for _, b in zip(range(4), make_loader(calib_set, batch_size=args.batch_size, shuffle=True, seed=seed))
        ]
        base = baseline(args, dataset, seed, train).to(args.device)
        acc_before = acc(base)
        base.cpu()
        macs0, params0 = prunekit.count_macs(base, (x,)), prunekit.count_params(base)
        print(f"  baseline: test acc {acc_before:.4f}, {macs0 / 1e6:.1f}M MACs", flush=True)
        rows.append({"seed": seed, "method": "baseline", "tool": "-", "acc_before": acc_before, "macs_ratio": 1.0,
                     "params_ratio": 1.0, "acc_pruned": acc_before, "acc_finetuned": acc_before})  # fmt: skip
        for name in args.methods:
            tool, method = METHODS[name]
            row: dict = {"seed": seed, "method": name, "tool": tool, "acc_before": acc_before}
            model = copy.deepcopy(base).eval()
            torch.manual_seed(seed)
            t0 = time.perf_counter()
            try:
                method(model, x, calib, seed, args.target_macs)
            except Unavailable as exc:
                print(f"  {name}: skipped, {exc}", flush=True)
                rows.append({**row, "skipped": str(exc)})
                continue
            row["prune_s"] = time.perf_counter() - t0
            row["macs_ratio"] = prunekit.count_macs(model, (x,)) / macs0
            row["params_ratio"] = prunekit.count_params(model) / params0
            model.to(args.device)
            row["acc_pruned"] = acc(model)
            torch.manual_seed(seed)
            fit(model, train, epochs=args.finetune_epochs, lr=args.finetune_lr, device=args.device,
                max_batches=args.max_batches, label=name)  # fmt: skip
            row["acc_finetuned"] = acc(model)
            print(
                f"  {name} ({tool}): pruned in {row['prune_s']:.1f} s to MACs {row['macs_ratio']:.1%}, acc {acc_before:.4f} -> {row['acc_pruned']:.4f}"
                f" -> {row['acc_finetuned']:.4f} after fine-tuning",
                flush=True,
            )
            rows.append(row)
    return rows


# Settings that must agree before runs of different seeds are combined into one table.
SAME_SETTINGS = ("model", "dataset", "epochs", "finetune_epochs", "lr", "finetune_lr", "batch_size", "max_batches",
                 "target_macs", "prunekit", "torch_pruning")  # fmt: skip


def merge_runs(paths: list[str]) -> dict:
    """Combines result files of the same study run with different seeds (one seed per run fits the
    2-core machine better than one long run); refuses files whose settings differ."""
    runs = load_runs(paths, SAME_SETTINGS)
    first = runs[0]["meta"]
    seeds = [s for run in runs for s in run["meta"]["seeds"]]
    if len(set(seeds)) != len(seeds):
        raise SystemExit(f"--merge: seeds {seeds} repeat across the files")
    meta = {**first, "seeds": seeds, "wall_s": sum(r["meta"]["wall_s"] for r in runs)}
    meta["command"] = " + ".join(r["meta"]["command"] for r in runs) + " (merged with --merge)"
    meta["loadavg_1min_before"] = max(r["meta"]["loadavg_1min_before"] for r in runs)
    meta["loadavg_1min_after"] = max(r["meta"]["loadavg_1min_after"] for r in runs)
    return {"meta": meta, "results": [row for run in runs for row in run["results"]]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--merge", nargs="+", metavar="JSON", help="combine result files of runs with other seeds, no training"
    )
    ap.add_argument("--seeds", nargs="+", type=int, default=[0])
    ap.add_argument("--epochs", type=int, default=3, help="baseline training epochs")
    ap.add_argument("--finetune-epochs", type=int, default=1, help="fine-tuning epochs after pruning, every method")
    ap.add_argument("--lr", type=float, default=0.1, help="baseline peak LR (cosine)")
    ap.add_argument("--finetune-lr", type=float, default=0.01, help="fine-tuning peak LR (cosine)")
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--max-batches", type=int, default=None, help="cap every epoch and evaluation (smoke runs)")
    ap.add_argument("--target-macs", type=float, default=0.5, help="fraction of the MACs to keep")
    ap.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    ap.add_argument("--dataset", default="auto", choices=["auto", "fashion-mnist", "fashion-mnist-embedded"])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=os.path.join(HERE, "results"))
    ap.add_argument("--cache", default=CACHE, help="where trained baselines are kept (not committed)")
    args = ap.parse_args()
    if args.merge:
        from render import render_accuracy, write_results

        write_results(args.out, "accuracy_study", merge_runs(args.merge), render_accuracy)
        return 0
    for opt in ("epochs", "finetune_epochs", "batch_size"):
        if getattr(args, opt) < 1:
            ap.error(f"--{opt.replace('_', '-')} must be at least 1, but got {getattr(args, opt)}")
    if not 0 < args.target_macs < 1:
        ap.error(f"--target-macs must be in (0, 1), but got {args.target_macs}")
    torch.set_num_threads(args.threads)
    dataset = pick_dataset(args.dataset)
    sizes = f"{len(get_dataset(dataset, train=True, download=False))}/{len(get_dataset(dataset, train=False, download=False))}"
    print(f"dataset {dataset} ({sizes} train/test), device {args.device}", flush=True)
    started, load_before = time.perf_counter(), os.getloadavg()[0]
    rows = study(args, dataset)
    meta = {
        **machine_meta(),
        "torch_pruning": tp_version(),
        "model": "CIFAR-style ResNet-20 (1 input channel)",
        "dataset": f"{dataset} ({sizes} train/test)" + (" -- the embedded subset, not the full set" if "embedded" in dataset else ""),
        "seeds": args.seeds,
        "epochs": args.epochs,
        "finetune_epochs": args.finetune_epochs,
        "lr": args.lr,
        "finetune_lr": args.finetune_lr,
        "batch_size": args.batch_size,
        "max_batches": args.max_batches,
        "target_macs": args.target_macs,
        "device": args.device,
        "threads": args.threads,
        "wall_s": time.perf_counter() - started,
        "loadavg_1min_before": load_before,
        "loadavg_1min_after": os.getloadavg()[0],
    }  # fmt: skip
    data = {"meta": meta, "results": rows}
    from render import render_accuracy, write_results

    write_results(args.out, "accuracy_study", data, render_accuracy)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
