"""Headers, cookies, and secrets that must never show: in pages, in logs, in errors."""

import logging
import re

import pytest

from dashboard.access import requires
from dashboard.models import Role

SECRETS = {
    "SECRET_KEY": "flask-session-secret-0123456789",
    "WECHAT_SECRET": "wx-app-secret-value-42",
    "WECHAT_PUSH_TOKEN": "push-token-value-77",
    "WECHAT_PUSH_AES_KEY": "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG",
    "WECHAT_APPID": "wx1234567890abcdef",
}


@pytest.fixture
def config_overrides():
    return dict(SECRETS)


def secret_values():
    return [value for name, value in SECRETS.items() if name != "WECHAT_APPID"]


def test_security_headers_on_every_page(client):
    response = client.get("/login")
    csp = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert "frame-ancestors 'none'" in csp
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_pages_have_no_inline_scripts_and_no_cdn(client, auth):
    pages = [client.get("/login").get_data(as_text=True)]
    auth.login("admin")
    for url in ("/", "/settings/", "/settings/operators/", "/settings/audit/", "/account/password"):
        pages.append(client.get(url).get_data(as_text=True))
    for page in pages:
        scripts = re.findall(r"<script([^>]*)>(.*?)</script>", page, flags=re.S)
        assert scripts
        for attributes, body in scripts:
            assert 'src="/static/' in attributes and body.strip() == ""
        assert " style=" not in page and "<style" not in page
        assert "//cdn" not in page and "unpkg" not in page and "jsdelivr" not in page


def test_session_cookie_flags(app, client, personas):
    app.config["SESSION_COOKIE_SECURE"] = True
    response = client.post(
        "/login",
        data={"email": "alice@example.com", "password": personas["admin"].password},
        base_url="https://localhost",
    )
    cookie = next(
        value for value in response.headers.getlist("Set-Cookie") if value.startswith("tongzhi_session=")
    )
    assert "HttpOnly" in cookie and "Secure" in cookie and "SameSite=Lax" in cookie


def test_no_secret_appears_on_any_page(app, client, auth):
    auth.login("admin")
    urls = [r.rule for r in app.url_map.iter_rules() if "GET" in r.methods and not r.arguments]
    assert "/settings/" in urls
    for url in urls:
        page = client.get(url).get_data(as_text=True)
        for secret in secret_values():
            assert secret not in page, f"{secret[:4]}… appears on {url}"
    settings_page = client.get("/settings/").get_data(as_text=True)
    assert "WECHAT_SECRET" in settings_page and "wx1234567890abcdef" in settings_page


def test_no_secret_appears_in_logs_or_error_pages(app, client, auth, caplog):
    @requires(Role.admin)
    def leaky():
        logging.getLogger("some.library").warning("connecting with secret %s", SECRETS["WECHAT_SECRET"])
        raise RuntimeError(
            f"failed with token {SECRETS['WECHAT_PUSH_TOKEN']} and key {SECRETS['SECRET_KEY']}"
        )

    app.add_url_rule("/leaky", "leaky", leaky)
    auth.login("admin")
    with caplog.at_level(logging.INFO):
        response = client.get("/leaky")
    assert response.status_code == 500
    body = response.get_data(as_text=True)
    logged = "\n".join(record.getMessage() + (record.exc_text or "") for record in caplog.records)
    assert "RuntimeError" in logged and "***" in logged
    for secret in secret_values():
        assert secret not in logged
        assert secret not in body
