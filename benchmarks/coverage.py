"""Coverage on the models users bring: every torchvision model, one small model per timm family,
Ultralytics YOLOv8n / YOLO11n and a segmentation_models_pytorch U-Net.

Per model and tool, in its own subprocess (a crash or a hang is a result, not the end of the
run): finished or the error (and whether it was a ``prunekit.errors`` error or a raw one), the
groups prunable / locked, the MACs kept after pruning every prunable exact group by 30 %, the
equivalence error measured by ``_oracle.check_against_zeroed`` (which reads the kept channels off
the weights and shares no code with either tool), and the time. Torch-Pruning 1.6.1 runs on the
same models through its documented API (``MetaPruner``, ``GroupMagnitudeImportance``) when it is
installed (``bash benchmarks/setup_env.sh``, then run this with ``.venv-bench/bin/python``).

Models are built without weights (torchvision ``weights=None``, timm ``pretrained=False``,
ultralytics from its yaml, smp ``encoder_weights=None``), with zero-initialised layers redrawn
and BatchNorm statistics set from one random batch, so an equivalence check cannot pass because
an output vanishes.

Run: ``OMP_NUM_THREADS=1 python benchmarks/coverage.py [--only torchvision|timm|other] [--limit N]
[--tools prunekit torch-pruning] [--names M ...] [--merge] [--missing] [--recount]`` (writes
``benchmarks/results/coverage.{json,md}`` after every model and tool, so a partial run is kept; the
file is labelled partial, with the missing models per tool, until every model of the catalogue
has a row for both tools). ``--merge`` keeps the file's other rows, ``--missing`` runs only the
(model, tool) pairs it lacks, ``--recount`` only the finished rows without the shared MAC count,
``--names`` re-runs some models.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import inspect
import json
import os
import subprocess
import sys
import time
import warnings
from collections.abc import Callable
from typing import Any

import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import machine_meta, write_atomic  # noqa: E402
from _oracle import check_against_zeroed  # noqa: E402
from compare_torch_pruning import make_observable  # noqa: E402

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
RESULT_TAG = "RESULT "
SPARSITY = 0.3
Built = tuple[nn.Module, Any]  # the model and its example inputs


# ---------------------------------------------------------------------------------- catalogue
def torchvision_models() -> list[str]:
    import torchvision

    return sorted(torchvision.models.list_models())


def _torchvision(name: str) -> Built:
    import torchvision
    from torchvision.models import detection, optical_flow, segmentation, video

    kwargs: dict[str, Any] = {"weights": None}
    if "weights_backbone" in inspect.signature(torchvision.models.get_model_builder(name)).parameters:
        kwargs["weights_backbone"] = None  # never download a backbone either
    if name in torchvision.models.list_models(module=detection):
        return torchvision.models.get_model(name, **kwargs), [torch.rand(3, 320, 320)]
    if name in ("googlenet", "inception_v3"):
        kwargs.update(aux_logits=False, init_weights=False)
    model = torchvision.models.get_model(name, **kwargs)
    if name in torchvision.models.list_models(module=video):
        return model, torch.randn(1, 3, *VIDEO_INPUT.get(name, (8, 112, 112)))
    if name in torchvision.models.list_models(module=optical_flow):
        return model, (torch.randn(1, 3, 128, 128), torch.randn(1, 3, 128, 128))
    size = (
        299 if name == "inception_v3" else 520 if name in torchvision.models.list_models(module=segmentation) else 224
    )
    return model, torch.randn(1, 3, size, size)


# Video clip sizes (frames, height, width): MViT's positional encodings fix (16, 224, 224); S3D's
# final AvgPool3d (2, 7, 7) needs 224 pixels and at least 13 frames (torchvision documents a
# minimum of 14). The others (R3D, MC3, R(2+1)D, Swin3D: 16 x 112 / 224 natively) run on any
# size, so they get the smaller (8, 112, 112) to keep the sweep's time sane.
VIDEO_INPUT = {"mvit_v1_b": (16, 224, 224), "mvit_v2_s": (16, 224, 224), "s3d": (14, 224, 224)}


def timm_families() -> list[str]:
    """One model per timm module (family): the one with the shortest name among the small ones."""
    import timm

    out = []
    for module in sorted(timm.list_modules()):
        names = timm.list_models(module=module)
        small = [n for n in names if any(k in n for k in ("tiny", "small", "nano", "pico", "femto", "mini", "_xs"))]
        if names:
            out.append(min(small or names, key=lambda n: (len(n), n)))
    return out


def _timm(name: str) -> Built:
    import timm

    model = timm.create_model(name, pretrained=False)
    size = model.default_cfg.get("input_size", (3, 224, 224))
    return model, torch.randn(1, *size)


def _other(name: str) -> Built:
    if name in ("yolov8n", "yolo11n"):
        import ultralytics

        return ultralytics.YOLO(f"{name}.yaml", verbose=False).model, torch.randn(1, 3, 320, 320)
    import segmentation_models_pytorch as smp

    return smp.Unet("resnet18", encoder_weights=None, classes=2), torch.randn(1, 3, 128, 128)


OTHER = ["yolov8n", "yolo11n", "smp_unet_resnet18"]


def build(family: str, name: str) -> Built:
    """The model with observable weights and set BatchNorm statistics, in eval mode."""
    torch.manual_seed(0)
    builder: Callable[[str], Built] = {"torchvision": _torchvision, "timm": _timm, "other": _other}[family]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model, x = builder(name)
        model = make_observable(model)
        bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
        for bn in bns:
            bn.reset_running_stats()
            bn.momentum = None
        if bns and isinstance(x, torch.Tensor):
            model.train()
            # a model whose train-mode forward needs targets keeps its initial statistics
            with torch.no_grad(), contextlib.suppress(Exception):
                model(torch.cat([x, torch.randn_like(x)]))
    return model.eval(), x


# ---------------------------------------------------------------------------------- MACs
# Post-processing thresholds that make torchvision's detectors (RPN, RoI heads, RetinaNet, FCOS,
# SSD) keep every candidate box: no score cut, and an NMS that suppresses nothing (IoU > 1.0
# never holds). Their heads then always run on the same number of proposals and detections
# (pre/post_nms_top_n, detections_per_img), so the MACs before and after pruning are comparable.
# With the defaults, a pruned detector scores boxes differently, keeps a different number, and
# the RoI / mask / keypoint heads run on a different number of them (keypointrcnn once showed
# 1.5 "MACs kept").
FIXED_COUNT = {"score_thresh": float("-inf"), "nms_thresh": 1.0}


@contextlib.contextmanager
def fixed_detections(model: nn.Module):
    """Sets ``FIXED_COUNT`` on every module that has those attributes; restores them after."""
    saved = []
    for module in model.modules():
        for attr, value in FIXED_COUNT.items():
            if isinstance(getattr(module, attr, None), float):
                saved.append((module, attr, getattr(module, attr)))
                setattr(module, attr, value)
    try:
        yield bool(saved)
    finally:
        for module, attr, value in saved:
            setattr(module, attr, value)


@torch.no_grad()
def count_macs(model: nn.Module, x: Any) -> tuple[int, list, bool]:
    """Multiply-accumulates of one forward, counted by PyTorch's own ``FlopCounterMode`` (conv,
    linear, matmul, attention: FLOPs / 2), the same counter for every tool; with the output
    shapes and whether detection thresholds were fixed (``fixed_detections``)."""
    from torch.utils._pytree import tree_leaves
    from torch.utils.flop_counter import FlopCounterMode

    args = x if isinstance(x, tuple) else (x,)
    with fixed_detections(model) as fixed, FlopCounterMode(display=False) as counter:
        out = model.eval()(*args)
    shapes = [tuple(t.shape) for t in tree_leaves(out) if isinstance(t, torch.Tensor)]
    return counter.get_total_flops() // 2, shapes, fixed


def macs_kept(original: nn.Module, pruned: nn.Module, x: Any, row: dict) -> None:
    """``row["macs_kept"]``: pruned / original MACs on the same input, or None with ``macs_note``."""
    try:
        before, shapes0, fixed = count_macs(original, x)
        after, shapes1, _ = count_macs(pruned, x)
    except Exception as exc:  # noqa: BLE001 -- a model the counter cannot run is reported
        row.update(macs_kept=None, macs_note=f"count failed: {type(exc).__name__}: {exc}".splitlines()[0][:200])
        return
    if fixed and [s[:1] for s in shapes0] != [s[:1] for s in shapes1]:
        row.update(macs_kept=None, macs_note=f"detection counts differ: {shapes1[:3]} vs {shapes0[:3]}")
        return
    row["macs_kept"] = after / before if before else None


# ---------------------------------------------------------------------------------- workers
def _prunekit(model: nn.Module, x: Any, row: dict) -> None:
    import prunekit
    from prunekit.errors import PrunekitError

    tracer = "record" if isinstance(x, list) else "auto"
    try:
        graph = prunekit.DependencyGraph(model, x, tracer=tracer)
        row["groups"] = len(graph.groups)
        row["prunable"] = sum(g.prunable and g.exact for g in graph.groups)
        report = prunekit.prune_(model, x, sparsity=SPARSITY, exact_only=True, tracer=tracer)
        row["macs_reported"] = report.macs_ratio  # prunekit's own count, for reference
        row["finished"] = True
    except PrunekitError as exc:
        row.update(finished=False, error=f"{type(exc).__name__}: {exc}".splitlines()[0][:300], raw=False)


def _torch_pruning(model: nn.Module, x: Any, row: dict) -> None:
    from _tp import tp_prune_

    # A detector takes a list of images: Torch-Pruning's forward_fn passes it as one argument
    # (by default it first tries model(*inputs)). A tuple is several positional arguments (RAFT).
    forward_fn = (lambda m, inputs: m(inputs)) if isinstance(x, list) else None
    info = tp_prune_(model, x, ratio=SPARSITY, forward_fn=forward_fn, ignore_outputs=True)
    row.update(groups=info["groups"], prunable=info["pruned_groups"], finished=True)


def worker(tool: str, family: str, name: str) -> dict:
    torch.set_num_threads(1)
    warnings.simplefilter("ignore")
    row: dict = {"model": name, "family": family, "tool": tool}
    try:
        model, x = build(family, name)
    except Exception as exc:  # noqa: BLE001 -- a model that does not build here is reported as such
        row.update(finished=False, error=f"build: {type(exc).__name__}: {exc}".splitlines()[0][:300], raw=None)
        return row
    original = copy.deepcopy(model)
    t0 = time.perf_counter()
    try:
        (_prunekit if tool == "prunekit" else _torch_pruning)(model, x, row)
    except Exception as exc:  # noqa: BLE001 -- a raw exception is what this benchmark counts
        row.update(finished=False, error=f"{type(exc).__name__}: {exc}".splitlines()[0][:300], raw=True)
    row["time_s"] = time.perf_counter() - t0
    if row.get("finished"):
        macs_kept(original, model, x, row)
        try:
            res = check_against_zeroed(original, model, [x], rtol=1e-4)
        except Exception as exc:  # noqa: BLE001 -- the oracle's own limits are reported, not fatal
            row.update(equivalent=None, reason=f"oracle: {type(exc).__name__}: {exc}".splitlines()[0][:200])
        else:
            row.update(equivalent=res.equivalent, max_error=res.max_error, scale=res.scale, reason=res.reason)
    return row


def spawn(tool: str, family: str, name: str, timeout: float) -> dict:
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", tool, family, name]
    try:
        done = subprocess.run(
            cmd, capture_output=True, text=True, timeout=timeout, env={**os.environ, "OMP_NUM_THREADS": "1"}
        )
    except subprocess.TimeoutExpired:
        return {
            "model": name,
            "family": family,
            "tool": tool,
            "finished": False,
            "error": f"timed out after {timeout:g} s",
        }
    for line in done.stdout.splitlines():
        if line.startswith(RESULT_TAG):
            return json.loads(line[len(RESULT_TAG) :])
    tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
    return {
        "model": name,
        "family": family,
        "tool": tool,
        "finished": False,
        "error": f"exit {done.returncode}: {tail}"[:300],
        "raw": True,
    }


# ---------------------------------------------------------------------------------- report
def totals(rows: list[dict], tool: str) -> dict:
    mine = [r for r in rows if r["tool"] == tool]
    return {
        "models": len(mine),  # rows: resnet18 etc. count once from torchvision, once from timm
        "finished": sum(bool(r.get("finished")) for r in mine),
        "equivalent": sum(r.get("equivalent") is True for r in mine),
        "raw_exceptions": sum(r.get("raw") is True for r in mine),
        "timeouts": sum("timed out" in str(r.get("error", "")) for r in mine),
    }


def _machine(meta: dict) -> str:
    keys = ("python", "torch", "torchvision", "prunekit", "torch_pruning", "processor", "cpu_count", "torch_threads")
    return ", ".join(f"{k} {meta[k]}" for k in keys if k in meta)


def render(data: dict) -> str:
    missing = data.get("missing") or {}
    lines = [
        "# Coverage: torchvision, timm families, YOLO, U-Net",
        "",
        f"Command: `{data['command']}`.",
        "",
        f"Machine: {_machine(data['machine'])}.",
        "",
        ("**Partial run.** " if data["partial"] else "")
        + f"{len({(r['family'], r['model']) for r in data['rows']})} models, sparsity {SPARSITY} on every group each tool prunes, "
        f"wall {data['wall_s']:.0f} s (of the last invocation).",
    ]
    for tool, names in missing.items():
        if names:
            lines += ["", f"Not run for {tool} ({len(names)}): {', '.join(names)}."]
    stale = sum(r.get("finished") and r.get("macs_kept") is None and "macs_reported" in r for r in data["rows"])
    if stale:
        lines += ["", f"{stale} rows carry prunekit's own MAC count (†): not yet re-counted (`--recount`)."]
    lines += [
        "",
        "| tool | models | finished | equivalent (oracle) | raw exceptions | timeouts |",
        "|---|---|---|---|---|---|",
    ]
    for tool, t in data["totals"].items():
        lines.append(
            f"| {tool} | {t['models']} | {t['finished']} | {t['equivalent']} | {t['raw_exceptions']} | {t['timeouts']} |"
        )
    lines += [
        "",
        "| source | tool | models | finished | equivalent (oracle) | raw exceptions | timeouts |",
        "|---|---|---|---|---|---|---|",
    ]
    for family in FAMILIES:
        for tool in data["totals"]:
            t = totals([r for r in data["rows"] if r["family"] == family], tool)
            if t["models"]:
                lines.append(
                    f"| {family} | {tool} | {t['models']} | {t['finished']} | {t['equivalent']} "
                    f"| {t['raw_exceptions']} | {t['timeouts']} |"
                )
    lines += [
        "",
        "Columns. *result*: `ok`, or the error (`RAW` marks an exception that is not a"
        " `prunekit.errors` error, or a crash; a Torch-Pruning exception is always raw). *groups*:"
        " prunekit: exact prunable groups / all groups (the rest are locked or inexact);"
        " Torch-Pruning: groups it pruned / groups its graph forms with a conv/linear root."
        " *MACs kept*: MACs of the pruned model / the original's on the same input, both counted by"
        " `torch.utils.flop_counter.FlopCounterMode` (conv, linear, matmul, attention), the same"
        " counter for both tools; detectors are counted with their score threshold off and an NMS"
        " that suppresses nothing, so the heads run on the same number of proposals and detections"
        " before and after (`fixed_detections` in the script). A value marked † is prunekit's own"
        " `report.macs_ratio` (a row from before the shared counter). *max error / scale*: the"
        " independent oracle (`benchmarks/_oracle.py`) -- the largest output difference between"
        " the pruned model and the original with the removed channels zeroed, and the largest output"
        " magnitude; equivalent when error <= 1e-4 x scale. *time*: the tool's own pruning time.",
        "",
        "Torch-Pruning runs through its documented API (`MetaPruner`, `GroupMagnitudeImportance(p=1)`,"
        " local, `round_to` = heads for torchvision's ViT) with `ignored_layers` = the layers whose"
        " output reaches a model output without another conv/linear layer (found on its own"
        " dependency graph, `_tp.output_layers`), as its examples ignore the classifier and the"
        " detection heads; a detector's image list goes through its `forward_fn`.",
        "",
        "| family | model | tool | result | groups | MACs kept | max error / scale | time s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in data["rows"]:
        result = (
            "ok"
            if r.get("finished")
            else ("RAW " if r.get("raw") else "") + str(r.get("error", ""))[:90].replace("|", "/")
        )
        eq = (
            f"{r['max_error']:.1e} / {r['scale']:.1e}"
            if r.get("max_error") is not None
            else (r.get("reason") or "")[:60].replace("|", "/")
        )
        if r.get("macs_kept") is not None:
            macs = f"{r['macs_kept']:.3f}"
        elif r.get("macs_reported") is not None and "macs_note" not in r:
            macs = f"{r['macs_reported']:.3f}†"
        else:
            macs = str(r.get("macs_note", ""))[:40].replace("|", "/")
        groups = f"{r.get('prunable', '')}/{r.get('groups', '')}" if r.get("groups") else ""
        time_s = f"{r['time_s']:.1f}" if r.get("time_s") is not None else ""  # none when timed out
        lines.append(f"| {r['family']} | {r['model']} | {r['tool']} | {result} | {groups} | {macs} | {eq} | {time_s} |")
    return "\n".join(lines) + "\n"


TOOLS = ("prunekit", "torch-pruning")
FAMILIES = ("other", "torchvision", "timm")


def catalogue() -> list[tuple[str, str]]:
    """Every (family, model) of the issue, in the order of the report."""
    names = {"torchvision": torchvision_models, "timm": timm_families, "other": lambda: OTHER}
    return [(f, n) for f in FAMILIES for n in names[f]()]


def _key(row: dict) -> tuple[str, str, str]:
    return row["family"], row["model"], row["tool"]


def _tv_names(order: list[tuple[str, str]]) -> set[str]:
    return {n for f, n in order if f == "torchvision"}


def merge(kept: list[dict], new: list[dict], order: list[tuple[str, str]]) -> list[dict]:
    """``kept`` rows with those of ``new`` replacing the same (family, model, tool), in catalogue
    order (timm and torchvision share some names: resnet18, vgg11, densenet121, inception_v3)."""
    rows = {_key(r): r for r in kept}
    rows.update({_key(r): r for r in new})
    rank = {entry: i for i, entry in enumerate(order)}
    return sorted(rows.values(), key=lambda r: (rank.get(_key(r)[:2], len(rank)), _key(r)[:2], TOOLS.index(r["tool"])))


def missing(rows: list[dict], order: list[tuple[str, str]], tools: list[str]) -> dict[str, list[str]]:
    """Per tool, the catalogue's models that have no row."""
    have = {_key(r) for r in rows}
    return {
        t: [n if f != "timm" or n not in _tv_names(order) else f"{n} (timm)" for f, n in order if (f, n, t) not in have]
        for t in tools
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--worker", nargs=3, metavar=("TOOL", "FAMILY", "NAME"), help=argparse.SUPPRESS)
    p.add_argument("--only", choices=FAMILIES, action="append")
    p.add_argument("--limit", type=int, help="at most this many models per family")
    p.add_argument("--timeout", type=float, default=240.0, help="seconds per model and tool (default 240)")
    p.add_argument("--tools", nargs="+", default=list(TOOLS), choices=TOOLS)
    p.add_argument("--names", nargs="+", help="only these models (implies --merge)")
    p.add_argument("--merge", action="store_true", help="keep the results file's other rows; replace those run now")
    p.add_argument(
        "--missing", action="store_true", help="only the (model, tool) pairs the file lacks (implies --merge)"
    )
    p.add_argument(
        "--recount", action="store_true", help="only the finished rows without the shared MAC count (implies --merge)"
    )
    args = p.parse_args()
    if args.worker:
        print(RESULT_TAG + json.dumps(worker(*args.worker)), flush=True)
        return 0
    from _tp import tp_version

    tools = [t for t in args.tools if t == "prunekit" or tp_version() is not None]
    order = catalogue()
    families = args.only or list(FAMILIES)
    todo: list[tuple[str, str]] = []
    for fam in families:
        todo += [(f, n) for f, n in order if f == fam and (not args.names or n in args.names)][: args.limit]
    path = os.path.join(RESULTS, "coverage.json")
    data: dict = {"command": " ".join(["python", *sys.argv]), "machine": machine_meta(), "rows": []}
    data["machine"]["torch_pruning"] = tp_version()
    kept: list[dict] = []
    if (args.names or args.merge or args.missing or args.recount) and os.path.exists(path):
        with open(path) as f:
            previous = json.load(f)
        kept = previous["rows"]
        data["command"] = previous["command"] + " ; then " + data["command"]
    done = {_key(r) for r in kept} if args.missing else set()
    jobs = [(f, n, t) for f, n in todo for t in tools if (f, n, t) not in done]
    if args.recount:  # rows from before the shared counter hold only prunekit's own macs_reported
        stale = {_key(r) for r in kept if r.get("finished") and "macs_kept" not in r}
        jobs = [job for job in jobs if job in stale]
    data["machine"]["load_at_start"] = os.getloadavg()
    started, new = time.perf_counter(), []
    for i, (family, name, tool) in enumerate(jobs):
        row = spawn(tool, family, name, args.timeout)
        new.append(row)
        status = "ok" if row.get("finished") else row.get("error")
        print(f"[{i + 1}/{len(jobs)}] {family} {name} {tool}: {status} eq={row.get('equivalent')}", flush=True)
        data["rows"] = merge(kept, new, order)
        present = [t for t in TOOLS if any(r["tool"] == t for r in data["rows"])]
        data["missing"] = missing(data["rows"], order, present)
        data.update(
            wall_s=time.perf_counter() - started,
            partial=any(data["missing"].values()) or set(present) != set(TOOLS),
            load_now=os.getloadavg(),
            totals={t: totals(data["rows"], t) for t in present},
        )
        write_atomic(path, json.dumps(data, indent=1, default=str) + "\n")
        write_atomic(os.path.join(RESULTS, "coverage.md"), render(data))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
