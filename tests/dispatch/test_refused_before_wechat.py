"""A campaign behind a wrong WECHAT_API_BASE or a refusing proxy keeps its credits and its users.

The proxy here is a real HTTP server on loopback: it hands out an access token (or refuses that too)
and answers every send with a 403 or 407 of its own. WeChat never saw those sends, so the engine must
not call them ``unknown`` (which spends the credit and never sends again): they wait to be retried with
their credits released, and an admin sees ``config`` as the reason.
"""

from __future__ import annotations

import json
import threading

import pytest
import sqlalchemy as sa
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from dashboard.dispatch.engine import Dispatcher
from dashboard.dispatch.ledger_adapter import grants_ledger
from dashboard.extensions import db
from dashboard.models import Delivery, DeliveryState
from dashboard.wechat.protocol import SEND_PATH
from tests.dispatch.helpers import add_delivery, add_user, balance, grant, ledger_statuses, register

TEMPLATE = {
    "priTmplId": "tmpl-behind-proxy",
    "title": "订单发货提醒",
    "type": 2,
    "content": "商品名称:{{thing2.DATA}}\n",
    "example": "商品名称:咖啡豆\n",
}
USERS = 5


class RefusingProxy:
    """Answers token requests (or refuses them too) and refuses every send with ``status``."""

    def __init__(self, status: str, *, refuse_tokens: bool = False) -> None:
        self.status = status
        self.refuse_tokens = refuse_tokens
        self.sends = 0
        self.server = make_server("127.0.0.1", 0, self, threaded=True)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}"

    def __call__(self, environ, start_response):
        request = Request(environ)
        request.get_data()
        if request.path == "/cgi-bin/stable_token" and not self.refuse_tokens:
            body = json.dumps({"access_token": "token-from-the-proxy-test", "expires_in": 7200})
            return Response(body, mimetype="application/json")(environ, start_response)
        if request.path == SEND_PATH:
            self.sends += 1
        headers = {"Proxy-Authenticate": 'Basic realm="corp"'} if self.status.startswith("407") else {}
        response = Response("<html>refused by the proxy</html>", status=self.status, headers=headers)
        return response(environ, start_response)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


@pytest.fixture(params=["403 Forbidden", "407 Proxy Authentication Required", "no token"])
def proxy(request):
    if request.param == "no token":
        server = RefusingProxy("403 Forbidden", refuse_tokens=True)
    else:
        server = RefusingProxy(request.param)
    yield server
    server.close()


@pytest.fixture
def config_overrides(proxy):
    return {
        "WECHAT_APPID": "wx-behind-proxy",
        "WECHAT_SECRET": "secret-behind-proxy",
        "WECHAT_API_BASE": proxy.url,
    }


def test_a_campaign_refused_before_wechat_waits_with_its_credits_back(app, proxy):
    with app.app_context():
        register(TEMPLATE)
        openids = [f"o-proxy-user-{i}" for i in range(USERS)]
        for openid in openids:
            grant(add_user(openid), TEMPLATE["priTmplId"])
            add_delivery(openid, TEMPLATE["priTmplId"], {"thing2": "咖啡豆"})
        db.session.commit()

    dispatcher = Dispatcher(app, grants_ledger(), concurrency=8, lease_seconds=60)
    try:
        dispatcher.run_once()
    finally:
        dispatcher.close()

    with app.app_context():
        rows = db.session.execute(
            sa.select(Delivery.id, Delivery.state, Delivery.reason, Delivery.errmsg)
        ).all()
    assert {(row.state, row.reason) for row in rows} == {(DeliveryState.retry_wait, "config")}, rows
    for openid in openids:
        assert balance(app, openid, TEMPLATE["priTmplId"])[0] == 1
    for row in rows:
        assert ledger_statuses(app, row.id) == ["released"]
        assert "token-from-the-proxy-test" not in row.errmsg and "secret-behind-proxy" not in row.errmsg
    # Each send went out once at most; with no token, none did.
    assert proxy.sends == (0 if proxy.refuse_tokens else USERS)
