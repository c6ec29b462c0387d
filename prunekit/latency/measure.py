"""Measured latency on a named backend: PyTorch eager on the CPU, ONNX Runtime on the CPU, CUDA.

A backend is a :class:`LatencyBackend` in the registry :data:`LATENCY_BACKENDS`; it turns a model
and its inputs into a zero-argument ``run`` callable, and :func:`median_time` times that callable
with a clock (``time.perf_counter`` unless a test passes a fake one). Users register their own
backend (an accelerator runtime, a remote device) with ``LATENCY_BACKENDS.add(name, backend)``.

The ``"torch"`` backend times with ``torch.utils.benchmark`` (``blocked_autorange``, which fixes
the thread count and picks the block size); the others use :func:`median_time`. The eager
backends (``"torch"``, ``"cuda"``) run under ``torch.inference_mode`` (PyTorch's recommended
context for inference: no version counters or view tracking), the same for every model timed,
so the per-call overhead that no channel count removes is as small as eager allows for the
original and the pruned model alike.
"""

from __future__ import annotations

import copy
import io
import itertools
import platform
import statistics
import time
import warnings
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import torch
import torch.nn as nn

from prunekit.batching import with_batch
from prunekit.modes import training_flags
from prunekit.registry import Registry

__all__ = [
    "LatencyBackend",
    "LATENCY_BACKENDS",
    "Meter",
    "median_time",
    "measure_latency",
    "compare_latency",
    "machine_key",
]

Clock = Callable[[], float]
K = TypeVar("K", bound=Hashable)


def median_time(
    run: Callable[[], Any],
    *,
    min_run_time: float = 0.5,
    min_runs: int = 5,
    warmup: int = 2,
    clock: Clock = time.perf_counter,
    sync: Callable[[], Any] | None = None,
) -> float:
    """Median seconds of ``run()`` over repeated calls.

    ``warmup`` calls are not timed; then calls are timed one by one (``sync`` after each, e.g.
    ``torch.cuda.synchronize``) until at least ``min_runs`` were made and their total reached
    ``min_run_time`` seconds on ``clock``.
    """
    for _ in range(warmup):
        run()
    if sync is not None:
        sync()
    times: list[float] = []
    while len(times) < min_runs or sum(times) < min_run_time:
        t0 = clock()
        run()
        if sync is not None:
            sync()
        times.append(clock() - t0)
        if len(times) >= 10_000:  # a clock that does not advance must not hang the caller
            break
    return float(statistics.median(times))


@dataclass(frozen=True)
class LatencyBackend:
    """How to time a model on one runtime.

    Attributes:
        name: the registry name ("torch", "onnxruntime", "cuda").
        description: one line for ``prunekit list``.
        prepare: ``(model, inputs, threads) -> run``: a zero-argument callable that runs one
            eval-mode forward of ``inputs`` (already at the measured batch size).
        available: ``() -> str | None``: why the backend cannot run here, or None.
        versions: ``() -> dict``: the versions the timings depend on (part of the cache key).
        sync: called after each run before the clock is read (CUDA), or None.
        timer: ``(run, threads, min_run_time) -> seconds``, or None for :func:`median_time`.
        clock: the clock :func:`median_time` reads for this backend (default
            ``time.perf_counter``); a simulated backend brings its own.
    """

    name: str
    description: str
    prepare: Callable[[nn.Module, tuple[torch.Tensor, ...], int], Callable[[], Any]]
    available: Callable[[], str | None]
    versions: Callable[[], dict[str, str]]
    sync: Callable[[], Any] | None = None
    timer: Callable[[Callable[[], Any], int, float], float] | None = None
    clock: Clock | None = None


LATENCY_BACKENDS: Registry[LatencyBackend] = Registry("latency backend")


def _on_cpu(model: nn.Module) -> nn.Module:
    """``model`` itself if all its tensors are on the CPU, else a CPU copy."""
    tensors = itertools.chain(model.parameters(), model.buffers())
    return model if all(t.device.type == "cpu" for t in tensors) else copy.deepcopy(model).cpu()


def _torch_prepare(model: nn.Module, inputs: tuple[torch.Tensor, ...], threads: int) -> Callable[[], Any]:
    model, inputs = _on_cpu(model), tuple(x.cpu() for x in inputs)

    def run() -> Any:
        with torch.inference_mode():
            return model(*inputs)

    return run


def _torch_timer(run: Callable[[], Any], threads: int, min_run_time: float) -> float:
    from torch.utils import benchmark  # only when timing: it is slow to import

    timer = benchmark.Timer(stmt="run()", globals={"run": run}, num_threads=threads)
    return float(timer.blocked_autorange(min_run_time=min_run_time).median)


def _ort_prepare(model: nn.Module, inputs: tuple[torch.Tensor, ...], threads: int) -> Callable[[], Any]:
    import onnxruntime as ort

    model, inputs = _on_cpu(model), tuple(x.cpu() for x in inputs)
    buf = io.BytesIO()
    names = [f"x{i}" for i in range(len(inputs))]
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, inputs, buf, input_names=names, dynamo=False)  # type: ignore[arg-type]
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    sess = ort.InferenceSession(buf.getvalue(), opts, providers=["CPUExecutionProvider"])
    feed = {n: x.numpy() for n, x in zip(names, inputs)}
    return lambda: sess.run(None, feed)


def _cuda_prepare(model: nn.Module, inputs: tuple[torch.Tensor, ...], threads: int) -> Callable[[], Any]:
    model = copy.deepcopy(model).cuda()
    inputs = tuple(x.cuda() for x in inputs)

    def run() -> Any:
        with torch.inference_mode():
            return model(*inputs)

    return run


def _ort_missing() -> str | None:
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return "onnxruntime is not installed (pip install onnxruntime)"
    return None


def _ort_versions() -> dict[str, str]:
    import onnxruntime

    return {"torch": torch.__version__, "onnxruntime": onnxruntime.__version__}


def _cuda_versions() -> dict[str, str]:
    return {"torch": torch.__version__, "cuda": str(torch.version.cuda), "device": torch.cuda.get_device_name()}


LATENCY_BACKENDS.add(
    "torch",
    LatencyBackend(
        "torch",
        "PyTorch eager on the CPU (torch.utils.benchmark)",
        _torch_prepare,
        lambda: None,
        lambda: {"torch": torch.__version__},
        timer=_torch_timer,
    ),
    description="PyTorch eager on the CPU (torch.utils.benchmark)",
)
LATENCY_BACKENDS.add(
    "onnxruntime",
    LatencyBackend("onnxruntime", "ONNX Runtime, CPU provider", _ort_prepare, _ort_missing, _ort_versions),
    description="ONNX Runtime on the CPU (the model exported with torch.onnx)",
)
LATENCY_BACKENDS.add(
    "cuda",
    LatencyBackend(
        "cuda",
        "PyTorch eager on the GPU",
        _cuda_prepare,
        lambda: None if torch.cuda.is_available() else "no CUDA device is available",
        _cuda_versions,
        sync=lambda: torch.cuda.synchronize(),
    ),
    description="PyTorch eager on the first CUDA device (synchronised after each run)",
)


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_key(backend: str) -> dict[str, str]:
    """What a latency measured on ``backend`` depends on besides the layer: the machine (CPU
    model, core count, OS, architecture) and the backend's versions."""
    import os

    return {
        "backend": backend,
        "cpu": _cpu_name(),
        "cpu_count": str(os.cpu_count()),
        "machine": platform.machine(),
        "system": platform.system(),
        **LATENCY_BACKENDS.get(backend, argument="latency_backend").versions(),
    }


class Meter:
    """Times models on one backend at a fixed batch size and thread count.

    Args:
        backend: a name in :data:`LATENCY_BACKENDS`.
        batch: the batch size measured (the first example sample repeated).
        threads: intra-op threads of the runtime.
        min_run_time: seconds of measurement per model.
        clock: the clock of :func:`median_time` (default: the backend's, else
            ``time.perf_counter``; given, it replaces the backend's own timer).

    Raises:
        UnknownNameError: an unknown backend; ConfigError: one that cannot run here.
    """

    def __init__(
        self,
        backend: str = "torch",
        *,
        batch: int = 1,
        threads: int = 1,
        min_run_time: float = 0.5,
        clock: Clock | None = None,
    ) -> None:
        from prunekit.errors import ConfigError

        self.backend = LATENCY_BACKENDS.get(backend, argument="latency_backend")
        why = self.backend.available()
        if why is not None:
            raise ConfigError(f"latency_backend {backend!r} cannot run here: {why}", module="latency_backend")
        self.batch, self.threads, self.min_run_time, self.clock = batch, threads, min_run_time, clock

    @property
    def name(self) -> str:
        return self.backend.name

    def __call__(self, model: nn.Module, example_inputs: torch.Tensor | Sequence[torch.Tensor]) -> float:
        """Median seconds of one eval-mode forward of ``model`` at ``batch`` (its mode restored)."""
        with training_flags(model):  # every module's own flag back afterwards
            return self.time(self.prepare(model, example_inputs))

    def prepare(self, model: nn.Module, example_inputs: torch.Tensor | Sequence[torch.Tensor]) -> Callable[[], Any]:
        """Puts ``model`` in eval mode and returns the backend's ``run`` for it at ``batch`` (an
        exported session for ONNX Runtime, a GPU copy for CUDA), to time once or several times
        with :meth:`time`."""
        model.eval()
        return self.backend.prepare(model, with_batch(example_inputs, self.batch), self.threads)

    def time(self, run: Callable[[], Any]) -> float:
        """Median seconds of ``run()`` (with ``threads`` intra-op threads)."""
        prev = torch.get_num_threads()
        torch.set_num_threads(self.threads)
        try:
            clock = self.clock or self.backend.clock
            if self.backend.timer is not None and clock is None:
                return self.backend.timer(run, self.threads, self.min_run_time)
            return median_time(
                run, min_run_time=self.min_run_time, clock=clock or time.perf_counter, sync=self.backend.sync
            )
        finally:
            torch.set_num_threads(prev)

    def interleaved(self, runs: Mapping[K, Callable[[], Any]], rounds: int) -> dict[K, list[float]]:
        """Seconds of each prepared run in ``runs`` (key -> run), timed with :meth:`time` in
        ``rounds`` interleaved rounds (every run once per round, in the mapping's order): a
        machine that slows down between rounds slows all of them alike, so ratios taken within
        a round, or of the medians, cancel the drift."""
        times: dict[K, list[float]] = {key: [] for key in runs}
        for _ in range(rounds):
            for key, run in runs.items():
                times[key].append(self.time(run))
        return times


@torch.no_grad()
def measure_latency(
    model: nn.Module, example_inputs: Sequence[torch.Tensor], *, threads: int = 1, min_run_time: float = 1.0
) -> float:
    """Median seconds per eval-mode forward of ``model`` on ``example_inputs`` (their batch
    size as given), PyTorch eager on the CPU with ``threads`` intra-op threads."""
    inputs = tuple(example_inputs)
    meter = Meter("torch", batch=int(inputs[0].shape[0]), threads=threads, min_run_time=min_run_time)
    return meter(model, inputs)


def compare_latency(
    model_before: nn.Module,
    model_after: nn.Module,
    example_inputs: torch.Tensor | Sequence[torch.Tensor],
    *,
    batch_sizes: Sequence[int] = (1, 32),
    threads: int = 1,
    min_run_time: float = 0.5,
    backend: str = "torch",
) -> dict[str, Any]:
    """Median latency of both models at each batch size (the first example sample repeated).

    Returns:
        ``{"backend", "device", "threads", "min_run_time", "batches": {"1": {"before_ms",
        "after_ms", "speedup"}, ...}}``; ``speedup`` is ``before / after``.
    """
    batches: dict[str, dict[str, float]] = {}
    for b in batch_sizes:
        meter = Meter(backend, batch=int(b), threads=threads, min_run_time=min_run_time)
        before, after = meter(model_before, example_inputs), meter(model_after, example_inputs)
        batches[str(b)] = {"before_ms": before * 1e3, "after_ms": after * 1e3, "speedup": before / after}
    device = "cuda" if backend == "cuda" else "cpu"
    return {"backend": backend, "device": device, "threads": threads, "min_run_time": min_run_time, "batches": batches}
