"""How channels flow through functions and tensor methods (add, cat, view, chunk...).

Each handler receives the call's real argument values (the model is run on the example inputs),
their annotations, and the result, and returns the result's annotation. Anything not listed here
that touches channels locks them: prunekit never guesses.
"""

from __future__ import annotations

import builtins
import operator
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from prunekit.graph._atoms import Axis, ParamSource
from prunekit.graph._reshape import permute_axis, reshape_axis
from prunekit.graph.aten_ops import handle_aten, is_aten
from prunekit.graph.context import TraceContext, iter_axes

__all__ = ["OP_RULES", "METHOD_RULES", "handle_call"]

Handler = Callable[..., Any]
OP_RULES: dict[Any, Handler] = {}
METHOD_RULES: dict[str, Handler] = {}


def _register(functions: tuple = (), methods: tuple = ()) -> Callable[[Handler], Handler]:
    def wrap(fn: Handler) -> Handler:
        for f in functions:
            OP_RULES[f] = fn
        for m in methods:
            METHOD_RULES[m] = fn
        return fn

    return wrap


def _arg(args: tuple, kwargs: dict, i: int, name: str, default: Any = None) -> Any:
    if len(args) > i:
        return args[i]
    return kwargs.get(name, default)


def _norm_dim(d: int, ndim: int) -> int:
    return d % ndim if ndim else 0


# ---------------------------------------------------------------- element-wise (with broadcasting)
def align(ctx: TraceContext, values: list, anns: list, result: Any, kind: str) -> Any:
    """Couples the channels of tensors combined element-wise and returns the result's layout."""
    if not isinstance(result, torch.Tensor):
        ctx.lock(anns, f"{kind} at {ctx.where()} returns a non-tensor")
        return None
    nd = result.ndim
    axes, params, opaque = [], [], []
    for v, a in zip(values, anns):
        if not isinstance(v, torch.Tensor):
            continue
        off = nd - v.ndim
        if isinstance(a, Axis):
            axes.append(a.shift(off))
        elif isinstance(a, ParamSource):
            params.append((a, v, off))
        else:
            opaque.append((v, off))
    if not axes:
        return None
    full = [ax for ax in axes if ax.atoms.shape == tuple(result.shape[d] for d in ax.dims)]
    if not full:
        ctx.lock(axes, f"{kind} at {ctx.where()} broadcasts a single channel over a tensor prunekit cannot follow")
        return None
    ref = full[0]
    for ax in axes:
        if ax.dims != ref.dims:
            ctx.lock(axes, f"{kind} at {ctx.where()} combines tensors whose channels lie on different dims")
            return None
        if ax.atoms.shape != ref.atoms.shape:
            ctx.lock(ax, f"{kind} at {ctx.where()} broadcasts a single channel")
            continue
        ctx.union(ref.atoms, ax.atoms, kind)
    for src, v, off in params:
        for d in ref.dims:
            pd = d - off
            if pd < 0 or v.shape[pd] == 1:
                continue
            if len(ref.dims) != 1 or not ctx.param_member(src, pd, ref.atoms):
                ctx.lock(
                    ref, f"{kind} at {ctx.where()} combines channels with a view of '{src.name}' prunekit cannot slice"
                )
                return None
    for v, off in opaque:
        if any(d - off >= 0 and v.shape[d - off] != 1 for d in ref.dims):
            ctx.lock(
                ref,
                f"{kind} at {ctx.where()} combines channels with a tensor prunekit cannot slice "
                "(a constant or the output of an op without a rule)",
            )
            return None
    return ref


_BINARY = {
    "add": (operator.add, operator.iadd, torch.add, "add", "add_", "__add__", "__radd__", "__iadd__"),
    "sub": (operator.sub, operator.isub, torch.sub, torch.subtract, "sub", "sub_", "__sub__", "__rsub__"),
    "mul": (operator.mul, operator.imul, torch.mul, torch.multiply, "mul", "mul_", "__mul__", "__rmul__"),
    "div": (operator.truediv, operator.itruediv, torch.div, torch.true_divide, "div", "div_", "__truediv__"),
    "elementwise": (
        torch.maximum,
        torch.minimum,
        torch.where,
        torch.lerp,
        torch.addcmul,
        "maximum",
        "minimum",
        "where",
        "masked_fill",
        "masked_fill_",
        "lerp",
        "type_as",
        "expand_as",
    ),
}


def _make_elementwise(kind: str) -> Handler:
    def handler(ctx, node, args, kwargs, anns, kwanns, result):
        values = list(args) + list(kwargs.values())
        annots = list(anns) + list(kwanns.values())
        if node.target in ("type_as", "expand_as"):  # only the first argument's channels flow on
            values, annots = values[:1], annots[:1]
            if node.target == "expand_as" and isinstance(annots[0], Axis):
                return _expand(ctx, args[0], annots[0], result)
        return align(ctx, values, annots, result, kind)

    return handler


for _kind, _targets in _BINARY.items():
    _h = _make_elementwise(_kind)
    _register(tuple(t for t in _targets if not isinstance(t, str)), tuple(t for t in _targets if isinstance(t, str)))(
        _h
    )

_UNARY_FUNCS = (
    torch.relu,
    torch.relu_,
    F.relu,
    F.relu_,
    F.relu6,
    F.leaky_relu,
    F.elu,
    F.selu,
    F.celu,
    F.gelu,
    F.silu,
    F.mish,
    F.hardswish,
    F.hardsigmoid,
    F.hardtanh,
    F.softplus,
    torch.sigmoid,
    F.sigmoid,
    torch.tanh,
    F.tanh,
    torch.exp,
    torch.log,
    torch.sqrt,
    torch.rsqrt,
    torch.abs,
    torch.neg,
    torch.clamp,
    torch.clip,
    torch.square,
    torch.erf,
    torch.sign,
    torch.reciprocal,
    F.dropout,
    F.dropout1d,
    F.dropout2d,
    F.dropout3d,
    F.alpha_dropout,
    F.feature_alpha_dropout,
    operator.neg,
    operator.pos,
    torch.clone,
    torch.nan_to_num,
    torch.pow,
    operator.pow,
    F.logsigmoid,
)
_UNARY_METHODS = (
    "relu",
    "relu_",
    "sigmoid",
    "sigmoid_",
    "tanh",
    "tanh_",
    "exp",
    "log",
    "sqrt",
    "rsqrt",
    "abs",
    "neg",
    "clamp",
    "clamp_",
    "clip",
    "square",
    "sign",
    "reciprocal",
    "contiguous",
    "clone",
    "detach",
    "float",
    "half",
    "double",
    "bfloat16",
    "to",
    "cpu",
    "cuda",
    "pow",
    "__pow__",
    "erf",
    "requires_grad_",
    "nan_to_num",
    "sigmoid",
    "gelu",
    "silu",
)


@_register(_UNARY_FUNCS, _UNARY_METHODS)
def _unary(ctx, node, args, kwargs, anns, kwanns, result):
    return align(ctx, list(args) + list(kwargs.values()), list(anns) + list(kwanns.values()), result, "elementwise")


try:  # torchvision wraps stochastic_depth with torch.fx.wrap: identity in eval, per-sample mask in train
    from torchvision.ops.stochastic_depth import stochastic_depth as _sd

    _register((_sd,))(_unary)
except ImportError:  # pragma: no cover - torchvision is a dependency
    pass


# ---------------------------------------------------------------- shape-only calls: no channels
@_register(
    (
        builtins.getattr,
        torch._assert,
        operator.eq,
        operator.ne,
        operator.lt,
        operator.le,
        operator.gt,
        operator.ge,
        operator.floordiv,
        operator.mod,
        builtins.len,
        torch.numel,
    ),
    ("size", "dim", "numel", "type", "is_contiguous", "get_device", "element_size", "nelement"),
)
def _no_channels(ctx, node, args, kwargs, anns, kwanns, result):
    return None


# ---------------------------------------------------------------- cat / stack
@_register((torch.cat, torch.concat, torch.concatenate))
def _cat(ctx, node, args, kwargs, anns, kwanns, result):
    tensors = _arg(args, kwargs, 0, "tensors")
    tanns = anns[0] if anns else kwanns.get("tensors")
    dim = _norm_dim(_arg(args, kwargs, 1, "dim", 0), result.ndim)
    axes = [a for a in tanns if isinstance(a, Axis)]
    if not axes:
        return None
    if any(dim in a.dims for a in axes):
        if any(a.dims != (dim,) for a in axes):
            ctx.lock(axes, f"cat at {ctx.where()} joins channels laid out on several dims")
            return None
        pieces = []
        for v, a in zip(tensors, tanns):
            if isinstance(a, Axis):
                pieces.append(a.atoms)
            else:
                pieces.append(
                    ctx.opaque(v.shape[dim], f"cat at {ctx.where()} joins channels with a tensor prunekit cannot slice")
                )
        atoms = np.concatenate(pieces)
        ctx.tag(atoms, "cat")
        return Axis((dim,), atoms)
    return align(ctx, list(tensors), list(tanns), result, "cat")


@_register((torch.stack,))
def _stack(ctx, node, args, kwargs, anns, kwanns, result):
    tensors = _arg(args, kwargs, 0, "tensors")
    tanns = anns[0] if anns else kwanns.get("tensors")
    dim = _norm_dim(_arg(args, kwargs, 1, "dim", 0), result.ndim)
    shifted = []
    for a in tanns:
        if isinstance(a, Axis):
            shifted.append(Axis(tuple(d + (d >= dim) for d in a.dims), a.atoms))
        else:
            shifted.append(a if isinstance(a, ParamSource) else None)
    fake = [v.unsqueeze(dim) for v in tensors]
    return align(ctx, fake, shifted, result, "stack")


# ---------------------------------------------------------------- split / chunk / slicing
def _split_positions(ctx, ann: Axis, dim: int, bounds: list[tuple[int, int]], fixed: bool, what: str) -> tuple:
    """Annotations of the pieces ``[start, stop)`` of dim ``dim``."""
    if ann.dims != (dim,):
        ctx.lock(ann, f"{what} splits channels laid out on dims {ann.dims}")
        return tuple(None for _ in bounds)
    if fixed:
        ctx.lock(ann, f"{what} uses fixed sizes {[b - a for a, b in bounds]} along channels")
    ctx.tag(ann.atoms, "split")
    return tuple(Axis((dim,), ann.atoms[a:b]) for a, b in bounds)


@_register((torch.chunk,), ("chunk",))
def _chunk(ctx, node, args, kwargs, anns, kwanns, result):
    x, ann = args[0], anns[0]
    k = _arg(args, kwargs, 1, "chunks")
    dim = _norm_dim(_arg(args, kwargs, 2, "dim", 0), x.ndim)
    if not isinstance(ann, Axis):
        return tuple(None for _ in result)
    if dim not in ann.dims:
        return tuple(ann for _ in result)
    what = f"chunk at {ctx.where()}"
    size = x.shape[dim]
    if ann.dims != (dim,) or size % k or len(result) != k:
        ctx.lock(ann, f"{what} does not split {size} channels into {k} equal parts")
        return tuple(None for _ in result)
    step = size // k
    pieces = _split_positions(ctx, ann, dim, [(i * step, (i + 1) * step) for i in range(k)], False, what)
    ctx.partition([p.atoms for p in pieces], what)
    ctx.tag(ann.atoms, "chunk")
    return pieces


@_register((torch.split, torch.tensor_split), ("split", "tensor_split", "split_with_sizes"))
def _split(ctx, node, args, kwargs, anns, kwanns, result):
    x, ann = args[0], anns[0]
    dim = _norm_dim(_arg(args, kwargs, 2, "dim", 0), x.ndim)
    if not isinstance(ann, Axis):
        return tuple(None for _ in result)
    if dim not in ann.dims:
        return tuple(ann for _ in result)
    bounds, start = [], 0
    for piece in result:
        bounds.append((start, start + piece.shape[dim]))
        start += piece.shape[dim]
    return _split_positions(ctx, ann, dim, bounds, True, f"split at {ctx.where()}")


@_register((torch.unbind,), ("unbind",))
def _unbind(ctx, node, args, kwargs, anns, kwanns, result):
    x, ann = args[0], anns[0]
    dim = _norm_dim(_arg(args, kwargs, 1, "dim", 0), x.ndim)
    if not isinstance(ann, Axis):
        return tuple(None for _ in result)
    if dim in ann.dims:
        ctx.lock(ann, f"unbind at {ctx.where()} turns each channel into its own tensor")
        return tuple(None for _ in result)
    return tuple(Axis(tuple(d - (d > dim) for d in ann.dims), ann.atoms) for _ in result)


@_register((torch.narrow,), ("narrow",))
def _narrow(ctx, node, args, kwargs, anns, kwanns, result):
    x, ann = args[0], anns[0]
    if not isinstance(ann, Axis):
        return None
    dim = _norm_dim(args[1], x.ndim)
    if dim not in ann.dims:
        return ann
    start, length = int(args[2]), int(args[3])
    if ann.dims != (dim,):
        ctx.lock(ann, f"narrow at {ctx.where()} slices channels laid out on several dims")
        return None
    ctx.atoms.lock(
        ann.atoms[: start + length], f"narrow at {ctx.where()} takes fixed channel positions [{start}:{start + length}]"
    )
    return Axis((dim,), ann.atoms[start : start + length])


def _getitem_tensor(ctx, x: torch.Tensor, ann: Any, idx: Any, node) -> Any:
    if not isinstance(ann, Axis):
        return None
    items = idx if isinstance(idx, tuple) else (idx,)
    if any(isinstance(i, (torch.Tensor, list)) for i in items):
        ctx.lock(ann, f"indexing at {ctx.where()} with a tensor or list")
        return None
    n_real = sum(1 for i in items if i is not None and i is not Ellipsis)
    expanded: list[Any] = []
    for i in items:
        if i is Ellipsis:
            expanded.extend([slice(None)] * (x.ndim - n_real))
        else:
            expanded.append(i)
    expanded.extend([slice(None)] * (x.ndim - sum(1 for i in expanded if i is not None)))
    new_dims: dict[int, int] = {}
    atoms = ann.atoms
    src, dst = 0, 0
    for i in expanded:
        if i is None:
            dst += 1
            continue
        if isinstance(i, int):
            if src in ann.dims:
                ctx.lock(ann, f"indexing at {ctx.where()} picks a single channel")
                return None
            src += 1
            continue
        # a slice
        if src in ann.dims:
            if ann.dims != (src,):
                ctx.lock(ann, f"slicing at {ctx.where()} cuts channels laid out on several dims")
                return None
            start, stop, step = i.indices(x.shape[src])
            if (i.step or 1) != 1:
                ctx.lock(ann, f"slicing at {ctx.where()} with a step along channels")
                return None
            if i.start is not None or i.stop is not None:
                fixed_to = stop if i.stop is not None else start
                ctx.atoms.lock(
                    atoms[:fixed_to], f"slicing at {ctx.where()} takes fixed channel positions [{i.start}:{i.stop}]"
                )
            atoms = atoms[start:stop]
        new_dims[src] = dst
        src += 1
        dst += 1
    return Axis(tuple(new_dims[d] for d in ann.dims), atoms)


@_register((operator.getitem,))
def _getitem(ctx, node, args, kwargs, anns, kwanns, result):
    obj, idx = args[0], args[1]
    if isinstance(obj, torch.Tensor):
        return _getitem_tensor(ctx, obj, anns[0], idx, node)
    container = anns[0]
    if isinstance(container, (tuple, list)):
        try:
            return container[idx]
        except (IndexError, TypeError):
            return None
    return None


# ---------------------------------------------------------------- reshapes
def _shape_args(args: tuple, node_args: tuple) -> tuple[list[int], list[bool]]:
    """Sizes given to view/reshape and whether each is computed at run time."""
    sizes, raw = args[1:], node_args[1:]
    if len(sizes) == 1 and isinstance(sizes[0], (tuple, list, torch.Size)):
        sizes, raw = tuple(sizes[0]), raw[0]
        if not isinstance(raw, (tuple, list)):  # the whole shape is a node: dynamic
            return list(sizes), [True] * len(sizes)
    dynamic = [not isinstance(r, int) or r == -1 for r in raw]
    return list(sizes), dynamic


@_register((torch.reshape,), ("view", "reshape"))
def _view(ctx, node, args, kwargs, anns, kwanns, result):
    x, ann = args[0], anns[0]
    if not isinstance(ann, Axis):
        return None
    if "shape" in kwargs or (len(args) > 1 and isinstance(args[1], torch.dtype)):
        ctx.lock(ann, f"{node.target} at {ctx.where()} with keyword or dtype arguments")
        return None
    _, dynamic = _shape_args(args, node.args)
    if len(dynamic) != result.ndim:
        dynamic = [True] * result.ndim
    return reshape_axis(ctx, ann, tuple(x.shape), tuple(result.shape), dynamic, f"{node.target} at {ctx.where()}")


@_register(
    (torch.flatten, torch.squeeze, torch.unsqueeze, torch.ravel),
    ("flatten", "squeeze", "unsqueeze", "squeeze_", "unsqueeze_", "ravel", "unflatten"),
)
def _structural(ctx, node, args, kwargs, anns, kwanns, result):
    x, ann = args[0], anns[0]
    if not isinstance(ann, Axis):
        return None
    what = f"{getattr(node.target, '__name__', node.target)} at {ctx.where()}"
    dynamic = [True] * result.ndim
    if node.target == "unflatten":  # the new dims have the given sizes; -1 is computed
        dim, sizes = _norm_dim(args[1], x.ndim), list(args[2])
        for k, size in enumerate(sizes):
            dynamic[dim + k] = size == -1
    if "flatten" in what or "ravel" in what:
        ctx.tag(ann.flat, "flatten")
    return reshape_axis(ctx, ann, tuple(x.shape), tuple(result.shape), dynamic, what)


@_register((torch.permute,), ("permute",))
def _permute(ctx, node, args, kwargs, anns, kwanns, result):
    ann = anns[0]
    if not isinstance(ann, Axis):
        return None
    perm = args[1:] if len(args) > 2 or isinstance(args[1], int) else args[1]
    return permute_axis(ctx, ann, list(perm))


@_register((torch.transpose, torch.swapaxes, torch.swapdims), ("transpose", "swapaxes", "swapdims", "t"))
def _transpose(ctx, node, args, kwargs, anns, kwanns, result):
    x, ann = args[0], anns[0]
    if not isinstance(ann, Axis):
        return None
    if len(args) < 3:
        d0, d1 = 0, 1
    else:
        d0, d1 = _norm_dim(args[1], x.ndim), _norm_dim(args[2], x.ndim)
    perm = list(range(x.ndim))
    perm[d0], perm[d1] = perm[d1], perm[d0]
    return permute_axis(ctx, ann, perm)


@_register((torch.movedim, torch.moveaxis), ("movedim", "moveaxis"))
def _movedim(ctx, node, args, kwargs, anns, kwanns, result):
    x, ann = args[0], anns[0]
    if not isinstance(ann, Axis):
        return None
    src, dst = args[1], args[2]
    src = [src] if isinstance(src, int) else list(src)
    dst = [dst] if isinstance(dst, int) else list(dst)
    perm = [d for d in range(x.ndim) if d not in [s % x.ndim for s in src]]
    for s, d in sorted(zip([s % x.ndim for s in src], [d % x.ndim for d in dst]), key=lambda p: p[1]):
        perm.insert(d, s)
    return permute_axis(ctx, ann, perm)


def _expand(ctx, x: torch.Tensor, ann: Axis, result: torch.Tensor) -> Any:
    off = result.ndim - x.ndim
    if any(x.shape[d] != result.shape[d + off] for d in ann.dims):
        ctx.lock(ann, f"expand at {ctx.where()} repeats a single channel")
        return None
    return ann.shift(off)


@_register((), ("expand", "repeat", "tile"))
def _expand_method(ctx, node, args, kwargs, anns, kwanns, result):
    x, ann = args[0], anns[0]
    if isinstance(ann, ParamSource):
        off = result.ndim - x.ndim
        if node.target != "expand":
            return None
        return ParamSource(ann.name, (-1,) * off + ann.dim_map)
    if not isinstance(ann, Axis):
        return None
    if node.target != "expand":
        off = result.ndim - x.ndim
        if any(x.shape[d] != result.shape[d + off] for d in ann.dims):
            ctx.lock(ann, f"{node.target} at {ctx.where()} repeats channels")
            return None
        return ann.shift(off)
    return _expand(ctx, x, ann, result)


# ---------------------------------------------------------------- reductions, softmax, spatial ops
def _reduced_dims(x: torch.Tensor, dim: Any) -> list[int]:
    if dim is None:
        return list(range(x.ndim))
    dims = [dim] if isinstance(dim, int) else list(dim)
    return [_norm_dim(d, x.ndim) for d in dims]


@_register(
    (
        torch.mean,
        torch.sum,
        torch.amax,
        torch.amin,
        torch.max,
        torch.min,
        torch.std,
        torch.var,
        torch.logsumexp,
        torch.prod,
        torch.norm,
        torch.argmax,
        torch.argmin,
    ),
    ("mean", "sum", "amax", "amin", "max", "min", "std", "var", "logsumexp", "prod", "norm", "argmax", "argmin"),
)
def _reduce(ctx, node, args, kwargs, anns, kwanns, result):
    x, ann = args[0], anns[0]
    if not isinstance(ann, Axis):
        return None
    name = getattr(node.target, "__name__", node.target)
    dim = _arg(args, kwargs, 1, "dim", None)
    if name == "norm":
        dim = kwargs.get("dim", args[2] if len(args) > 2 else None)
    if isinstance(dim, torch.Tensor):  # torch.max(a, b) is element-wise
        return align(ctx, list(args), list(anns), result, "elementwise")
    reduced = _reduced_dims(x, dim)
    if set(reduced) & set(ann.dims):
        ctx.lock(ann, f"{name} at {ctx.where()} reduces across channels")
        return None
    keepdim = bool(_arg(args, kwargs, 2, "keepdim", False))
    dims = tuple(d if keepdim else d - sum(1 for r in reduced if r < d) for d in ann.dims)
    out = Axis(dims, ann.atoms)
    if isinstance(result, tuple):  # values, indices
        return tuple(out for _ in result)
    return out


@_register(
    (F.softmax, F.log_softmax, torch.softmax, torch.log_softmax, torch.cumsum), ("softmax", "log_softmax", "cumsum")
)
def _softmax(ctx, node, args, kwargs, anns, kwanns, result):
    x, ann = args[0], anns[0]
    if not isinstance(ann, Axis):
        return None
    dim = _arg(args, kwargs, 1, "dim")
    if dim is None or _norm_dim(dim, x.ndim) in ann.dims:
        ctx.lock(ann, f"softmax at {ctx.where()} normalises across channels")
        return None
    return ann


def _spatial(ndims: int) -> Handler:
    def handler(ctx, node, args, kwargs, anns, kwanns, result):
        x, ann = args[0], anns[0]
        if not isinstance(ann, Axis):
            return None
        k = ndims or (x.ndim - 2)
        mixed = set(range(x.ndim - k, x.ndim))
        if mixed & set(ann.dims) or result.ndim != x.ndim:
            ctx.lock(
                ann, f"{getattr(node.target, '__name__', node.target)} at {ctx.where()} mixes dims holding channels"
            )
            return None
        return ann

    return handler


for _f, _k in (
    (F.adaptive_avg_pool1d, 1),
    (F.adaptive_avg_pool2d, 2),
    (F.adaptive_avg_pool3d, 3),
    (F.adaptive_max_pool1d, 1),
    (F.adaptive_max_pool2d, 2),
    (F.adaptive_max_pool3d, 3),
    (F.avg_pool1d, 1),
    (F.avg_pool2d, 2),
    (F.avg_pool3d, 3),
    (F.max_pool1d, 1),
    (F.max_pool2d, 2),
    (F.max_pool3d, 3),
    (F.interpolate, 0),
    (F.upsample, 0),
    (torch.nn.functional.lp_pool2d, 2),
):
    OP_RULES[_f] = _spatial(_k)


@_register((F.pad,))
def _pad(ctx, node, args, kwargs, anns, kwanns, result):
    x, ann = args[0], anns[0]
    if not isinstance(ann, Axis):
        return None
    pad = list(_arg(args, kwargs, 1, "pad"))
    touched = {x.ndim - 1 - i // 2 for i, p in enumerate(pad) if p}
    if touched & set(ann.dims):
        ctx.lock(ann, f"pad at {ctx.where()} pads the channel dim")
        return None
    return ann


@_register((torch.roll,), ("roll",))
def _roll(ctx, node, args, kwargs, anns, kwanns, result):
    x, ann = args[0], anns[0]
    if not isinstance(ann, Axis):
        return None
    dims = _arg(args, kwargs, 2, "dims")
    if dims is None or set(_reduced_dims(x, dims)) & set(ann.dims):
        ctx.lock(ann, f"roll at {ctx.where()} moves channels")
        return None
    return ann


# ---------------------------------------------------------------- functional normalisations
def _param_members(ctx, anns: list, ref: Axis, what: str) -> bool:
    for a in anns:
        if isinstance(a, ParamSource) and not ctx.param_member(a, 0, ref.atoms):
            ctx.lock(ref, f"{what} uses a parameter prunekit cannot slice")
            return False
    return True


@_register((F.layer_norm,))
def _layer_norm(ctx, node, args, kwargs, anns, kwanns, result):
    x, ann = args[0], anns[0]
    if not isinstance(ann, Axis):
        return None
    shape = _arg(args, kwargs, 1, "normalized_shape")
    k = len(shape)
    normed = set(range(x.ndim - k, x.ndim))
    if not normed & set(ann.dims):
        return ann
    what = f"layer_norm at {ctx.where()}"
    if ann.dims != (x.ndim - 1,) or k != 1:
        ctx.lock(ann, f"{what} normalises over several dims holding channels")
        return None
    extra = [kwanns.get("weight"), kwanns.get("bias")] + list(anns[2:4])
    if not _param_members(ctx, extra, ann, what):
        return None
    ctx.inexact(ann.atoms, f"LayerNorm ({what}) normalises across channels: removing one changes the mean and variance")
    return ann


@_register((F.batch_norm, F.instance_norm))
def _batch_norm(ctx, node, args, kwargs, anns, kwanns, result):
    ann = anns[0]
    if not isinstance(ann, Axis):
        return None
    what = f"{node.target.__name__} at {ctx.where()}"
    if ann.dims != (1,):
        ctx.lock(ann, f"{what}: channels are not on dim 1")
        return None
    if not _param_members(ctx, list(anns[1:]) + list(kwanns.values()), ann, what):
        return None
    return ann


@_register((F.group_norm,))
def _group_norm(ctx, node, args, kwargs, anns, kwanns, result):
    ann = anns[0]
    if not isinstance(ann, Axis):
        return None
    what = f"group_norm at {ctx.where()}"
    if ann.dims != (1,):
        ctx.lock(ann, f"{what}: channels are not on dim 1")
        return None
    groups = _arg(args, kwargs, 1, "num_groups")
    if not _param_members(ctx, list(anns[2:]) + list(kwanns.values()), ann, what):
        return None
    ctx.partition(np.split(ann.atoms, groups), what)
    ctx.inexact(ann.atoms, f"GroupNorm ({what}) normalises across channels of a group")
    return ann


# ---------------------------------------------------------------- dispatch
def handle_call(ctx: TraceContext, node, args: tuple, kwargs: dict, anns: tuple, kwanns: dict, result: Any) -> Any:
    """Annotation of a call_function / call_method node's result."""
    if is_aten(node.target):
        ann = handle_aten(ctx, node, args, kwargs, anns, kwanns, result)
        if ann is not NotImplemented:
            return ann
        handler = None
    elif node.op == "call_method":
        handler = METHOD_RULES.get(node.target)
    else:
        handler = OP_RULES.get(node.target)
    if handler is not None:
        return handler(ctx, node, args, kwargs, anns, kwanns, result)
    if isinstance(node.target, type) and issubclass(node.target, tuple):  # a namedtuple of outputs
        return tuple(anns) + tuple(kwanns.values())
    if isinstance(anns[0] if anns else None, ParamSource) and node.target in ("unsqueeze", torch.unsqueeze):
        return None
    everything = list(anns) + list(kwanns.values())
    touched = list(iter_axes(everything))
    name = node.target if isinstance(node.target, str) else getattr(node.target, "__name__", str(node.target))
    if touched:
        ctx.lock(touched, f"'{name}' at {ctx.where()} is not understood by prunekit (no op rule)")
    params = [a.name for a in everything if isinstance(a, ParamSource)]
    if params:
        note = (
            f"'{name}' at {ctx.where()} uses {', '.join(params)} and has no rule: those channels are "
            "kept; register a rule for the layer that owns them to prune it"
        )
        if note not in ctx.notes:
            ctx.notes.append(note)
    return None
