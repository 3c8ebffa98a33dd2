"""Adding from the public library against the sandbox: category, title search, keywords, addtemplate."""

from __future__ import annotations

import re

from sqlalchemy import select

from dashboard.audit.services import AuditFilter, filtered_events
from dashboard.extensions import db
from dashboard.models.catalog import MessageTemplate, TemplateKind, TemplateSource

HTMX = {"HX-Request": "true"}


def test_the_library_lists_categories_and_searches_titles(client, auth, sandbox):
    auth.login("marketer")
    page = client.get("/templates/library").get_data(as_text=True)
    for name in ("电商平台", "生活服务", "交通出行", "政务民生"):
        assert name in page
    everything = client.get("/templates/library?category=100", headers=HTMX).get_data(as_text=True)
    assert everything.lstrip().startswith('<div id="library-titles">')
    for title in ("订单发货提醒", "退款通知", "活动开始提醒", "支付成功通知"):
        assert title in everything
    found = client.get("/templates/library", query_string={"category": 100, "q": "发货"}, headers=HTMX)
    text = found.get_data(as_text=True)
    assert "订单发货提醒" in text and "退款通知" not in text
    assert "找到 1 个标题" in text


def test_adding_from_the_library_creates_it_in_wechat_and_registers_it(app, client, auth, sandbox):
    auth.login("marketer")
    before = {t["priTmplId"] for t in sandbox.get("/templates")["templates"]}
    page = client.get("/templates/library/1001?title=订单发货提醒&kind=one_time").get_data(as_text=True)
    for name in ("订单编号", "商品名称", "快递公司", "联系电话"):
        assert name in page
    form = {"kid1": "2", "kid2": "5", "kid3": "6", "kid4": "", "kid5": "", "scene_desc": "发货后通知买家"}
    response = client.post("/templates/library/1001?title=订单发货提醒&kind=one_time", data=form)
    assert response.status_code == 302, response.get_data(as_text=True)

    after = {t["priTmplId"]: t for t in sandbox.get("/templates")["templates"]}
    [new_id] = set(after) - before
    assert after[new_id]["tid"] == 1001
    with app.app_context():
        template = db.session.scalar(select(MessageTemplate).where(MessageTemplate.template_id == new_id))
        assert response.headers["Location"].endswith(f"/templates/{template.id}")
        assert template.source is TemplateSource.library and template.tid == "1001"
        assert template.kind is TemplateKind.one_time and template.title == "订单发货提醒"
        assert template.content == after[new_id]["content"]  # read back from gettemplate
        assert [k["key"] for k in template.keywords] == ["thing2", "thing5", "character_string6"]
        assert template.scene_desc == "发货后通知买家" and template.wechat_snapshot is not None
        [event] = db.session.scalars(filtered_events(AuditFilter(action="template.created"))).all()
        assert event.detail["source"] == "library" and event.detail["kids"] == [2, 5, 6]
    # A later sync finds nothing new.
    diff = client.get("/templates/sync").get_data(as_text=True)
    assert 'id="sync-new"' in diff  # the sandbox's seeded templates are new here...
    assert new_id not in re.search(r'id="sync-new">(.*?)</section>', diff, re.S).group(
        1
    )  # ...but not this one


def test_keyword_choices_are_checked_before_wechat_is_asked(app, client, auth, sandbox):
    auth.login("marketer")
    before = len(sandbox.get("/templates")["templates"])
    url = "/templates/library/1001?title=订单发货提醒"
    cases = [
        ({"kid1": "2", "kid2": ""}, "该字段是必填字段。"),
        ({"kid1": "2", "kid2": "2"}, "每个关键词只能选一次"),
        ({"kid1": "2", "kid2": "3", "scene_desc": "这是一个超过十五个字的场景说明文字啊"}, "最多 15 个字"),
        ({"kid1": "2", "kid2": "99"}, "不是有效的选择"),
    ]
    for form, message in cases:
        response = client.post(url, data=form)
        assert response.status_code == 200
        assert message in response.get_data(as_text=True), form
    assert len(sandbox.get("/templates")["templates"]) == before
    with app.app_context():
        assert db.session.scalars(select(MessageTemplate)).all() == []


def test_wechats_refusal_is_shown_on_the_form(app, client, auth, sandbox, config_overrides):
    auth.login("marketer")
    app.config["WECHAT_SECRET"] = "wrong-secret"
    app.extensions.pop("wechat", None)
    response = client.get("/templates/library?category=100")
    assert response.status_code == 200 and "errcode" in response.get_data(as_text=True)
    assert "wrong-secret" not in response.get_data(as_text=True)

    app.config["WECHAT_SECRET"] = config_overrides["WECHAT_SECRET"]
    app.extensions.pop("wechat", None)
    response = client.get("/templates/library/9999")
    assert response.status_code == 200 and "200014" in response.get_data(as_text=True)
