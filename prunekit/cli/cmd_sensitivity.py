"""``prunekit sensitivity``: prune each layer alone at 0.0..0.9, evaluate, suggest a schedule.

Writes into ``--out``: ``sensitivity.csv`` (group, layer, sparsity, top-1, top-5, loss),
``sensitivity.png`` (one curve per layer) and ``schedule.yaml`` (prunekit's own config: the
suggested per-layer sparsities for ``--tolerance`` or ``--target-macs``, ready for
``prunekit.config.load_config``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from prunekit.cli.flags import add_option_flags, flag_errors, given_options

__all__ = ["register"]

OPTIONS = ("criterion", "ignore", "round_to", "exact_only", "tracer")


def _sparsities(text: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        values = []
    if not values or any(not 0.0 <= v < 1.0 for v in values):
        raise argparse.ArgumentTypeError(f"must be fractions in [0, 1) separated by commas, but got {text!r}")
    return values


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0.0 < value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be a fraction in (0, 1], but got {text!r}")
    return value


def _run(args: argparse.Namespace) -> int:
    from prunekit.analysis import (
        plot_sensitivity,
        schedule_config,
        sensitivity_analysis,
        suggest_for_macs,
        suggest_sparsities,
        write_schedule,
    )
    from prunekit.cli._models import load_before
    from prunekit.cli._pipeline_args import dataset_spec
    from prunekit.data import get_dataset, make_loader
    from prunekit.engine import option_flags, resolve_options
    from prunekit.engine.options import round_multiple

    with flag_errors(option_flags()):
        opts = resolve_options(**given_options(args, OPTIONS))
    name, root = dataset_spec(args.data, args.root)  # the same --data names as train/prune/eval
    with flag_errors({"name": "--data", "root": "--data-root", "image_size": "--image-size"}):
        dataset = get_dataset(name, root=root, train=False, download=False)
    sizes = {"num_classes": getattr(dataset, "num_classes", 10), "in_channels": getattr(dataset, "in_channels", 3)}
    spec = {"builder": args.model, "builder_kwargs": sizes}
    if args.checkpoint is not None and not Path(args.checkpoint).is_file():
        from prunekit.errors import ConfigError

        raise ConfigError(
            f"--checkpoint: {args.checkpoint!r} is not a file (give a state_dict saved with torch.save)",
            module="--checkpoint",
        )
    model = load_before(args.checkpoint or args.model, spec, option="--checkpoint" if args.checkpoint else "--model")
    loader = make_loader(dataset, batch_size=args.batch_size)
    x = dataset[0][0].unsqueeze(0)  # one real image: the example input for tracing
    result = sensitivity_analysis(
        model,
        x,
        loader,
        opts,
        sparsities=args.sparsities,
        max_batches=args.max_batches,
        progress=not args.no_progress,
    )
    out = Path(args.out)
    result.to_csv(out / "sensitivity.csv")
    plot_sensitivity(result, out / "sensitivity.png")
    if args.target_macs is not None:
        suggested, ratio = suggest_for_macs(
            result, model, x, target_macs=args.target_macs, round_to=round_multiple(opts)
        )
        how = f"target MACs {args.target_macs:.0%} (reached {ratio:.1%})"
    else:
        suggested = suggest_sparsities(result, tolerance=args.tolerance)
        how = f"top-1 tolerance {args.tolerance:.2%}"
    write_schedule(schedule_config(result, suggested, round_to=round_multiple(opts)), out / "schedule.yaml")
    top1, top5, loss = result.baseline
    print(f"unpruned: top-1 {top1:.2%}, top-5 {top5:.2%}, loss {loss:.4f}")
    print(f"suggested sparsities ({how}):")
    for gid, s in suggested.items():
        print(f"  {result.labels[gid]:<32} {s:.1f}")
    print(f"wrote {out / 'sensitivity.csv'}, {out / 'sensitivity.png'}, {out / 'schedule.yaml'}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "sensitivity",
        help="prune each layer alone at increasing sparsity and evaluate (CSV, PNG, suggested YAML schedule)",
    )
    p.add_argument("--model", required=True, help="a prunekit model (resnet20), torchvision:NAME or module:function")
    p.add_argument("--data", default="embedded", help="validation data, as for prunekit train (default: %(default)s)")
    p.add_argument("--data-root", "--root", dest="root", default=None, help="where the dataset files are")
    p.add_argument("--checkpoint", default=None, help="trained weights: a state_dict (or a checkpoint holding one)")
    p.add_argument("--out", required=True, help="folder for sensitivity.csv, sensitivity.png and schedule.yaml")
    p.add_argument(
        "--sparsities", type=_sparsities, default=[round(0.1 * i, 1) for i in range(10)], help="e.g. 0,0.25,0.5,0.75"
    )
    goal = p.add_mutually_exclusive_group()
    goal.add_argument("--tolerance", type=float, default=0.01, help="top-1 drop allowed per layer (default 0.01)")
    goal.add_argument("--target-macs", type=_fraction, default=None, help="fraction of the MACs to keep, e.g. 0.5")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--max-batches", type=int, default=None, help="evaluate on at most this many batches")
    from prunekit.engine import PruneOptions  # the pruning flags are derived from its fields

    add_option_flags(p, PruneOptions, OPTIONS)
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_run)
