"""Campaign tests run the dispatch engine against the sandbox with the dispatch tests' own fixtures."""

from __future__ import annotations

import pytest

from tests.campaigns.helpers import granted_users, segment_of_grantees
from tests.dispatch.conftest import config_overrides, dispatcher, template  # noqa: F401 (fixtures)


@pytest.fixture
def sandbox_config(request):
    return getattr(request, "param", {"USERS": 60})


@pytest.fixture
def key(runner):
    """The Authorization header of an API key with the campaigns scope."""
    result = runner.invoke(args=["create-api-key", "marketing", "--scope", "campaigns"])
    return {"Authorization": f"Bearer {result.output.strip().splitlines()[-1]}"}


@pytest.fixture
def audience(app, sandbox, template):  # noqa: F811 (template: the fixture imported above)
    """A segment of six users who accepted ``template`` once, and their openids."""
    openids = sandbox.openids_all()[:6]
    granted_users(app, sandbox, template, openids)
    return segment_of_grantees(app, template), openids
