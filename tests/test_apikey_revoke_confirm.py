"""Revoking an API key (issue 12, "no accidental damage"): a confirmation page names the key and what
revoking does; a POST without the ticked box is refused with a message and the key keeps working."""

from __future__ import annotations

import html
import re

from dashboard.apikeys.services import authenticate
from dashboard.extensions import db
from dashboard.models import ApiKey, AuditEvent


def create_key(app, client, name: str = "crm") -> tuple[int, str]:
    page = client.post("/settings/api-keys/", data={"name": name, "scopes": ["send"]}).get_data(as_text=True)
    plaintext = re.search(r"(tz_[A-Za-z0-9_-]+)", page).group(1)
    with app.app_context():
        key_id = db.session.scalar(db.select(ApiKey.id).where(ApiKey.name == name))
    return key_id, plaintext


def works(app, plaintext: str) -> bool:
    with app.test_request_context():
        return authenticate(f"Bearer {plaintext}") is not None


def test_the_list_leads_to_a_page_that_names_the_key_and_the_consequence(app, client, auth):
    auth.login("admin")
    key_id, plaintext = create_key(app, client)
    listing = client.get("/settings/api-keys/").get_data(as_text=True)
    assert f'action="/settings/api-keys/{key_id}/revoke"' in listing and 'method="get"' in listing
    page = html.unescape(client.get(f"/settings/api-keys/{key_id}/revoke").get_data(as_text=True))
    assert "吊销密钥“crm”？" in page and f"{plaintext[:10]}…" in page and plaintext not in page
    assert "使用它的每个请求都会被拒绝（401）" in page
    assert "我已了解：立即吊销“crm”。" in page
    assert works(app, plaintext)  # looking changes nothing


def test_an_unticked_revoke_is_refused_and_the_key_keeps_working(app, client, auth):
    auth.login("admin")
    key_id, plaintext = create_key(app, client)
    response = client.post(f"/settings/api-keys/{key_id}/revoke", data={})
    assert response.status_code == 200
    assert "请勾选确认框；密钥没有被吊销。" in response.get_data(as_text=True)
    assert works(app, plaintext)
    with app.app_context():
        assert db.session.get(ApiKey, key_id).revoked_at is None
        assert not db.session.scalars(
            db.select(AuditEvent).where(AuditEvent.action == "api_key.revoked")
        ).all()

    confirmed = client.post(f"/settings/api-keys/{key_id}/revoke", data={"confirm": "y"})
    assert confirmed.status_code == 302
    assert not works(app, plaintext)
    # A revoked key has nothing left to confirm: its page sends back to the list.
    assert client.get(f"/settings/api-keys/{key_id}/revoke").status_code == 302


def test_only_admins_see_the_confirmation(app, client, auth):
    auth.login("admin")
    key_id, plaintext = create_key(app, client)
    for role in ("marketer", "viewer"):
        auth.login(role)
        assert client.get(f"/settings/api-keys/{key_id}/revoke").status_code == 403
        assert client.post(f"/settings/api-keys/{key_id}/revoke", data={"confirm": "y"}).status_code == 403
    assert works(app, plaintext)
