"""What a module imports, read from its source with ``ast`` (nothing is executed).

Relative imports are resolved against the module's package, so ``from ..wechat.keywords import x`` in
``dashboard/sandbox/api.py`` counts as ``dashboard.wechat.keywords.x``. Imports inside functions count
too. The layering tests (tests/sandbox/test_isolation.py, tests/dispatch/test_layering.py) use it.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Iterator
from pathlib import Path

import dashboard

PACKAGE_DIR = Path(dashboard.__file__).resolve().parent
ROOT = PACKAGE_DIR.parent


def module_name(path: Path) -> str:
    """``dashboard/sandbox/api.py`` → ``dashboard.sandbox.api``; a package's ``__init__.py`` → the package."""
    parts = list(path.resolve().relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_names(source: str, module: str, *, is_package: bool = False) -> list[str]:
    """Every dotted name ``source`` imports, absolute. ``from a.b import c`` gives ``a.b.c`` (``c`` may be
    a module or a name in ``a.b``; callers that care resolve it against the modules that exist).

    :raise ImportError: a relative import climbing above the top-level package.
    """
    package = module if is_package else module.rpartition(".")[0]
    names: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(node, package, module)
            names.extend(base if alias.name == "*" else f"{base}.{alias.name}" for alias in node.names)
    return names


def _absolute(node: ast.ImportFrom, package: str, module: str) -> str:
    if node.level == 0:
        return node.module or ""
    parts = package.split(".") if package else []
    if node.level - 1 >= len(parts):
        raise ImportError(f"{module}: relative import beyond the top-level package (level {node.level})")
    base = parts[: len(parts) - (node.level - 1)]
    return ".".join([*base, *([node.module] if node.module else [])])


def modules_under(package_dir: Path) -> Iterator[tuple[str, Path]]:
    for path in sorted(package_dir.rglob("*.py")):
        yield module_name(path), path


def imports_of(path: Path) -> list[str]:
    return imported_names(
        path.read_text(encoding="utf-8"), module_name(path), is_package=path.name == "__init__.py"
    )


def dashboard_graph() -> dict[str, set[str]]:
    """Module → the ``dashboard`` modules it imports directly (a name is resolved to the longest module
    it starts with: ``dashboard.models.Delivery`` → ``dashboard.models``)."""
    paths = dict(modules_under(PACKAGE_DIR))
    return {module: resolve(imports_of(path), paths) - {module} for module, path in paths.items()}


def resolve(names: Iterable[str], modules: Iterable[str]) -> set[str]:
    """The modules among ``modules`` that ``names`` point at (each name's longest module prefix)."""
    known = set(modules)
    found = set()
    for name in names:
        parts = name.split(".")
        for end in range(len(parts), 0, -1):
            candidate = ".".join(parts[:end])
            if candidate in known:
                found.add(candidate)
                break
    return found


def reachable(graph: dict[str, set[str]], start: str) -> dict[str, list[str]]:
    """Every module ``start`` imports, directly or through others, with one import chain to it."""
    chains: dict[str, list[str]] = {start: [start]}
    queue = [start]
    while queue:
        current = queue.pop(0)
        for target in sorted(graph.get(current, ())):
            if target not in chains:
                chains[target] = [*chains[current], target]
                queue.append(target)
    chains.pop(start)
    return chains
