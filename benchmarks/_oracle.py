"""A tool-independent equivalence oracle: is a pruned model the zeroed-channel original?

Any structured-pruning tool (prunekit, Torch-Pruning...) keeps a subset of each layer's input and
output channels and copies the surviving weights unchanged. So the kept indices can be recovered
from the weights alone, with no help from the tool: a kept row of a pruned weight is, bit for bit,
a row of the original weight restricted to the kept input channels. From them the oracle builds
the zeroed original (a copy of the original model whose layers that mix channels -- conv, transposed
conv, linear, attention in-projections -- see the removed input channels as zeros, through forward pre-hooks, as
``prunekit/equivalence.py`` does) and compares outputs. When the indices cannot be recovered (the
tool rescaled weights, changed the groups of a conv, or touched a layer type this oracle does not
know), the answer is "unknown", with the reason, never a guess.

Removing a channel is equivalent to zeroing it only where every layer between producer and
consumer acts on each channel separately; LayerNorm and GroupNorm over a pruned dim normalise
across channels, so a model pruned there is honestly "not equivalent" for every tool.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import torch
import torch.nn as nn
from torch.utils._pytree import tree_leaves

__all__ = ["OracleResult", "KeptIndices", "recover_kept", "check_against_zeroed"]

# Layers that act on each channel separately: a shrunk weight there needs no zeroing hook.
PER_CHANNEL = (nn.modules.batchnorm._NormBase, nn.PReLU, nn.LayerNorm, nn.GroupNorm)
# Layers that normalise across channels: pruning them is never exactly "zeroing".
CROSS_CHANNEL = (nn.LayerNorm, nn.GroupNorm)


class Unrecoverable(Exception):
    """The kept indices of a layer cannot be read off its weights."""


@dataclass
class KeptIndices:
    """Kept input channels per mixing layer (``None``: all kept), or why they are unknown."""

    kept_in: dict[str, list[int]] = field(default_factory=dict)
    kept_out: dict[str, list[int]] = field(default_factory=dict)
    cross_channel: list[str] = field(default_factory=list)
    unknown: str | None = None


def _rows(t: torch.Tensor) -> list[bytes]:
    return [r.numpy().tobytes() for r in t.detach().contiguous()]


def _match_block(w: torch.Tensor, wp: torch.Tensor) -> tuple[list[int], list[int]]:
    """Kept (out, in) indices of ``wp`` (O', I', K) inside ``w`` (O, I, K), groups of one.

    The in-indices come from pruned row 0: it is an ordered subsequence of one original row, found
    by exact K-vector lookups; the out-indices from exact lookups of whole restricted rows. Every
    candidate is verified on the whole block, so a coincidental equal value cannot fool it.
    """
    (o, i, _), (op, ip, _) = w.shape, wp.shape
    if op > o or ip > i:
        raise Unrecoverable(f"pruned weight {tuple(wp.shape)} is larger than the original {tuple(w.shape)}")
    candidates = torch.nonzero((w == wp[0, 0]).all(-1))[:, 0].unique().tolist() if ip < i else [None]
    for row in candidates[:64]:
        if row is None:
            kin = list(range(i))
        else:
            where: dict[bytes, list[int]] = {}
            for idx, key in enumerate(_rows(w[row])):
                where.setdefault(key, []).append(idx)
            kin, last = [], -1
            for key in _rows(wp[0]):
                nxt = [idx for idx in where.get(key, []) if idx > last]
                if not nxt:
                    break
                last = nxt[0]
                kin.append(last)
            if len(kin) != ip:
                continue
        lookup = {key: idx for idx, key in reversed(list(enumerate(_rows(w[:, kin].reshape(o, -1)))))}
        kout = [lookup.get(key, -1) for key in _rows(wp.reshape(op, -1))]
        if -1 not in kout and len(set(kout)) == op and torch.equal(w[kout][:, kin], wp):
            return kout, kin
    raise Unrecoverable(f"no exact match of the pruned weight {tuple(wp.shape)} in the original {tuple(w.shape)}")


def _kept_of_weight(w: torch.Tensor, wp: torch.Tensor, groups: int, groups_p: int) -> tuple[list[int], list[int]]:
    """Kept (out, in) channels of a conv/linear weight, groups handled block by block."""
    w, wp = w.reshape(w.shape[0], w.shape[1], -1), wp.reshape(wp.shape[0], wp.shape[1], -1)
    if groups > 1 and w.shape[1] == 1 and wp.shape[1] == 1:
        # Depthwise (channel multiplier m): one input channel per group, groups shrink with it.
        kout, _ = _match_block(w, wp)
        m = w.shape[0] // groups
        return kout, sorted({o // m for o in kout})
    if groups != groups_p:
        raise Unrecoverable(f"groups changed from {groups} to {groups_p}")
    o, i, op = w.shape[0] // groups, w.shape[1], wp.shape[0] // groups
    kout, kin = [], []
    for g in range(groups):
        bo, bi = _match_block(w[g * o : (g + 1) * o], wp[g * op : (g + 1) * op])
        kout += [g * o + x for x in bo]
        kin += [g * i + x for x in bi]
    return kout, kin


def _weight_and_groups(module: nn.Module) -> tuple[torch.Tensor, int] | None:
    """The mixing weight in (out, in / groups, ...) layout, and its groups."""
    if isinstance(module, nn.modules.conv._ConvNd) and module.transposed:
        # A transposed conv stores (in, out / groups, k...), group-major along in: swap to the
        # (out, in / groups, k...) layout, group by group, so the kept rows are read the same way.
        w, g = module.weight, module.groups
        i, og, k = w.shape[0], w.shape[1], w.shape[2:]
        swapped = w.reshape(g, i // g, og, *k).transpose(1, 2).reshape(g * og, i // g, *k)
        return swapped, g
    if isinstance(module, nn.modules.conv._ConvNd):
        return module.weight, module.groups
    if isinstance(module, nn.Linear):
        return module.weight, 1
    if isinstance(module, nn.MultiheadAttention):
        if module.in_proj_weight is None:
            raise Unrecoverable("MultiheadAttention with separate q/k/v projections")
        return module.in_proj_weight, 1
    return None


@torch.no_grad()
def recover_kept(original: nn.Module, pruned: nn.Module) -> KeptIndices:
    """Reads the kept channels of every layer off the weights of ``original`` and ``pruned``."""
    out = KeptIndices()
    pruned_modules = dict(pruned.named_modules())
    try:
        for name, mod in original.named_modules():
            if name not in pruned_modules:
                raise Unrecoverable(f"module {name!r} is missing from the pruned model")
            pmod = pruned_modules[name]
            own = {k: v.shape for k, v in mod.named_parameters(recurse=False)}
            pown = {k: v.shape for k, v in pmod.named_parameters(recurse=False)}
            if own == pown:
                continue
            if type(mod) is not type(pmod):
                raise Unrecoverable(f"{name!r} changed type to {type(pmod).__name__}")
            if isinstance(mod, CROSS_CHANNEL):
                out.cross_channel.append(name)
            if isinstance(mod, PER_CHANNEL):
                continue
            wg = _weight_and_groups(mod)
            if wg is None and "weight" in own:
                raise Unrecoverable(f"{name!r}: the oracle does not know how {type(mod).__name__} mixes channels")
            if wg is None:
                continue  # bare parameters (tokens, layer scales): produce channels, never mix them
            w, groups = wg
            wp, groups_p = _weight_and_groups(pmod)  # type: ignore[misc]
            kout, kin = _kept_of_weight(w.float(), wp.float(), groups, groups_p)
            if len(kout) < w.shape[0]:
                out.kept_out[name] = kout
            if len(kin) < w.shape[1] * groups and not (groups > 1 and w.shape[1] == 1):
                out.kept_in[name] = kin  # depthwise convs act per channel: no zeroing needed
    except Unrecoverable as exc:
        out.unknown = str(exc)
    return out


def _zeroing_hook(keep: list[int], size: int, dim: int, nargs: int):
    def hook(module: nn.Module, args: tuple) -> tuple:
        mask = torch.zeros(size)
        mask[keep] = 1
        new = []
        for k, a in enumerate(args):
            if k < nargs and isinstance(a, torch.Tensor) and a.shape[dim] == size:
                shape = [1] * a.ndim
                shape[dim] = size
                a = a * mask.to(a).view(shape)
            new.append(a)
        return tuple(new)

    return hook


@dataclass
class OracleResult:
    """``equivalent``: True/False, or None ("unknown") with ``reason``."""

    equivalent: bool | None
    max_error: float | None = None
    scale: float | None = None
    reason: str = ""
    cross_channel: list[str] = field(default_factory=list)


@torch.no_grad()
def check_against_zeroed(
    original: nn.Module, pruned: nn.Module, inputs: list[torch.Tensor], *, rtol: float = 1e-4
) -> OracleResult:
    """Compares ``pruned`` with the zeroed-channel ``original`` on each input (eval mode)."""
    kept = recover_kept(original, pruned)
    if kept.unknown:
        return OracleResult(None, reason=kept.unknown)
    oracle = copy.deepcopy(original).eval()
    for name, keep in kept.kept_in.items():
        mod = oracle.get_submodule(name)
        if isinstance(mod, nn.MultiheadAttention):
            dim, size, nargs = -1, mod.embed_dim, 3
        elif isinstance(mod, nn.Linear):
            dim, size, nargs = -1, mod.in_features, 1
        else:
            dim, size, nargs = 1, mod.in_channels, 1
        mod.register_forward_pre_hook(_zeroing_hook(keep, size, dim, nargs))
    pruned.eval()
    err, scale = 0.0, 1e-6
    for x in inputs:
        args = x if isinstance(x, tuple) else (x,)  # a tuple is several positional arguments
        try:
            got = tree_leaves(pruned(*args))
        except Exception as exc:  # noqa: BLE001 -- a broken pruned model is a result, not a crash
            return OracleResult(False, reason=f"pruned model fails: {type(exc).__name__}: {exc}"[:300])
        expected = tree_leaves(oracle(*args))
        for e, g in zip(expected, got):
            if not isinstance(e, torch.Tensor) or e.numel() == 0:
                continue  # a detector's empty box list after NMS, a non-tensor output
            if e.shape != g.shape:
                return OracleResult(False, reason=f"output shape {tuple(g.shape)} != {tuple(e.shape)}")
            err = max(err, float((e - g).abs().max()))
            scale = max(scale, float(e.abs().max()))
    ok = err <= rtol * scale
    reason = "" if ok or not kept.cross_channel else f"{len(kept.cross_channel)} LayerNorm/GroupNorm layers pruned"
    return OracleResult(ok, err, scale, reason, kept.cross_channel)
