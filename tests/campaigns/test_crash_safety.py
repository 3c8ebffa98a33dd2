"""A campaign whose workers are SIGKILLed mid-run and restarted messages nobody twice, and completes.

Real `flask worker` processes (tests/dispatch/test_crash_safety.py shows the engine alone), a campaign
launched through the service (a segment snapshot), the sandbox, a real database.
"""

from __future__ import annotations

import collections
import time

import pytest

from dashboard.campaigns import services
from dashboard.dispatch.claim import load_dispatch_state
from dashboard.dispatch.engine import Dispatcher
from dashboard.dispatch.finalize import reconcile_expired_leases
from dashboard.dispatch.ledger_adapter import grants_ledger
from dashboard.dispatch.write_lock import write_transaction
from dashboard.extensions import db
from dashboard.models.campaign import CampaignState
from tests.campaigns.helpers import campaign, campaign_states, prepared_campaign
from tests.dispatch.test_crash_safety import LEASE_SECONDS, kill, start_workers, worker_env

RECIPIENTS = 400


@pytest.fixture
def sandbox_config():
    return {"USERS": RECIPIENTS, "LATENCY_MS": 60}


def test_killed_workers_mid_campaign_message_nobody_twice(
    app, backend, database_url, sandbox, template, tmp_path
):
    campaign_id, openids = prepared_campaign(app, sandbox, template, RECIPIENTS)
    with app.app_context():
        with write_transaction(db.engine) as session:
            load_dispatch_state(session).concurrency = 8
        services.launch(campaign_id)
    env = worker_env(database_url, sandbox, tmp_path)
    progress = [0]
    for _ in range(2):
        workers = start_workers(1 if backend == "sqlite" else 2, env)
        deadline = time.monotonic() + 60
        while (
            campaign_states(app, campaign_id).get("sent", 0) < progress[-1] + 40
            and time.monotonic() < deadline
        ):
            time.sleep(0.05)
        kill(workers)
        progress.append(campaign_states(app, campaign_id).get("sent", 0))
    assert progress[0] < progress[1] < progress[2] < RECIPIENTS, progress

    time.sleep(LEASE_SECONDS + 0.5)
    with app.app_context():
        reconcile_expired_leases(db.engine, grants_ledger())
    dispatcher = Dispatcher(app, grants_ledger(), concurrency=16)
    try:
        dispatcher.drain(60)
    finally:
        dispatcher.close()
    with app.app_context():
        services.supervise()
    counts = campaign_states(app, campaign_id)
    assert set(counts) <= {"sent", "unknown"} and sum(counts.values()) == RECIPIENTS, counts
    assert campaign(app, campaign_id).state == CampaignState.completed

    delivered = collections.Counter(m["openid"] for m in sandbox.messages_all() if m["errcode"] == 0)
    assert max(delivered.values()) == 1 and set(delivered) <= set(openids)
    assert len(delivered) >= counts["sent"]
