"""Real speed-up: CPU latency before and after pruning to 2x and 3x fewer MACs.

Run: ``python benchmarks/latency.py`` (one command; prints progress). For each model it prunes
copies with ``target_macs=1/2`` and ``1/3`` (L1, global scope, the graph traced once), then
measures eval-mode latency with ``torch.utils.benchmark`` (threads fixed) at batch 1 and batch
32, and ONNX Runtime latency at batch 1 when onnxruntime is installed. Writes
``benchmarks/results/latency.json`` and ``latency.md`` with the command, versions and machine.
"""

from __future__ import annotations

import argparse
import copy
import io
import json
import os
import sys
import time
import warnings

import torch
import torchvision

import prunekit

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import machine_meta, write_atomic  # noqa: E402

from prunekit.latency import measure_latency
from prunekit.models import get_model

MODELS = {"resnet50": 224, "mobilenet_v2": 224, "resnet56": 32}


def build(name: str) -> torch.nn.Module:
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if name == "resnet56":
            return get_model("resnet56", num_classes=10, in_channels=3).eval()
        return getattr(torchvision.models, name)(weights=None).eval()


def ort_latency(model: torch.nn.Module, x: torch.Tensor, threads: int, repeats: int) -> float | None:
    try:
        import onnxruntime as ort
    except ImportError:
        return None
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (x,), buf, input_names=["x"], dynamo=False)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    sess = ort.InferenceSession(buf.getvalue(), opts, providers=["CPUExecutionProvider"])
    feed = {"x": x.numpy()}
    for _ in range(3):
        sess.run(None, feed)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        sess.run(None, feed)
        times.append(time.perf_counter() - t0)
    return sorted(times)[len(times) // 2]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--models", nargs="+", default=list(MODELS))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batches", nargs="+", type=int, default=[1, 32])
    ap.add_argument("--min-run-time", type=float, default=1.0)
    ap.add_argument("--round-to", type=int, default=1, help="keep channel counts multiples of this")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results"))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    os.makedirs(args.out, exist_ok=True)
    rows = []
    for name in args.models:
        size = MODELS[name]
        base = build(name)
        x1 = torch.randn(1, 3, size, size)
        variants = [("original", base, None)]
        for factor in (2, 3):
            m = copy.deepcopy(base)
            report = prunekit.prune_(m, x1, target_macs=1 / factor, scope="global", round_to=args.round_to)
            variants.append((f"{factor}x fewer MACs", m, report))
        for label, m, _ in variants:
            row = {
                "model": name,
                "variant": label,
                "input": size,
                "macs": prunekit.count_macs(m, (x1,)),
                "params": prunekit.count_params(m),
            }
            for b in args.batches:
                xb = torch.randn(b, 3, size, size)
                row[f"torch_b{b}_ms"] = 1e3 * measure_latency(
                    m, (xb,), threads=args.threads, min_run_time=args.min_run_time
                )
            ort_s = ort_latency(m, x1, args.threads, 20)
            row["ort_b1_ms"] = None if ort_s is None else 1e3 * ort_s
            rows.append(row)
            print(
                f"{name:13s} {label:16s} MACs {row['macs'] / 1e6:9.1f}M  "
                + "  ".join(f"b{b} {row[f'torch_b{b}_ms']:.1f} ms" for b in args.batches)
                + (f"  ort b1 {row['ort_b1_ms']:.1f} ms" if row["ort_b1_ms"] else ""),
                flush=True,
            )
    meta = {
        **machine_meta(),
        "threads": args.threads,
        "weights": "random (latency does not depend on them)",
    }
    stem = "latency" if args.round_to == 1 else f"latency_round{args.round_to}"
    write_atomic(os.path.join(args.out, f"{stem}.json"), json.dumps({"meta": meta, "results": rows}, indent=2) + "\n")
    bcols = [f"torch_b{b}_ms" for b in args.batches]
    lines = [
        "# CPU latency before and after pruning",
        "",
        f"`{meta['command']}` on {meta['platform']} ({meta['cpu_count']} CPUs, {args.threads} threads), torch "
        f"{meta['torch']}. Pruned with `target_macs` (L1, global scope, round_to={args.round_to}). Latency: median of "
        "`torch.utils.benchmark` blocked_autorange; ONNX Runtime: median of 20 runs at batch 1. "
        "Speed-up / MAC reduction is the batch-1 torch speed-up divided by the MAC reduction.",
        "",
        "| model | variant | MACs (M) | params (M) | "
        + " | ".join(f"torch b{b} (ms)" for b in args.batches)
        + " | ORT b1 (ms) | speed-up b1 | speed-up / MAC reduction |",
        "|---" * (7 + len(args.batches)) + "|",
    ]
    for r in rows:
        base = next(o for o in rows if o["model"] == r["model"] and o["variant"] == "original")
        speed = base[bcols[0]] / r[bcols[0]]
        ratio = speed / (base["macs"] / r["macs"])
        ort = f"{r['ort_b1_ms']:.1f}" if r["ort_b1_ms"] else "-"
        lines.append(
            f"| {r['model']} | {r['variant']} | {r['macs'] / 1e6:.1f} | {r['params'] / 1e6:.2f} | "
            + " | ".join(f"{r[c]:.1f}" for c in bcols)
            + f" | {ort} | {speed:.2f}x | {ratio:.2f} |"
        )
    write_atomic(os.path.join(args.out, f"{stem}.md"), "\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
