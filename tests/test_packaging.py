"""Packaging: ``import prunekit`` stays light, and the version lives in one place.

The import check runs in a fresh interpreter: inside pytest, other tests (and plugins) may
already have imported matplotlib, so ``sys.modules`` here says nothing about prunekit.
"""

import subprocess
import sys
from pathlib import Path

import pytest

import prunekit

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    tomllib = pytest.importorskip("tomli")

ROOT = Path(__file__).resolve().parent.parent


def test_import_does_not_pull_in_matplotlib():
    code = "import prunekit, sys; assert 'matplotlib' not in sys.modules, 'matplotlib was imported'"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert done.returncode == 0, done.stderr


def test_version_is_read_from_the_package():
    with open(ROOT / "pyproject.toml", "rb") as f:
        pyproject = tomllib.load(f)
    assert "version" in pyproject["project"]["dynamic"]
    assert "version" not in pyproject["project"]
    attr = pyproject["tool"]["setuptools"]["dynamic"]["version"]["attr"]
    assert attr == "prunekit.__version__"
    assert isinstance(prunekit.__version__, str) and prunekit.__version__


def test_installed_metadata_matches_the_package():
    # The version pip recorded (``pip install -e .``) must be the one in prunekit/__init__.py; a
    # mismatch means the install is stale (re-run ``make install``).
    from importlib.metadata import PackageNotFoundError, version

    try:
        installed = version("prunekit")
    except PackageNotFoundError:
        pytest.skip("prunekit is not installed (running from a bare source tree)")
    assert installed == prunekit.__version__
