"""Engine speed and coverage: prunekit vs Torch-Pruning, graph + 50% L1 pruning on torchvision models.

Run (in the benchmark environment, see ``benchmarks/setup_env.sh``)::

    .venv-bench/bin/python benchmarks/compare_torch_pruning.py [--models ...] [--runs N]

For each model and each tool, N runs alternate between the tools (prunekit, Torch-Pruning,
prunekit, ...), each in its own subprocess so that memory figures do not leak between runs. A run
first warms the tool up on a small resnet18 (imports and one-time initialisation are not timed),
then builds the model (random weights, seed 0, constant-initialised weights redrawn and BatchNorm
statistics calibrated on one random batch so that outputs depend on every channel, eval mode), times the tool's dependency graph + pruning
of 50% of the channels by L1 magnitude, and records the growth of the process's peak RSS. The
first run of each pair also measures the peak Python memory (tracemalloc, on a second copy) and
checks the pruned model against the zeroed-channel original with a tool-independent oracle
(``benchmarks/_oracle.py``). A tool that fails or times out on a model is not run again on it.
Writes ``benchmarks/results/compare_torch_pruning.json`` and ``.md`` (``--stem`` names them
otherwise, e.g. one file per thread count).
"""

from __future__ import annotations

import argparse
import copy
import gc
import json
import os
import resource
import statistics
import subprocess
import sys
import time
import tracemalloc
import warnings

import torch
import torchvision

import prunekit

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import machine_meta, rss_mib  # noqa: E402
from _oracle import check_against_zeroed  # noqa: E402
from _tp import tp_prune_, tp_version  # noqa: E402

MODELS = [
    "resnet50", "resnext50_32x4d", "googlenet", "inception_v3", "densenet121", "densenet201",
    "mobilenet_v2", "mobilenet_v3_large", "efficientnet_b0", "regnet_y_400mf", "convnext_tiny",
    "shufflenet_v2_x1_0", "swin_t", "vit_b_16",
]  # fmt: skip
DEPTH = {"densenet": ["densenet121", "densenet169", "densenet201"], "resnet": ["resnet50", "resnet101", "resnet152"]}
DEFAULT_MODELS = MODELS + [m for family in DEPTH.values() for m in family if m not in MODELS]
TOOLS = ("prunekit", "torch-pruning")
SPARSITY = 0.5
RESULT_TAG = "RESULT "


def input_size(name: str) -> int:
    return 299 if name == "inception_v3" else 224


@torch.no_grad()
def make_observable(model: torch.nn.Module) -> torch.nn.Module:
    """Redraws the parameters that torchvision initialises to constants which hide what they scale.

    ViT's head weight starts at zero (every output is 0) and ConvNeXt's layer scales at 1e-6 (the
    residual branches vanish): on such weights a wrong cut would not change the outputs, so an
    equivalence check would pass vacuously. Zero conv/linear weights are drawn from N(0, 0.02^2)
    and layer scales from U(0.5, 1), as after training.
    """
    gen = torch.Generator().manual_seed(0)
    for module in model.modules():
        if isinstance(module, (torch.nn.Linear, torch.nn.modules.conv._ConvNd)) and not module.weight.any():
            module.weight.normal_(0.0, 0.02, generator=gen)
    for name, param in model.named_parameters():
        if name.endswith("layer_scale"):
            param.uniform_(0.5, 1.0, generator=gen)
    return model


def build(name: str) -> torch.nn.Module:
    """The torchvision model, seed 0, made observable, BatchNorm statistics from one random batch, eval."""
    torch.manual_seed(0)
    kwargs = {"aux_logits": False, "init_weights": False} if name in ("googlenet", "inception_v3") else {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = make_observable(getattr(torchvision.models, name)(weights=None, **kwargs))
    # Random weights with BatchNorm's initial statistics (mean 0, var 1) make some models'
    # outputs vanish (mobilenet_v2 ~1e-9, efficientnet_b0 ~1e-13): an equivalence check on them
    # would pass vacuously. One train-mode forward with momentum=None sets the statistics.
    bns = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    for bn in bns:
        bn.reset_running_stats()
        bn.momentum = None
    if bns:
        model.train()
        with torch.no_grad():
            model(torch.randn(4, 3, input_size(name), input_size(name)))
    return model.eval()


def run_tool(tool: str, model: torch.nn.Module, x: torch.Tensor) -> dict:
    if tool == "prunekit":
        report = prunekit.prune_(model, x, sparsity=SPARSITY, criterion="l1")
        return {"groups_pruned": report.groups_pruned}
    return tp_prune_(model, x, ratio=SPARSITY)


def warm_up(tool: str) -> None:
    """One untimed call on a small model: imports and one-time initialisation are not what we time."""
    model = torchvision.models.resnet18(weights=None).eval()
    run_tool(tool, model, torch.randn(1, 3, 64, 64))


def worker(tool: str, name: str, *, full: bool, threads: int, rtol: float) -> dict:
    """One run in this process: time (and, with ``full``, memory and equivalence) of one tool."""
    torch.set_num_threads(threads)
    warnings.simplefilter("ignore")
    warm_up(tool)
    model = build(name)
    size = input_size(name)
    x = torch.randn(1, 3, size, size, generator=torch.Generator().manual_seed(1))
    original = copy.deepcopy(model)
    row: dict = {"model": name, "tool": tool, "input": size}
    row["conv_layers"] = sum(isinstance(m, torch.nn.Conv2d) for m in model.modules())
    gc.collect()
    rss0 = rss_mib()
    t0, c0 = time.perf_counter(), time.process_time()
    try:
        row.update(run_tool(tool, model, x))
        row["finished"] = True
    except Exception as exc:  # noqa: BLE001 -- a tool failing is a result
        row["finished"] = False
        row["error"] = f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
    row["time_s"] = time.perf_counter() - t0
    # CPU seconds of this process: unlike wall time, they barely move when other work shares the
    # CPUs, so their spread says whether a wall-time spread is the machine or the tool
    row["cpu_s"] = time.process_time() - c0
    # ru_maxrss is the process's high-water mark in KiB (Linux): its rise over the RSS at the start
    # of the call bounds what the call allocated at its peak, tensors included.
    row["peak_rss_growth_mib"] = max(0.0, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - rss0)
    if not (full and row["finished"]):
        return row
    xs = [x, torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(2))]
    res = check_against_zeroed(original, model, xs, rtol=rtol)
    row.update(equivalent=res.equivalent, max_error=res.max_error, scale=res.scale, reason=res.reason)
    row["cross_channel_layers"] = len(res.cross_channel)
    row["params_ratio"] = prunekit.count_params(model) / prunekit.count_params(original)
    try:
        row["macs_ratio"] = prunekit.count_macs(model, (x,)) / prunekit.count_macs(original, (x,))
    except Exception:  # noqa: BLE001 -- a model the tool broke has no MAC count
        row["macs_ratio"] = None
    del model
    again = copy.deepcopy(original)
    gc.collect()
    tracemalloc.start()
    run_tool(tool, again, x)
    row["peak_python_mib"] = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    return row


def spawn(tool: str, name: str, *, full: bool, args: argparse.Namespace) -> dict:
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", tool, name, "--threads", str(args.threads)]
    cmd += ["--rtol", str(args.rtol)] + (["--full"] if full else [])
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout, env=env)
    except subprocess.TimeoutExpired:
        return {"model": name, "tool": tool, "finished": False, "error": f"timed out after {args.timeout} s"}
    for line in done.stdout.splitlines():
        if line.startswith(RESULT_TAG):
            return json.loads(line[len(RESULT_TAG) :])
    tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
    return {"model": name, "tool": tool, "finished": False, "error": f"worker exit {done.returncode}: {tail}"[:300]}


def summarize(runs: list[dict]) -> dict:
    """Medians over the runs of one (model, tool); the checks come from the first run."""
    first = runs[0]
    out = {k: v for k, v in first.items() if k not in ("time_s", "cpu_s", "peak_rss_growth_mib")}
    ok = [r for r in runs if r.get("finished")]
    out["finished"] = bool(ok) and len(ok) == len(runs)
    if ok:
        times = [r["time_s"] for r in ok]
        out.update(time_s=statistics.median(times), all_time_s=times)
        cpu = [r["cpu_s"] for r in ok if "cpu_s" in r]
        if cpu:
            out.update(cpu_s=statistics.median(cpu), all_cpu_s=cpu)
        out["peak_rss_growth_mib"] = statistics.median(r["peak_rss_growth_mib"] for r in ok)
    return out


def compare(args: argparse.Namespace) -> dict:
    rows = []
    tools = [t for t in TOOLS if t in args.tools]
    started = time.perf_counter()
    for i, name in enumerate(args.models):
        per_tool: dict[str, list[dict]] = {t: [] for t in tools}
        for run in range(args.runs):
            for tool in tools:
                if per_tool[tool] and not per_tool[tool][0].get("finished"):
                    continue  # a failure is deterministic: do not wait for it N times
                r = spawn(tool, name, full=run == 0, args=args)
                per_tool[tool].append(r)
                status = f"{r['time_s']:.3f} s" if r.get("finished") else f"FAILED ({r.get('error')})"
                print(f"[{i + 1}/{len(args.models)}] {name} run {run + 1}/{args.runs} {tool}: {status}", flush=True)
        rows += [summarize(per_tool[t]) for t in tools]
    return {"wall_s": time.perf_counter() - started, "rows": rows}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", default=DEFAULT_MODELS)
    ap.add_argument("--runs", type=int, default=3, help="runs per model and tool; the figure is the median")
    ap.add_argument("--tools", nargs="+", default=list(TOOLS), choices=TOOLS)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--timeout", type=float, default=300.0, help="seconds before one run counts as failed")
    ap.add_argument("--rtol", type=float, default=1e-4, help="equivalence tolerance relative to the output scale")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "results"))
    ap.add_argument("--stem", default="compare_torch_pruning", help="results file names: <stem>.json and <stem>.md")
    ap.add_argument("--worker", nargs=2, metavar=("TOOL", "MODEL"), help=argparse.SUPPRESS)
    ap.add_argument("--full", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        row = worker(*args.worker, full=args.full, threads=args.threads, rtol=args.rtol)
        print(RESULT_TAG + json.dumps(row), flush=True)
        return 0
    if args.runs < 1:
        ap.error(f"--runs must be at least 1, but got {args.runs}")
    unknown = [m for m in args.models if not hasattr(torchvision.models, m)]
    if unknown:
        ap.error(f"--models: not torchvision models: {unknown}")
    if "torch-pruning" in args.tools and tp_version() is None:
        ap.error(
            "torch-pruning is not installed here: run `bash benchmarks/setup_env.sh` and use .venv-bench/bin/python"
        )
    load_before = os.getloadavg()[0]
    result = compare(args)
    meta = {
        **machine_meta(),
        "torch_pruning": tp_version(),
        "runs": args.runs,
        "sparsity": SPARSITY,
        "rtol": args.rtol,
        "threads": args.threads,
        "wall_s": result["wall_s"],
        # The "after" figure includes this script's own threads; only "before" speaks for neighbours.
        "loadavg_1min_before": load_before,
        "loadavg_1min_after": os.getloadavg()[0],
        "torch_threads": args.threads,
    }
    data = {"meta": meta, "results": result["rows"]}
    from render import render_compare, write_results

    write_results(args.out, args.stem, data, render_compare)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
