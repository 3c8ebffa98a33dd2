"""The Official Account's templates in the catalog: sync (new, changed, gone) by `flask sync-templates`
and the page, the list and detail pages (and the channel-off message), the live card preview with the
OA's rules, and a test send to a follower and to a non-follower. Both databases; real HTTP to the sandbox."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from dashboard.extensions import db
from dashboard.models import AuditEvent, Operator
from dashboard.models.catalog import Drift
from dashboard.models.oa import OaFollower
from dashboard.models.oa_template import OaTemplate
from dashboard.oa.followers import sync_followers
from dashboard.sandbox.oa_state import OaTemplate as SandboxTemplate
from dashboard.wechat.oa import get_oa_client
from tests.oa.helpers import oa_get, oa_post

HX = {"HX-Request": "true"}


def templates_in_db(app) -> dict[str, OaTemplate]:
    with app.app_context():
        rows = db.session.scalars(select(OaTemplate)).all()
        for row in rows:
            db.session.expunge(row)
        return {row.title: row for row in rows}


def sandbox_templates(sandbox):
    return sandbox.server.state.oa.templates


def sync_cli(runner, *args):
    result = runner.invoke(args=["sync-templates", *args])
    return result


def test_sync_registers_changes_and_flags_gone_templates(app, runner, sandbox, auth, client):
    result = sync_cli(runner)
    assert "Official Account applied: 3 new, 0 changed, 0 removed, 0 unchanged." in result.output, (
        result.output
    )
    rows = templates_in_db(app)
    assert set(rows) == {"订单发货通知", "预约成功通知", "账单状态提醒"}
    shipped = rows["订单发货通知"]
    assert [(k["key"], k["type"], k["label"]) for k in shipped.keywords] == [
        ("first", "first", ""),
        ("keyword1", "keyword", "订单号"),
        ("keyword2", "keyword", "商品名称"),
        ("keyword3", "keyword", "发货时间"),
        ("remark", "remark", ""),
    ]
    assert [k["type"] for k in rows["账单状态提醒"].keywords] == ["thing", "amount", "const"]
    assert shipped.primary_industry == "IT科技" and shipped.synced_at is not None
    assert all(r.drift is Drift.none for r in rows.values())

    # WeChat side: one template changes its content, one is deleted, one is added.
    state = sandbox.server.state
    with state.lock:
        templates = sandbox_templates(sandbox)
        bill = next(t for t in templates.values() if t.title == "账单状态提醒")
        bill.content += "\n备注：{{thing4.DATA}}"
        gone = next(t for t in templates.values() if t.title == "预约成功通知")
        del templates[gone.template_id]
        templates["NEWTEMPLATEID0000000000000000000000000000000"] = SandboxTemplate(
            "NEWTEMPLATEID0000000000000000000000000000000",
            "退款到账通知",
            "{{first.DATA}}\n退款金额：{{keyword1.DATA}}\n{{remark.DATA}}",
            "您的退款已到账\n退款金额：¥10.00\n感谢使用",
        )

    dry = sync_cli(runner, "--dry-run")
    assert (
        "Official Account dry run: 1 new, 1 changed, 1 removed, 1 unchanged; nothing applied." in dry.output
    )
    assert len(templates_in_db(app)) == 3

    result = sync_cli(runner)
    assert "Official Account changed:" in result.output and "(content, keys)" in result.output
    assert "Official Account applied: 1 new, 1 changed, 1 removed, 1 unchanged." in result.output
    rows = templates_in_db(app)
    assert rows["账单状态提醒"].drift is Drift.changed and rows["账单状态提醒"].drift_note == "content,keys"
    assert [k["key"] for k in rows["账单状态提醒"].keywords][-1] == "thing4"
    assert rows["预约成功通知"].drift is Drift.removed and rows["预约成功通知"].removed_at is not None
    assert rows["退款到账通知"].drift is Drift.none
    with app.app_context():
        actions = db.session.scalars(select(AuditEvent.action).where(AuditEvent.action.like("oa_%"))).all()
    assert actions.count("oa_template.created") == 4
    assert "oa_template.changed_in_wechat" in actions and "oa_template.removed_in_wechat" in actions

    set_locale(app, auth.login("admin"), "en")
    log = client.get("/settings/audit/").get_data(as_text=True)
    assert "Official Account template removed in WeChat" in log
    assert f'href="/templates/official-account/{rows["预约成功通知"].id}"' in log

    # Back in WeChat: restored.
    with state.lock:
        sandbox_templates(sandbox)[gone.template_id] = gone
    result = sync_cli(runner)
    assert "Official Account changed:" in result.output and "(restored)" in result.output
    assert templates_in_db(app)["预约成功通知"].drift is Drift.changed


def test_without_the_oa_the_cli_leaves_it_alone_and_the_page_says_so(app, runner, auth, client):
    app.config["WECHAT_OA_APPID"] = app.config["WECHAT_OA_SECRET"] = None
    result = sync_cli(runner)
    assert "Official Account" not in result.output
    set_locale(app, auth.login("marketer"), "en")
    page = client.get("/templates/official-account").get_data(as_text=True)
    assert 'id="oa-off"' in page and "WECHAT_OA_APPID" in page
    assert client.post("/templates/official-account/sync").status_code == 302
    assert templates_in_db(app) == {}


@pytest.fixture
def synced(app, runner, sandbox, personas):
    assert sync_cli(runner).exit_code == 0
    with app.app_context():
        sync_followers(get_oa_client())
        for operator in db.session.scalars(select(Operator)):
            operator.locale = "en"
        db.session.commit()
    return templates_in_db(app)


def test_list_tab_detail_and_page_sync(app, auth, client, synced, sandbox):
    auth.login("viewer")
    catalog = client.get("/templates").get_data(as_text=True)
    assert 'href="/templates/official-account"' in catalog
    page = client.get("/templates/official-account").get_data(as_text=True)
    assert "订单发货通知" in page and 'id="oa-off"' not in page
    assert "Sync from WeChat" not in page  # a viewer cannot sync
    detail = client.get(f"/templates/official-account/{synced['订单发货通知'].id}").get_data(as_text=True)
    assert 'class="oa-card"' in detail and "A20240101001" in detail  # the example fills the card
    assert "Send test" not in detail
    auth.login("marketer")
    assert client.post("/templates/official-account/sync").status_code == 302
    page = client.get("/templates/official-account").get_data(as_text=True)
    assert "Synced: 0 new, 0 changed, 0 removed, 3 unchanged." in page


def set_locale(app, persona, locale):
    with app.app_context():
        db.session.get(Operator, persona.id).locale = locale
        db.session.commit()


def test_the_preview_fragment_marks_the_rule_a_value_breaks(app, auth, client, synced):
    persona = auth.login("viewer")
    set_locale(app, persona, "en")
    bill = synced["账单状态提醒"]
    url = f"/templates/official-account/{bill.id}/preview"
    typed = {"kw_thing1": "1月水费", "kw_amount2": "¥123456789012", "kw_const3": "待缴费"}
    ok = client.get(url, query_string=typed, headers=HX)
    html = ok.get_data(as_text=True)
    assert ok.status_code == 200 and html.lstrip().startswith('<div id="preview-card"')
    assert "¥123456789012" in html and "wx-issue error" not in html  # 12 digits fit the OA (10 in the MP)
    # const: a warning, since WeChat does not list the approved values
    assert 'class="wx-issue warning" data-key="const3"' in html and "approved" in html
    assert "Every value fits the Official Account" in html
    bad = client.get(url, query_string={"kw_thing1": "一" * 21, "kw_amount2": "¥1234567890123"}, headers=HX)
    html = bad.get_data(as_text=True)
    assert "at most 20 characters" in html and "at most 12 digits" in html
    assert "2 values break the Official Account" in html
    assert 'class="oa-line oa-row invalid" data-keys="amount2"' in html
    # Without htmx: the whole page, with the typed values.
    full = client.get(url, query_string={"kw_amount2": "abc"}).get_data(as_text=True)
    assert "<html" in full and 'value="abc"' in full
    # In Chinese.
    set_locale(app, persona, "zh")
    html = client.get(url, query_string={"kw_amount2": "¥1234567890123"}, headers=HX).get_data(as_text=True)
    assert "最多 12 位数字" in html


def test_test_send_to_a_follower_and_to_a_non_follower(app, auth, client, synced, sandbox):
    auth.login("marketer")
    shipped = synced["订单发货通知"]
    url = f"/templates/official-account/{shipped.id}/test-send"
    with app.app_context():
        follower = db.session.scalars(select(OaFollower).where(OaFollower.following.is_(True))).first().openid
        stranger = db.session.scalars(select(OaFollower).where(OaFollower.following.is_(False))).first()
    values = {
        "kw_first": "您的订单已发货",
        "kw_keyword1": "A1",
        "kw_keyword2": "咖啡豆",
        "kw_keyword3": "今天",
        "kw_remark": "",
    }
    sent = client.post(url, data={**values, "openid": follower, "pagepath": "pages/index/index"}, headers=HX)
    html = sent.get_data(as_text=True)
    assert "WeChat accepted the message" in html, html
    msgid = re.search(r'class="msgid">([^<]+)<', html).group(1)
    message = oa_get(sandbox, "/messages", openid=follower)["messages"][-1]
    assert str(message["msgid"]) == msgid and message["errcode"] == 0
    assert message["miniprogram"] == {"appid": app.config["WECHAT_APPID"], "pagepath": "pages/index/index"}
    assert message["client_msg_id"].startswith("tongzhi-")  # the delivery's (dispatch.channels.client_msg_id)
    with app.app_context():
        event = db.session.scalars(
            select(AuditEvent).where(AuditEvent.action == "oa_template.test_sent")
        ).one()
        assert event.detail["msgid"] == msgid and event.detail["state"] == "sent"

    before = oa_get(sandbox, "/state")["api_calls"].get("/cgi-bin/message/template/send", 0)
    for openid in ["o-nobody-knows-this", *([stranger.openid] if stranger else [])]:
        refused = client.post(url, data={**values, "openid": openid}, headers=HX).get_data(as_text=True)
        assert "is not a follower of the Official Account" in refused
    assert oa_get(sandbox, "/state")["api_calls"].get("/cgi-bin/message/template/send", 0) == before

    # Tongzhi still thinks they follow (the unfollow event was not pushed here): WeChat says 43004, in words.
    oa_post(sandbox, f"/users/{follower}/unfollow")
    answer = client.post(url, data={**values, "openid": follower}, headers=HX).get_data(as_text=True)
    assert 'class="errcode">43004<' in answer
    assert "does not follow the Official Account" in answer

    # Invalid values: refused before WeChat, the card comes back out of band.
    bill = synced["账单状态提醒"]
    with app.app_context():
        other = db.session.scalars(select(OaFollower).where(OaFollower.following.is_(True))).all()[-1].openid
    refused = client.post(
        f"/templates/official-account/{bill.id}/test-send",
        data={"kw_thing1": "水费", "kw_amount2": "¥1234567890123", "kw_const3": "", "openid": other},
        headers=HX,
    ).get_data(as_text=True)
    assert "correct the values marked on the card" in refused and 'hx-swap-oob="outerHTML"' in refused


def test_a_viewer_cannot_test_send(auth, client, synced):
    auth.login("viewer")
    shipped = synced["订单发货通知"]
    response = client.post(f"/templates/official-account/{shipped.id}/test-send", data={"openid": "x"})
    assert response.status_code == 403
