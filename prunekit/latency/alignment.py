"""``round_to="auto"``: the channel multiple a backend's kernels run fastest at, measured.

CPU and GPU convolution kernels work on blocks of channels (oneDNN's ``nChw8c`` / ``nChw16c``
layouts, tensor-core tiles of 8 or 16): a width that is not a multiple of the block is padded up
and costs about as much as the next multiple. So a pruned width of 61 is often no faster than 64,
and "fewer MACs" does not become "faster" unless widths are aligned.

:func:`best_multiple` times the model's heaviest dense layer at the 32 output widths ending at
about half its width (``LatencyTable`` entries, cached on disk), computes each width's throughput
``w / T(w)`` divided by a straight-line fit over the window (which removes the trend of larger
widths amortising fixed costs), and for each candidate multiple ``m`` averages that relative
throughput over the widths divisible by ``m`` (at least two of them, so ``m`` <= 16). Its gain is
that average minus the average over all widths (``m = 1``). When the best gain is under
``MIN_GAIN`` (1%: widths cost what their channels do, within timing noise) the multiple is 1;
otherwise it is the smallest ``m`` with at least ``SHARE`` (3/4) of the best gain: the block
size, not a larger multiple that merely contains it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from prunekit.latency.table import LatencyTable, LayerSpec

__all__ = ["Alignment", "best_multiple", "probe_layer", "probe_widths", "choose_multiple", "MULTIPLES"]

MULTIPLES = (1, 2, 4, 8, 16)
WINDOW = 32  # consecutive widths timed: every multiple above has at least two of them
MIN_GAIN = 0.01
SHARE = 0.75


@dataclass(frozen=True)
class Alignment:
    """The chosen multiple and the evidence: relative throughput per candidate multiple on the
    probed layer, and (``checked`` and ``verdict``, filled by the latency search) the whole cut
    timed at the probed multiple and at 1: MACs and median milliseconds per multiple, and the
    rounds, the median ratio of their MACs per ms (1 over the probed multiple) and the margin
    that ratio had to clear."""

    multiple: int
    layer: str
    scores: dict[int, float] = field(default_factory=dict)
    checked: dict[str, dict[str, float]] = field(default_factory=dict)
    verdict: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = {
            "multiple": self.multiple,
            "layer": self.layer,
            "scores": {str(k): v for k, v in self.scores.items()},
        }
        if self.checked:
            out["checked"] = self.checked
            out["verdict"] = self.verdict
        return out


def probe_layer(specs: Mapping[str, LayerSpec], macs: Mapping[str, int] | None = None) -> str | None:
    """The dense (not depthwise) layer with the most MACs (the widest if ``macs`` is not given);
    None when there is no dense layer with at least 2 output channels."""
    dense = [n for n, s in specs.items() if not s.depthwise and s.out_channels >= 2]
    if not dense:
        return None
    return max(dense, key=lambda n: (macs or {}).get(n, 0) or specs[n].in_channels * specs[n].out_channels)


def probe_widths(out_channels: int, window: int = WINDOW) -> list[int]:
    """The ``window`` consecutive widths ending at the multiple of ``window`` nearest half of
    ``out_channels`` (fewer for a narrow layer)."""
    window = min(window, 1 << (max(out_channels, 1).bit_length() - 1))  # a power of two <= out
    top = max(window, (out_channels // 2) // window * window)
    return list(range(top - window + 1, top + 1))


def choose_multiple(
    times: Mapping[int, float], *, multiples: tuple[int, ...] = MULTIPLES, min_gain: float = MIN_GAIN
) -> tuple[int, dict[int, float]]:
    """The multiple chosen from ``times`` (see the module docstring), and every multiple's
    score (average relative throughput of its widths).

    Args:
        times: seconds per width, for consecutive widths.
    """
    widths = np.array(sorted(times), dtype=np.float64)
    eff = widths / np.array([max(times[int(w)], 1e-12) for w in widths])
    if len(widths) >= 2:
        slope, icpt = np.polyfit(widths, eff, 1)
        trend = np.maximum(slope * widths + icpt, 1e-12)
    else:
        trend = eff
    rel = eff / trend
    scores = {1: float(rel.mean())}
    for m in multiples:
        mask = widths % m == 0
        if mask.sum() >= 2:
            scores[m] = float(rel[mask].mean())
    gains = {m: s - scores[1] for m, s in scores.items()}
    best = max(gains.values())
    if best < min_gain:
        return 1, scores
    return min(m for m, g in gains.items() if g >= SHARE * best), scores


def best_multiple(
    table: LatencyTable,
    specs: Mapping[str, LayerSpec],
    macs: Mapping[str, int] | None = None,
    *,
    min_gain: float = MIN_GAIN,
) -> Alignment:
    """The channel multiple for ``table``'s backend, measured on the heaviest layer of ``specs``
    (from a :func:`~prunekit.latency.layer_specs`); multiple 1 when there is no dense layer."""
    name = probe_layer(specs, macs)
    if name is None:
        return Alignment(1, "", {})
    spec = specs[name]
    times = {w: table.latency(spec, spec.in_channels, w) for w in probe_widths(spec.out_channels)}
    table.save()
    chosen, scores = choose_multiple(times, min_gain=min_gain)
    return Alignment(chosen, name, scores)
