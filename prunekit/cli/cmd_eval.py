"""``prunekit eval``: top-1, top-5 and loss of a saved model or a checkpoint on a dataset."""

from __future__ import annotations

import argparse

from prunekit.cli._pipeline_args import add_data_args
from prunekit.cli._sources import add_source_args

__all__ = ["register"]


def _run(args: argparse.Namespace) -> int:
    import json

    import torch

    from prunekit.cli._pipeline_args import loaders_from_args
    from prunekit.cli._sources import source_from_args
    from prunekit.cli.flags import flag_errors
    from prunekit.errors import ConfigError
    from prunekit.metrics import count_macs, count_params
    from prunekit.pipeline import evaluate
    from prunekit.pipeline.device import check_device

    if args.eval_batches is not None and args.eval_batches <= 0:
        raise ConfigError(
            f"--eval-batches must be a positive int, but got {args.eval_batches}", module="--eval-batches"
        )
    _, test = loaders_from_args(args, augment=False)
    source, state = source_from_args(args, test.dataset)
    if state is None and source.saved is None:
        raise ConfigError(
            "eval: give --checkpoint or --model-dir (a bare --model has random weights)", module="--model"
        )
    model = source.build()
    if state is not None:
        model.load_state_dict(state)
    with flag_errors({"device": "--device"}):
        device = check_device(args.device) or torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model.to(device)
    result = evaluate(model, test, device=device, max_batches=args.eval_batches)
    x = next(iter(test))[0][:1].to(device)
    figures = {
        "top1": result.top1,
        "top5": result.top5,
        "loss": result.loss,
        "samples": result.samples,
        "params": count_params(model),
        "macs": count_macs(model, (x,)),
    }
    if args.json:
        print(json.dumps(figures))
    else:
        print(
            f"top-1 {result.top1:.2%}  top-5 {result.top5:.2%}  loss {result.loss:.4f}  on {result.samples} images; "
            f"params {figures['params']:,}, MACs {figures['macs']:,}"
        )
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "eval",
        help="evaluate a saved model or a checkpoint (top-1, top-5, loss)",
        description="Evaluates a model saved by prunekit.save (--model-dir) or a prunekit checkpoint on the test "
        "split of --data.",
    )
    add_source_args(p, spec=False)
    add_data_args(p)
    p.add_argument("--eval-batches", type=int, help="evaluate on at most this many batches")
    p.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--device", help="cpu or cuda (default: cuda when available)")
    p.add_argument("--json", action="store_true", help="print the figures as JSON")
    p.set_defaults(func=_run)
