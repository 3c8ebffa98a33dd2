"""The rows a campaign start writes (the snapshot): every column of every recipient's delivery, on both
databases. The snapshot writes each row once with its open token and the page built from it, then fills
per-user values in windows (one ``UPDATE … FROM (VALUES …)`` per window on PostgreSQL); these tests pin
what the rows hold so that the faster statements write exactly what the slower ones did."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from dashboard.campaigns import services
from dashboard.deliveries.opens import TOKEN_RE
from dashboard.extensions import db
from dashboard.models import Delivery, WechatUser
from dashboard.models.campaign import Campaign
from tests.campaigns.helpers import draft, fixed_data, granted_users, segment_of_grantees

PAGE = "pages/order/detail?id=7"
TOO_LONG = "长" * 30  # a thing keyword takes at most 20 characters: this nickname's value is refused


def _rows(campaign_id: int) -> dict[str, Delivery]:
    rows = db.session.scalars(sa.select(Delivery).where(Delivery.campaign_id == campaign_id))
    return {row.openid: row for row in rows}


def _users(app, openids: list[str]) -> dict[str, int]:
    """Nicknames: a name, none (the fallback), one too long for the keyword, a name; returns user ids."""
    nicknames = dict(zip(openids, ["小明", "", TOO_LONG, "小红"], strict=True))
    with app.app_context():
        users = {u.openid: u for u in db.session.scalars(sa.select(WechatUser))}
        for openid, nickname in nicknames.items():
            users[openid].nickname = nickname
        db.session.commit()
        return {openid: users[openid].id for openid in openids}


@pytest.mark.parametrize("batch", [1000, 3], ids=["one-window", "windows-of-3"])
def test_a_start_writes_each_recipient_its_token_page_and_own_values(
    app, sandbox, template, monkeypatch, batch
):
    monkeypatch.setattr(services, "SNAPSHOT_BATCH", batch)
    openids = sandbox.openids_all()[:4]
    granted_users(app, sandbox, template, openids)
    user_ids = _users(app, openids)
    fixed = fixed_data(template)
    data = {**fixed, "thing2": {"value": "{{user.nickname}}的订单", "fallback": "您的订单"}}
    campaign_id = draft(app, template, segment_of_grantees(app, template), data=data, page=PAGE)
    with app.app_context():
        assert services.start(campaign_id) == 4
        rows = _rows(campaign_id)
        campaign = db.session.get(Campaign, campaign_id)
        started_at = campaign.started_at

        assert set(rows) == set(openids)
        tokens = [row.open_token for row in rows.values()]
        assert all(TOKEN_RE.fullmatch(token) for token in tokens) and len(set(tokens)) == 4
        base = {key: entry["value"] for key, entry in fixed.items()}
        expected_values = {
            openids[0]: {**base, "thing2": "小明的订单"},
            openids[1]: {**base, "thing2": "您的订单"},  # no nickname: the fallback
            openids[2]: {},  # refused by the keyword's rule: skipped, nothing to send
            openids[3]: {**base, "thing2": "小红的订单"},
        }
        for openid, row in rows.items():
            assert row.page == f"{PAGE}&tz={row.open_token}"  # the token drawn once, on both columns
            assert row.data == expected_values[openid]
            assert row.user_id == user_ids[openid]
            assert (row.state.value, row.reason) == (
                ("skipped", "invalid_value") if openid == openids[2] else ("pending", "")
            )
            assert (row.source.value, row.template_id) == ("campaign", template["priTmplId"])
            assert (row.miniprogram_state, row.lang) == (campaign.miniprogram_state, campaign.lang)
            assert (row.attempts, row.errmsg, row.opened_at, row.sent_at) == (0, "", None, None)
            assert row.created_at == started_at


@pytest.mark.parametrize("per_user", [False, True], ids=["fixed", "per-user"])
def test_without_a_page_rows_have_no_token(app, sandbox, template, per_user):
    openids = sandbox.openids_all()[:4]
    granted_users(app, sandbox, template, openids)
    _users(app, openids)
    fixed = fixed_data(template)
    data = {**fixed, "thing2": {"value": "{{user.nickname}}", "fallback": "会员"}} if per_user else fixed
    campaign_id = draft(app, template, segment_of_grantees(app, template), data=data, page="")
    with app.app_context():
        assert services.start(campaign_id) == 4
        rows = _rows(campaign_id)
    base = {key: entry["value"] for key, entry in fixed.items()}
    expected = {openid: (base, "pending") for openid in openids}
    if per_user:
        expected = {
            openids[0]: ({**base, "thing2": "小明"}, "pending"),
            openids[1]: ({**base, "thing2": "会员"}, "pending"),
            openids[2]: ({}, "skipped"),
            openids[3]: ({**base, "thing2": "小红"}, "pending"),
        }
    assert {openid: (row.data, row.state.value) for openid, row in rows.items()} == expected
    assert {(row.page, row.open_token) for row in rows.values()} == {("", None)}


def test_values_edited_while_paused_refill_waiting_rows_and_skip_refused_ones(app, sandbox, template):
    openids = sandbox.openids_all()[:4]
    granted_users(app, sandbox, template, openids)
    _users(app, openids)
    fixed = fixed_data(template)
    campaign_id = draft(app, template, segment_of_grantees(app, template), data=fixed, page=PAGE)
    with app.app_context():
        services.start(campaign_id)
        before = {openid: row.page for openid, row in _rows(campaign_id).items()}
        services.pause(campaign_id)
        campaign = db.session.get(Campaign, campaign_id)
        edited = {**fixed, "thing2": {"value": "{{user.nickname}}", "fallback": "会员"}}
        services.update_campaign(campaign, {"data": edited})
        db.session.expire_all()
        rows = _rows(campaign_id)
    base = {key: entry["value"] for key, entry in fixed.items()}
    assert {openid: (row.state.value, row.reason, row.data) for openid, row in rows.items()} == {
        openids[0]: ("pending", "", {**base, "thing2": "小明"}),
        openids[1]: ("pending", "", {**base, "thing2": "会员"}),
        openids[2]: ("skipped", "invalid_value", {}),
        openids[3]: ("pending", "", {**base, "thing2": "小红"}),
    }
    assert {openid: row.page for openid, row in rows.items()} == before  # tokens stay as they were
