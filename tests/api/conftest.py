import pytest

from tests.api.live import sandbox_overrides  # noqa: F401 - fixture


@pytest.fixture
def config_overrides(sandbox):
    return sandbox_overrides(sandbox)
