"""What every reliability test checks after a refused input: nothing changed.

``snapshot(model)`` records every tensor (parameters, buffers, parametrization originals), every
module's own ``training`` flag and every module's type; ``snapshot_files(root)`` every file and
folder under ``root`` with its bytes and permission bits.
"""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path
from typing import Any

import torch
from torch import nn

Snapshot = tuple[dict[str, torch.Tensor], dict[str, bool], dict[str, type]]


def snapshot(model: nn.Module) -> Snapshot:
    tensors = {k: v.detach().clone() for k, v in model.state_dict().items()}
    flags = {name: m.training for name, m in model.named_modules()}
    types = {name: type(m) for name, m in model.named_modules()}
    return tensors, flags, types


def assert_unchanged(model: nn.Module, before: Snapshot) -> None:
    tensors, flags, types = before
    after_tensors, after_flags, after_types = snapshot(model)
    assert after_types == types, "module types changed"
    assert after_flags == flags, "a module's train/eval flag changed"
    assert after_tensors.keys() == tensors.keys()
    for key, value in tensors.items():
        got = after_tensors[key]
        if value.is_meta:  # no values to compare
            assert got.is_meta and got.shape == value.shape, f"{key} changed"
            continue
        assert got.shape == value.shape and torch.equal(got.nan_to_num(), value.nan_to_num()), f"{key} changed"
        assert torch.equal(got.isnan(), value.isnan()), f"{key} changed"


def snapshot_files(root: Path) -> dict[str, Any]:
    """``{relative path: (kind, mode bits, sha256 of the bytes)}`` of everything under ``root``."""
    out: dict[str, Any] = {}
    if not root.exists():
        return out
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            st = path.lstat()
            digest = hashlib.sha256(path.read_bytes()).hexdigest() if stat.S_ISREG(st.st_mode) else ""
            out[str(path.relative_to(root))] = (stat.S_IFMT(st.st_mode), stat.S_IMODE(st.st_mode), digest)
    return out


def assert_one_line(message: str, *culprits: str) -> None:
    """The message is a single line and names one of ``culprits``."""
    text = message.strip()
    assert text and "\n" not in text, f"not one line: {text!r}"
    assert "Traceback" not in text
    assert any(c in text for c in culprits), f"none of {culprits} in: {text}"
