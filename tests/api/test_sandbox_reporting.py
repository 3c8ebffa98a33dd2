"""A person tapping 允许 on the sandbox's page reaches Tongzhi's ledger through /api/mp/ as a real
mini-program would (the sandbox's reporting hook), and through the popup event, counted once."""

from __future__ import annotations

import requests
from sqlalchemy import select

from dashboard.extensions import db
from dashboard.models.grants import GrantEvent
from tests.api.live import AES_KEY, PUSH_TOKEN


def test_tapping_accept_on_the_sandbox_page_credits_once(app, live_server, sandbox):
    sandbox.server.state.config["MP_API_BASE"] = f"{live_server}/api/mp"
    sandbox.post(
        "/push-config",
        {
            "PUSH_URL": f"{live_server}/wechat/push",
            "PUSH_TOKEN": PUSH_TOKEN,
            "PUSH_MODE": "secure",  # the app has an EncodingAESKey: secure mode only
            "PUSH_AES_KEY": AES_KEY,
        },
    )
    openid = sandbox.openids()[0]
    template_id = sandbox.templates(2)[0]["priTmplId"]
    for _ in range(2):
        page = requests.post(
            f"{sandbox.url}/sandbox/users/{openid}/answer",
            data={"template_id": template_id, "status": "accept"},
            allow_redirects=False,
            timeout=10,
        )
        assert page.status_code == 302
    sandbox.get("/pushes", wait=1)
    with app.app_context():
        events = db.session.scalars(select(GrantEvent).order_by(GrantEvent.id)).all()
        sources = [e.source for e in events]
        assert sources.count("client") == 2
        # Two identical popup events in one second look like one event and its retry (the documented
        # de-dup key is FromUserName + CreateTime): the second may be dropped. The credit is still
        # right, because the client report of the second tap finds no event to pair with.
        assert sources.count("popup_event") in (1, 2)
        assert sum(e.credit_delta for e in events) == 2
    # The sandbox logged in once and reused its token for the second tap.
    assert sum(1 for e in events if e.source == "client" and e.report_id) == 2


def test_without_mp_api_base_the_hook_does_nothing(app, live_server, sandbox):
    openid = sandbox.openids()[0]
    sandbox.post(f"/users/{openid}/prompt", {"templates": {sandbox.templates(2)[0]["priTmplId"]: "accept"}})
    with app.app_context():
        assert db.session.scalars(select(GrantEvent)).all() == []
