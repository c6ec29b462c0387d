"""MACs without the arithmetic: count them from shapes while skipping the heavy kernels.

:func:`prunekit.metrics.macs_per_module` runs a real forward under ``FlopCounterMode``; on a
ResNet-50 at 224 px that is most of a prune's time, spent computing convolutions whose values
nobody reads. :class:`ShapeOnlyMode` is a ``TorchDispatchMode`` that sees the same ATen ops as
``FlopCounterMode`` (after autograd and composite decompositions), counts every op of
``torch.utils.flop_counter``'s registry with that registry's own formulas (so the totals are the
same by construction), and, for convolutions, matrix products and eval-mode batch norms,
returns zeros of the output shape instead of computing it. Shapes are checked as the kernels would (channels against
weights, inner dims of products), so a forward under this mode is still a check that a pruned
model's layers fit together. Everything else (activations, norms, pooling, adds) runs for real
on the zeros: cheap, and exactly the model's own shape logic.

The same mode wraps the eval-mode run of the dependency analysis (``DependencyGraph(...,
run_context=...)``): the analysis only reads shapes, so it needs no real convolutions, and the
MACs of the unpruned model come out of that run for free.

Note:
    MACs are FLOPs / 2 as ``FlopCounterMode`` counts them (matmuls, convolutions, attention;
    element-wise ops are not counted). Per-module counts are inclusive (a module's count holds
    its children's), keyed by qualified name with ``""`` for the whole model, like
    :func:`~prunekit.metrics.macs_per_module`; in the dependency analysis only leaf layers are
    called as modules, so only they (and ``""``) appear there.
"""

from __future__ import annotations

import functools
import logging
import weakref
from collections import defaultdict
from collections.abc import Collection, Iterable, Sequence
from typing import Any

import torch
import torch.nn as nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import flop_registry

from prunekit.engine.skipped import SKIPPABLE, conv_shape, eval_batch_norm, skipped_output
from prunekit.graph.dependency import DependencyGraph
from prunekit.inputs import as_example_inputs
from prunekit.modes import attention_decomposed, training_flags
from prunekit.submodules import submodule

__all__ = ["ShapeOnlyMode", "analyse", "fast_macs_per_module", "fast_count_macs"]

log = logging.getLogger(__name__)

aten = torch.ops.aten


#: Leaf types :meth:`ShapeOnlyMode.call_leaf` answers for (exact types: a subclass may change
#: ``forward``), and the input ranks each norm accepts (its ``_check_input_dim``).
_SHORTCUT_CONVS = {nn.Conv1d, nn.Conv2d, nn.Conv3d}
_NORM_DIMS = {nn.BatchNorm1d: (2, 3), nn.BatchNorm2d: (4,), nn.BatchNorm3d: (5,)}
#: Elementwise leaves with f(0) = 0 (their output on a stand-in of zeros is zeros of its shape),
#: and those that return their input in eval mode.
_PASS_THROUGH = {nn.Identity, nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout}
_ZERO_PRESERVING = {
    nn.ReLU, nn.ReLU6, nn.Hardswish, nn.SiLU, nn.GELU, nn.LeakyReLU, nn.ELU, nn.Tanh, nn.Mish,
} | _PASS_THROUGH  # fmt: skip


#: Exact layer types whose call runs no op with a MAC formula (an eval or training batch norm,
#: an elementwise activation): counting them per module needs no hooks, their count is 0.
_MACLESS = {*_NORM_DIMS, *_ZERO_PRESERVING}
_LEAVES = {*_SHORTCUT_CONVS, *_MACLESS}  # every type call_leaf may answer for


def _runs_its_type(m: nn.Module, kinds: Collection[type]) -> bool:
    """``m`` is exactly one of ``kinds`` and runs that type's ``forward`` (none was patched onto
    the instance, as wrappers that add a branch do): what it computes, and counts, is known."""
    return type(m) in kinds and "forward" not in m.__dict__


def _plain(t: object) -> bool:
    if not isinstance(t, torch.Tensor) or type(t) not in (torch.Tensor, nn.Parameter):  # no subclasses
        return False
    return t.layout == torch.strided and t.device.type != "meta"


class ShapeOnlyMode(TorchDispatchMode):
    """Counts MACs per module like ``FlopCounterMode`` and skips the arithmetic of convolutions,
    matrix products and eval-mode batch norms (their outputs are zeros of the right shape).

    Args:
        model: the module whose submodules' calls attribute the MACs (qualified names).
        skip_compute: ``False`` to compute everything (counting only).
        modules: count per module only for these qualified names (``()``: the total only):
            an exact ``nn.ConvNd`` whose weight no other module holds is counted by the
            weight its convolutions take, an exact batch norm or activation has none, any
            other is counted through hooks on it alone; ``None`` counts
            every module, through global hooks that slow every module call a little.

    Attributes:
        total: MACs counted so far.
        per_module: MACs per qualified module name (inclusive; ``""`` is the whole model).
    """

    def __init__(self, model: nn.Module, *, skip_compute: bool = True, modules: Iterable[str] | None = None) -> None:
        super().__init__()
        self.skip_compute = skip_compute
        self._model = model
        self._only = None if modules is None else list(dict.fromkeys(modules))
        self.total = 0
        self.per_module: dict[str, int] = defaultdict(int)
        # names for the global hooks; hooks on chosen modules carry their own
        self._names = {id(m): n for n, m in model.named_modules()} if modules is None else {}
        self._by_weight: dict[int, str] = {}  # conv weight id -> module, for chosen convs (see __enter__)
        self._stack: list[str] = []
        self._hooks: list[Any] = []
        self._made: dict[int, weakref.ref] = {}  # the stand-ins this mode returned, by id

    @classmethod
    def _should_skip_dynamo(cls) -> bool:
        # torch wraps a mode's __torch_dispatch__ in torch._disable_dynamo unless this says
        # no; this mode never runs under torch.compile, and the wrapper (eval-frame swaps on
        # every op) costs a fifth of a shape-only forward
        return False

    def _made_here(self, t: torch.Tensor) -> torch.Tensor:
        """Records ``t`` as a stand-in this mode made (its values are zeros nobody reads)."""
        self._made[id(t)] = weakref.ref(t)
        return t

    def _is_made(self, t: object) -> bool:
        ref = self._made.get(id(t))
        return ref is not None and ref() is t

    # module attribution: global hooks keep the stack of modules being called
    def _pre(self, module: nn.Module, _args: Any) -> None:
        self._stack.append(self._names.get(id(module), "?"))

    def _push(self, name: str, _module: nn.Module, _args: Any) -> None:
        self._stack.append(name)

    def _post(self, _module: nn.Module, _args: Any, _out: Any) -> None:
        if self._stack:
            self._stack.pop()

    def _weight_owners(self, chosen: dict[int, tuple[str, nn.Module]]) -> dict[int, str]:
        """Chosen exact ``nn.ConvNd`` layers whose weight no other module holds, by weight id.

        All of such a layer's MACs are convolutions on its own weight, so they can be counted to
        it by that operand (one dict lookup per convolution) instead of through a pair of
        hooks per layer, which slow every call of it."""
        candidates = {
            id(w): name
            for name, m in chosen.values()
            if _runs_its_type(m, _SHORTCUT_CONVS) and (w := m._parameters.get("weight")) is not None
        }
        if not candidates:
            return {}
        holders: dict[int, int] = defaultdict(int)
        for m in self._model.modules():
            for t in m._parameters.values():
                if t is not None and id(t) in candidates:
                    holders[id(t)] += 1
        return {w: name for w, name in candidates.items() if holders[w] == 1}

    def __enter__(self) -> ShapeOnlyMode:
        if self._only is None:
            self._hooks = [
                nn.modules.module.register_module_forward_pre_hook(self._pre),
                nn.modules.module.register_module_forward_hook(self._post, always_call=True),
            ]
        else:
            chosen: dict[int, tuple[str, nn.Module]] = {}
            for n in self._only:
                if n:
                    m = submodule(self._model, n)
                    chosen.setdefault(id(m), (n, m))
            self._by_weight = self._weight_owners(chosen)
            counted = set(self._by_weight.values())
            for n, m in chosen.values():
                if n not in counted and not _runs_its_type(m, _MACLESS):
                    self._hooks += [
                        m.register_forward_pre_hook(functools.partial(self._push, n)),
                        m.register_forward_hook(self._post, always_call=True),
                    ]
        return super().__enter__()

    def __exit__(self, *exc: Any) -> None:
        for h in self._hooks:
            h.remove()
        self._hooks = []
        self._stack = []
        self._by_weight = {}
        super().__exit__(*exc)

    def call_leaf(self, name: str, module: nn.Module, args: tuple, kwargs: dict) -> Any:
        """A leaf layer's stand-in output, counted as this mode would count it, without the
        module call: exactly what calling the module under this mode returns, minus the Python
        layers in between (``Module.__call__``, ``forward``, the functional wrapper, the
        dispatcher's way back into Python), which cost more than the stand-in on a small model.
        ``NotImplemented`` for anything else: the module is called.

        Only exact ``nn.ConvNd`` (zero padding given as numbers), ``nn.BatchNormNd`` in eval
        mode with running statistics (both with one plain input of the weight's dtype and
        device), and eval-mode elementwise layers with f(0) = 0 on a stand-in qualify, with
        gradients off, no hooks and no ``forward`` of their own (one set on the instance); the
        interpreter passes the qualified ``name``.
        """
        if (
            not self.skip_compute
            or kwargs
            or len(args) != 1
            or module._forward_hooks
            or module._forward_pre_hooks
            or not _runs_its_type(module, _LEAVES)
            or torch.is_grad_enabled()
        ):
            return NotImplemented
        x = args[0]
        kind = type(module)
        if kind in _SHORTCUT_CONVS:
            return self._conv_leaf(name, module, x)
        if kind in _NORM_DIMS:
            return self._norm_leaf(module, x)
        if kind in _ZERO_PRESERVING and self._is_made(x) and not module.training:
            # f(0) = 0, elementwise, no MACs: on a stand-in, what the real op returns is a
            # stand-in again (the input itself when in place), so skip the arithmetic
            if kind in _PASS_THROUGH or getattr(module, "inplace", False):
                return x
            return self._made_here(torch.zeros_like(x))
        return NotImplemented

    def _conv_leaf(self, name: str, m: Any, x: Any) -> Any:
        w, b = m.weight, m.bias
        if (
            m.padding_mode != "zeros"
            or isinstance(m.padding, str)
            or not _plain(x)
            or not _plain(w)
            or x.dtype != w.dtype
            or x.device != w.device
        ):
            return NotImplemented
        args = (x, w, b, m.stride, m.padding, m.dilation, False, (0,) * len(m.stride), m.groups)
        shape = conv_shape(args)  # raises on channels that do not fit, as the kernel would
        if shape is None:
            return NotImplemented
        out = self._made_here(torch.zeros(shape, dtype=x.dtype, device=x.device))
        macs = _direct_macs(aten.convolution.default, args, out) or 0
        self.total += macs
        for owner in {"", self._names.get(id(m), name)}:  # what the module's call would push
            self.per_module[owner] += macs
        return out

    def _norm_leaf(self, m: Any, x: Any) -> Any:
        if (
            m.training
            or m.running_mean is None
            or m.running_var is None
            or not _plain(x)
            or x.ndim not in _NORM_DIMS[type(m)]
            or x.dtype != m.running_mean.dtype
            or x.device != m.running_mean.device
        ):
            return NotImplemented
        outs = eval_batch_norm((x, m.weight, m.bias, m.running_mean, m.running_var, False), reuse=self._is_made(x))
        if outs is None:
            return NotImplemented
        return self._made_here(outs[0])

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001 -- torch's signature
        kwargs = kwargs or {}
        out = None
        if (
            self.skip_compute
            and func in SKIPPABLE
            and not kwargs
            and all(_plain(a) for a in args if isinstance(a, torch.Tensor))
        ):
            reuse = not torch.is_grad_enabled() and self._is_made(args[0])
            out = skipped_output(func, args, reuse_input=reuse)
            if out is not None:
                first = out[0] if isinstance(out, tuple) else out
                self._made_here(first)
        if out is None:
            out = func(*args, **kwargs)
        macs = _direct_macs(func, args, out)
        formula = _formula(func) if macs is None else None
        if formula is not None:
            macs = int(formula(*args, **kwargs, out_val=out)) // 2
        if macs is not None:
            self.total += macs
            names = {"", *self._stack}
            if self._by_weight and func is aten.convolution.default:
                owner = self._by_weight.get(id(args[1]))
                if owner is not None:
                    names.add(owner)
            for name in names:
                self.per_module[name] += macs
        return out


_FORMULAS: dict[Any, Any] = {}


def _formula(func: Any) -> Any:
    """``flop_registry``'s formula for an op overload, or ``None``; cached per overload (the
    registry is keyed by packets, whose hash is a Python method)."""
    try:
        return _FORMULAS[func]
    except KeyError:
        _FORMULAS[func] = found = flop_registry.get(func._overloadpacket)
        return found


def _direct_macs(func: Any, args: Sequence[Any], out: Any) -> int | None:
    """MACs of the most frequent ops from their shapes, by the formulas of
    ``torch.utils.flop_counter`` (``conv_flop_count``, ``mm_flop``, ``bmm_flop``; FLOPs / 2)
    without its per-call argument mapping; ``None`` for every other op."""
    if func is aten.convolution.default:
        x, w, transposed = args[0], args[1], args[6]
        spatial = (x.shape if transposed else out.shape)[2:]
        return x.shape[0] * w.shape[0] * w.shape[1] * _prod(w.shape[2:]) * _prod(spatial)
    if func is aten.mm.default:
        return args[0].shape[0] * args[0].shape[1] * args[1].shape[1]
    if func is aten.addmm.default:
        return args[1].shape[0] * args[1].shape[1] * args[2].shape[1]
    return None


def _prod(sizes: Sequence[int]) -> int:
    total = 1
    for s in sizes:
        total *= s
    return total


def fast_macs_per_module(
    model: nn.Module, example_inputs: Any, *, modules: Iterable[str] | None = None
) -> tuple[int, dict[str, int]]:
    """Total MACs of one eval-mode forward and MACs per module, as
    :func:`~prunekit.metrics.macs_per_module` counts them, without computing convolutions or
    matrix products (inputs in any form of :mod:`prunekit.inputs`; every module's own train/eval
    flag is restored). ``modules``: only these modules' counts (see :class:`ShapeOnlyMode`).
    Raises what the forward raises (a pruned model whose shapes do not fit)."""
    inputs = as_example_inputs(example_inputs)
    mode = ShapeOnlyMode(model, modules=modules)
    with training_flags(model, False), attention_decomposed(), torch.no_grad(), mode:
        inputs.call(model)
    return mode.total, dict(mode.per_module)


def fast_count_macs(model: nn.Module, example_inputs: Any) -> int:
    """Total MACs of one eval-mode forward (see :func:`fast_macs_per_module`)."""
    return fast_macs_per_module(model, example_inputs, modules=())[0]


def analyse(
    model: nn.Module, inputs: Any, *, tracer: str = "auto"
) -> tuple[DependencyGraph, tuple[int, dict[str, int]]]:
    """The dependency graph of ``model`` and its MACs (total, per module), from one run.

    The analysis runs under :class:`ShapeOnlyMode`, so it computes no convolution and counts
    the MACs on the way (per module: the leaf layers and ``""``; the counts of a train-mode
    run, for models whose graph differs in training, are not kept). Should that run fail, the
    analysis is done again the ordinary way (which raises the real error, if there is one) and
    the MACs are counted by :func:`fast_macs_per_module`.

    Note:
        The stand-in outputs are zeros, so a model whose shapes depend on activation *values*
        (``nonzero`` or ``masked_select`` on a feature map) is analysed as for all-zero
        activations; such a model's graph depends on its input anyway. Build
        :class:`~prunekit.DependencyGraph` directly to analyse it with real compute. The
        ``record`` tracer follows the path the example takes, so it always runs real compute
        (zeros would send a detector's heads down the "no detections" path).
    """
    if tracer == "record":
        return DependencyGraph(model, inputs, tracer=tracer), fast_macs_per_module(model, inputs)
    mode = ShapeOnlyMode(model)
    try:
        with attention_decomposed():  # count attention's projections, as macs_per_module does
            graph = DependencyGraph(
                model, inputs, tracer=tracer, run_context=lambda training: ShapeOnlyMode(model) if training else mode
            )
    except Exception:  # noqa: BLE001 -- retried without the mode, which raises the real error
        log.debug("shape-only analysis of %s failed; analysing with real compute", type(model).__name__)
        graph = DependencyGraph(model, inputs, tracer=tracer)
        return graph, fast_macs_per_module(model, inputs)
    return graph, (mode.total, dict(mode.per_module))
