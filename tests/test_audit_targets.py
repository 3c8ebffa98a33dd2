"""The audit log's target filter takes the "operator / 12" form its placeholder shows, and each target
links to the page of what it names when the operator may open that page."""

from __future__ import annotations

import re

import pytest

from dashboard.audit.services import parse_target, record
from dashboard.extensions import db
from dashboard.models import Operator


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("operator / 12", ("operator", "12")),
        ("operator/12", ("operator", "12")),
        ("operator 12", ("operator", "12")),
        ("operator #12", ("operator", "12")),
        ("  Operator / #12 ", ("operator", "12")),
        ("template / 3", ("message_template", "3")),
        ("12", ("", "12")),
        ("#12", ("", "12")),
        ("operator", ("operator", "")),
        ("", ("", "")),
    ],
)
def test_the_target_filter_reads_what_operators_type(typed, expected):
    assert parse_target(typed) == expected


def seed(app, personas):
    with app.app_context():
        mark = personas["marketer"].id
        record("operator.updated", target_type="operator", target_id=str(mark), actor_email="amy@example.com")
        record("operator.updated", target_type="operator", target_id="12", actor_email="bob@example.com")
        record("segment.created", target_type="campaign", target_id="12", actor_email="carol@example.com")
        record(
            "template.updated", target_type="message_template", target_id="5", actor_email="dan@example.com"
        )
        record("api_key.revoked", target_type="api_key", target_id="2", actor_email="erin@example.com")
        record("users.imported", target_type="wechat_user", actor_email="fay@example.com")
        record("delivery.force_resent", target_type="delivery", target_id="9", actor_email="gus@example.com")
        record("sending_limits.updated", target_type="dispatch_state", target_id="1", actor_email="hal@x.com")
        record("something.else", target_type="gadget", target_id="4", actor_email="ivy@example.com")
        db.session.commit()


@pytest.mark.parametrize("typed", ["operator / 12", "operator/12", "operator 12"])
def test_filtering_by_the_placeholder_form_finds_that_target_only(app, client, auth, personas, typed):
    seed(app, personas)
    auth.login("admin")
    page = client.get("/settings/audit/", query_string={"target": typed}).get_data(as_text=True)
    assert "bob@example.com" in page
    assert "carol@example.com" not in page  # campaign 12: same id, other type
    assert "amy@example.com" not in page and "dan@example.com" not in page


def test_targets_link_to_what_they_name(app, client, auth, personas):
    seed(app, personas)
    auth.login("admin")
    with app.app_context():
        db.session.get(Operator, personas["admin"].id).locale = "en"
        db.session.commit()
    page = client.get("/settings/audit/").get_data(as_text=True)
    by_label = {label: href for href, label in re.findall(r'<a href="([^"]+)">([^<]+)</a></td>', page)}
    mark = personas["marketer"].id
    assert by_label[f"Operator #{mark}"] == f"/settings/operators/#operator-{mark}"
    assert by_label["Campaign #12"] == "/campaigns/12"
    assert by_label["Template #5"] == "/templates/5"
    assert by_label["API key #2"] == "/settings/api-keys/"
    assert by_label["Delivery #9"] == "/deliveries/9"
    assert by_label["Users"] == "/users"  # an import names no single user
    assert by_label["Sending limits"] == "/settings/"
    # Unknown kinds of target stay plain words, with no link to nowhere.
    assert "gadget #4" in page and 'href="/gadget' not in page


def test_targets_are_in_the_operators_language(app, client, auth, personas):
    seed(app, personas)
    auth.login("admin")
    page = client.get("/settings/audit/?target=template/5").get_data(as_text=True)
    assert ">模板 #5</a>" in page


def test_no_link_to_a_page_the_viewer_may_not_open(app, personas):
    """The log is an admin's page, but the link rule itself follows the role of who looks."""
    from flask_login import login_user

    from dashboard.audit.services import describe_target
    from dashboard.models import AuditEvent

    with app.test_request_context("/"):
        login_user(db.session.get(Operator, personas["viewer"].id))
        operator_event = AuditEvent(action="x", target_type="operator", target_id="3")
        campaign_event = AuditEvent(action="x", target_type="campaign", target_id="3")
        assert describe_target(operator_event)[1] is None  # the operators page is an admin's
        assert describe_target(campaign_event)[1] == "/campaigns/3"
