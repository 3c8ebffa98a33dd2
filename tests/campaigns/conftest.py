"""Campaign tests run the dispatch engine against the sandbox with the dispatch tests' own fixtures."""

from __future__ import annotations

import pytest

from tests.dispatch.conftest import config_overrides, dispatcher, template  # noqa: F401 (fixtures)


@pytest.fixture
def sandbox_config(request):
    return getattr(request, "param", {"USERS": 60})
