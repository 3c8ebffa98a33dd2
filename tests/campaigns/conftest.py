from __future__ import annotations

import pytest

from dashboard.dispatch.engine import Dispatcher
from dashboard.dispatch.ledger_adapter import grants_ledger


@pytest.fixture
def config_overrides(sandbox):
    return {"WECHAT_APPID": sandbox.appid, "WECHAT_SECRET": sandbox.secret, "WECHAT_API_BASE": sandbox.url}


@pytest.fixture
def dispatcher(app):
    dispatcher = Dispatcher(app, grants_ledger(), concurrency=8, lease_seconds=60)
    yield dispatcher
    dispatcher.close()


@pytest.fixture
def template(sandbox):
    return sandbox.templates(2)[0]


@pytest.fixture
def sandbox_config(request):
    return getattr(request, "param", {"USERS": 60})
