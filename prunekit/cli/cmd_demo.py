"""``prunekit demo``: the job behind ``make demo``."""

from __future__ import annotations

import argparse

__all__ = ["register"]


def _run(args: argparse.Namespace) -> int:
    from prunekit.cli.demo import run_demo

    return run_demo(args)


def register(sub: argparse._SubParsersAction) -> None:
    from prunekit.cli.demo import build_parser  # argparse only at import: cheap

    demo = build_parser()
    p = sub.add_parser(
        "demo",
        parents=[demo],
        add_help=False,
        help="train, prune to half the MACs and fine-tune ResNet-20 on the embedded data (make demo)",
        description=demo.description,
        formatter_class=demo.formatter_class,
    )
    p.set_defaults(func=_run)
