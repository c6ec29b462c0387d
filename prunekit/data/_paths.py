"""Where datasets are looked for: shared by the Fashion-MNIST and CIFAR readers."""

from __future__ import annotations

import os
from pathlib import Path

DATA_ENV_VAR = "PRUNEKIT_DATA"
CACHE_DIR = Path("~/.cache/prunekit")


def explicit_dirs(root: str | os.PathLike[str] | None) -> list[tuple[Path, str]]:
    """The directories the user named, as ``(path, where)``: ``root``, else ``$PRUNEKIT_DATA``.

    At most one is returned: an explicit choice must not silently fall through to another place.
    """
    if root is not None:
        return [(Path(root).expanduser(), "root")]
    env = os.environ.get(DATA_ENV_VAR)
    if env:
        return [(Path(env).expanduser(), f"${DATA_ENV_VAR}")]
    return []


def cache_dir() -> Path:
    return CACHE_DIR.expanduser()
