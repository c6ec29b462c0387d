"""Imports run downwards: errors -> channels -> rules -> graph, with no private cross-folder import."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import prunekit

ROOT = Path(prunekit.__file__).parent
# what each folder of the tracing stack may import from prunekit (besides itself)
ALLOWED = {
    "channels": {"errors"},
    "rules": {"errors", "channels"},
    "graph": {"errors", "channels", "rules", "inputs"},
}


def prunekit_imports(path: Path) -> list[tuple[int, str, list[str]]]:
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("prunekit"):
            out.append((node.lineno, node.module, [a.name for a in node.names]))
        elif isinstance(node, ast.Import):
            out.extend((node.lineno, a.name, []) for a in node.names if a.name.startswith("prunekit"))
    return out


@pytest.mark.parametrize("folder", sorted(ALLOWED))
def test_folder_imports_only_lower_layers(folder):
    bad = []
    for path in sorted((ROOT / folder).rglob("*.py")):
        for line, module, names in prunekit_imports(path):
            parts = module.split(".")
            top = parts[1] if len(parts) > 1 else ""
            if top != folder and top not in ALLOWED[folder]:
                bad.append(f"{path.relative_to(ROOT)}:{line} imports {module}")
            if top != folder and (any(p.startswith("_") for p in parts) or any(n.startswith("_") for n in names)):
                bad.append(f"{path.relative_to(ROOT)}:{line} imports a private name from {module}")
    assert not bad, "\n".join(bad)


def test_builtin_op_rule_families_do_not_import_the_dispatcher():
    ops = ROOT / "graph" / "ops"
    for path in ops.glob("*.py"):
        if path.name in ("dispatch.py", "__init__.py"):
            continue
        modules = {m for _, m, _ in prunekit_imports(path)}
        assert "prunekit.graph.ops.dispatch" not in modules and "prunekit.graph.ops" not in modules, path.name


def test_no_module_or_function_too_long():
    for folder in ALLOWED:
        for path in (ROOT / folder).rglob("*.py"):
            text = path.read_text()
            assert text.count("\n") <= 500, path
            for node in ast.walk(ast.parse(text)):
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    assert node.end_lineno - node.lineno < 80, f"{path}:{node.lineno} {node.name}"
