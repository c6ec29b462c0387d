"""What every benchmark script writes the same way: atomic files and a description of the machine."""

from __future__ import annotations

import json
import os
import platform
import sys

import torch
import torchvision

import prunekit
from prunekit.fileio import write_text


def run_line(meta: dict, versions: str = "") -> str:
    """How a timing run was made, for the top of its results file: the command, the machine, the
    thread count, torch (then ``versions``, e.g. ", onnxruntime 1.2") and the load average before
    and after (``meta`` from :func:`machine_meta` plus ``threads`` and ``loadavg_1min_before`` /
    ``_after``)."""
    return (
        f"`{meta['command']}` on {meta['platform']} ({meta['cpu_count']} CPUs), {meta['threads']} thread(s), torch "
        f"{meta['torch']}{versions}; load average (1 min) {meta['loadavg_1min_before']:.1f} before, "
        f"{meta.get('loadavg_1min_after', float('nan')):.1f} after"
    )


def write_atomic(path: str, text: str) -> None:
    """Writes ``text`` to ``path`` through a temp file and a rename, so a kill never leaves half a file."""
    write_text(path, text)


def machine_meta() -> dict:
    """The exact command, versions and machine, recorded next to every result."""
    return {
        "command": " ".join([os.path.basename(sys.executable)] + sys.argv),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "prunekit": prunekit.__version__,
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
    }


def rss_mib() -> float:
    """This process's resident memory now, in MiB (Linux ``/proc``; NaN elsewhere)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def load_runs(paths: list[str], same_settings: tuple[str, ...]) -> list[dict]:
    """The result files of runs to merge; exits naming the file whose ``meta`` differs from the
    first one's in any of ``same_settings``."""
    runs = []
    for path in paths:
        with open(path) as f:
            runs.append(json.load(f))
    first = runs[0]["meta"]
    for path, run in zip(paths, runs):
        for key in same_settings:
            if run["meta"].get(key) != first.get(key):
                raise SystemExit(
                    f"--merge: {path} has {key}={run['meta'].get(key)!r}, the first file {first.get(key)!r}"
                )
    return runs
