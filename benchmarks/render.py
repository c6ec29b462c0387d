"""BENCHMARKS.md from the result files, so that no figure there is typed by hand.

Run: ``python benchmarks/render.py`` (the comparison and accuracy scripts also call the renderers
below for their own ``.md``). Each section is produced from a file in ``benchmarks/results/``; a
benchmark whose results file does not exist yet is listed as "not run yet", without numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import write_atomic  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
RESULTS = os.path.join(HERE, "results")
TOOL_LABEL = {"prunekit": "prunekit", "torch-pruning": "Torch-Pruning"}


def _load(path: str) -> dict | None:
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def _setup(meta: dict) -> str:
    return (
        f"`{meta['command']}` on {meta['platform']} ({meta['cpu_count']} CPUs, {meta.get('threads', '?')} torch "
        f"threads), Python {meta['python']}, torch {meta['torch']}, torchvision {meta['torchvision']}, "
        f"prunekit {meta['prunekit']}, torch-pruning {meta.get('torch_pruning') or 'not installed'}"
    )


def _span(row: dict) -> str:
    times = row.get("all_time_s") or []
    return f"{min(times):.2f}-{max(times):.2f}" if times else "-"


def _equiv(row: dict | None) -> str:
    if row is None or not row.get("finished"):
        return "-"
    if row.get("equivalent") is None:
        return f"unknown ({row.get('reason', '')})"
    err = f"err {row['max_error']:.1e} / scale {row['scale']:.2g}"
    return f"yes ({err})" if row["equivalent"] else f"**no** ({err}{'; ' + row['reason'] if row['reason'] else ''})"


def _done(row: dict | None) -> str:
    if row is None:
        return "not run"
    return "yes" if row.get("finished") else f"**no**: {row.get('error', '')}"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def _pair(by: dict, model: str) -> tuple[dict | None, dict | None]:
    return by.get((model, "prunekit")), by.get((model, "torch-pruning"))


def render_compare(data: dict) -> str:
    """The Torch-Pruning comparison as Markdown (speed, memory, coverage, growth with depth)."""
    meta, rows = data["meta"], data["results"]
    by = {(r["model"], r["tool"]): r for r in rows}
    models = list(dict.fromkeys(r["model"] for r in rows))
    lines = [
        "# Engine speed and coverage: prunekit vs Torch-Pruning",
        "",
        _setup(meta) + f". Median of {meta['runs']} runs per model and tool, alternating between the tools, each "
        "run in its own subprocess after an untimed warm-up call, on the same model (random weights, seed 0; "
        "weights that torchvision initialises to constants -- ViT head, ConvNeXt layer scales -- redrawn and "
        "BatchNorm statistics calibrated on one random batch, so that outputs depend on every channel; eval "
        f"mode). Task: dependency graph + removal of {meta['sparsity']:.0%} of the channels of each group by L1 magnitude. prunekit: `prune_(model, x, sparsity=0.5, criterion='l1')`, "
        "whose time also includes its MAC counts before and after (read off the analysis run and a shape-only check forward of the pruned model: no convolution computed); Torch-Pruning: `MetaPruner` "
        "with `GroupMagnitudeImportance(p=1)`, `pruning_ratio=0.5`, the 1000-class head ignored, as in its "
        "torchvision example. 1-minute load average "
        f"{meta['loadavg_1min_before']:.2f} before, {meta['loadavg_1min_after']:.2f} after (a figure well above "
        f"0 before means other work shared the CPUs and the timings are noisy). Whole run: {meta['wall_s'] / 60:.1f} min.",
        "",
        "Wall time is what a user waits; CPU time (seconds of CPU the run's process used) barely moves when "
        "other work shares the machine, so the CPU-time ratio is the steadier comparison on a loaded machine "
        "and a wide wall-time spread with a narrow CPU-time spread is the machine, not the tool.",
        "",
        "| model | input | prunekit (s) | min-max | Torch-Pruning (s) | min-max | TP / prunekit "
        "| CPU s (pk / TP) | CPU min-max (pk / TP) | TP / prunekit (CPU) "
        "| peak Python MiB (pk / TP) | peak RSS growth MiB (pk / TP) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for m in models:
        pk, tp = _pair(by, m)
        cells = []
        for r in (pk, tp):
            ok = r is not None and r.get("finished")
            cells += [f"{r['time_s']:.3f}" if ok else "-", _span(r) if ok else "-"]
        both = pk and tp and pk.get("finished") and tp.get("finished")
        ratio = f"{tp['time_s'] / pk['time_s']:.2f}x" if both else "-"

        def mem(key: str, r1=pk, r2=tp) -> str:
            return " / ".join(f"{r[key]:.0f}" if r and r.get(key) is not None else "-" for r in (r1, r2))

        size = (pk or tp)["input"] if (pk or tp).get("input") else ""
        cpu = _cpu_cells(pk, tp)
        lines.append(
            f"| {m} | {size} | {' | '.join(cells)} | {ratio} | {cpu} | {mem('peak_python_mib')} "
            f"| {mem('peak_rss_growth_mib')} |"
        )
    lines += [
        "",
        "Coverage and correctness. *Equivalent*: the pruned model's outputs match those of the original with the "
        "removed channels zeroed where they are consumed, within "
        f"{meta['rtol']:g} of the output scale, on two random inputs; the kept channels are read off the weights "
        "by an oracle that shares no code with either tool (`benchmarks/_oracle.py`). Pruning through a "
        "LayerNorm/GroupNorm can never be equivalent to zeroing (they normalise across channels).",
        "",
        "| model | prunekit finished | prunekit equivalent | prunekit MACs kept "
        "| Torch-Pruning finished | Torch-Pruning equivalent | Torch-Pruning MACs kept |",
        "|---|---|---|---|---|---|---|",
    ]
    for m in models:
        cells = [f"{_done(r)} | {_equiv(r)} | {_pct(r.get('macs_ratio') if r else None)}" for r in _pair(by, m)]
        lines.append(f"| {m} | {' | '.join(cells)} |")
    lines += _render_depth(by)
    return "\n".join(lines) + "\n"


def _cpu_cells(pk: dict | None, tp: dict | None) -> str:
    """CPU seconds (pk / TP), their min-max, and the CPU-time ratio; dashes for runs that
    predate the CPU-time column or did not finish."""

    def has(r: dict | None) -> bool:
        return bool(r and r.get("finished") and r.get("cpu_s"))

    secs = " / ".join(f"{r['cpu_s']:.3f}" if has(r) else "-" for r in (pk, tp))
    spans = " / ".join(
        f"{min(r['all_cpu_s']):.2f}-{max(r['all_cpu_s']):.2f}" if has(r) and r.get("all_cpu_s") else "-"
        for r in (pk, tp)
    )
    ratio = f"{tp['cpu_s'] / pk['cpu_s']:.2f}x" if has(pk) and has(tp) else "-"
    return f"{secs} | {spans} | {ratio}"


def _render_depth(by: dict) -> list[str]:
    from compare_torch_pruning import DEPTH

    out = []
    for family, names in DEPTH.items():
        for tool in ("prunekit", "torch-pruning"):
            rows = [by.get((n, tool)) for n in names]
            if any(r is None or not r.get("finished") for r in rows):
                continue
            base = rows[0]
            steps = ", ".join(
                f"{r['model']} {r['conv_layers'] / base['conv_layers']:.2f}x layers -> "
                f"{r['time_s'] / base['time_s']:.2f}x time"
                for r in rows[1:]
            )
            out.append(f"* {TOOL_LABEL[tool]}, {family}: {steps} (relative to {base['model']}).")
    if out:
        out = ["", "Growth with depth (linear growth keeps the time ratio near the layer ratio):", ""] + out
    return out


def _fmt_acc(values: list[float]) -> str:
    if not values:
        return "-"
    if len(values) == 1:
        return f"{values[0]:.2%}"
    return f"{statistics.mean(values):.2%} ({', '.join(f'{v:.2%}' for v in values)})"


def render_accuracy(data: dict) -> str:
    """The accuracy study as Markdown: one row per pruning method, seeds averaged."""
    meta, rows = data["meta"], data["results"]
    lines = [
        "# Accuracy after pruning to 2x fewer MACs",
        "",
        f"`{meta['command']}`: {meta['model']} on {meta['dataset']}; baseline {meta['epochs']} epochs, fine-tuning "
        f"{meta['finetune_epochs']} epochs after pruning (the same budget for every method), batch "
        f"{meta['batch_size']}, SGD with Nesterov momentum, cosine LR from {meta['lr']} (baseline) and "
        f"{meta['finetune_lr']} (fine-tuning), pruned to {meta['target_macs']:.0%} of the MACs, seeds {meta['seeds']}"
        + (f", at most {meta['max_batches']} batches per epoch" if meta.get("max_batches") else "")
        + f"; torch {meta['torch']}, prunekit {meta['prunekit']}, torch-pruning "
        f"{meta.get('torch_pruning') or 'not installed'}; {meta['wall_s'] / 60:.1f} min in all. Test accuracy: "
        "mean over seeds (per seed in parentheses).",
        "",
        "| method | tool | MACs kept | params kept | before | right after pruning | after fine-tuning |",
        "|---|---|---|---|---|---|---|",
    ]
    methods = list(dict.fromkeys((r["method"], r["tool"]) for r in rows))
    for method, tool in methods:
        group = [r for r in rows if r["method"] == method and r["tool"] == tool]
        if all(r.get("skipped") for r in group):
            lines.append(f"| {method} | {TOOL_LABEL.get(tool, tool)} | skipped: {group[0]['skipped']} | | | | |")
            continue
        group = [r for r in group if not r.get("skipped")]

        def col(key: str, g=group) -> list[float]:
            return [r[key] for r in g if r.get(key) is not None]

        macs, params = col("macs_ratio"), col("params_ratio")
        lines.append(
            f"| {method} | {TOOL_LABEL.get(tool, tool)} | {_pct(statistics.mean(macs) if macs else None)} | "
            f"{_pct(statistics.mean(params) if params else None)} | {_fmt_acc(col('acc_before'))} | "
            f"{_fmt_acc(col('acc_pruned'))} | {_fmt_acc(col('acc_finetuned'))} |"
        )
    return "\n".join(lines) + "\n"


def _demote(md: str) -> str:
    """One heading level down, so each result file becomes a section of BENCHMARKS.md."""
    return "\n".join("#" + line if line.startswith("#") else line for line in md.splitlines())


SECTIONS = [
    ("compare_torch_pruning.json", render_compare, "Engine speed and coverage: prunekit vs Torch-Pruning",
     "`.venv-bench/bin/python benchmarks/compare_torch_pruning.py` (after `bash benchmarks/setup_env.sh`)"),
    ("accuracy_study.json", render_accuracy, "Accuracy after pruning to 2x fewer MACs",
     "`.venv-bench/bin/python benchmarks/accuracy_study.py`"),
]  # fmt: skip
VERBATIM = [
    ("engine_speed.md", "Engine speed", "`python benchmarks/engine_speed.py`"),
    (
        "latency.md",
        "Latency-aware pruning: measured speed-up against the MAC reduction",
        "`python benchmarks/latency.py`",
    ),
    (
        "latency_round8.md",
        "CPU latency, channels rounded to 8 (before latency-aware pruning)",
        "`python benchmarks/latency.py --round-to 8` (the script before issue 13)",
    ),
    ("reconstruction.md", "Reconstruction vs plain L1 without fine-tuning", "`python benchmarks/reconstruction.py`"),
    ("sensitivity.md", "Sensitivity analysis", "`python benchmarks/sensitivity.py`"),
]


def render_benchmarks(results: str = RESULTS) -> str:
    """The whole BENCHMARKS.md: every section from its results file, or "not run yet"."""
    parts = [
        "# Benchmarks",
        "",
        "Generated by `python benchmarks/render.py` from the files in `benchmarks/results/` (each records the "
        "exact command, versions, machine and load). Do not edit by hand: re-run the benchmark, then the renderer.",
    ]
    for fname, render, title, command in SECTIONS:
        data = _load(os.path.join(results, fname))
        parts += ["", _demote(render(data)) if data else f"## {title}\n\nNot run yet: {command}."]
    known = {fname for fname, *_ in VERBATIM} | {f.replace(".json", ".md") for f, *_ in SECTIONS}
    others = (
        sorted(f for f in os.listdir(results) if f.endswith(".md") and f not in known) if os.path.isdir(results) else []
    )
    for fname, title, command in VERBATIM + [(f, f, "") for f in others]:
        path = os.path.join(results, fname)
        if os.path.exists(path):
            with open(path) as f:
                parts += ["", _demote(f.read().rstrip())]
            meta = (_load(path[: -len(".md")] + ".json") or {}).get("meta", {})
            if meta.get("command") and not {"loadavg_1min_before", "loadavg_before"} & set(meta):
                parts += ["", "*This result file does not record the load average of the machine: noise from "
                          "other work running at the same time cannot be ruled out.*"]  # fmt: skip
        else:
            parts += ["", f"## {title}\n\nNot run yet: {command}."]
    return "\n".join(parts) + "\n"


def write_results(out_dir: str, stem: str, data: dict, render) -> None:
    """Writes ``<stem>.json`` (raw) and ``<stem>.md`` (``render(data)``) under ``out_dir``; prints the table."""
    os.makedirs(out_dir, exist_ok=True)
    write_atomic(os.path.join(out_dir, f"{stem}.json"), json.dumps(data, indent=2) + "\n")
    text = render(data)
    write_atomic(os.path.join(out_dir, f"{stem}.md"), text)
    print(text)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--results", default=RESULTS)
    ap.add_argument("--out", default=os.path.join(os.path.dirname(HERE), "BENCHMARKS.md"))
    args = ap.parse_args()
    write_atomic(args.out, render_benchmarks(args.results))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
