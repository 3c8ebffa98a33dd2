"""The live card preview and the test send, against the sandbox."""

from __future__ import annotations

import html
import re

import pytest
from sqlalchemy import select

from dashboard.audit.services import AuditFilter, filtered_events
from dashboard.extensions import db
from dashboard.grants.services import record_answers
from dashboard.models import Delivery, DeliverySource, DeliveryState, WechatUser
from dashboard.models.catalog import MessageTemplate
from tests.sandbox_api import example_data

HTMX = {"HX-Request": "true"}
TOO_LONG = "云南小粒咖啡豆精品礼盒装五百克两袋加赠手冲"  # 21 characters


@pytest.fixture
def shipped(app, client, auth, sandbox, catalog):
    """The sandbox's 订单发货提醒 (character_string1, thing2, phrase3, date4), synced and registered."""
    auth.login("marketer")
    catalog.sync()
    row = next(t for t in sandbox.templates(type_=2) if t["title"] == "订单发货提醒")
    return row, catalog.get(row["priTmplId"])


def our_credit(app, openid: str, template_id: str) -> None:
    """Tongzhi's ledger learns one accept (a test send spends a credit like any send)."""
    with app.app_context():
        user = db.session.scalar(select(WechatUser).where(WechatUser.openid == openid))
        if user is None:
            user = WechatUser(openid=openid)
            db.session.add(user)
            db.session.flush()
        record_answers(user.id, [(template_id, "accept")], source="client")
        db.session.commit()


def grant_both(app, sandbox, openid: str, template_id: str) -> None:
    """The user accepted once: WeChat (the sandbox) and Tongzhi's ledger both know it."""
    sandbox.grant(openid, template_id)
    our_credit(app, openid, template_id)


def values_of(row, **overrides) -> dict[str, str]:
    return {f"kw_{key}": value for key, value in {**example_data(row), **overrides}.items()}


def card_row(fragment: str, key: str) -> str:
    """The card row of ``key`` with the issue lines that follow it (up to the next row)."""
    match = re.search(
        rf'<div class="wx-row[^"]*" data-keys="{key}">(.*?)(?=<div class="wx-row|<div class="wx-card-footer)',
        fragment,
        re.S,
    )
    assert match, f"no card row for {key}"
    return match.group(0)


def test_the_detail_page_shows_the_card_with_the_example_values(client, shipped):
    row, template = shipped
    page = client.get(f"/templates/{template.id}").get_data(as_text=True)
    assert 'id="preview-card"' in page and "进入小程序查看" in page
    for key, value in example_data(row).items():
        assert f'name="kw_{key}" value="{html.escape(value)}"' in page
    assert "所有取值都符合微信的规则" in page
    assert "最近的发送" in page  # recent sends


def test_a_21_character_thing_is_marked_on_its_row_with_the_fix(client, shipped):
    row, template = shipped
    assert len(TOO_LONG) == 21
    response = client.get(
        f"/templates/{template.id}/preview", query_string=values_of(row, thing2=TOO_LONG), headers=HTMX
    )
    assert response.status_code == 200 and "Vary" in response.headers
    fragment = response.get_data(as_text=True)
    assert fragment.startswith('<div id="preview-card"') or 'id="preview-card"' in fragment[:200]
    assert "<html" not in fragment
    thing = card_row(fragment, "thing2")
    assert 'class="wx-row invalid"' in thing
    assert "thing2：“事物”类关键词最多 20 个字符（当前 21 个）" in thing
    fix = TOO_LONG[:19] + "…"
    assert f"<q>{fix}</q>" in thing and "一键修正" in thing
    # The other rows are fine.
    assert "invalid" not in card_row(fragment, "character_string1")
    assert "1 个取值不符合微信的规则" in fragment


def test_the_fix_fills_the_field_and_redraws_the_card(client, shipped):
    row, template = shipped
    query = {**values_of(row, thing2=TOO_LONG), "fix": "thing2"}
    fragment = client.get(f"/templates/{template.id}/preview", query_string=query, headers=HTMX).get_data(
        as_text=True
    )
    assert 'id="preview-panel"' in fragment  # the form comes back too, with the fixed value
    assert f'name="kw_thing2" value="{TOO_LONG[:19]}…"' in fragment
    assert "invalid" not in card_row(fragment, "thing2")
    assert "所有取值都符合微信的规则" in fragment


def test_the_footer_follows_the_language(client, shipped):
    row, template = shipped
    for lang, footer in (
        ("zh_CN", "进入小程序查看"),
        ("en_US", "View in mini program"),
        ("zh_TW", "進入小程式查看"),
        ("zh_HK", "進入小程序查看"),
    ):
        query = {**values_of(row), "lang": lang}
        fragment = client.get(f"/templates/{template.id}/preview", query_string=query, headers=HTMX)
        assert footer in fragment.get_data(as_text=True)
    # Messages follow the operator's language.
    client.post("/language/en", data={"next": "/"})
    fragment = client.get(
        f"/templates/{template.id}/preview", query_string=values_of(row, thing2=TOO_LONG), headers=HTMX
    ).get_data(as_text=True)
    assert 'thing2: at most 20 characters for a "thing" keyword (this value has 21)' in html.unescape(
        fragment
    )


def test_after_the_fix_the_test_send_succeeds_and_is_a_delivery(app, client, auth, shipped, sandbox):
    row, template = shipped
    openid = sandbox.openids()[0]
    grant_both(app, sandbox, openid, template.template_id)
    fixed = client.get(
        f"/templates/{template.id}/preview",
        query_string={**values_of(row, thing2=TOO_LONG), "fix": "thing2"},
        headers=HTMX,
    ).get_data(as_text=True)
    fixed_value = re.search(r'name="kw_thing2" value="([^"]*)"', fixed).group(1)

    form = {
        **values_of(row, thing2=fixed_value),
        "openid": openid,
        "miniprogram_state": "trial",
        "lang": "zh_CN",
        "page": "pages/order/detail?id=42",
    }
    response = client.post(f"/templates/{template.id}/test-send", data=form, headers=HTMX)
    assert response.status_code == 200
    fragment = response.get_data(as_text=True)
    msgid = re.search(r'<code class="msgid">(\d+)</code>', fragment).group(1)
    assert '<code class="errcode">0</code>' in fragment and "已发送" in fragment

    [message] = sandbox.messages()
    assert str(message["msgid"]) == msgid and message["errcode"] == 0
    assert message["data"]["thing2"] == {"value": fixed_value}
    assert (message["miniprogram_state"], message["page"]) == ("trial", "pages/order/detail?id=42")
    with app.app_context():
        [delivery] = db.session.scalars(select(Delivery)).all()
        assert delivery.source is DeliverySource.test and delivery.state is DeliveryState.sent
        assert delivery.msgid == msgid and delivery.template_id == template.template_id
        assert delivery.requested_by_id == auth.personas["marketer"].id
        [event] = db.session.scalars(filtered_events(AuditFilter(action="template.test_sent"))).all()
        assert event.detail["delivery_id"] == delivery.id and event.detail["openid"] == openid
    # The template page lists it under recent sends.
    page = client.get(f"/templates/{template.id}").get_data(as_text=True)
    assert msgid in page


def test_an_invalid_value_under_the_reject_policy_sends_nothing(app, client, shipped, sandbox):
    row, template = shipped
    openid = sandbox.openids()[0]
    grant_both(app, sandbox, openid, template.template_id)
    form = {
        **values_of(row, thing2=TOO_LONG),
        "openid": openid,
        "miniprogram_state": "formal",
        "lang": "zh_CN",
    }
    fragment = client.post(f"/templates/{template.id}/test-send", data=form, headers=HTMX).get_data(
        as_text=True
    )
    assert "没有发送：请先修改卡片上标出的取值" in fragment
    assert "thing2：“事物”类关键词最多 20 个字符" in fragment
    assert sandbox.messages() == []
    with app.app_context():
        assert db.session.scalars(select(Delivery)).all() == []


def test_the_fix_policy_sends_the_fixed_value_by_itself(app, client, shipped, sandbox):
    row, template = shipped
    with app.app_context():
        stored = db.session.get(MessageTemplate, template.id)
        stored.keywords = [{**k, "fit": "fix"} if k["key"] == "thing2" else k for k in stored.keywords]
        db.session.commit()
    openid = sandbox.openids()[1]
    grant_both(app, sandbox, openid, template.template_id)
    form = {
        **values_of(row, thing2=TOO_LONG),
        "openid": openid,
        "miniprogram_state": "formal",
        "lang": "zh_CN",
    }
    fragment = client.post(f"/templates/{template.id}/test-send", data=form, headers=HTMX).get_data(
        as_text=True
    )
    assert re.search(r'<code class="msgid">\d+</code>', fragment)
    [message] = sandbox.messages()
    assert message["data"]["thing2"] == {"value": TOO_LONG[:19] + "…"}


def test_wechats_refusal_is_shown_and_recorded(app, client, shipped, sandbox):
    row, template = shipped
    openid = sandbox.openids()[2]  # no grant at WeChat: it answers 43101
    our_credit(app, openid, template.template_id)  # while our ledger believes in one
    form = {**values_of(row), "openid": openid, "miniprogram_state": "formal", "lang": "zh_CN"}
    fragment = client.post(f"/templates/{template.id}/test-send", data=form, headers=HTMX).get_data(
        as_text=True
    )
    assert '<code class="errcode">43101</code>' in fragment and "未发送" in fragment
    with app.app_context():
        [delivery] = db.session.scalars(select(Delivery)).all()
        assert delivery.state is DeliveryState.failed and delivery.errcode == 43101


def test_a_test_send_needs_a_well_formed_openid(app, client, shipped):
    row, template = shipped
    for openid in ("", "not an openid!"):
        form = {**values_of(row), "openid": openid, "miniprogram_state": "formal", "lang": "zh_CN"}
        response = client.post(f"/templates/{template.id}/test-send", data=form, headers=HTMX)
        assert response.status_code == 200
        assert 'class="error"' in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalars(select(Delivery)).all() == []


def test_known_users_are_offered_and_user_variables_use_a_sample(app, client, shipped, sandbox):
    row, template = shipped
    openid = sandbox.openids()[3]
    with app.app_context():
        db.session.add(WechatUser(openid=openid, nickname="李雷"))
        stored = db.session.get(MessageTemplate, template.id)
        stored.keywords = [
            {**k, "default": "{{user.nickname}}的咖啡豆"} if k["key"] == "thing2" else k
            for k in stored.keywords
        ]
        db.session.commit()
    page = client.get(f"/templates/{template.id}").get_data(as_text=True)
    assert f'<option value="{openid}">李雷</option>' in page
    assert "张三的咖啡豆" in page  # the card shows the sample
    assert "{{user.nickname}} 以示例值“张三”显示" in html.unescape(page)
    # A test send to a known user fills in their own nickname.
    grant_both(app, sandbox, openid, template.template_id)
    form = {
        **values_of(row, thing2="{{user.nickname}}的咖啡豆"),
        "openid": openid,
        "miniprogram_state": "formal",
        "lang": "zh_CN",
    }
    client.post(f"/templates/{template.id}/test-send", data=form, headers=HTMX)
    [message] = sandbox.messages()
    assert message["data"]["thing2"] == {"value": "李雷的咖啡豆"}


def test_without_htmx_a_test_send_redirects_with_the_msgid(app, client, shipped, sandbox):
    row, template = shipped
    openid = sandbox.openids()[4]
    grant_both(app, sandbox, openid, template.template_id)
    form = {**values_of(row), "openid": openid, "miniprogram_state": "formal", "lang": "zh_CN"}
    response = client.post(f"/templates/{template.id}/test-send", data=form)
    assert response.status_code == 302
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "测试消息已发送：msgid" in page


def test_viewers_see_the_preview_but_cannot_send(client, auth, shipped):
    row, template = shipped
    auth.login("viewer")
    page = client.get(f"/templates/{template.id}").get_data(as_text=True)
    assert 'id="preview-card"' in page and "发送测试消息" not in page and "编辑关键词和设置" not in page
    preview = client.get(f"/templates/{template.id}/preview", query_string=values_of(row), headers=HTMX)
    assert preview.status_code == 200
    assert client.post(f"/templates/{template.id}/test-send", data=values_of(row)).status_code == 403
