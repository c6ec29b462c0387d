"""The ``prunekit`` command line: a thin layer over the Python API."""

from __future__ import annotations

import argparse
import sys

__all__ = ["main"]


def _cmd_list(args: argparse.Namespace) -> int:
    import prunekit

    if args.what == "criteria":
        for name in prunekit.CRITERIA.names():
            print(f"{name:18s} {prunekit.CRITERIA.describe(name)}")
    else:
        from prunekit.rules import registered_rules

        for cls, rule in sorted(registered_rules().items(), key=lambda kv: kv[0].__name__):
            print(f"{cls.__module__}.{cls.__name__:24s} {type(rule).__name__}")
    return 0


def _torchvision_model(name: str):
    import torchvision

    from prunekit.errors import UnknownNameError

    names = torchvision.models.list_models(module=torchvision.models)
    if name not in names:
        import difflib

        close = difflib.get_close_matches(name, names, n=1)
        raise UnknownNameError(
            f"--model: unknown torchvision model {name!r}" + (f"; did you mean {close[0]!r}?" if close else ""),
            module=name,
        )
    return torchvision.models.get_model(name, weights=None)


def _cmd_graph(args: argparse.Namespace) -> int:
    import torch

    import prunekit

    model = _torchvision_model(args.model)
    print(prunekit.DependencyGraph(model, torch.randn(1, 3, args.size, args.size)))
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from prunekit.demo import main as demo_main

    return demo_main(args.rest)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="prunekit", description="Structured pruning that removes channels for real.")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("list", help="list registered criteria or layer rules")
    p.add_argument("what", choices=["criteria", "rules"])
    p.set_defaults(func=_cmd_list)
    p = sub.add_parser("graph", help="print the coupled channel groups of a torchvision model")
    p.add_argument("model", help="torchvision classifier name, e.g. resnet50")
    p.add_argument("--size", type=int, default=224, help="input height and width")
    p.set_defaults(func=_cmd_graph)
    p = sub.add_parser("demo", help="prune a torchvision ResNet-50 and show the result")
    p.add_argument("rest", nargs=argparse.REMAINDER, help="options passed to the demo (see prunekit demo -- --help)")
    p.set_defaults(func=_cmd_demo)
    args = parser.parse_args(argv)
    from prunekit.errors import PrunekitError

    try:
        return args.func(args)
    except PrunekitError as exc:
        print(f"prunekit: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
