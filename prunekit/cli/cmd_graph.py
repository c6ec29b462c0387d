"""``prunekit graph MODEL [--html FILE]``: print the coupled channel groups the tracer found, and
optionally draw them (:mod:`prunekit.reporting.graph_view`)."""

from __future__ import annotations

import argparse

__all__ = ["register"]


def _run(args: argparse.Namespace) -> int:
    import torch

    from prunekit.errors import UnknownNameError
    from prunekit.graph import DependencyGraph
    from prunekit.models import get_model

    try:
        model = get_model(args.model, num_classes=args.num_classes, in_channels=args.in_channels)
    except UnknownNameError:
        if ":" in args.model:
            raise
        # a bare torchvision name (resnet50), as the command accepted before model specs existed
        model = get_model(f"torchvision:{args.model}", num_classes=args.num_classes, in_channels=args.in_channels)
    model.eval()
    graph = DependencyGraph(model, torch.randn(1, args.in_channels, args.size, args.size))
    print(graph)
    if args.html:
        from prunekit.reporting.graph_view import write_graph_html

        print(f"wrote {write_graph_html(graph, args.html, title=args.model)}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("graph", help="print the coupled channel groups of a model")
    p.add_argument(
        "model",
        help="a prunekit model (resnet56), or torchvision:NAME / timm:NAME / module:function; "
        "a bare torchvision name (resnet50) also works",
    )
    p.add_argument("--size", type=int, default=224, help="input height and width (default 224)")
    p.add_argument("--in-channels", type=int, default=3, help="input channels (default 3)")
    p.add_argument("--num-classes", type=int, default=1000, help="classes (default 1000)")
    p.add_argument(
        "--html", metavar="FILE", help="also draw the network with each group coloured and each locked group's reason"
    )
    p.set_defaults(func=_run)
