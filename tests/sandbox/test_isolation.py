"""The sandbox must judge with its own code (style.md): it imports nothing else from ``dashboard``.

Absolute and relative imports alike (``from ..wechat.keywords import ...`` is ``dashboard.wechat``), at
module level or inside a function.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

import dashboard.sandbox
from tests.import_graph import PACKAGE_DIR, imported_names, module_name, modules_under

ALLOWED_TOP_LEVEL = {"flask", "werkzeug", "cryptography", "requests", "click"}
SANDBOX_DIR = PACKAGE_DIR / "sandbox"


def violations(source: str, module: str, *, is_package: bool = False) -> list[str]:
    """The names ``source`` (the text of ``module``) imports that the sandbox may not."""
    found = []
    for name in imported_names(source, module, is_package=is_package):
        top = name.split(".")[0]
        if top == "dashboard":
            if name != "dashboard.sandbox" and not name.startswith("dashboard.sandbox."):
                found.append(name)
        elif top not in sys.stdlib_module_names and top not in ALLOWED_TOP_LEVEL:
            found.append(name)
    return found


def test_sandbox_imports_only_itself_the_stdlib_and_its_allowed_libraries() -> None:
    assert Path(dashboard.sandbox.__file__).resolve().parent == SANDBOX_DIR
    checked = 0
    for module, path in modules_under(SANDBOX_DIR):
        source = path.read_text(encoding="utf-8")
        assert violations(source, module, is_package=path.name == "__init__.py") == [], path.name
        checked += 1
    assert checked > 10  # the walk found the sandbox's files


@pytest.mark.parametrize(
    "source,expected",
    [
        ("from ..wechat.keywords import parse_content\n", ["dashboard.wechat.keywords.parse_content"]),
        ("from .. import wechat\n", ["dashboard.wechat"]),
        ("from ...dashboard.wechat import client\n", None),  # climbs above the package: refused
        ("def f():\n    from ..grants import ledger\n", ["dashboard.grants.ledger"]),
        ("import dashboard.catalog.services\n", ["dashboard.catalog.services"]),
        ("from dashboard import catalog\n", ["dashboard.catalog"]),
        ("import sqlalchemy\n", ["sqlalchemy"]),
        ("from .state import SandboxState\nfrom . import rules\nimport json\n", []),
        ("from dashboard.sandbox.push import Event\nfrom flask import Flask\n", []),
    ],
)
def test_the_check_catches_relative_and_absolute_imports_from_outside(source, expected) -> None:
    module = module_name(SANDBOX_DIR / "api.py")
    assert module == "dashboard.sandbox.api"
    if expected is None:
        with pytest.raises(ImportError):
            violations(source, module)
    else:
        assert violations(source, module) == expected


def test_a_package_file_resolves_relative_imports_against_itself() -> None:
    assert violations("from .state import X\n", "dashboard.sandbox", is_package=True) == []
    assert violations("from ..wechat import client\n", "dashboard.sandbox", is_package=True) == [
        "dashboard.wechat.client"
    ]
