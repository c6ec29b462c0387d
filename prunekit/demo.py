"""The demo behind ``make demo``: prune a torchvision ResNet-50 by half and show what happened.

Run with ``python -m prunekit.demo``. It needs nothing outside the repository (random weights).
"""

from __future__ import annotations

import argparse
import copy
import time

import torch
import torchvision

import prunekit
from prunekit.latency import measure_latency

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="prunekit demo", description=__doc__)
    parser.add_argument("--model", default="resnet50", help="torchvision classifier (default: resnet50)")
    parser.add_argument("--sparsity", type=float, default=0.5, help="fraction of channels removed per group")
    parser.add_argument("--size", type=int, default=224, help="input height and width")
    parser.add_argument("--no-latency", action="store_true", help="skip the latency measurement")
    args = parser.parse_args(argv)

    torch.manual_seed(0)
    model = getattr(torchvision.models, args.model)(weights=None).eval()
    x = torch.randn(1, 3, args.size, args.size)
    original = copy.deepcopy(model)

    t0 = time.perf_counter()
    graph = prunekit.DependencyGraph(model, x)
    t_graph = time.perf_counter() - t0
    print(graph)
    print(f"\ndependency graph built in {t_graph:.2f} s ({graph.num_nodes} fx nodes)\n")

    t0 = time.perf_counter()
    report = prunekit.prune_(model, x, sparsity=args.sparsity, criterion="l1")
    t_prune = time.perf_counter() - t0
    print(report)
    print(f"\ngraph + prune {args.sparsity:.0%} with l1 took {t_prune:.2f} s")

    res = prunekit.check_equivalence(original, model, x, report)
    print(
        f"equivalent to the zeroed-channel original: {res.ok} "
        f"(max error {res.max_error:.2e}, output scale {res.scale:.2e})"
    )
    if not args.no_latency:
        before = measure_latency(original, (x,))
        after = measure_latency(model, (x,))
        print(
            f"CPU latency, batch 1, 1 thread: {before * 1e3:.1f} ms -> {after * 1e3:.1f} ms "
            f"({before / after:.2f}x faster; MACs {report.macs_before / report.macs_after:.2f}x fewer)"
        )
    return 0 if res.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
