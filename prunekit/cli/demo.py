"""The demo behind ``make demo``: train, prune to half the MACs, fine-tune, and compare.

``python -m prunekit.cli.demo`` trains a CIFAR-style ResNet-20 on the Fashion-MNIST subset that ships
with prunekit, prunes it to 50% of its MACs with automatic channel dependencies (one-shot, L1
norm, the sparsity found by bisection), fine-tunes it with knowledge distillation from the
unpruned model, and prints accuracy, parameters, MACs and CPU latency before and after. It
passes when the fine-tuned accuracy is within 1 point of the unpruned model's. Nothing outside
the repository is needed; with the fixed seeds it takes about 4-5 minutes on 2 CPU cores.

``python -m prunekit.cli.demo --engine-only`` runs the older, data-free demo: a torchvision
ResNet-50 with random weights cut by half, checked equivalent to its zeroed-channel original.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

__all__ = ["main", "build_parser", "run_demo", "engine_demo"]


def build_parser() -> argparse.ArgumentParser:
    """The demo's options (also those of ``prunekit demo``)."""
    p = argparse.ArgumentParser(
        prog="prunekit demo", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--engine-only", action="store_true", help="the data-free ResNet-50 engine demo instead")
    p.add_argument("--out", default="runs/demo", help="output folder (default runs/demo)")
    p.add_argument("--epochs", type=int, default=5, help="training epochs of the unpruned model (default 5)")
    p.add_argument("--finetune-epochs", type=int, default=3, help="fine-tuning epochs after pruning (default 3)")
    p.add_argument("--target-macs", type=float, default=0.5, help="fraction of the MACs to keep (default 0.5)")
    p.add_argument("--batch-size", type=int, default=128, help="default 128")
    p.add_argument("--no-distill", action="store_true", help="fine-tune with cross-entropy only")
    p.add_argument("--max-batches", type=int, help="batches per epoch (smoke tests; the check is then meaningless)")
    p.add_argument("--eval-batches", type=int, help="evaluate on this many batches of 500 (smoke tests)")
    p.add_argument("--no-latency", action="store_true", help="skip the latency measurement")
    p.add_argument("--tolerance", type=float, default=0.01, help="allowed top-1 drop (default 0.01 = 1 point)")
    p.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch intra-op threads (default 1: ResNet-20 on 28x28 images gains little from more, and "
        "loses a lot when other processes share the cores)",
    )
    p.add_argument("--seed", type=int, default=0)
    e = p.add_argument_group("with --engine-only")
    e.add_argument("--model", default="resnet50", help="torchvision classifier (default: resnet50)")
    e.add_argument("--sparsity", type=float, default=0.5, help="fraction of channels removed per group")
    e.add_argument("--size", type=int, default=224, help="input height and width (default 224)")
    return p


def main(argv: list[str] | None = None) -> int:
    """Runs the demo; returns 0 on PASS, 1 on FAIL (``prunekit demo`` and ``make demo``)."""
    return run_demo(build_parser().parse_args(argv))


def run_demo(args: argparse.Namespace) -> int:
    """Runs the demo (or the engine demo) for parsed :func:`build_parser` options."""
    if args.engine_only:
        return engine_demo(args)
    import torch

    from prunekit.data import make_loaders
    from prunekit.pipeline import ModelSource, Phase, TrainOptions, run
    from prunekit.recipes.loading import recipe_from_options

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    train, test = make_loaders(batch_size=args.batch_size, eval_batch_size=500, seed=args.seed)
    fast = dict(max_batches=args.max_batches, eval_batches=args.eval_batches)
    phases = [
        Phase("train", TrainOptions(epochs=args.epochs, lr=0.1, warmup_epochs=0.5, nesterov=True, **fast)),
        Phase(
            "prune",
            TrainOptions(epochs=0, eval_batches=args.eval_batches),
            recipe_from_options(target_macs=args.target_macs, criterion="l1"),
        ),
        Phase(
            "finetune",
            TrainOptions(epochs=args.finetune_epochs, lr=0.02, nesterov=True, distill=not args.no_distill, **fast),
        ),
    ]
    print(f"prunekit demo: resnet20 on the embedded Fashion-MNIST subset, {torch.get_num_threads()} threads")
    result = run(
        ModelSource("resnet20", num_classes=10, in_channels=1),
        phases,
        train_loader=train,
        val_loader=test,
        out_dir=args.out,
        seed=args.seed,
        config={"demo": vars(args)},
        report=True,
        latency=not args.no_latency,
    )
    if args.no_latency:
        latency = None
    else:
        report = json.loads((Path(args.out) / "report" / "report.json").read_text())
        latency = (report.get("latency") or {}).get("batches", {})
    return _print_table(result, latency, args, time.perf_counter() - t0)


def _print_table(result, latency, args, seconds) -> int:  # type: ignore[no-untyped-def]
    m = result.metrics
    acc, params, macs = m["accuracy"], m["params"], m["macs"]
    cols = ("before", "after_prune", "after_finetune")
    rows = [
        ("", "unpruned", "pruned", "pruned + fine-tuned"),
        ("top-1 accuracy", *(f"{acc[c]:.2%}" for c in cols)),
        ("parameters", *(f"{params[c]:,}" for c in cols)),
        ("MACs / image", *(f"{macs[c]:,}" for c in cols)),
    ]
    for batch, t in (latency or {}).items():
        rows.append(
            (
                f"CPU latency, batch {batch}",
                f"{t['before_ms']:.2f} ms",
                f"{t['after_ms']:.2f} ms",
                f"{t['after_ms']:.2f} ms ({t['speedup']:.2f}x)",
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    print()
    for r in rows:
        print("  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths))))
    files = result.files
    print(f"\nsaved pruned model: {files.get('model')}  (load(path) rebuilds it)")
    print(f"report and plots:   {Path(args.out) / 'report'}  (report.md, channels.png, training_curves.png, ...)")
    print(f"training log:       {files.get('history')}")
    drop = acc["before"] - acc["after_finetune"]
    ok = drop <= args.tolerance
    print(
        f"\naccuracy unpruned {acc['before']:.2%}, pruned and fine-tuned {acc['after_finetune']:.2%} "
        f"({-drop * 100:+.2f} points) at {macs['after_finetune'] / macs['before']:.1%} of the MACs: "
        f"{'PASS' if ok else 'FAIL'} (allowed drop: {args.tolerance * 100:g} point)"
    )
    print(f"demo took {seconds:.0f} s")
    return 0 if ok else 1


def engine_demo(args: argparse.Namespace) -> int:
    """Prunes a random-weight torchvision model by half and checks equivalence (no data needed)."""
    import copy

    import torch
    import torchvision

    from prunekit.equivalence import check_equivalence
    from prunekit.graph import DependencyGraph
    from prunekit.latency import measure_latency
    from prunekit.prune import prune_

    torch.manual_seed(0)
    model = getattr(torchvision.models, args.model)(weights=None).eval()
    x = torch.randn(1, 3, args.size, args.size)
    original = copy.deepcopy(model)
    t0 = time.perf_counter()
    graph = DependencyGraph(model, x)
    print(graph)
    print(f"\ndependency graph built in {time.perf_counter() - t0:.2f} s ({graph.num_nodes} fx nodes)\n")
    t0 = time.perf_counter()
    report = prune_(model, x, sparsity=args.sparsity, criterion="l1")
    print(report)
    print(f"\ngraph + prune {args.sparsity:.0%} with l1 took {time.perf_counter() - t0:.2f} s")
    res = check_equivalence(original, model, x, report)
    print(
        f"equivalent to the zeroed-channel original: {res.ok} "
        f"(max error {res.max_error:.2e}, output scale {res.scale:.2e})"
    )
    if not args.no_latency:
        before, after = measure_latency(original, (x,)), measure_latency(model, (x,))
        print(
            f"CPU latency, batch 1, 1 thread: {before * 1e3:.1f} ms -> {after * 1e3:.1f} ms "
            f"({before / after:.2f}x faster; MACs {report.macs_before / report.macs_after:.2f}x fewer)"
        )
    return 0 if res.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
