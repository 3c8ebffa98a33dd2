from __future__ import annotations

import pytest

from dashboard.dispatch.engine import Dispatcher
from dashboard.dispatch.ledger_adapter import grants_ledger
from tests.api.live import mp_overrides


@pytest.fixture
def config_overrides(sandbox):
    return mp_overrides(sandbox)


@pytest.fixture
def dispatcher(app):
    dispatcher = Dispatcher(app, grants_ledger(), concurrency=8, lease_seconds=60)
    yield dispatcher
    dispatcher.close()


@pytest.fixture
def template(sandbox):
    return sandbox.templates(2)[0]


@pytest.fixture
def long_term_template(sandbox):
    return sandbox.templates(3)[0]
