"""Measured latency: backends and timing (``measure``), per-layer tables cached on disk
(``table``), and the channel multiple kernels are fastest at (``alignment``)."""

from prunekit.latency.alignment import Alignment, best_multiple
from prunekit.latency.measure import (
    LATENCY_BACKENDS,
    LatencyBackend,
    Meter,
    compare_latency,
    machine_key,
    measure_latency,
    median_time,
)
from prunekit.latency.table import LatencyTable, LayerSpec, default_cache_dir, layer_specs

__all__ = [
    "LATENCY_BACKENDS",
    "LatencyBackend",
    "Meter",
    "median_time",
    "measure_latency",
    "compare_latency",
    "machine_key",
    "LatencyTable",
    "LayerSpec",
    "layer_specs",
    "default_cache_dir",
    "Alignment",
    "best_multiple",
]
