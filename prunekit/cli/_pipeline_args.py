"""Options shared by ``prunekit train``, ``prune``, ``finetune`` and ``eval``, and their mapping
onto :mod:`prunekit.data` and :class:`~prunekit.pipeline.TrainOptions`.

Only argparse and the standard library are imported at module level (``prunekit --help`` stays
instant); the data and pipeline packages are imported when a command runs.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Any

from prunekit.cli.flags import flag_errors

__all__ = [
    "add_data_args",
    "add_train_args",
    "add_run_args",
    "dataset_spec",
    "loaders_from_args",
    "options_from_args",
    "setup_logging",
    "is_main_process",
    "resolved_args",
    "print_summary",
    "run_from_args",
]

_DATA_ALIASES = {"embedded": "fashion-mnist-embedded"}


def add_data_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("data")
    g.add_argument(
        "--data",
        default="embedded",
        help="embedded (the Fashion-MNIST subset shipped with prunekit, default), fashion-mnist, cifar10, "
        "cifar100, a registered dataset name, or a folder of class sub-folders (ImageFolder)",
    )
    g.add_argument("--data-root", help="where the dataset files are (fashion-mnist, cifar10/100)")
    g.add_argument("--batch-size", type=int, default=128, help="batch size per process (default 128)")
    g.add_argument("--eval-batch-size", type=int, help="evaluation batch size (default: --batch-size)")
    g.add_argument("--workers", type=int, default=0, help="DataLoader worker processes (default 0)")
    g.add_argument("--no-augment", action="store_true", help="no random crop and flip for training")
    g.add_argument("--image-size", type=int, help="resize size for ImageFolder data (default 224)")
    g.add_argument("--no-download", action="store_true", help="never download with torchvision")


def add_train_args(
    p: argparse.ArgumentParser,
    *,
    epochs: int | None,
    lr: float,
    prefix: str = "",
    title: str = "training",
    epochs_help: str | None = None,
) -> None:
    """Optimizer, schedule and loss options; ``prefix`` (e.g. "finetune-") for a second phase."""
    g = p.add_argument_group(title)
    g.add_argument(f"--{prefix}epochs", type=int, default=epochs, help=epochs_help or f"epochs (default {epochs})")
    g.add_argument(f"--{prefix}lr", type=float, default=lr, help=f"peak learning rate (default {lr})")
    if prefix:
        return  # the second phase shares the other options
    g.add_argument("--optimizer", choices=("sgd", "adamw"), default="sgd", help="default sgd")
    g.add_argument("--momentum", type=float, default=0.9, help="SGD momentum (default 0.9)")
    g.add_argument("--nesterov", action="store_true", help="Nesterov momentum (SGD)")
    g.add_argument("--weight-decay", type=float, default=5e-4, help="default 5e-4")
    g.add_argument("--lr-schedule", choices=("cosine", "step", "constant"), default="cosine", help="default cosine")
    g.add_argument("--warmup-epochs", type=float, default=0.0, help="linear warm-up epochs (default 0)")
    g.add_argument("--milestones", type=int, nargs="*", default=[], help="epochs where the step schedule decays")
    g.add_argument("--gamma", type=float, default=0.1, help="step schedule decay factor (default 0.1)")
    g.add_argument("--label-smoothing", type=float, default=0.0, help="default 0")
    g.add_argument("--no-amp", action="store_true", help="no mixed precision on CUDA (CPU always trains in float32)")
    g.add_argument("--max-batches", type=int, help="stop each epoch after this many batches (smoke tests)")
    g.add_argument("--eval-batches", type=int, help="evaluate on at most this many batches")


def add_run_args(p: argparse.ArgumentParser, *, out_required: bool = True) -> None:
    g = p.add_argument_group("run")
    g.add_argument("--out", required=out_required, help="output folder (checkpoint.pt, history.csv, model/, report/)")
    g.add_argument("--seed", type=int, default=0, help="seed of the weights, data order and augmentation (default 0)")
    g.add_argument("--resume", action="store_true", help="continue the run whose checkpoint is in --out")
    g.add_argument(
        "--overwrite", action="store_true", help="write into a non-empty --out, replacing prunekit's files there"
    )
    g.add_argument("--device", help="cpu or cuda (default: cuda when available; cuda:LOCAL_RANK under torchrun)")
    g.add_argument("--no-progress", action="store_true", help="no progress bars")
    g.add_argument("-q", "--quiet", action="store_true", help="log warnings only")


def setup_logging(args: argparse.Namespace) -> None:
    """INFO logs to stderr on rank 0 (WARNING with --quiet and on the other ranks)."""
    quiet = getattr(args, "quiet", False) or not is_main_process()
    logging.basicConfig(level=logging.WARNING if quiet else logging.INFO, format="%(message)s", stream=sys.stderr)


def is_main_process() -> bool:
    """True unless torchrun started this process with a rank other than 0."""
    return os.environ.get("RANK", "0") == "0"


def dataset_spec(data: str, root: str | None) -> tuple[str, str | None]:
    """``--data`` and ``--data-root`` to a :func:`prunekit.data.get_dataset` name and root."""
    name = _DATA_ALIASES.get(data, data)
    from prunekit.data import DATASETS

    if name not in DATASETS and not name.startswith("imagefolder:") and os.path.isdir(data):
        return f"imagefolder:{data}", None
    return name, root


def loaders_from_args(args: argparse.Namespace, *, augment: bool = True) -> tuple[Any, Any]:
    """``(train_loader, test_loader)`` from the data options."""
    from prunekit.data import make_loaders
    from prunekit.errors import ConfigError

    for opt in ("batch_size", "eval_batch_size"):
        value = getattr(args, opt)
        if value is not None and value <= 0:
            raise ConfigError(f"--{opt.replace('_', '-')} must be a positive int, but got {value}", module=f"--{opt}")
    name, root = dataset_spec(args.data, args.data_root)
    flags = {"name": "--data", "root": "--data-root", "image_size": "--image-size", "workers": "--workers"}
    with flag_errors(flags):
        return make_loaders(
            name,
            root=root,
            batch_size=args.batch_size,
            eval_batch_size=args.eval_batch_size,
            workers=args.workers,
            seed=args.seed,
            augment=augment and not args.no_augment,
            download=not args.no_download,
            image_size=args.image_size,
        )


def options_from_args(args: argparse.Namespace, **fields: Any) -> Any:
    """A :class:`~prunekit.pipeline.TrainOptions` from the training options, ``fields`` winning."""
    from prunekit.pipeline import TrainOptions

    base = dict(
        epochs=args.epochs,
        optimizer=args.optimizer,
        lr=args.lr,
        momentum=args.momentum,
        nesterov=args.nesterov,
        weight_decay=args.weight_decay,
        lr_schedule=args.lr_schedule,
        warmup_epochs=args.warmup_epochs,
        milestones=tuple(args.milestones),
        gamma=args.gamma,
        label_smoothing=args.label_smoothing,
        amp=not args.no_amp,
        max_batches=args.max_batches,
        eval_batches=args.eval_batches,
    )
    base.update(fields)
    # name the command-line flag, not the dataclass field
    with flag_errors({name: "--" + name.replace("_", "-") for name in base}):
        return TrainOptions(**base)


def run_from_args(
    args: argparse.Namespace, source: Any, phases: list[Any], loaders: tuple[Any, Any], *, config: dict, **kwargs: Any
) -> int:
    """:func:`prunekit.pipeline.run` with the run options, then the summary; the exit code."""
    from prunekit.pipeline import run

    train, test = loaders
    flags = {"out_dir": "--out", "device": "--device", "resume": "--resume"}
    with flag_errors(flags):
        result = run(
            source,
            phases,
            train_loader=train,
            val_loader=test,
            out_dir=args.out,
            seed=args.seed,
            resume=args.resume,
            overwrite=args.overwrite,
            device=args.device,
            progress=not args.no_progress,
            config=resolved_args(args, **config),
            **kwargs,
        )
    print_summary(result)
    return 0


def resolved_args(args: argparse.Namespace, **extra: Any) -> dict[str, Any]:
    """The command's options as JSON-ready data (for ``config.json`` and the saved model)."""
    out = {k: v for k, v in vars(args).items() if k not in ("func", "rest") and not callable(v)}
    out.update(extra)
    return out


def print_summary(result: Any) -> None:
    """Prints accuracies, size and the paths of the outputs (rank 0 only)."""
    if not is_main_process():
        return
    m = result.metrics
    if m.get("accuracy"):
        acc = ", ".join(f"{k} {v:.2%}" for k, v in m["accuracy"].items())
        print(f"top-1 accuracy: {acc}")
        params = m["params"]
        macs = m["macs"]
        first, last = next(iter(params)), list(params)[-1]
        print(f"params: {params[first]:,} -> {params[last]:,}; MACs: {macs[first]:,} -> {macs[last]:,}")
    elif result.history:
        row = result.history[-1]
        print(f"final val top-1 {row['val_top1']:.2%}, top-5 {row['val_top5']:.2%}, loss {row['val_loss']:.4f}")
    for kind, path in result.files.items():
        print(f"{kind}: {path}")
