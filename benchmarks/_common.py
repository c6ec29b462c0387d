"""What every benchmark script writes the same way: atomic files and a description of the machine."""

from __future__ import annotations

import os
import platform
import sys

import torch
import torchvision

import prunekit
from prunekit.fileio import write_text


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
