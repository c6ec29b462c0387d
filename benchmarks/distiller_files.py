"""Runs Distiller's own schedule files (IntelLabs/distiller, unedited) through prunekit.

For every YAML file under ``examples/`` and ``tests/`` of a Distiller checkout (a work tree or a
bare git directory) whose model prunekit has (the CIFAR ResNets and VGGs, AlexNet, ResNet-18/50),
the file is loaded as it is and its pruners and thinning run epoch by epoch on the model at the
input size of the file's dataset (CIFAR 3x32x32, ImageNet 3x224x224), without training between
steps (``--train-batches`` trains a few random batches per epoch instead; data-driven rankings
read two random batches): the structure a file
asks for does not depend on the accuracy reached, the choice of channels does. Files that are
refused are listed with the error. Figures: dense params and MACs kept, and the weights' nonzero
fraction kept, against the figures the file's header comments record (``Total MACs``, ``# of
parameters``, ``Total sparsity``) where it has them.

Writes ``benchmarks/results/distiller_files.md`` and ``.json``. Distiller's files are read from the
given folder only; none is copied into prunekit.

    python benchmarks/distiller_files.py --distiller-dir /path/to/distiller[.git]
"""

from __future__ import annotations

import argparse
import io
import json
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine_meta, write_atomic  # noqa: E402

from prunekit.compat.distiller import DistillerRecipe  # noqa: E402
from prunekit.errors import PrunekitError  # noqa: E402
from prunekit.metrics import count_macs, count_params  # noqa: E402
from prunekit.models import get_model  # noqa: E402
from prunekit.recipes import load_recipe  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
# Distiller arch -> (prunekit model, dataset)
ARCHS = {
    **{f"resnet{d}_cifar": (f"resnet{d}", "cifar") for d in (20, 32, 44, 56, 110)},
    "vgg11_cifar": ("vgg11_bn", "cifar"),
    "vgg16_cifar": ("vgg16_bn", "cifar"),
    "vgg19_cifar": ("vgg19_bn", "cifar"),
    "alexnet": ("torchvision:alexnet", "imagenet"),
    **{v: (f"torchvision:{v}", "imagenet") for v in ("vgg11", "vgg16", "vgg19", "vgg11_bn", "vgg16_bn", "vgg19_bn")},
    "resnet18": ("torchvision:resnet18", "imagenet"),
    "resnet50": ("torchvision:resnet50", "imagenet"),
}
SKIP_WORDS = ("quant", "word_lang", "gnmt", "ncf", "gru", "lstm", "rnn", "object_detection", "pact")


class Source:
    """A Distiller checkout: a work tree, or a git directory read with ``git show``."""

    def __init__(self, path: str) -> None:
        self.path = Path(path)
        self.git = (self.path / "HEAD").is_file() and (self.path / "objects").is_dir()

    def files(self) -> list[str]:
        if self.git:
            out = subprocess.run(
                ["git", f"--git-dir={self.path}", "ls-tree", "-r", "HEAD", "--name-only"],
                capture_output=True, text=True, check=True,
            ).stdout.split()  # fmt: skip
        else:
            out = [str(p.relative_to(self.path)) for p in self.path.rglob("*.yaml")]
        return sorted(f for f in out if f.endswith(".yaml") and f.split("/")[0] in ("examples", "tests"))

    def read(self, name: str) -> str:
        if not self.git:
            return (self.path / name).read_text()
        text = subprocess.run(
            ["git", f"--git-dir={self.path}", "show", f"HEAD:{name}"], capture_output=True, text=True, check=True
        ).stdout
        if "\n" not in text.strip() and text.strip().endswith(".yaml"):  # a symbolic link: its target
            target = (Path("/") / Path(name).parent / text.strip()).resolve()
            return self.read(str(target.relative_to(target.anchor)))
        return text


def arch_of(name: str, text: str) -> str | None:
    """The Distiller arch a file is for: ``--arch X``/``-a X`` in its comments, an ``arch:``
    field, or its file name."""
    for pattern in (r"--arch[= ]+([\w.]+)", r"\s-a[= ]+([\w.]+)", r"arch:\s*'?([\w.]+)"):
        m = re.search(pattern, text)
        if m:
            return m.group(1)
    base = Path(name).name.lower()
    for arch in sorted(ARCHS, key=len, reverse=True):
        if base.startswith(arch.split("_")[0] + ".") or base.startswith(arch):
            return arch
    if base.startswith("vgg19"):
        return "vgg19_cifar"
    return None


def _numbers(pattern: str, text: str) -> list[float]:
    return [float(x.replace(",", "")) for x in re.findall(pattern, text)]


def header_figures(text: str) -> dict[str, float]:
    """What the file's comments record: MACs and parameters before/after, total sparsity."""
    comments = "\n".join(line for line in text.splitlines() if line.lstrip().startswith("#"))
    out: dict[str, float] = {}
    macs = _numbers(r"Total MACs:\s*([\d,]+)", comments)
    if len(macs) >= 2:
        out["macs_kept"] = macs[-1] / macs[0]
    params = _numbers(r"# of parameters:\s*([\d,]+)", comments)
    if len(params) >= 2:
        out["nonzero_weights_kept"] = params[-1] / params[0]  # Distiller counts NNZ weights
    sparsity = _numbers(r"Total sparsity:\s*([\d.]+)", comments)
    if sparsity:
        out["sparsity"] = sparsity[-1] / 100.0
    return out


def _weights(model: torch.nn.Module) -> tuple[int, int]:
    ws = [p for p in model.parameters() if p.dim() >= 2]
    return sum(p.numel() for p in ws), sum(int(torch.count_nonzero(p)) for p in ws)


def run_file(text: str, spec: str, dataset: str, *, train_batches: int, max_epochs: int | None) -> dict[str, Any]:
    recipe = load_recipe(text)
    if not isinstance(recipe, DistillerRecipe):
        raise PrunekitError("not a Distiller schedule")
    classes, size = (10, 32) if dataset == "cifar" else (1000, 224)
    torch.manual_seed(0)
    model = get_model(spec, num_classes=classes, in_channels=3).eval()
    x = torch.randn(1, 3, size, size)
    params0, macs0 = count_params(model), count_macs(model, (x,))
    w0, _ = _weights(model)
    acting = sorted({e for p in recipe.schedule.policies if p.kind != "lr_scheduler" for e in p.epochs})
    if max_epochs is not None and acting and acting[-1] >= max_epochs:
        from prunekit.compat.distiller.shorten import shorten

        recipe = DistillerRecipe(shorten(recipe.schedule, max_epochs))
        acting = sorted({e for p in recipe.schedule.policies if p.kind != "lr_scheduler" for e in p.epochs})
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    recipe.check(model, x)
    g = torch.Generator().manual_seed(1)
    calibration = (
        [(torch.randn(4, 3, size, size, generator=g), torch.randint(0, classes, (4,), generator=g)) for _ in range(2)]
        if recipe.needs_data
        else None
    )
    current: dict[str, int] = {}  # mask sizes so far, for the former checkpoint format
    old_bytes = 0
    for epoch in range(max(acting, default=0) + 1):
        event = recipe.on_epoch_begin(model, x, epoch, calibration=calibration)
        for d in event.decisions:  # read now: later steps drop the masks they supersede
            if d.kind == "elementwise":
                current.update({k: v.numel() for k, v in d.weight_masks.items()})
                old_bytes += 4 * sum(current.values())
        if event.rebuild_optimizer:
            opt = torch.optim.SGD(model.parameters(), lr=0.01)
        for _ in range(train_batches):  # a few random steps so masks are re-applied after training
            model.train()
            opt.zero_grad()
            model(torch.randn(2, 3, size, size)).logsumexp(1).mean().backward()
            opt.step()
            recipe.after_optimizer_step(model)
            model.eval()
    recipe.finalize(model, x)
    w1, nz1 = _weights(model)
    # the recipe's checkpoint state now (bit-packed masks, each decision only the masks it set)
    # against the old format (every decision all masks so far, as float32)
    buffer = io.BytesIO()
    torch.save(recipe.state_dict(), buffer)

    return {
        "params_kept": count_params(model) / params0,
        "macs_kept": count_macs(model, (x,)) / macs0,
        "nonzero_weights_kept": nz1 / w0,  # Distiller's "# of parameters" (NNZ of conv/fc weights)
        "sparsity": 1.0 - nz1 / w1,  # Distiller's "Total sparsity": zeros of the final dense weights
        "steps": len(acting),
        "state_mb": buffer.tell() / 2**20,
        "state_mb_float_masks": old_bytes / 2**20,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--distiller-dir", required=True, help="a Distiller work tree or bare git directory")
    ap.add_argument("--only", help="run only files whose path contains this")
    ap.add_argument("--train-batches", type=int, default=0, help="random training batches per epoch (default 0)")
    ap.add_argument("--max-epochs", type=int, default=40, help="shorten longer schedules into this many epochs")
    args = ap.parse_args()
    torch.set_num_threads(1)
    src = Source(args.distiller_dir)
    rows = []
    files = [n for n in src.files() if not any(w in n.lower() for w in SKIP_WORDS)]
    texts = {n: src.read(n) for n in files if not args.only or args.only in n}
    # the CIFAR files first: they take seconds, the ImageNet ones minutes
    order = sorted(texts, key=lambda n: (ARCHS.get(arch_of(n, texts[n]) or "", ("", "cifar"))[1] != "cifar", n))
    for name in order:
        text = texts[name]
        arch = arch_of(name, text)
        row: dict[str, Any] = {"file": name, "arch": arch, "recorded": header_figures(text)}
        if arch not in ARCHS:
            row.update(status="no model", error=f"arch {arch!r} is not a prunekit model")
            rows.append(row)
            print(f"{name}: no model ({arch})", flush=True)
            continue
        spec, dataset = ARCHS[arch]
        t0 = time.perf_counter()
        try:
            row.update(status="ran", model=spec, **run_file(text, spec, dataset, train_batches=args.train_batches,
                                                            max_epochs=args.max_epochs))  # fmt: skip
        except PrunekitError as exc:
            row.update(status="refused", error=str(exc))
        except Exception as exc:  # noqa: BLE001 - a benchmark records every failure and goes on
            row.update(status="crashed", error=f"{type(exc).__name__}: {exc}")
        row["seconds"] = round(time.perf_counter() - t0, 1)
        rows.append(row)
        print(f"{name}: {row['status']} {row.get('error', '')[:150]}", flush=True)
        write_results(rows, merge=bool(args.only))  # after every file: a killed run keeps what it did
    write_results(rows, merge=bool(args.only))
    return 0


def write_results(rows: list[dict[str, Any]], *, merge: bool = False) -> None:
    """Writes the results; ``merge`` (a run with ``--only``) keeps the other files' rows."""
    RESULTS.mkdir(exist_ok=True)
    kept = []
    if merge and (RESULTS / "distiller_files.json").is_file():
        ran = {r["file"] for r in rows}
        kept = [r for r in json.loads((RESULTS / "distiller_files.json").read_text())["files"] if r["file"] not in ran]
    done = sorted(kept + rows, key=lambda r: r["file"])
    write_atomic(str(RESULTS / "distiller_files.json"), json.dumps({"meta": machine_meta(), "files": done}, indent=1))
    write_atomic(str(RESULTS / "distiller_files.md"), render(done))


def _mb(r: dict[str, Any]) -> str:
    if "state_mb" not in r:
        return ""
    return f"{r['state_mb']:.1f}" + (f" ({r['state_mb_float_masks']:.0f})" if r["state_mb_float_masks"] else "")


def _pct(v: float | None) -> str:
    return "" if v is None else f"{100 * v:.1f}%"


def render(rows: list[dict[str, Any]]) -> str:
    lines = [
        "# Distiller's schedule files through prunekit",
        "",
        "Written by `benchmarks/distiller_files.py` (its docstring says how), on the files of IntelLabs/distiller "
        "as they are. Kept = after / before; *recorded* = the figures in the file's own header comments. Pruning "
        "ran without training between steps on random weights (the channels chosen differ from a trained run; the "
        "counts do not), schedules longer than `--max-epochs` shortened.",
        "",
        "| file | model | status | dense params kept | MACs kept (recorded) | NNZ weights kept (recorded) "
        "| sparsity (recorded) | recipe state MB (float masks) | note |",
        "|---|---|---|---|---|---|---|---|---|",
    ]

    def cell(r: dict[str, Any], key: str) -> str:
        rec = r.get("recorded", {})
        return _pct(r.get(key)) + (f" ({_pct(rec[key])})" if key in rec else "")

    for r in rows:
        note = (r.get("error") or "").replace("|", "/").replace("\n", " ")[:160]
        lines.append(
            f"| {r['file']} | {r.get('model', r.get('arch') or '')} | {r['status']} | {_pct(r.get('params_kept'))} "
            f"| {cell(r, 'macs_kept')} | {cell(r, 'nonzero_weights_kept')} "
            f"| {cell(r, 'sparsity')} | {_mb(r)} | {note} |"
        )
    counts: dict[str, int] = {}
    for r in rows:
        counts[r["status"]] = counts.get(r["status"], 0) + 1
    lines += [
        "",
        "Totals: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())),
        "",
        "Notes: *no model*: the file targets a network prunekit does not ship (Distiller's MobileNet v1, "
        "simplenet, plain20, preact ResNets, ResNeXt) or is not a schedule for one (AMC); with your own model "
        "of the same layer names (`--model package.module:function`) it runs like the others. The SSL "
        "`*_finetuning*` files resume from a checkpoint that a group-lasso regularizer produced: the figures "
        "they record are that checkpoint's, not their own. Recipe state: what the checkpoint holds for the "
        "masks now (bit-packed, each step only the masks it set), in brackets the former format (every step "
        "all masks so far, float32).",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
