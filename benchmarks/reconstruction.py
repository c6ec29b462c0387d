"""Channel pruning with feature-map reconstruction vs plain L1, with NO fine-tuning.

Run: ``python benchmarks/reconstruction.py`` (one command; prints progress). A ResNet-20 trained on
Fashion-MNIST (``_fmnist_resnet.py``; cached in ``benchmarks/.cache``, trained when absent) is
pruned to ``--target-macs`` of its MACs (default 0.5: 2x fewer) by

* plain L1 selection (``prunekit.prune_``), and the same with the BatchNorm running statistics
  re-estimated on the calibration images (a common fix that updates no weight),
* L1 selection, then ``reconstruct_`` (the refit as a separate step after any criterion),
* ``channel_prune_`` with L1 / LASSO (He et al. 2017) / ThiNet (Luo et al. 2017) selection and the
  layer-by-layer least-squares refit (already-pruned inputs, original outputs),
* LASSO selection without the refit (ablation),

and each is evaluated on the 2k test images as is. Writes ``benchmarks/results/reconstruction.json``,
``reconstruction.md`` and ``reconstruction.png`` (per-layer relative reconstruction error).
"""

from __future__ import annotations

import argparse
import copy
import io
import json
import os
import sys
import time

import torch

import prunekit
from prunekit.reconstruction import channel_prune_, reconstruct_

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import machine_meta, write_atomic  # noqa: E402
from _fmnist_resnet import accuracy, calibration_batches, header, trained_resnet20  # noqa: E402

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
LABELS = {
    "l1": "L1 (no refit)",
    "l1_bn": "L1 + BatchNorm statistics re-estimated",
    "l1_reconstruct": "L1, then reconstruct_",
    "cp_l1": "L1 + refit (channel_prune_)",
    "cp_lasso": "LASSO + refit (He et al. 2017)",
    "cp_thinet": "ThiNet + refit (Luo et al. 2017)",
    "cp_lasso_norefit": "LASSO, no refit (ablation)",
}


def reestimate_bn(model: torch.nn.Module, batches: list[torch.Tensor]) -> None:
    """Recomputes every BatchNorm's running statistics on ``batches`` (no weight is updated)."""
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.reset_running_stats()
            m.momentum = None  # cumulative average over the batches
    model.train()
    with torch.no_grad():
        for x in batches:
            model(x)
    model.eval()


def run(args: argparse.Namespace) -> dict:
    model, info = trained_resnet20(epochs=args.epochs)
    x = torch.zeros(1, 1, 28, 28)
    calib = calibration_batches(args.calib_batches)
    base = accuracy(model)
    print(f"unpruned: top-1 {base['top1']:.4f}", flush=True)
    rows: dict[str, dict] = {"unpruned": {**base, "macs_ratio": 1.0, "params_ratio": 1.0, "seconds": 0.0}}
    errors: dict[str, list[dict]] = {}
    common = dict(num_samples=args.num_samples, num_batches=len(calib), target_macs=args.target_macs)

    def record(key: str, m: torch.nn.Module, report: prunekit.PruneReport, seconds: float) -> None:
        acc = accuracy(m)
        rows[key] = {**acc, "macs_ratio": report.macs_ratio, "params_ratio": report.params_ratio, "seconds": seconds}
        print(f"{LABELS[key]:<34} top-1 {acc['top1']:.4f}  MACs {report.macs_ratio:.3f}  ({seconds:.1f} s)", flush=True)

    t = time.perf_counter()
    l1 = copy.deepcopy(model)
    rep = prunekit.prune_(l1, x, target_macs=args.target_macs, criterion="l1", exact_only=True)
    record("l1", l1, rep, time.perf_counter() - t)

    t = time.perf_counter()
    bn = copy.deepcopy(l1)
    reestimate_bn(bn, calib)
    record("l1_bn", bn, rep, time.perf_counter() - t + rows["l1"]["seconds"])

    t = time.perf_counter()
    refit = copy.deepcopy(l1)
    layer_rows = reconstruct_(refit, model, calib, kept=rep, num_samples=args.num_samples)
    record("l1_reconstruct", refit, rep, time.perf_counter() - t + rows["l1"]["seconds"])
    errors["l1_reconstruct"] = [vars(r) for r in layer_rows]

    for key, method, do_refit in (
        ("cp_l1", "l1", True),
        ("cp_lasso", "lasso", True),
        ("cp_thinet", "thinet", True),
        ("cp_lasso_norefit", "lasso", False),
    ):
        t = time.perf_counter()
        m = copy.deepcopy(model)
        report = channel_prune_(m, x, calibration=calib, method=method, refit=do_refit, **common)
        record(key, m, report, time.perf_counter() - t)
        errors[key] = [vars(r) for r in report.reconstruction]
    return {
        "meta": machine_meta(),
        "model": {"name": "resnet20", **info},
        "settings": {
            "target_macs": args.target_macs,
            "num_samples": args.num_samples,
            "calibration_images": sum(len(b) for b in calib),
            "fine_tuning": "none",
        },
        "results": rows,
        "layer_errors": errors,
    }


def plot(data: dict, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    errs = data["layer_errors"]
    names = [r["name"] for r in errs["cp_lasso"]]
    fig, ax = plt.subplots(figsize=(11, 5))
    series = [
        ("L1 selection, before refit", [r["error_before"] for r in errs["cp_l1"]], "--"),
        ("L1 + refit", [r["error_after"] for r in errs["cp_l1"]], "-"),
        ("LASSO, before refit", [r["error_before"] for r in errs["cp_lasso"]], "--"),
        ("LASSO + refit", [r["error_after"] for r in errs["cp_lasso"]], "-"),
        ("ThiNet + refit", [r["error_after"] for r in errs["cp_thinet"]], "-"),
    ]
    for label, values, style in series:
        ax.plot(range(len(values)), values, style, marker="o", ms=3, label=label)
    ax.set_yscale("log")
    ax.set_xticks(range(len(names)))
    ax.set_xticklabels(names, rotation=70, fontsize=7)
    ax.set_ylabel("relative error ||Y - Y'||² / ||Y||² (sampled points)")
    ax.set_title(
        f"ResNet-20 / Fashion-MNIST, {data['settings']['target_macs']:.0%} of MACs: per-layer reconstruction error"
    )
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    from prunekit.fileio import write_bytes

    write_bytes(path, buf.getvalue())


def render(data: dict) -> str:
    meta, s = data["meta"], data["settings"]
    lines = header("Channel pruning with reconstruction vs plain L1 (no fine-tuning)", meta) + [
        f"ResNet-20 trained on {data['model']['dataset']} ({data['model']['epochs']} epochs; 10k train / 2k test "
        f"images), pruned to {s['target_macs']:.0%} of its MACs with **no fine-tuning**. Calibration: "
        f"{s['calibration_images']} training images, {s['num_samples']} sampled points per layer. Accuracy on "
        "the 2k test images.",
        "",
        "| method | top-1 | top-5 | loss | MACs kept | params kept | time (s) |",
        "|---|---|---|---|---|---|---|",
    ]
    for key, r in data["results"].items():
        label = LABELS.get(key, key)
        lines.append(
            f"| {label} | {r['top1']:.2%} | {r['top5']:.2%} | {r['loss']:.3f} | {r['macs_ratio']:.1%} | "
            f"{r['params_ratio']:.1%} | {r['seconds']:.1f} |"
        )
    lines += ["", "Per-layer relative reconstruction error (mean over the refit layers):", ""]
    lines += ["| method | before refit | after refit |", "|---|---|---|"]
    for key, rows in data["layer_errors"].items():
        if rows:
            before = sum(r["error_before"] for r in rows) / len(rows)
            after = sum(r["error_after"] for r in rows) / len(rows)
            lines.append(f"| {LABELS[key]} | {before:.4f} | {after:.4f} |")
    r = data["results"]
    best = max((k for k in r if k.startswith("cp_") or k == "l1_reconstruct"), key=lambda k: r[k]["top1"])
    lines += [
        "",
        f"Findings: plain L1 keeps {r['l1']['top1']:.1%} top-1 (10 classes: 10% is chance); re-estimating the "
        f"BatchNorm statistics alone brings it to {r['l1_bn']['top1']:.1%}. The layer-by-layer least-squares "
        f"refit keeps {r[best]['top1']:.1%} ({LABELS[best]}) of the unpruned {r['unpruned']['top1']:.1%}, "
        "with the same channel counts and MACs. Which channels are chosen matters much less than the refit "
        "here: LASSO and ThiNet lower the per-layer error before the refit, but after it the methods end "
        "within about one point of each other, and LASSO selection without the refit does not keep accuracy.",
        "",
        "![per-layer reconstruction error](reconstruction.png)",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=8, help="training epochs of the cached model")
    p.add_argument("--target-macs", type=float, default=0.5)
    p.add_argument("--num-samples", type=int, default=8192, help="sampled points per layer")
    p.add_argument("--calib-batches", type=int, default=8, help="calibration batches of 128 training images")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--render-only", action="store_true", help="only re-write the .md and .png from the .json")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    if args.render_only:  # re-write the markdown and the plot from the saved JSON
        with open(os.path.join(RESULTS, "reconstruction.json")) as f:
            data = json.load(f)
    else:
        data = run(args)
    if not args.render_only:
        write_atomic(os.path.join(RESULTS, "reconstruction.json"), json.dumps(data, indent=2))
    plot(data, os.path.join(RESULTS, "reconstruction.png"))
    write_atomic(os.path.join(RESULTS, "reconstruction.md"), render(data))
    print(f"wrote {RESULTS}/reconstruction.json, .md and .png")


if __name__ == "__main__":
    main()
