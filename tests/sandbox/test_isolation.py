"""The sandbox must judge with its own code (style.md): it imports nothing else from ``dashboard``."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import dashboard.sandbox

ALLOWED_TOP_LEVEL = {"flask", "werkzeug", "cryptography", "requests", "click"}


def test_sandbox_imports_only_itself_the_stdlib_and_its_allowed_libraries() -> None:
    package_dir = Path(dashboard.sandbox.__file__).parent
    for path in package_dir.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top == "dashboard":
                    assert name.startswith("dashboard.sandbox"), f"{path.name} imports {name}"
                else:
                    assert top in sys.stdlib_module_names or top in ALLOWED_TOP_LEVEL, (
                        f"{path.name} imports {name}"
                    )
