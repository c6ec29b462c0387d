"""Export for users without prunekit: a ``torch.export`` program (``.pt2``) and ONNX.

A pruned model is a plain ``nn.Module`` with smaller layers, so both exporters take it as is. The
batch dimension is exported as dynamic (traced at batch 2: ``torch.export`` specialises a size of
1), and :func:`verify_export` runs the files back (``torch.export.load`` and onnxruntime on CPU)
at several batch sizes against the PyTorch model.

>>> export_onnx(model, (x,), "model.onnx")
>>> verify_export(model, (x,), onnx="model.onnx")
{'onnx': 2.9e-07}
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
from torch.utils._pytree import tree_leaves

from prunekit.batching import as_inputs, with_batch
from prunekit.errors import ConfigError, EquivalenceError, TraceError
from prunekit.fileio import atomic_write, write_bytes
from prunekit.modes import restore_training_flags, save_training_flags, training_flags

__all__ = ["export_program", "export_onnx", "verify_export", "DEFAULT_OPSET"]

log = logging.getLogger(__name__)

DEFAULT_OPSET = 18  # the lowest opset the torch.export-based ONNX exporter targets natively


def _trace_args(inputs: tuple[torch.Tensor, ...], dynamic_batch: bool) -> tuple[tuple[torch.Tensor, ...], Any]:
    """Inputs to trace with, and the ``dynamic_shapes`` that make dim 0 of each one ``batch``."""
    if not dynamic_batch:
        return inputs, None
    batch = torch.export.Dim("batch")
    return with_batch(inputs, 2), tuple({0: batch} for _ in inputs)


def _export_failed(
    what: str, model: nn.Module, path: str | os.PathLike, exc: Exception, dynamic_batch: bool
) -> TraceError:
    hint = " (if the model fixes its batch size, pass dynamic_batch=False / --static-batch)" if dynamic_batch else ""
    name = type(model).__name__
    return TraceError(f"{what} of {name} for {os.fspath(path)!r} failed{hint}: {exc}", module=name)


def _eval_export(
    model: nn.Module, inputs: tuple[torch.Tensor, ...], path: str | os.PathLike, dynamic_batch: bool
) -> torch.export.ExportedProgram:
    traced, dynamic_shapes = _trace_args(inputs, dynamic_batch)
    with training_flags(model, False):
        try:
            return torch.export.export(model, traced, dynamic_shapes=dynamic_shapes)
        except Exception as exc:  # torch raises many types here; the user needs the file and the cause
            raise _export_failed("torch.export", model, path, exc, dynamic_batch) from exc


def export_program(
    model: nn.Module,
    example_inputs: torch.Tensor | Sequence[torch.Tensor],
    path: str | os.PathLike,
    *,
    dynamic_batch: bool = True,
) -> Path:
    """Writes ``model`` (in eval mode) as a ``torch.export`` program.

    Load it without prunekit: ``torch.export.load(path).module()(x)``.

    Args:
        dynamic_batch: export dim 0 of every input as a dynamic ``batch`` dim; ``False`` keeps the
            example's batch size (for models that fix it, e.g. with ``x.view(8, -1)``).

    Returns:
        The path written (atomically).

    Raises:
        TraceError: the model cannot be exported (the message names the file and the cause).
    """
    program = _eval_export(model, as_inputs(example_inputs), path, dynamic_batch)
    return atomic_write(path, lambda f: torch.export.save(program, f))


def export_onnx(
    model: nn.Module,
    example_inputs: torch.Tensor | Sequence[torch.Tensor],
    path: str | os.PathLike,
    *,
    opset: int = DEFAULT_OPSET,
    dynamic_batch: bool = True,
    input_names: Sequence[str] | None = None,
    output_names: Sequence[str] | None = None,
) -> Path:
    """Writes ``model`` (in eval mode) as ONNX, by default with a dynamic batch dim named ``batch``.

    Uses the ``torch.export``-based exporter (``torch.onnx.export(..., dynamo=True)``, which needs
    ``onnxscript``: ``pip install prunekit[export]``). Inputs are named ``input``, ``input_1``...
    and outputs ``output``, ``output_1``... unless names are given.

    Args:
        opset: the ONNX opset, at least 18.
        dynamic_batch: as in :func:`export_program`.

    Returns:
        The path written (atomically).

    Raises:
        ConfigError: ``opset`` is below 18 or onnxscript is missing.
        TraceError: the model cannot be exported (the message names the file and the cause).
    """
    if isinstance(opset, bool) or not isinstance(opset, int) or opset < DEFAULT_OPSET:
        raise ConfigError(f"opset must be an int >= {DEFAULT_OPSET}, but got {opset!r}", module="opset")
    try:
        import onnxscript  # noqa: F401
    except ImportError as exc:
        raise ConfigError("ONNX export needs onnxscript: pip install 'prunekit[export]'", module="onnx") from exc
    inputs = as_inputs(example_inputs)
    traced, dynamic_shapes = _trace_args(inputs, dynamic_batch)
    names = list(input_names or [f"input{'_' + str(i) if i else ''}" for i in range(len(inputs))])
    if len(names) != len(inputs):
        raise ConfigError(f"input_names has {len(names)} names for {len(inputs)} inputs", module="input_names")
    flags = save_training_flags(model)
    model.eval()
    try:
        with torch.no_grad():
            n_out = len(tree_leaves(model(*traced)))
        outs = list(output_names or [f"output{'_' + str(i) if i else ''}" for i in range(n_out)])
        onnx_program = torch.onnx.export(
            model,
            traced,
            dynamic_shapes=dynamic_shapes,
            opset_version=opset,
            input_names=names,
            output_names=outs,
            dynamo=True,
            verbose=False,
        )
    except Exception as exc:  # torch raises many types here; the user needs the file and the cause
        raise _export_failed("ONNX export", model, path, exc, dynamic_batch) from exc
    finally:
        restore_training_flags(flags)
    if onnx_program is None:  # only the legacy exporter returns None; dynamo=True always gives a program
        raise TraceError(f"ONNX export for {os.fspath(path)!r} returned no program", module=type(model).__name__)
    return write_bytes(path, onnx_program.model_proto.SerializeToString())


def _max_diff(expected: list[torch.Tensor], got: list[torch.Tensor], *, atol: float, rtol: float, where: str) -> float:
    if len(expected) != len(got):
        raise EquivalenceError(f"{where}: {len(got)} outputs, but the model gives {len(expected)}", module=where)
    worst = 0.0
    for i, (e, g) in enumerate(zip(expected, got)):
        g = torch.as_tensor(g)
        if tuple(e.shape) != tuple(g.shape):
            raise EquivalenceError(
                f"{where}: output {i} has shape {list(g.shape)}, but the model gives {list(e.shape)}", module=where
            )
        if not (bool(torch.isfinite(e).all()) and bool(torch.isfinite(g).all())):
            raise EquivalenceError(
                f"{where}: output {i} holds NaN or inf (in the model or in the file); a non-finite output "
                "never passes the check",
                module=where,
            )
        diff = (e.double() - g.double()).abs()
        bound = atol + rtol * e.double().abs().max().item()
        if diff.max().item() > bound:
            raise EquivalenceError(
                f"{where}: output {i} differs from the PyTorch model by up to {diff.max().item():.3g} "
                f"(allowed {bound:.3g}); the exported file does not compute what the model computes",
                module=where,
            )
        worst = max(worst, diff.max().item())
    return worst


@torch.no_grad()
def verify_export(
    model: nn.Module,
    example_inputs: torch.Tensor | Sequence[torch.Tensor],
    *,
    program: str | os.PathLike | None = None,
    onnx: str | os.PathLike | None = None,
    batch_sizes: Sequence[int] = (1, 3),
    atol: float = 1e-4,
    rtol: float = 1e-4,
) -> dict[str, float]:
    """Loads the exported files and checks they compute what ``model`` computes (eval mode).

    Each file is run on ``example_inputs`` and on random inputs of the same per-sample shape at
    every batch size in ``batch_sizes`` (checking the dynamic batch dim; give ``()`` for a file
    exported with ``dynamic_batch=False``); an output passes when
    ``max|model - file| <= atol + rtol * max|model|``.

    Returns:
        ``{"pt2": max abs diff, "onnx": max abs diff}`` for the files given.

    Raises:
        ConfigError: a file does not exist, or neither file is given.
        EquivalenceError: outputs differ; the message names the file.
    """
    if program is None and onnx is None:
        raise ConfigError("verify_export: give program=<.pt2 path> and/or onnx=<.onnx path>", module="verify_export")
    inputs = as_inputs(example_inputs)
    gen = torch.Generator().manual_seed(0)
    cases = [inputs] + [
        tuple(
            torch.randn((b, *x.shape[1:]), generator=gen, dtype=x.dtype)
            if x.is_floating_point()
            else with_batch((x,), b)[0]
            for x in inputs
        )
        for b in batch_sizes
    ]
    with training_flags(model, False):
        expected = [[t.detach().cpu() for t in tree_leaves(model(*case))] for case in cases]
    result: dict[str, float] = {}
    for key, path in (("pt2", program), ("onnx", onnx)):
        if path is None:
            continue
        if not os.path.isfile(path):
            raise ConfigError(f"{key} file {os.fspath(path)!r} does not exist", module=os.fspath(path))
        run = _pt2_runner(path) if key == "pt2" else _onnx_runner(path)
        result[key] = max(
            _max_diff(exp, run(case), atol=atol, rtol=rtol, where=os.fspath(path)) for exp, case in zip(expected, cases)
        )
        log.info("%s matches the model (max abs diff %.3g)", os.fspath(path), result[key])
    return result


def _pt2_runner(path: str | os.PathLike):
    module = torch.export.load(os.fspath(path)).module()
    return lambda case: [t.detach().cpu() for t in tree_leaves(module(*case))]


def _onnx_runner(path: str | os.PathLike):
    try:
        import onnxruntime as ort
    except ImportError as exc:
        raise ConfigError("checking ONNX needs onnxruntime: pip install 'prunekit[export]'", module="onnx") from exc
    session = ort.InferenceSession(os.fspath(path), providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]

    def run(case: tuple[torch.Tensor, ...]) -> list[torch.Tensor]:
        if len(case) != len(names):
            raise EquivalenceError(
                f"{os.fspath(path)}: takes {len(names)} inputs, not {len(case)}", module=os.fspath(path)
            )
        feeds = {n: x.detach().cpu().numpy() for n, x in zip(names, case)}
        return [torch.from_numpy(o) for o in session.run(None, feeds)]

    return run
