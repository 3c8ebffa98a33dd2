"""Settings → User attributes: admins declare keys and change label and type; errors shown in the form."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from dashboard.extensions import db
from dashboard.models import AuditEvent
from dashboard.models.user_attribute import UserAttribute

URL = "/settings/user-attributes/"


def declarations(app):
    with app.app_context():
        return [
            (a.key, a.type, a.label)
            for a in db.session.scalars(select(UserAttribute).order_by(UserAttribute.key))
        ]


def test_an_admin_declares_an_attribute_through_the_form(app, client, auth):
    auth.login("admin")
    page = client.get(URL)
    assert page.status_code == 200
    response = client.post(
        URL,
        data={"key": "membership_expires_at", "label": "会员到期日", "type": "date"},
        follow_redirects=True,
    )
    assert response.status_code == 200
    text = response.get_data(as_text=True)
    assert "membership_expires_at" in text and "会员到期日" in text
    assert declarations(app) == [("membership_expires_at", "date", "会员到期日")]
    with app.app_context():
        assert (
            db.session.scalar(select(AuditEvent.action).order_by(AuditEvent.id.desc()))
            == "user_attribute.declared"
        )


@pytest.mark.parametrize(
    "data,message",
    [
        ({"key": "has space", "label": "x", "type": "string"}, "开头"),
        ({"key": "-dash", "label": "x", "type": "string"}, "开头"),
        ({"key": "ok", "label": "", "type": "string"}, "label"),
        ({"key": "ok", "label": "x", "type": "money"}, "type"),
    ],
)
def test_a_bad_declaration_is_shown_in_the_form_and_nothing_is_saved(app, client, auth, data, message):
    auth.login("admin")
    response = client.post(URL, data=data)
    assert response.status_code == 200
    text = response.get_data(as_text=True)
    assert 'class="error"' in text and message in text  # in the operator's language (Chinese by default)
    assert declarations(app) == []


def test_a_taken_key_is_an_error_naming_it(app, client, auth):
    auth.login("admin")
    client.post(URL, data={"key": "city", "label": "城市", "type": "string"})
    response = client.post(URL, data={"key": "city", "label": "City", "type": "number"})
    assert response.status_code == 200
    assert "city" in response.get_data(as_text=True) and 'class="error"' in response.get_data(as_text=True)
    assert declarations(app) == [("city", "string", "城市")]


def test_an_admin_changes_label_and_type(app, client, auth):
    auth.login("admin")
    client.post(URL, data={"key": "tier", "label": "Tier", "type": "string"})
    with app.app_context():
        attribute_id = db.session.scalar(select(UserAttribute.id))
    edit = f"{URL}{attribute_id}/edit"
    assert client.get(edit).status_code == 200
    bad = client.post(edit, data={"label": "", "type": "number"})
    assert bad.status_code == 200 and 'class="error"' in bad.get_data(as_text=True)
    assert client.post(edit, data={"label": "会员等级", "type": "number"}).status_code == 302
    assert declarations(app) == [("tier", "number", "会员等级")]


@pytest.mark.parametrize("role", ["marketer", "viewer"])
def test_only_admins_reach_the_page(client, auth, role):
    auth.login(role)
    assert client.get(URL).status_code == 403
    assert client.post(URL, data={"key": "x", "label": "x", "type": "string"}).status_code == 403
