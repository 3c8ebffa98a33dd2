"""The engine knows no pages: ``dashboard.dispatch`` imports nothing from the catalog, the deliveries
service, the HTTP APIs or any views, neither directly nor through another module it imports.

Checking a send request (the catalog, keyword values, creating a delivery) is the deliveries service's
job (``dashboard.deliveries.send_requests``); the engine only sends what is due.
"""

from __future__ import annotations

import pytest

from tests.import_graph import (
    PACKAGE_DIR,
    dashboard_graph,
    imported_names,
    modules_under,
    reachable,
    resolve,
)

FORBIDDEN_PACKAGES = ("dashboard.catalog", "dashboard.deliveries", "dashboard.api")


def forbidden(module: str) -> bool:
    """A module the dispatch engine must not depend on."""
    in_package = any(module == p or module.startswith(p + ".") for p in FORBIDDEN_PACKAGES)
    return in_package or module.split(".")[-1] == "views"


def test_no_dispatch_module_reaches_the_catalog_deliveries_api_or_views() -> None:
    graph = dashboard_graph()
    dispatch = [module for module, _ in modules_under(PACKAGE_DIR / "dispatch")]
    assert "dashboard.dispatch.engine" in dispatch and "dashboard.dispatch.claim" in dispatch
    problems = [
        " → ".join(chain)
        for module in dispatch
        for target, chain in reachable(graph, module).items()
        if forbidden(target)
    ]
    assert problems == []


@pytest.mark.parametrize(
    "source,reaches",
    [
        ("from ..catalog.services import template_usable\n", True),
        ("from ..deliveries import services\n", True),
        ("from ..audience.views import bp\n", True),
        ("def later():\n    from ..api.v1 import bp\n", True),
        ("from ..grants.ledger import GrantLedger\nfrom .outcomes import decide\n", False),
    ],
)
def test_the_check_sees_relative_imports_and_imports_inside_functions(source, reaches) -> None:
    graph = dashboard_graph()
    graph["dashboard.dispatch.synthetic"] = resolve(
        imported_names(source, "dashboard.dispatch.synthetic"), graph
    )
    found = [t for t in reachable(graph, "dashboard.dispatch.synthetic") if forbidden(t)]
    assert bool(found) is reaches, found
