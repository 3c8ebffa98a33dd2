"""static/tongzhi-mp.js, run by Node with a stand-in ``wx`` that talks to the sandbox and a live Tongzhi."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from dashboard.deliveries.opens import count_opens
from dashboard.extensions import db
from dashboard.models import Delivery
from tests.api.test_opens import CAMPAIGN, add_campaign_delivery

DRIVER = Path(__file__).with_name("mp_helper_driver.js")


@pytest.fixture
def backend():
    return "sqlite"  # the helper's behaviour does not depend on the database


def test_the_helper_logs_in_requests_reports_and_reads_balances(live_server, sandbox):
    node = shutil.which("node")
    if node is None:
        pytest.skip("no node on this machine: the mini-program helper is not exercised")
    openid = sandbox.openids()[0]
    accept, reject = [t["priTmplId"] for t in sandbox.templates(2)[:2]]
    answers = {accept: "accept", reject: "reject"}
    run = subprocess.run(
        [node, str(DRIVER), live_server, sandbox.url, openid, json.dumps(answers)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout)
    assert set(out["login"]) == {"token", "expires_in"}
    assert out["reported"]["result"] == {"errMsg": "requestSubscribeMessage:ok", **answers}
    balances = {g["template_id"]: g["credits"] for g in out["balances"]}
    assert balances == {accept: 1, reject: 0}
    assert out["settings"] == {"main_switch": True, "item_settings": {}}
    # A stale token in storage: the helper logs in again by itself and carries on.
    assert {g["template_id"] for g in out["afterForgedToken"]} == {accept, reject}
    report = next(r for r in out["requests"] if r["method"] == "POST" and r["url"] == "/api/mp/grants")
    assert report["idempotencyKey"]


def test_report_open_is_one_line_in_onload_and_counts_once(app, live_server, sandbox):
    """``tongzhi.reportOpen(query)`` from a page's onLoad: the tz of a campaign message's page is reported
    (logging in first), a repeat counts once, a query without tz sends nothing, and another user's token
    is not counted (false, never a rejection that would disturb the page)."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("no node on this machine: the mini-program helper is not exercised")
    openid, other = sandbox.openids()[:2]
    template = sandbox.templates(2)[0]["priTmplId"]
    with app.app_context():
        mine_id, mine = add_campaign_delivery(openid)
        theirs_id, theirs = add_campaign_delivery(other)
        db.session.commit()
    queries = [{"id": "42", "tz": mine}, {"id": "42", "tz": mine}, {"id": "42"}, {"tz": theirs}]
    run = subprocess.run(
        [
            node,
            str(DRIVER),
            live_server,
            sandbox.url,
            openid,
            json.dumps({template: "accept"}),
            json.dumps(queries),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout)
    assert out["opens"] == [True, True, None, False]
    reports = [r for r in out["requests"] if r["url"] == "/api/mp/opens"]
    assert [r["data"] for r in reports] == [{"tz": mine}, {"tz": mine}, {"tz": theirs}]
    with app.app_context():
        assert db.session.get(Delivery, mine_id).opened_at is not None
        assert db.session.get(Delivery, theirs_id).opened_at is None
        assert count_opens(CAMPAIGN) == 1
