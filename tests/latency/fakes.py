"""A simulated latency backend for unit tests: no timing, a fake clock.

``"fake"`` in :data:`prunekit.latency.LATENCY_BACKENDS` "runs" a model by advancing
:data:`CLOCK` by a cost computed from its shapes: 1 microsecond per thousand MACs of each conv /
linear, with widths rounded up to multiples of :data:`BLOCK` (as blocked CPU kernels pad them),
plus 10 microseconds per call. :data:`CALLS` counts the models prepared (one per measurement).
"""

from __future__ import annotations

import math

import torch.nn as nn

from prunekit.latency import LATENCY_BACKENDS, LatencyBackend
from prunekit.metrics import macs_per_module

BLOCK = 8
OVERHEAD = 1e-5


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


CLOCK = FakeClock()
CALLS = {"prepare": 0}


def _padded(n: int) -> float:
    return math.ceil(n / BLOCK) * BLOCK / n


def fake_cost(model: nn.Module, inputs: tuple) -> float:
    """Simulated seconds of one forward of ``model``."""
    _, per_module = macs_per_module(model, inputs)
    total = OVERHEAD
    for name, m in model.named_modules():
        macs = per_module.get(name, 0)
        if isinstance(m, nn.Conv2d):
            total += macs * _padded(m.out_channels) * _padded(max(m.in_channels // m.groups, 1)) * 1e-9
        elif isinstance(m, nn.Linear):
            total += macs * _padded(m.out_features) * _padded(m.in_features) * 1e-9
        else:
            total += macs * 1e-9
    return total


def _simulated(cost_of):
    """A backend's ``prepare`` that "runs" a model by advancing :data:`CLOCK` by
    ``cost_of(model, inputs)`` seconds, counting the models prepared."""

    def prepare(model: nn.Module, inputs: tuple, threads: int):
        CALLS["prepare"] += 1
        cost = cost_of(model, inputs)

        def run() -> None:
            CLOCK.now += cost

        return run

    return prepare


_prepare = _simulated(fake_cost)


def register() -> str:
    if "fake" not in LATENCY_BACKENDS:
        LATENCY_BACKENDS.add(
            "fake",
            LatencyBackend("fake", "simulated", _prepare, lambda: None, lambda: {"fake": "1"}, clock=CLOCK),
            description="simulated latency for tests",
        )
    return "fake"


def register_flat() -> str:
    """``"flat"``: every model takes 1 ms, whatever its size (pruning buys nothing)."""
    if "flat" not in LATENCY_BACKENDS:

        def prepare(model: nn.Module, inputs: tuple, threads: int):
            def run() -> None:
                CLOCK.now += 1e-3

            return run

        LATENCY_BACKENDS.add(
            "flat",
            LatencyBackend("flat", "constant", prepare, lambda: None, lambda: {"flat": "1"}, clock=CLOCK),
            description="constant latency for tests",
        )
    return "flat"


def register_aligned_slow() -> str:
    """``"aligned_slow"``: :func:`fake_cost`, but a conv whose output width is a multiple of
    :data:`BLOCK` costs twice as much (a backend whose blocked kernels cost more than they save,
    as resnet50's 28x28 layers in eager at batch 1)."""
    if "aligned_slow" not in LATENCY_BACKENDS:

        def cost(model: nn.Module, inputs: tuple) -> float:
            _, per_module = macs_per_module(model, inputs)
            return fake_cost(model, inputs) + sum(
                per_module.get(n, 0) * 1e-9 for n, m in model.named_modules()
                if isinstance(m, nn.Conv2d) and m.out_channels % BLOCK == 0
            )  # fmt: skip

        LATENCY_BACKENDS.add(
            "aligned_slow",
            LatencyBackend(
                "aligned_slow", "simulated", _simulated(cost), lambda: None, lambda: {"aligned_slow": "1"}, clock=CLOCK
            ),
            description="simulated latency where aligned widths are slow",
        )
    return "aligned_slow"


def register_not_separable() -> str:
    """``"not_separable"``: a conv costs 1 ns per in x out channel pair when both widths are
    multiples of 16 and twice that otherwise (a kernel picked by both widths at once, which no
    product of a per-width factor can describe)."""
    if "not_separable" not in LATENCY_BACKENDS:

        def cost(model: nn.Module, inputs: tuple) -> float:
            conv = next(m for m in model.modules() if isinstance(m, nn.Conv2d))
            both = conv.in_channels % 16 == 0 and conv.out_channels % 16 == 0
            return conv.in_channels * conv.out_channels * (1e-9 if both else 2e-9)

        LATENCY_BACKENDS.add(
            "not_separable",
            LatencyBackend(
                "not_separable", "simulated", _simulated(cost), lambda: None, lambda: {"ns": "1"}, clock=CLOCK
            ),
            description="simulated latency that is not separable in the two widths",
        )
    return "not_separable"
