"""``check_device``: a ``--device`` string checked before anything runs on it."""

from __future__ import annotations

import torch

from prunekit.errors import option_error

__all__ = ["check_device"]


def check_device(device: str | None) -> torch.device | None:
    """``device`` as a :class:`torch.device` (``None`` stays ``None``: pick CUDA when available).

    Raises:
        ConfigError: not "cpu", "cuda" or "cuda:N", or CUDA asked for where there is none.
    """
    if device is None:
        return None
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        dev = None
    if dev is None or dev.type not in ("cpu", "cuda"):
        raise option_error("device", f"must be cpu, cuda or cuda:N, but got {device!r}")
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise option_error("device", f"{device!r} was asked for, but this machine has no usable CUDA GPU")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise option_error("device", f"{device!r}, but this machine has {torch.cuda.device_count()} CUDA device(s)")
    return dev
