"""Atomic file writes: a temp file in the same folder, fsync, then ``os.replace``.

A process killed at any moment leaves either the old file or the new one, never half of one.
Every file prunekit writes (configs, checkpoints, reports, plots) goes through here.
"""

from __future__ import annotations

import io
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

__all__ = ["atomic_write", "write_text", "write_bytes", "torch_save", "umask_mode", "load_error_summary"]


def load_error_summary(error: BaseException) -> str:
    """One line saying why ``torch.load(..., weights_only=True)`` refused a file (torch's own
    message runs to a dozen lines and suggests ``weights_only=False``, which prunekit never uses)."""
    text = str(error)
    if "Weights only load failed" in text:
        return "it holds objects other than tensors and plain data, which prunekit never unpickles"
    first = next((line.strip() for line in text.splitlines() if line.strip()), type(error).__name__)
    return f"{type(error).__name__}: {first[:200]}"


def umask_mode(*, folder: bool = False) -> int:
    """The mode ``open()`` / ``mkdir()`` would give a new file or folder under the current umask
    (``mkstemp`` and ``mkdtemp`` use 0600 / 0700, which would hide outputs from the group)."""
    mask = os.umask(0)
    os.umask(mask)
    return (0o777 if folder else 0o666) & ~mask


def atomic_write(path: str | os.PathLike[str], writer: Callable[[IO[bytes]], Any]) -> Path:
    """Calls ``writer(f)`` on a temp binary file next to ``path``, then renames it onto ``path``."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        os.chmod(tmp, umask_mode())
        with os.fdopen(fd, "wb") as f:
            writer(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Writes ``data`` to ``path`` atomically."""
    return atomic_write(path, lambda f: f.write(data))


def write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Writes ``text`` (UTF-8) to ``path`` atomically."""
    return write_bytes(path, text.encode("utf-8"))


def torch_save(obj: object, path: str | os.PathLike[str]) -> Path:
    """``torch.save`` to ``path`` atomically (load it back with ``weights_only=True``)."""
    import torch

    buf = io.BytesIO()
    torch.save(obj, buf)
    return write_bytes(path, buf.getvalue())
