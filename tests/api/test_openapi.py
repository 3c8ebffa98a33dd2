"""The OpenAPI document says what the code does: every documented path, method and status exists and
is produced by a real request; every /api/mp/ route is documented."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from dashboard.api import services as api_services
from tests.api.test_mp_api import OK, T1, bearer, login

HTTP_METHODS = {"GET", "POST", "PUT", "PATCH", "DELETE"}


def documented(client) -> dict[tuple[str, str], set[int]]:
    doc = client.get("/api/mp/openapi.json").get_json()
    assert doc["openapi"].startswith("3.")
    return {
        (path, method.upper()): {int(status) for status in operation["responses"]}
        for path, operations in doc["paths"].items()
        for method, operation in operations.items()
    }


def routed(app) -> set[tuple[str, str]]:
    found = set()
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/api/mp/"):
            path = re.sub(r"<(?:[^:>]+:)?([^>]+)>", r"{\1}", rule.rule)
            found |= {(path, method) for method in rule.methods & HTTP_METHODS}
    return found


def test_every_route_is_documented_and_every_documented_operation_is_routed(app, client):
    assert set(documented(client)) == routed(app)


def make_request(app, client, sandbox, monkeypatch, path, method, status):
    """A real request that should produce ``status`` at ``method path``."""
    url = path.replace("{template_id}", T1)
    needs_token = path not in ("/api/mp/ping", "/api/mp/session", "/api/mp/openapi.json")
    headers = {}
    if needs_token and status not in (401, 403):
        token, _ = login(client, sandbox)
        headers = bearer(token)
    body: dict | None = None
    if path == "/api/mp/session":
        body = {"code": sandbox.post(f"/users/{sandbox.openids()[0]}/login-code")["code"]}
    elif path == "/api/mp/grants" and method == "POST":
        body = {**OK, T1: "accept"}
    elif path == "/api/mp/settings":
        body = {"mainSwitch": True}
    elif path == "/api/mp/opens":
        body = {"tz": "NoSuchOpenToken0"}
    data = None
    if status == 200 and path == "/api/mp/grants/{template_id}":
        client.post("/api/mp/grants", json={**OK, T1: "accept"}, headers=headers)
    elif status == 200 and path == "/api/mp/opens":
        body = {"tz": _open_token_of(app, sandbox.openids()[0])}
    elif status == 400:
        data, body = b"{not json", None
    elif status == 401:
        headers = {"Authorization": "Bearer forged"}
        if path == "/api/mp/session":
            body = {"code": "not-a-code"}
    elif status == 403:
        if path == "/api/mp/session":
            sandbox_user = sandbox.openids()[0]
            body = {"code": sandbox.post(f"/users/{sandbox_user}/login-code")["code"]}
            monkeypatch.setattr(api_services, "get_client", lambda: _Blocked())
        else:
            token, _ = login(client, sandbox)
            headers = bearer(token)
            app.config["WECHAT_APPID"] = "wxsomeoneelse00000"
    elif status == 404:
        url = path.replace("{template_id}", "NEVER_SEEN_TEMPLATE")
    elif status == 409:
        headers = {**headers, "Idempotency-Key": "k"}
        client.post(url, json=body, headers=headers)
        body = {**OK, T1: "reject"}
    elif status == 413:
        data, body = b"{" + b" " * (app.config["MP_MAX_BODY_BYTES"] + 1) + b"}", None
    elif status == 422:
        body = ["not", "an", "object"]
    elif status == 429:
        app.config["MP_RATE_LIMIT_PER_IP"] = 1
        client.open(url, method=method, headers=headers, json=body)
    elif status == 503:
        if path == "/api/mp/session":
            app.config["WECHAT_API_BASE"] = "http://127.0.0.1:9"
        else:
            monkeypatch.setattr("dashboard.grants.services.balances_for", _raise_operational, raising=True)
            monkeypatch.setattr("dashboard.grants.reports.plan_answers", _raise_operational, raising=True)
            monkeypatch.setattr(api_services, "balance_for_template", _raise_operational)
            monkeypatch.setattr(api_services, "report_settings", _raise_operational)
            monkeypatch.setattr("dashboard.deliveries.opens.record_open", _raise_operational)
    if data is not None:
        return client.open(url, method=method, headers=headers, data=data, content_type="application/json")
    return client.open(url, method=method, headers=headers, json=body)


def _open_token_of(app, openid: str) -> str:
    """A campaign delivery to ``openid`` (logged in already), with its open token."""
    from dashboard.deliveries.opens import new_open_token
    from dashboard.extensions import db
    from dashboard.models import Delivery, DeliverySource, WechatUser

    with app.app_context():
        user = db.session.scalar(select(WechatUser).where(WechatUser.openid == openid))
        token = new_open_token()
        db.session.add(
            Delivery(
                source=DeliverySource.campaign,
                campaign_id=1,
                user_id=user.id,
                openid=openid,
                template_id=T1,
                data={},
                open_token=token,
            )
        )
        db.session.commit()
    return token


class _Blocked:
    def code2session(self, code):
        from dashboard.wechat.errors import WeChatError

        raise WeChatError(40226, "high risk user, rid: 1")


def _raise_operational(*args, **kwargs):
    raise OperationalError("SELECT 1", {}, Exception("database is locked"))


DOC_CASES = [
    (path, method, status)
    for (path, method), statuses in sorted(
        {
            ("/api/mp/ping", "GET"): {200, 413, 429},
            ("/api/mp/session", "POST"): {200, 400, 401, 403, 413, 422, 429, 503},
            ("/api/mp/grants", "GET"): {200, 401, 403, 413, 429, 503},
            ("/api/mp/grants", "POST"): {200, 400, 401, 403, 409, 413, 422, 429, 503},
            ("/api/mp/grants/{template_id}", "GET"): {200, 401, 403, 404, 413, 429, 503},
            ("/api/mp/settings", "POST"): {200, 400, 401, 403, 413, 422, 429, 503},
            ("/api/mp/opens", "POST"): {200, 400, 401, 403, 404, 413, 422, 429, 503},
            ("/api/mp/openapi.json", "GET"): {200, 413, 429},
        }.items()
    )
    for status in sorted(statuses)
]


def test_the_cases_below_are_exactly_what_the_document_lists(client):
    listed: dict[tuple[str, str], set[int]] = {}
    for path, method, status in DOC_CASES:
        listed.setdefault((path, method), set()).add(status)
    assert listed == documented(client)


@pytest.mark.parametrize("path,method,status", DOC_CASES)
def test_each_documented_status_is_what_a_real_request_gets(
    app, client, sandbox, monkeypatch, path, method, status
):
    if status == 413 and method == "GET":
        data = b" " * (app.config["MP_MAX_BODY_BYTES"] + 1)
        response = client.open(path.replace("{template_id}", T1), method=method, data=data)
    else:
        response = make_request(app, client, sandbox, monkeypatch, path, method, status)
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.is_json
    if status >= 400:
        error = response.get_json()["error"]
        assert isinstance(error["code"], str) and isinstance(error["message"], str)
