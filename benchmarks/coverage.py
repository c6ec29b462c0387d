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

Run: ``OMP_NUM_THREADS=1 python benchmarks/coverage.py [--only torchvision|timm|other] [--limit N]``
(writes ``benchmarks/results/coverage.{json,md}`` after every model, so a partial run is kept and
labelled partial).
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
        frames, size = (16, 224) if name.startswith(("mvit", "s3d")) else (8, 112)  # their fixed input sizes
        return model, torch.randn(1, 3, frames, size, size)
    if name in torchvision.models.list_models(module=optical_flow):
        return model, (torch.randn(1, 3, 128, 128), torch.randn(1, 3, 128, 128))
    size = (
        299 if name == "inception_v3" else 520 if name in torchvision.models.list_models(module=segmentation) else 224
    )
    return model, torch.randn(1, 3, size, size)


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
        row["macs_kept"] = report.macs_ratio
        row["finished"] = True
    except PrunekitError as exc:
        row.update(finished=False, error=f"{type(exc).__name__}: {exc}".splitlines()[0][:300], raw=False)


def _torch_pruning(model: nn.Module, x: Any, row: dict) -> None:
    from _tp import tp_prune_

    if not isinstance(x, torch.Tensor):
        row.update(finished=False, error="not run: Torch-Pruning's example_inputs here is one tensor", raw=False)
        return
    tp_prune_(model, x, ratio=SPARSITY)
    row["finished"] = True


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
        "models": len(mine),
        "finished": sum(bool(r.get("finished")) for r in mine),
        "equivalent": sum(r.get("equivalent") is True for r in mine),
        "raw_exceptions": sum(r.get("raw") is True for r in mine),
        "timeouts": sum("timed out" in str(r.get("error", "")) for r in mine),
    }


def render(data: dict) -> str:
    lines = [
        "# Coverage: torchvision, timm families, YOLO, U-Net",
        "",
        f"Command: `{data['command']}`. Machine: {data['machine']}. {'**Partial run**: ' if data['partial'] else ''}"
        f"{len({r['model'] for r in data['rows']})} models, sparsity {SPARSITY} on exact groups, wall {data['wall_s']:.0f} s.",
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
        "| family | model | tool | result | groups prunable/total | MACs kept | max error / scale | time s |",
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
            else (r.get("reason") or "")[:40]
        )
        macs = f"{r['macs_kept']:.3f}" if r.get("macs_kept") is not None else ""
        groups = f"{r.get('prunable', '')}/{r.get('groups', '')}" if r.get("groups") else ""
        lines.append(
            f"| {r['family']} | {r['model']} | {r['tool']} | {result} | {groups} | {macs} | {eq} | {r.get('time_s', 0):.1f} |"
        )
    return "\n".join(lines) + "\n"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--worker", nargs=3, metavar=("TOOL", "FAMILY", "NAME"), help=argparse.SUPPRESS)
    p.add_argument("--only", choices=("torchvision", "timm", "other"), action="append")
    p.add_argument("--limit", type=int, help="at most this many models per family")
    p.add_argument("--timeout", type=float, default=240.0, help="seconds per model and tool (default 240)")
    p.add_argument("--tools", nargs="+", default=["prunekit", "torch-pruning"])
    p.add_argument("--names", nargs="+", help="only these models; their rows replace those in the results file")
    args = p.parse_args()
    if args.worker:
        print(RESULT_TAG + json.dumps(worker(*args.worker)), flush=True)
        return 0
    from _tp import tp_version

    tools = [t for t in args.tools if t == "prunekit" or tp_version() is not None]
    families = args.only or ["other", "torchvision", "timm"]
    catalogue = {"torchvision": torchvision_models, "timm": timm_families, "other": lambda: OTHER}
    todo = [(f, n) for f in families for n in catalogue[f]()[: args.limit] if not args.names or n in args.names]
    data: dict = {"command": " ".join(["python", *sys.argv]), "machine": machine_meta(), "rows": [], "partial": True}
    kept: list[dict] = []
    if args.names and os.path.exists(os.path.join(RESULTS, "coverage.json")):  # a re-run of some models
        with open(os.path.join(RESULTS, "coverage.json")) as f:
            previous = json.load(f)
        kept = [r for r in previous["rows"] if r["model"] not in args.names]
        data["previous_partial"] = previous.get("partial", True)
        data["command"] = previous["command"] + " ; then " + data["command"]
    data["machine"]["load_at_start"] = os.getloadavg()
    started = time.perf_counter()
    for i, (family, name) in enumerate(todo):
        for tool in tools:
            row = spawn(tool, family, name, args.timeout)
            data["rows"].append(row)
            status = "ok" if row.get("finished") else row.get("error")
            print(f"[{i + 1}/{len(todo)}] {family} {name} {tool}: {status} eq={row.get('equivalent')}", flush=True)
        partial = i + 1 < len(todo) or data.get("previous_partial", False)
        data.update(wall_s=time.perf_counter() - started, partial=partial, load_now=os.getloadavg())
        if kept:
            data["rows"] = kept + [r for r in data["rows"] if r not in kept]
            kept = []
        data["totals"] = {t: totals(data["rows"], t) for t in tools}
        write_atomic(os.path.join(RESULTS, "coverage.json"), json.dumps(data, indent=1, default=str) + "\n")
        write_atomic(os.path.join(RESULTS, "coverage.md"), render(data))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
