"""Fixtures for the WeChat client tests: a real sandbox on loopback and an app pointed at it.

Nothing here mocks ``requests``: every call crosses a real socket to ``dashboard.sandbox``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from dashboard.wechat import get_client
from dashboard.wechat.client import WeChatClient
from tests.api.live import mp_overrides


@pytest.fixture
def config_overrides(sandbox) -> dict[str, Any]:
    return mp_overrides(sandbox)


@pytest.fixture
def wechat(app) -> Iterator[WeChatClient]:
    """The app's client, wired to the token service on the app's database."""
    client = get_client(app)
    yield client
    client.close()


@pytest.fixture
def redis_url() -> str:
    url = os.environ.get("REDIS_URL")
    if not url:
        pytest.skip("REDIS_URL is not set: Redis token-store tests skipped")
    return url
