"""API keys: created by admins (shown once, stored hashed), revocable, and by `flask create-api-key`."""

import re

from sqlalchemy import inspect, select, text

from dashboard import create_app
from dashboard.apikeys.services import authenticate, hash_key
from dashboard.extensions import db
from dashboard.models import ApiKey, AuditEvent
from tests.conftest import base_config


def test_an_admin_creates_a_key_that_is_shown_once_and_stored_hashed(app, client, auth):
    auth.login("admin")
    page = client.post("/settings/api-keys/", data={"name": "orders", "scopes": ["send"]}).get_data(
        as_text=True
    )
    plaintext = re.search(r'<code class="secret-once">(tz_[^<]+)</code>', page).group(1)
    with app.app_context():
        key = db.session.scalar(select(ApiKey).where(ApiKey.name == "orders"))
        assert key.key_hash == hash_key(plaintext) and plaintext not in (key.prefix + key.key_hash)
        assert key.scope_list == ["send"]
        event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "api_key.created"))
        assert plaintext not in str(event.detail)
    listing = client.get("/settings/api-keys/").get_data(as_text=True)
    assert "orders" in listing and plaintext not in listing


def test_duplicate_names_and_empty_scopes_are_form_errors(client, auth):
    auth.login("admin")
    client.post("/settings/api-keys/", data={"name": "orders", "scopes": ["send"]})
    again = client.post("/settings/api-keys/", data={"name": "orders", "scopes": ["read_all"]})
    assert again.status_code == 200 and "名为 orders 的密钥已存在" in again.get_data(as_text=True)
    empty = client.post("/settings/api-keys/", data={"name": "nothing"})
    assert "请至少选择一个权限范围" in empty.get_data(as_text=True)


def test_revoked_keys_stop_authenticating(app, client, auth):
    auth.login("admin")
    page = client.post("/settings/api-keys/", data={"name": "crm", "scopes": ["read_all"]}).get_data(
        as_text=True
    )
    plaintext = re.search(r"(tz_[A-Za-z0-9_-]+)", page).group(1)
    with app.test_request_context():
        key = authenticate(f"Bearer {plaintext}")
        assert key is not None and key.last_used_at is not None
        assert authenticate(f"Bearer {plaintext}x") is None and authenticate(plaintext) is None
        key_id = key.id
    client.post(f"/settings/api-keys/{key_id}/revoke", data={"confirm": "y"})
    with app.test_request_context():
        assert authenticate(f"Bearer {plaintext}") is None


def test_create_api_key_command_prints_the_key_alone_on_its_last_line(app, runner):
    result = runner.invoke(args=["create-api-key", "billing", "--scope", "send"])
    assert result.exit_code == 0, result.output
    last_line = result.output.strip().splitlines()[-1]
    assert re.fullmatch(r"tz_[A-Za-z0-9_-]{40,}", last_line)
    with app.test_request_context():
        assert authenticate(f"Bearer {last_line}").name == "billing"


def test_only_admins_manage_keys(client, auth):
    auth.login("marketer")
    assert client.get("/settings/api-keys/").status_code == 403


def test_the_read_all_scope_is_offered_in_both_languages(app, client, auth):
    auth.login("admin")
    assert "read_all：读取经 API 发送的所有消息" in client.get("/settings/api-keys/").get_data(as_text=True)
    client.post("/language/en", data={"next": "/"})
    page = client.get("/settings/api-keys/").get_data(as_text=True)
    assert "read_all: read every message sent through the API" in page
    client.post("/settings/api-keys/", data={"name": "reports", "scopes": ["read_all"]})
    with app.app_context():
        key = db.session.scalar(select(ApiKey).where(ApiKey.name == "reports"))
        assert key.scope_list == ["read_all"] and key.allows("read") and not key.allows("send")


def test_deliveries_refer_to_the_key_that_created_them(app):
    with app.app_context():
        foreign_keys = inspect(db.engine).get_foreign_keys("delivery")
    assert {
        (tuple(fk["constrained_columns"]), fk["referred_table"], tuple(fk["referred_columns"]))
        for fk in foreign_keys
    } >= {(("api_key_id",), "api_key", ("id",))}


def test_the_upgrade_keeps_read_only_keys_reading_everything(tmp_path):
    """Before 0012 a key with only the read scope read every API message: it becomes read_all."""
    url = f"sqlite:///{tmp_path / 'upgrade.db'}"
    app = create_app(base_config(url, tmp_path))
    runner = app.test_cli_runner()
    assert runner.invoke(args=["db", "upgrade", "0011"]).exit_code == 0
    with app.app_context(), db.engine.begin() as connection:
        for number, scopes in enumerate(("read", "send read", "send"), start=1):
            connection.execute(
                text(
                    "INSERT INTO api_key (id, name, prefix, key_hash, scopes, created_at) "
                    "VALUES (:id, :name, 'tz_', :hash, :scopes, '2026-01-01 00:00:00')"
                ),
                {"id": number, "name": f"key{number}", "hash": f"{number:064d}", "scopes": scopes},
            )
    result = runner.invoke(args=["db", "upgrade"])
    assert result.exit_code == 0, result.output
    with app.app_context():
        scopes = dict(db.session.execute(select(ApiKey.name, ApiKey.scopes)).all())
        db.session.remove()
        db.engine.dispose()
    assert scopes == {"key1": "read_all", "key2": "send read", "key3": "send"}
