"""A lost worker leaves at most the requests it had started ``unknown``: rows claimed ahead and never
started go back to the queue with their credits, and a lost worker that wakes up cannot send them."""

from __future__ import annotations

import collections
import threading
import time
from datetime import timedelta

import pytest
import sqlalchemy as sa

from dashboard.dispatch.claim import claim_due, start_claims
from dashboard.dispatch.engine import Dispatcher
from dashboard.dispatch.finalize import reconcile_expired_leases
from dashboard.dispatch.ledger_adapter import grants_ledger
from dashboard.extensions import db
from dashboard.models import Delivery, DeliveryState, utcnow
from tests.dispatch.helpers import balance, ledger_statuses, prepare, states


def test_rows_claimed_but_never_started_go_back_to_pending_with_their_credit(
    app, sandbox, dispatcher, template
):
    openids = prepare(app, sandbox, 3, template)
    with app.app_context():
        ahead = claim_due(db.engine, dispatcher.ledger, 10, lease_seconds=1, start=False).claims
        started = start_claims(db.engine, ahead[:1], lease_seconds=1)
    assert [c.id for c in started] == [ahead[0].id] and states(app) == {"sending": 3}
    # ...the worker is killed here: one request may have left, two certainly did not.
    with app.app_context():
        lost = reconcile_expired_leases(db.engine, dispatcher.ledger, now=utcnow() + timedelta(seconds=2))
        assert (lost.unknown, lost.requeued) == (1, 2)
        rows = {d.id: d for d in db.session.scalars(sa.select(Delivery))}
        assert rows[ahead[0].id].state == DeliveryState.unknown
        for claim in ahead[1:]:
            assert rows[claim.id].state == DeliveryState.pending and rows[claim.id].lease_until is None
    for claim in ahead[1:]:
        assert ledger_statuses(app, claim.id) == ["released"]
        assert balance(app, claim.openid, template["priTmplId"]) == (1, False)
    # The lost worker wakes up: its claims are no longer its own, so it starts nothing.
    with app.app_context():
        assert start_claims(db.engine, ahead[1:]) == []
    # The queue sends them, with a new attempt, a new reservation and one message each.
    dispatcher.drain(10)
    assert states(app) == {"unknown": 1, "sent": 2}
    for claim in ahead[1:]:
        assert ledger_statuses(app, claim.id) == ["released", "spent"]
    delivered = collections.Counter(m["openid"] for m in sandbox.messages_all() if m["errcode"] == 0)
    assert set(delivered) <= set(openids) and max(delivered.values()) == 1


@pytest.mark.parametrize("sandbox_config", [{"LATENCY_MS": 1500}], indirect=True)
def test_a_lost_pipelined_worker_leaves_only_its_batch_in_flight_unknown(app, sandbox, template):
    """The engine's own pipeline: a batch in flight, the next claimed ahead; the worker stalls past its
    lease (as a killed one would) and the reconciler runs. Before: all four rows became unknown."""
    openids = prepare(app, sandbox, 6, template)
    dispatcher = Dispatcher(app, grants_ledger(), concurrency=2, lease_seconds=60)
    worker = threading.Thread(target=dispatcher.drain, args=(30,))
    worker.start()
    try:
        deadline = time.monotonic() + 10
        while states(app).get("sending", 0) < 4 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert states(app) == {"sending": 4, "pending": 2}  # 2 in flight, 2 claimed ahead
        with app.app_context():
            lost = reconcile_expired_leases(
                db.engine, dispatcher.ledger, now=utcnow() + timedelta(seconds=61)
            )
        assert (lost.unknown, lost.requeued) == (2, 2)
    finally:
        worker.join(30)
        dispatcher.close()
    # The stalled worker's answers for the two in flight are fenced out; the other four are sent once.
    assert states(app) == {"unknown": 2, "sent": 4}
    delivered = collections.Counter(m["openid"] for m in sandbox.messages_all() if m["errcode"] == 0)
    assert sorted(delivered) == sorted(openids) and max(delivered.values()) == 1
