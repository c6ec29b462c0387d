"""``prunekit report``: regenerate a run's report (JSON, markdown, plots) from its files."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from prunekit.cli._sources import add_trust_arg

__all__ = ["register"]


def _read_json(path: str, *, option: str) -> dict:
    from prunekit.errors import ConfigError

    if not Path(path).is_file():
        raise ConfigError(f"{option}: {path!r} does not exist", module=option)
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{option}: {path!r} is not valid JSON: {exc}", module=option) from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{option}: {path!r} must hold a JSON object, but holds {type(data).__name__}", module=option)
    return data


def _run(args: argparse.Namespace) -> int:
    from prunekit.cli._models import example_input, load_before, load_saved, read_saved
    from prunekit.reporting import write_report

    spec = read_saved(args.after, option="--after")
    extra = spec.get("extra") or {}
    metrics = _read_json(args.metrics, option="--metrics") if args.metrics else extra.get("metrics")
    x = example_input(args.input_shape, spec, where=args.after)
    trust = args.trust_builder
    after = load_saved(args.after, args.builder, option="--after", trust_builder=trust)
    before = load_before(
        args.before,
        {**spec, "builder": args.builder or spec.get("builder")},
        trust_builder=trust or bool(args.builder),  # a --builder the user typed is theirs
    )
    files = write_report(
        args.out,
        model_before=before,
        model_after=after,
        example_inputs=(x,),
        metrics=metrics,
        history_csv=args.history,
        config=extra.get("config"),
        latency=not args.no_latency,
    )
    for path in files.values():
        print(f"wrote {path}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "report",
        help="write the report (report.json, report.md, PNG plots) of a pruned model",
        description="Compares the model before pruning with a saved pruned model layer by layer and writes "
        "report.json, report.md and PNG plots (channels per layer, training curves, accuracy vs MACs).",
    )
    p.add_argument(
        "--before", required=True, help="the unpruned model: a checkpoint, a folder from prunekit.save, or a model spec"
    )
    p.add_argument("--after", required=True, help="the pruned model: a folder written by prunekit.save")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--history", help="the run's CSV log (epoch, phase, lr, train_loss, ..., val_top1)")
    p.add_argument("--metrics", help='JSON like {"accuracy": {"before": .., "after_prune": .., "after_finetune": ..}}')
    p.add_argument("--builder", help="model spec that builds the unpruned model (default: the saved one)")
    p.add_argument("--input-shape", help="example input shape with batch, e.g. 1,1,28,28 (default: the saved one)")
    p.add_argument("--no-latency", action="store_true", help="skip the CPU latency measurement")
    add_trust_arg(p)
    p.set_defaults(func=_run)
