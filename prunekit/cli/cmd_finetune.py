"""``prunekit finetune``: fine-tune a saved pruned model, optionally distilling from the original."""

from __future__ import annotations

import argparse
import logging
import os

from prunekit.cli._pipeline_args import add_data_args, add_run_args, add_train_args
from prunekit.cli._sources import add_trust_arg
from prunekit.cli.cmd_prune import add_distill_args, distill_options

__all__ = ["register"]

log = logging.getLogger("prunekit.cli")


def _teacher(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    """The unpruned model to distil from: --teacher, or the ``original/`` beside --model-dir."""
    from prunekit.errors import ConfigError
    from prunekit.serialization import load

    path = args.teacher
    if path is None:
        sibling = os.path.join(os.path.dirname(os.path.abspath(args.model_dir)), "original")
        if not os.path.isdir(sibling):
            raise ConfigError(
                f"--distill needs the unpruned model: give --teacher DIR (no {sibling!r} beside --model-dir)",
                module="--teacher",
            )
        path = sibling
    return load(path, trust_builder=args.trust_builder).eval()


def _warn_elementwise_zeros(model, threshold: float = 0.25) -> None:  # type: ignore[no-untyped-def]
    """Says so when the saved model holds element-wise zeros (a Distiller element-wise pruner's):
    this command does not keep them, training fills them in again."""
    sparse = [
        (name, float((p == 0).float().mean())) for name, p in model.named_parameters() if p.dim() >= 2 and p.numel()
    ]
    sparse = [(n, z) for n, z in sparse if z >= threshold]
    if sparse:
        named = ", ".join(f"{n} {z:.0%}" for n, z in sparse[:3]) + (" ..." if len(sparse) > 3 else "")
        log.warning(
            "--model-dir: %d weight tensors hold element-wise zeros (%s); prunekit finetune does not keep them "
            "(training fills them in): fine-tune in the prune run itself (--finetune-epochs) to keep the masks",
            len(sparse), named,
        )  # fmt: skip


def _run(args: argparse.Namespace) -> int:
    from prunekit.cli._pipeline_args import loaders_from_args, options_from_args, run_from_args, setup_logging
    from prunekit.cli._sources import source_from_args
    from prunekit.pipeline import Phase

    setup_logging(args)
    loaders = loaders_from_args(args)
    source, _ = source_from_args(args, loaders[0].dataset)
    _warn_elementwise_zeros(source.build())
    teacher = _teacher(args) if args.distill or args.teacher else None
    phases = [Phase("finetune", options_from_args(args, **distill_options(args)))]
    config = {"command": "finetune"}
    return run_from_args(args, source, phases, loaders, config=config, teacher=teacher, report=not args.no_report)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "finetune",
        help="fine-tune a saved pruned model (--distill from the unpruned one)",
        description="Fine-tunes a model saved by prunekit.save (e.g. OUT/model of prunekit prune) and saves it "
        "again to --out/model, keeping its cut, with the report when a teacher is known.",
    )
    p.add_argument("--model-dir", required=True, help="a folder written by prunekit.save")
    p.add_argument(
        "--teacher", help="the unpruned model (a prunekit.save folder); default: original/ beside --model-dir"
    )
    add_train_args(p, epochs=10, lr=0.01, title="fine-tuning")
    add_distill_args(p)
    add_data_args(p)
    add_run_args(p)
    add_trust_arg(p)
    p.add_argument("--no-report", action="store_true", help="do not write report/")
    p.set_defaults(func=_run)
