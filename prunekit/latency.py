"""CPU latency measured with ``torch.utils.benchmark`` (median of adaptive runs)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn as nn
from torch.utils import benchmark

__all__ = ["measure_latency", "compare_latency"]


@torch.no_grad()
def measure_latency(
    model: nn.Module, example_inputs: Sequence[torch.Tensor], *, threads: int = 1, min_run_time: float = 1.0
) -> float:
    """Median seconds per eval-mode forward on ``example_inputs``.

    Args:
        threads: torch intra-op threads used for the measurement (fixed, for comparable runs).
        min_run_time: seconds of measurement (``Timer.blocked_autorange``).
    """
    was = model.training
    model.eval()
    try:
        timer = benchmark.Timer(
            stmt="model(*inputs)", globals={"model": model, "inputs": tuple(example_inputs)}, num_threads=threads
        )
        return float(timer.blocked_autorange(min_run_time=min_run_time).median)
    finally:
        model.train(was)


def compare_latency(
    model_before: nn.Module,
    model_after: nn.Module,
    example_inputs: torch.Tensor | Sequence[torch.Tensor],
    *,
    batch_sizes: Sequence[int] = (1, 32),
    threads: int = 1,
    min_run_time: float = 0.5,
) -> dict[str, Any]:
    """Median CPU latency of both models at each batch size (the first example sample repeated).

    Returns:
        ``{"threads", "min_run_time", "batches": {"1": {"before_ms", "after_ms", "speedup"}, ...}}``;
        ``speedup`` is ``before / after``.
    """
    from prunekit._batch import with_batch

    batches: dict[str, dict[str, float]] = {}
    for b in batch_sizes:
        inputs = with_batch(example_inputs, int(b))
        before = measure_latency(model_before, inputs, threads=threads, min_run_time=min_run_time)
        after = measure_latency(model_after, inputs, threads=threads, min_run_time=min_run_time)
        batches[str(b)] = {"before_ms": before * 1e3, "after_ms": after * 1e3, "speedup": before / after}
    return {"threads": threads, "min_run_time": min_run_time, "batches": batches}
