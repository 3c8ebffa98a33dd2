"""The dry run counts, per keyword, what a launch would do with every recipient's values, and its counts
are what the snapshot then does."""

from __future__ import annotations

import re

import sqlalchemy as sa

from dashboard.campaigns import dry_run, services
from dashboard.extensions import db
from dashboard.models import Delivery, DeliveryState, WechatUser
from dashboard.models.catalog import MessageTemplate
from dashboard.models.segment import Segment
from tests.campaigns.helpers import draft, granted_users, segment_of_grantees

LONG_PRODUCT = "云南小粒咖啡豆特级精选礼盒装五百克两袋再送一个杯子"  # longer than a thing's 20 characters
DATA = {
    "character_string1": {"value": "A20240101001"},
    "thing2": {"value": "{{user.attributes.product}}", "fallback": "新品"},
    "phrase3": {"value": "{{user.attributes.status}}"},
    "date4": {"value": "2024年1月1日 12:00"},
}


def users_with_attributes(app, sandbox, template, count: int = 10) -> tuple[int, list[str]]:
    """``count`` granted users: every even one has a product name too long for a thing (the template's
    policy for thing2 is ``fix``), every third one a status that is not Chinese (phrase3 refuses it)."""
    openids = sandbox.openids_all()[:count]
    granted_users(app, sandbox, template, openids)
    with app.app_context():
        for i, openid in enumerate(openids):
            user = db.session.scalar(sa.select(WechatUser).where(WechatUser.openid == openid))
            attributes = {"status": "shipped" if i % 3 == 0 else "已发货"}
            if i % 2 == 0:
                attributes["product"] = LONG_PRODUCT
            user.attributes = attributes
        row = db.session.scalar(
            sa.select(MessageTemplate).where(MessageTemplate.template_id == template["priTmplId"])
        )
        row.keywords = [
            {**spec, "fit": "fix" if spec["key"] == "thing2" else "reject"} for spec in row.keywords
        ]
        db.session.commit()
    segment_id = segment_of_grantees(app, template)
    return draft(app, template, segment_id, data=DATA), openids


def test_the_dry_run_counts_per_keyword_with_examples(app, sandbox, template, monkeypatch):
    campaign_id, openids = users_with_attributes(app, sandbox, template)
    monkeypatch.setattr(dry_run, "BATCH", 3)  # several batches of users, streamed by id
    with app.app_context():
        row = db.session.scalar(
            sa.select(MessageTemplate).where(MessageTemplate.template_id == template["priTmplId"])
        )
        segment = db.session.scalars(sa.select(Segment)).one()
        result = dry_run.dry_run(row, segment.filter, DATA)
    counts = {k.key: (k.passed, k.changed, k.refused) for k in result.keywords}
    assert result.total == 10 and result.skipped == 4 and result.with_values == 6
    assert counts == {
        "character_string1": (10, 0, 0),  # the same for everybody: judged once, counted for all
        "thing2": (5, 5, 0),  # the fix policy shortens the long names
        "phrase3": (6, 0, 4),
        "date4": (10, 0, 0),
    }
    thing = next(k for k in result.keywords if k.key == "thing2")
    assert len(thing.changed_examples) == 3 and thing.changed_examples[0][0] == LONG_PRODUCT
    assert len(thing.changed_examples[0][1]) <= 20
    phrase = next(k for k in result.keywords if k.key == "phrase3")
    assert [value for _, value in phrase.refused_examples] == ["shipped"] * 3
    assert phrase.refused_examples[0][0] == dry_run.short_openid(openids[0])
    assert result.reach.reachable == 10


def test_the_dry_run_predicts_what_the_launch_skips(app, client, auth, sandbox, template):
    campaign_id, openids = users_with_attributes(app, sandbox, template)
    auth.login("marketer")
    page = client.post(f"/campaigns/{campaign_id}/dry-run", headers={"HX-Request": "true"}).get_data(
        as_text=True
    )
    shown = {
        name: int(re.search(rf'id="dry-run-{name}">(\d+)<', page).group(1)) for name in ("total", "skipped")
    }
    assert shown == {"total": 10, "skipped": 4}
    assert "shipped" in page and dry_run.short_openid(openids[0]) in page
    assert f"<q>{LONG_PRODUCT}</q> → <q>" in page

    with app.app_context():
        services.launch(campaign_id)
        rows = db.session.scalars(sa.select(Delivery).where(Delivery.campaign_id == campaign_id)).all()
    invalid = [d for d in rows if d.state == DeliveryState.skipped and d.reason == "invalid_value"]
    assert len(rows) == shown["total"] and len(invalid) == shown["skipped"]
    fixed = {d.data["thing2"] for d in rows if d.data.get("thing2") not in (None, "新品")}
    assert len(fixed) == 1 and len(next(iter(fixed))) <= 20  # the value the dry run showed as "after"
    assert f"<q>{next(iter(fixed))}</q>" in page


def test_values_that_can_never_pass_are_named_not_counted(app, client, auth, sandbox, template):
    campaign_id, _ = users_with_attributes(app, sandbox, template, count=2)
    with app.app_context():
        row = db.session.scalar(
            sa.select(MessageTemplate).where(MessageTemplate.template_id == template["priTmplId"])
        )
        result = dry_run.dry_run(row, {"all": []}, {**DATA, "date4": {"value": "tomorrow"}})
    assert result.problem and "date4" in result.problem and result.keywords == []
