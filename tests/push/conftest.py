import pytest

from tests.api.live import live_server, sandbox_overrides  # noqa: F401 - fixtures


@pytest.fixture
def config_overrides(sandbox):
    return sandbox_overrides(sandbox)
