"""The op-rule families do not import the dispatcher (the layer contract of the whole package,
sizes and private imports are checked by ``tests/test_architecture.py``)."""

from __future__ import annotations

import ast
from pathlib import Path

import prunekit

ROOT = Path(prunekit.__file__).parent


def prunekit_imports(path: Path) -> list[tuple[int, str, list[str]]]:
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("prunekit"):
            out.append((node.lineno, node.module, [a.name for a in node.names]))
        elif isinstance(node, ast.Import):
            out.extend((node.lineno, a.name, []) for a in node.names if a.name.startswith("prunekit"))
    return out


def test_builtin_op_rule_families_do_not_import_the_dispatcher():
    ops = ROOT / "graph" / "ops"
    for path in ops.glob("*.py"):
        if path.name in ("dispatch.py", "__init__.py"):
            continue
        modules = {m for _, m, _ in prunekit_imports(path)}
        assert "prunekit.graph.ops.dispatch" not in modules and "prunekit.graph.ops" not in modules, path.name
