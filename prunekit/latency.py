"""CPU latency measured with ``torch.utils.benchmark`` (median of adaptive runs)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn as nn
from torch.utils import benchmark

__all__ = ["measure_latency"]


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
