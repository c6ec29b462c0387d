"""The architecture contract, checked on every test run.

* imports run downwards: the layers in ``pyproject.toml`` (``[tool.importlinter]``), checked by
  import-linter;
* no module imports a ``_private`` name, or a ``_private`` module, of another folder, and none
  imports the ``prunekit`` facade back;
* ``import prunekit`` stays light: no torchvision, yaml, matplotlib or onnx;
* no module over 500 lines, no function over 80.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "prunekit"


def _modules() -> list[tuple[str, ast.Module, int]]:
    out = []
    for path in sorted(PACKAGE.rglob("*.py")):
        name = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts).removesuffix(".__init__")
        text = path.read_text()
        out.append((name, ast.parse(text), len(text.splitlines())))
    return out


def _folder(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 2 else module  # a top-level module is its own folder


def test_layers_hold():
    importlinter = pytest.importorskip("importlinter")
    assert importlinter
    result = subprocess.run(
        [sys.executable, "-c", "import sys; from importlinter.cli import lint_imports; sys.exit(lint_imports())"],
        cwd=PACKAGE.parent,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]


def test_no_private_names_cross_folders_and_no_facade_imports():
    problems = []
    for name, tree, _ in _modules():
        for node in ast.walk(tree):
            if not isinstance(node, ast.ImportFrom) or not node.module or not node.module.startswith("prunekit"):
                continue
            if node.module == "prunekit" and name != "prunekit":
                problems.append(f"{name} imports the prunekit facade")
                continue
            private_module = any(p.startswith("_") for p in node.module.split(".")[1:])
            same_folder = _folder(node.module) == _folder(name)
            if private_module and not same_folder:
                problems.append(f"{name} imports the private module {node.module}")
            for alias in node.names:
                private_name = alias.name.startswith("_") and not alias.name.startswith("__")
                if private_name and node.module != name and not (same_folder and private_module):
                    problems.append(f"{name} imports the private name {node.module}.{alias.name}")
        for node in ast.walk(tree):
            if isinstance(node, ast.Import) and any(a.name == "prunekit" for a in node.names) and name != "prunekit":
                problems.append(f"{name} imports the prunekit facade")
    assert not problems, "\n".join(problems)


def test_import_prunekit_is_light():
    code = (
        "import sys, prunekit\n"
        "heavy = [m for m in ('torchvision', 'yaml', 'matplotlib', 'onnx', 'onnxruntime') if m in sys.modules]\n"
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "", f"import prunekit loads {out}"


def test_module_and_function_sizes():
    too_long = []
    for name, tree, lines in _modules():
        if lines > 500:
            too_long.append(f"{name}: {lines} lines")
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1  # type: ignore[operator]
                if length > 80:
                    too_long.append(f"{name}.{node.name}: {length} lines")
    assert not too_long, "\n".join(too_long)


@pytest.mark.parametrize(
    "old, new",
    [
        ("prunekit.config.load_recipe", "prunekit.recipes.load_recipe"),
        ("prunekit.config.recipe_from_options", "prunekit.recipes.recipe_from_options"),
        ("prunekit.config.parse_distiller", "prunekit.compat.distiller.parse_distiller"),
        ("prunekit.schedules.ScheduleRecipe", "prunekit.recipes.ScheduleRecipe"),
        ("prunekit.schedules.DistillerRecipe", "prunekit.compat.distiller.DistillerRecipe"),
    ],
)
def test_names_that_moved_up_a_layer_still_import_with_a_deprecation_warning(old, new):
    import importlib

    old_module, _, name = old.rpartition(".")
    new_module, _, _ = new.rpartition(".")
    with pytest.warns(DeprecationWarning, match=new.replace(".", r"\.")):
        value = getattr(importlib.import_module(old_module), name)
    assert value is getattr(importlib.import_module(new_module), name)
