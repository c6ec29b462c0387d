"""Per-layer latency tables: each conv / linear of a model timed at candidate widths, with the
batch norm and activation that read its output directly (NetAdapt's unit, not the bare conv).

A layer is described by a :class:`LayerSpec` (its type, kernel, stride, groups and input size);
:class:`LatencyTable` times it with a :class:`~prunekit.latency.Meter` at
``(in_channels, out_channels)`` pairs and keeps every figure in a JSON file on disk, one file per
backend and key: the machine (CPU model, core count, OS), the backend's versions (torch,
onnxruntime, CUDA), the batch size and the thread count. The file is named after a hash of the
key and holds the key itself; a file whose key differs is ignored, so a new torch or another
machine re-measures instead of reusing stale figures. The cache folder is
``$PRUNEKIT_CACHE_DIR`` or ``~/.cache/prunekit``.

Widths in between are estimated by bilinear interpolation on the two-dimensional grid of eighths of
the full widths (NetAdapt's look-up tables, Yang et al. 2018, hold a layer's latency at each pair of
widths it may take): with ``a <= ci <= a'`` and ``b <= co <= b'`` the grid widths around the pair,
``u = (ci - a) / (a' - a)`` and ``v = (co - b) / (b' - b)``,
``T(ci, co) ~ (1-u)(1-v) T(a, b) + u(1-v) T(a', b) + (1-u) v T(a, b') + u v T(a', b')``.
Only the grid points around a queried pair are timed, when first needed; a depthwise layer has one
width. An earlier estimate, separable in the two widths (one row and one column of the grid,
``T(ci, C_out) * T(C_in, co) / T(C_in, C_out)``), cannot follow kernels that are picked by both
widths at once (oneDNN's, ONNX Runtime's): on resnet50's convs at multiples of 16 it missed a
separate timing by a median 15% in eager and 13% on ONNX Runtime, the bilinear grid by 6% and
2%, within the 12% and 2% by which two timings of the same layer differ, with fewer timings
(``benchmarks/results/latency_table_accuracy.md``).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from prunekit.fileio import write_text
from prunekit.latency.measure import Meter, machine_key

__all__ = [
    "LayerSpec",
    "LatencyTable",
    "layer_specs",
    "grid_widths",
    "default_cache_dir",
    "TABLE_VERSION",
    "POST_LAYERS",
]

log = logging.getLogger(__name__)

TABLE_VERSION = 1
GRID = 8  # widths measured per dimension: k/8 of the full width, k = 1..8
LAYER_MIN_RUN_TIME = 0.1  # seconds of measurement per table entry


def default_cache_dir() -> Path:
    """``$PRUNEKIT_CACHE_DIR`` or ``~/.cache/prunekit``."""
    return Path(os.environ.get("PRUNEKIT_CACHE_DIR") or Path.home() / ".cache" / "prunekit")


@dataclass(frozen=True)
class LayerSpec:
    """A conv or linear layer apart from its channel counts.

    Attributes:
        kind: "conv1d", "conv2d", "conv3d" or "linear".
        in_channels, out_channels: the full widths.
        kernel, stride, padding, dilation: as the conv takes them (empty for linear).
        groups: the conv's groups; ``depthwise`` when groups == in == out (then the widths move
            together).
        input_shape: the input's shape after the channel dim (spatial size; the leading dims of
            a linear's input).
        bias: whether it has a bias.
        post: the per-channel layers that read its output directly, timed with it (a batch norm
            and / or an activation, by class name: see :data:`POST_LAYERS`).
    """

    kind: str
    in_channels: int
    out_channels: int
    kernel: tuple[int, ...]
    stride: tuple[int, ...]
    padding: tuple[int, ...]
    dilation: tuple[int, ...]
    groups: int
    input_shape: tuple[int, ...]
    bias: bool
    post: tuple[str, ...] = ()

    @property
    def depthwise(self) -> bool:
        return self.kind != "linear" and self.groups == self.in_channels == self.out_channels and self.groups > 1

    def name(self) -> str:
        """A stable text key without the widths."""
        geo = "x".join(map(str, self.input_shape))
        post = "".join(f"+{p}" for p in self.post)
        if self.kind == "linear":
            return f"linear[{geo}]b{int(self.bias)}{post}"
        k, s, p, d = ("x".join(map(str, t)) for t in (self.kernel, self.stride, self.padding, self.dilation))
        g = "dw" if self.depthwise else str(self.groups)
        return f"{self.kind}[{geo}]k{k}s{s}p{p}d{d}g{g}b{int(self.bias)}{post}"

    def build(self, cin: int, cout: int) -> tuple[nn.Module, torch.Tensor]:
        """The layer at widths ``(cin, cout)``, followed by its ``post`` layers, and a batch-1
        input for it."""
        if self.kind == "linear":
            layer: nn.Module = nn.Linear(cin, cout, bias=self.bias)
            x = torch.randn(1, *self.input_shape, cin)
        else:
            conv: Any = {"conv1d": nn.Conv1d, "conv2d": nn.Conv2d, "conv3d": nn.Conv3d}[self.kind]
            groups = cin if self.depthwise else self.groups
            layer = conv(
                cin, cout, self.kernel, self.stride, self.padding, self.dilation, groups=groups, bias=self.bias
            )
            x = torch.randn(1, cin, *self.input_shape)
        if self.post:
            layer = nn.Sequential(layer, *(POST_LAYERS[p](cout) for p in self.post))
        return layer, x


_ACTIVATION_TYPES = (nn.ReLU, nn.ReLU6, nn.SiLU, nn.Hardswish, nn.GELU, nn.LeakyReLU, nn.Sigmoid, nn.Hardsigmoid)


def _activation(cls: type[nn.Module]) -> Callable[[int], nn.Module]:
    """An activation made at any width (it has none)."""
    return lambda _width: cls()


_ACTIVATIONS: dict[str, Callable[[int], nn.Module]] = {cls.__name__: _activation(cls) for cls in _ACTIVATION_TYPES}
_POST_TYPES = frozenset((nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, *_ACTIVATION_TYPES))
# the per-channel layers timed with the conv or linear whose output they read: name -> the layer
# at a width (NetAdapt times such blocks, not bare convs: a norm and an activation cost about one
# read and write of the activation, which a cut of the outputs saves too)
POST_LAYERS: dict[str, Callable[[int], nn.Module]] = {
    "BatchNorm1d": nn.BatchNorm1d,
    "BatchNorm2d": nn.BatchNorm2d,
    "BatchNorm3d": nn.BatchNorm3d,
    **_ACTIVATIONS,
}


def _spec(module: nn.Module, x: torch.Tensor) -> LayerSpec | None:
    if isinstance(module, nn.Linear):
        return LayerSpec(
            "linear", module.in_features, module.out_features, (), (), (), (), 1, tuple(x.shape[1:-1]),
            module.bias is not None,
        )  # fmt: skip
    kinds: dict[type, str] = {nn.Conv1d: "conv1d", nn.Conv2d: "conv2d", nn.Conv3d: "conv3d"}
    kind = kinds.get(type(module))
    if kind is None or not isinstance(module, nn.modules.conv._ConvNd) or not isinstance(module.padding, tuple):
        return None  # padding="same" etc.: not tabulated
    return LayerSpec(
        kind, module.in_channels, module.out_channels, tuple(module.kernel_size), tuple(module.stride),
        tuple(module.padding), tuple(module.dilation), module.groups, tuple(x.shape[2:]), module.bias is not None,
    )  # fmt: skip


class _Units:
    """Forward hooks that record each conv / linear's spec on its first call and the batch norm
    and activation that read its output directly (tensor identity; the outputs are held until
    the run ends, so an id is never reused by another tensor)."""

    def __init__(self) -> None:
        self.specs: dict[str, LayerSpec] = {}
        self.owner: dict[int, str] = {}  # id of a unit's latest output -> the unit's layer
        self.held: list[torch.Tensor] = []

    def layer(self, name: str, module: nn.Module, args: tuple[Any, ...], out: Any) -> None:
        if name in self.specs or not args or not isinstance(args[0], torch.Tensor):
            return
        spec = _spec(module, args[0])
        if spec is not None:
            self.specs[name] = spec
            self._continue(name, out)

    def post(self, module: nn.Module, args: tuple[Any, ...], out: Any) -> None:
        name = self.owner.pop(id(args[0]), None) if args else None
        if name is None:
            return
        spec, kind = self.specs[name], type(module).__name__
        is_norm = isinstance(module, nn.modules.batchnorm._BatchNorm)
        if is_norm and (spec.post or module.num_features != spec.out_channels):
            return  # a norm after the activation, or over other channels: not this unit's
        if not is_norm and any(p in _ACTIVATIONS for p in spec.post):
            return
        self.specs[name] = dataclasses.replace(spec, post=(*spec.post, kind))
        self._continue(name, out)

    def _continue(self, name: str, out: Any) -> None:
        if isinstance(out, torch.Tensor):
            self.owner[id(out)] = name
            self.held.append(out)


@torch.no_grad()
def layer_specs(model: nn.Module, example_inputs: Sequence[torch.Tensor], *, post: bool = True) -> dict[str, LayerSpec]:
    """The :class:`LayerSpec` of every conv and linear module that runs in ``model``'s forward,
    by qualified name (a module called twice keeps its first call), with the batch norm and
    activation modules that read its output directly as its ``post`` layers (``post=False``:
    none, each layer timed alone, as before NetAdapt's unit; ``benchmarks/latency_units.py``
    compares the two)."""
    units = _Units()
    hooks = []
    for name, m in model.named_modules():
        if isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)):
            hooks.append(m.register_forward_hook(functools.partial(lambda n, *a: units.layer(n, *a), name)))
        elif post and type(m) in _POST_TYPES:  # exact types: a subclass may compute something else
            hooks.append(m.register_forward_hook(units.post))
    was = model.training
    model.eval()
    try:
        model(*(x[:1] for x in example_inputs))
    finally:
        model.train(was)
        for h in hooks:
            h.remove()
    return units.specs


def grid_widths(full: int, multiple: int = 1) -> list[int]:
    """The widths a table measures for a dim of ``full`` channels: ``k * full / 8`` for k = 1..8,
    rounded to ``multiple`` (at least ``multiple``, at most ``full``), without repeats."""
    out = {full}
    for k in range(1, GRID):
        w = int(round(k * full / GRID / multiple)) * multiple
        out.add(min(full, max(multiple, w, 1)))
    return sorted(out)


def _bracket(widths: Sequence[int], width: int) -> tuple[int, int, float]:
    """The grid widths ``lo <= width <= hi`` around ``width`` and the weight
    ``(width - lo) / (hi - lo)`` of ``hi``; a width off either end of the grid is its own point
    (under the narrowest width) or the full width (over it)."""
    if width <= widths[0]:
        return max(width, 1), max(width, 1), 0.0
    if width >= widths[-1]:
        return widths[-1], widths[-1], 0.0
    hi = next(i for i, w in enumerate(widths) if w >= width)
    lo_w, hi_w = widths[hi - 1], widths[hi]
    return lo_w, hi_w, (width - lo_w) / (hi_w - lo_w)


class LatencyTable:
    """Measured latencies of single layers on one backend, cached on disk.

    Args:
        meter: the :class:`~prunekit.latency.Meter` that times a layer (backend, batch, threads).
        cache_dir: the folder of the cache file (default :func:`default_cache_dir`); ``None``
            with ``persist=False`` keeps the table in memory only.
        min_run_time: seconds of measurement per entry.
        multiple: grid widths are rounded to this (the ``round_to`` in use), so that the table
            is measured at widths a prune can produce.

    Attributes:
        key: what the figures depend on; the file is reused only when it matches.
        measured: how many entries this object measured (the rest came from the file).
    """

    def __init__(
        self,
        meter: Meter,
        *,
        cache_dir: str | os.PathLike[str] | None = None,
        persist: bool = True,
        min_run_time: float = LAYER_MIN_RUN_TIME,
        multiple: int = 1,
    ) -> None:
        self.meter = meter
        self.key = {
            **machine_key(meter.name),
            "batch": str(meter.batch),
            "threads": str(meter.threads),
            "format": str(TABLE_VERSION),
        }
        digest = hashlib.sha1(json.dumps(self.key, sort_keys=True).encode()).hexdigest()[:12]
        folder = Path(cache_dir if cache_dir is not None else default_cache_dir())
        self.path = folder / f"latency-{meter.name}-{digest}.json"
        self.persist = persist
        self.min_run_time = min_run_time
        self.multiple = multiple
        self.entries: dict[str, float] = self._load() if persist else {}
        self.measured = 0
        self._dirty = False

    def _load(self) -> dict[str, float]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        if not isinstance(data, dict) or data.get("key") != self.key:
            log.info("latency table %s was measured elsewhere (%s): measuring again", self.path, data.get("key"))
            return {}
        return {str(k): float(v) for k, v in dict(data.get("entries") or {}).items()}

    def save(self) -> Path | None:
        """Writes the table (atomically) if it changed; returns its path."""
        if not self.persist or not self._dirty:
            return None
        payload = {"key": self.key, "entries": dict(sorted(self.entries.items()))}
        path = write_text(self.path, json.dumps(payload, indent=1) + "\n")
        self._dirty = False
        return path

    def latency(self, spec: LayerSpec, cin: int, cout: int) -> float:
        """Seconds of ``spec`` at widths ``(cin, cout)``, measured once then read from the table."""
        if spec.depthwise:
            cout = cin
        elif spec.kind != "linear" and spec.groups > 1:  # a grouped conv keeps whole groups
            g = spec.groups
            cin, cout = max(g, cin // g * g), max(g, cout // g * g)
        key = f"{spec.name()}|{cin}|{cout}"
        if key not in self.entries:
            layer, x = spec.build(cin, cout)
            prev = self.meter.min_run_time
            self.meter.min_run_time = self.min_run_time
            try:
                self.entries[key] = float(self.meter(layer, (x,)))
            finally:
                self.meter.min_run_time = prev
            self.measured += 1
            self._dirty = True
        return self.entries[key]

    def estimate(self, spec: LayerSpec, cin: int, cout: int) -> float:
        """Seconds of ``spec`` at any widths: bilinear on the grid (see the module docstring). A
        width under the narrowest grid width is timed itself, as if it were on the grid."""
        if spec.depthwise:
            (c0, c1, u) = _bracket(grid_widths(spec.in_channels, self.multiple), cin)
            return float((1 - u) * self.latency(spec, c0, c0) + u * self.latency(spec, c1, c1))
        (a0, a1, u) = _bracket(grid_widths(spec.in_channels, self.multiple), cin)
        (b0, b1, v) = _bracket(grid_widths(spec.out_channels, self.multiple), cout)
        corners = ((a0, b0, (1 - u) * (1 - v)), (a1, b0, u * (1 - v)), (a0, b1, (1 - u) * v), (a1, b1, u * v))
        return float(sum(w * self.latency(spec, a, b) for a, b, w in corners if w > 0))

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "path": str(self.path), "entries": len(self.entries), "measured": self.measured}
