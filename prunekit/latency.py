"""CPU latency measured with ``torch.utils.benchmark`` (median of adaptive runs)."""

from __future__ import annotations

import copy
import itertools
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn as nn
from torch.utils import benchmark

from prunekit.modes import training_flags

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
    with training_flags(model, False):
        timer = benchmark.Timer(
            stmt="model(*inputs)", globals={"model": model, "inputs": tuple(example_inputs)}, num_threads=threads
        )
        return float(timer.blocked_autorange(min_run_time=min_run_time).median)


def _on_cpu(model: nn.Module) -> nn.Module:
    """``model`` itself if all its tensors are on the CPU, else a CPU copy."""
    tensors = itertools.chain(model.parameters(), model.buffers())
    return model if all(t.device.type == "cpu" for t in tensors) else copy.deepcopy(model).cpu()


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

    Models with tensors on another device are timed as CPU copies; the originals are not moved.

    Returns:
        ``{"threads", "min_run_time", "batches": {"1": {"before_ms", "after_ms", "speedup"}, ...}}``;
        ``speedup`` is ``before / after``.
    """
    from prunekit.batching import with_batch

    model_before, model_after = _on_cpu(model_before), _on_cpu(model_after)
    batches: dict[str, dict[str, float]] = {}
    for b in batch_sizes:
        inputs = tuple(x.cpu() for x in with_batch(example_inputs, int(b)))
        before = measure_latency(model_before, inputs, threads=threads, min_run_time=min_run_time)
        after = measure_latency(model_after, inputs, threads=threads, min_run_time=min_run_time)
        batches[str(b)] = {"before_ms": before * 1e3, "after_ms": after * 1e3, "speedup": before / after}
    return {"device": "cpu", "threads": threads, "min_run_time": min_run_time, "batches": batches}
