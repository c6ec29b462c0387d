"""``prunekit train``: train a model from scratch, with checkpoints every epoch and ``--resume``."""

from __future__ import annotations

import argparse

from prunekit.cli._pipeline_args import add_data_args, add_run_args, add_train_args
from prunekit.cli._reg_args import add_regularizer_args, sparsify_phase

__all__ = ["register"]


def _run(args: argparse.Namespace) -> int:
    from prunekit.cli._pipeline_args import loaders_from_args, options_from_args, run_from_args, setup_logging
    from prunekit.pipeline import ModelSource, Phase

    setup_logging(args)
    loaders = loaders_from_args(args)
    data = loaders[0].dataset
    source = ModelSource(args.model, num_classes=data.num_classes, in_channels=data.in_channels)
    phases = [Phase("train", options_from_args(args))]
    sparsify = sparsify_phase(args, options_from_args)
    if sparsify is not None:
        phases.append(sparsify)
    return run_from_args(args, source, phases, loaders, config={"command": "train"}, report=False)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="train a model (checkpoints every epoch, --resume, torchrun)",
        description="Trains a model on a dataset and writes checkpoint.pt (every epoch), history.csv, config.json "
        "and model/ (prunekit.save) to --out. Works under torchrun --nproc_per_node=N.",
    )
    p.add_argument(
        "--model", default="resnet20", help="model spec: resnet20, vgg11_bn, torchvision:NAME, ... (default resnet20)"
    )
    add_data_args(p)
    add_train_args(p, epochs=30, lr=0.1)
    add_regularizer_args(p, where="after the --epochs of plain training")
    add_run_args(p)
    p.set_defaults(func=_run)
