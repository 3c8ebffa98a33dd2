"""Registering by hand, editing the schema and settings, filters, duplicate titles, deleting."""

from __future__ import annotations

import html

import pytest
import requests
from sqlalchemy import select

from dashboard.audit.services import AuditFilter, filtered_events
from dashboard.catalog.services import template_usable
from dashboard.extensions import db
from dashboard.models.catalog import MessageTemplate, TemplateKind, TemplateSource

CONTENT = "商品名称:{{thing1.DATA}}\r\n发货时间:{{date2.DATA}}\r\n处理状态:{{enum_string3.DATA}}\r\n"


def register(client, **overrides):
    form = {
        "template_id": "manual-Tmpl_001",
        "title": "发货通知",
        "kind": "one_time",
        "content": CONTENT,
        "example": "商品名称:咖啡豆\n发货时间:2024年1月1日\n处理状态:待处理\n",
        "scene": "",
        **overrides,
    }
    return client.post("/templates/new", data=form)


@pytest.fixture
def marketer(auth):
    return auth.login("marketer")


def stored(app, template_id="manual-Tmpl_001") -> MessageTemplate:
    with app.app_context():
        row = db.session.scalar(select(MessageTemplate).where(MessageTemplate.template_id == template_id))
        db.session.expunge(row)
        return row


def test_manual_registration_parses_the_keyword_schema(app, client, marketer):
    response = register(client, scene="Order_Shipped")
    assert response.status_code == 302
    template = stored(app)
    assert response.headers["Location"].endswith(f"/templates/{template.id}")
    assert template.source is TemplateSource.manual and template.kind is TemplateKind.one_time
    assert (
        template.content
        == "商品名称:{{thing1.DATA}}\n发货时间:{{date2.DATA}}\n处理状态:{{enum_string3.DATA}}\n"
    )
    assert [(k["key"], k["type"], k["label"]) for k in template.keywords] == [
        ("thing1", "thing", "商品名称"),
        ("date2", "date", "发货时间"),
        ("enum_string3", "enum_string", "处理状态"),
    ]
    assert all(k["fit"] == "reject" and k["default"] is None for k in template.keywords)
    assert template.scene == "order_shipped"
    with app.app_context():
        [event] = db.session.scalars(filtered_events(AuditFilter(action="template.created"))).all()
        assert event.detail["source"] == "manual" and event.actor_email == "mark@example.com"
    page = client.get(f"/templates/{template.id}").get_data(as_text=True)
    assert "手动登记" in page and "咖啡豆" in page  # the example fills the preview


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("content", "商品名称：咖啡豆\n发货时间：明天", "没有找到关键词占位符"),
        ("content", "", "该字段是必填字段。"),
        ("template_id", "has spaces in it", "只能包含字母、数字、- 和 _"),
        ("title", "", "该字段是必填字段。"),
        ("scene", "订单发货", "只能使用小写字母、数字和 _ . -"),
        ("kind", "weekly", "不是有效的选择"),
    ],
)
def test_invalid_input_is_a_form_error_not_a_crash(app, client, marketer, field, value, message):
    response = register(client, **{field: value})
    assert response.status_code == 200
    assert message in html.unescape(response.get_data(as_text=True))
    with app.app_context():
        assert db.session.scalars(select(MessageTemplate)).all() == []


def test_an_id_cannot_be_registered_twice(app, client, marketer):
    assert register(client).status_code == 302
    response = register(client, title="另一个")
    assert response.status_code == 200 and "这个模板 ID 已经登记过了" in response.get_data(as_text=True)


def test_a_scene_label_belongs_to_one_template(app, client, marketer):
    assert register(client, scene="order_shipped").status_code == 302
    response = register(client, template_id="second", title="另一个", scene="order_shipped")
    assert response.status_code == 200 and "另一个模板已经使用了这个业务场景" in response.get_data(
        as_text=True
    )
    with app.app_context():
        assert len(db.session.scalars(select(MessageTemplate)).all()) == 1  # never a partial write


def test_two_templates_with_the_same_title_are_flagged(app, client, marketer):
    register(client)
    register(client, template_id="other-id")
    register(client, template_id="third-id", title="退款通知")
    listing = client.get("/templates").get_data(as_text=True)
    assert listing.count("标题重复") == 2
    first = stored(app)
    page = client.get(f"/templates/{first.id}").get_data(as_text=True)
    assert "与以下模板标题相同" in page and "other-id" in page and "filter" in page


def edit_form(template: MessageTemplate, **overrides) -> dict[str, str]:
    form = {
        "page": template.page,
        "miniprogram_state": template.miniprogram_state,
        "lang": template.lang,
        "scene": template.scene or "",
        "credit_budget": str(template.credit_budget),
    }
    if template.enabled:
        form["enabled"] = "y"
    for index, spec in enumerate(template.keywords):
        form[f"keywords-{index}-label"] = spec["label"]
        form[f"keywords-{index}-enum_values"] = "\n".join(spec["enum_values"])
        form[f"keywords-{index}-default"] = spec["default"] or ""
        form[f"keywords-{index}-fit"] = spec["fit"]
    form.update(overrides)
    return {k: v for k, v in form.items() if v is not None}


def test_marketers_edit_the_schema_and_settings(app, client, marketer):
    register(client)
    template = stored(app)
    assert client.get(f"/templates/{template.id}/edit").status_code == 200
    form = edit_form(
        template,
        page="pages/order/detail?id=42",
        miniprogram_state="trial",
        lang="en_US",
        scene="order_shipped",
        enabled=None,
        credit_budget="2",
        **{
            "keywords-0-label": "商品",
            "keywords-0-default": "{{user.nickname}}的包裹",
            "keywords-0-fit": "fix",
            "keywords-2-enum_values": "待处理\n已处理, 已撤销\n待处理",
        },
    )
    response = client.post(f"/templates/{template.id}/edit", data=form)
    assert response.status_code == 302, response.get_data(as_text=True)
    template = stored(app)
    assert (template.page, template.miniprogram_state, template.lang) == (
        "pages/order/detail?id=42",
        "trial",
        "en_US",
    )
    assert template.scene == "order_shipped" and not template.enabled and template.credit_budget == 2
    first, _, third = template.keywords
    assert (first["label"], first["default"], first["fit"]) == ("商品", "{{user.nickname}}的包裹", "fix")
    assert first["content_label"] == "商品名称"
    assert third["enum_values"] == ["待处理", "已处理", "已撤销"]
    with app.app_context():
        assert template_usable(template.template_id) == (False, "disabled")
        [event] = db.session.scalars(filtered_events(AuditFilter(action="template.updated"))).all()
        assert "scene" in event.detail["changed"] and "keyword:thing1" in event.detail["changed"]
    # The preview starts from the default, with the sample user.
    page = client.get(f"/templates/{template.id}").get_data(as_text=True)
    assert "张三的包裹" in page and "View in mini program" in page


def test_a_credit_budget_must_be_a_small_whole_number(app, client, marketer):
    register(client)
    template = stored(app)
    for value in ("-1", "lots", "1000"):
        response = client.post(
            f"/templates/{template.id}/edit", data=edit_form(template, credit_budget=value)
        )
        assert response.status_code == 200 and 'class="error"' in response.get_data(as_text=True), value
    assert stored(app).credit_budget == 0


def test_an_invalid_default_is_a_form_error(app, client, marketer):
    register(client)
    template = stored(app)
    form = edit_form(template, **{"keywords-1-default": "下周某天", "keywords-2-default": "不在列表里"})
    response = client.post(f"/templates/{template.id}/edit", data=form)
    assert response.status_code == 200
    text = response.get_data(as_text=True)
    assert "date2：不是有效的“日期”" in text
    assert "enum_string3：不知道此枚举关键词的可选值" not in text  # a warning, not an error
    assert stored(app).keywords[1]["default"] is None


def test_a_taken_scene_is_a_form_error_and_nothing_is_saved(app, client, marketer):
    register(client, scene="order_shipped")
    register(client, template_id="second", title="另一个")
    second = stored(app, "second")
    form = edit_form(second, scene="order_shipped", page="pages/x")
    response = client.post(f"/templates/{second.id}/edit", data=form)
    assert response.status_code == 200 and "另一个模板已经使用了这个业务场景" in response.get_data(
        as_text=True
    )
    assert stored(app, "second").page == ""


def test_the_list_filters_by_type_status_scene_and_drift_and_keeps_them_in_the_url(app, client, marketer):
    register(client, scene="order_shipped")
    register(client, template_id="long-1", title="会议提醒", kind="long_term")
    register(client, template_id="off-1", title="停用的模板")
    off = stored(app, "off-1")
    client.post(f"/templates/{off.id}/edit", data=edit_form(off, enabled=None))

    def titles(query: str) -> set[str]:
        text = client.get(f"/templates?{query}", headers={"HX-Request": "true"}).get_data(as_text=True)
        assert text.lstrip().startswith('<div id="catalog-table">')
        return {t for t in ("发货通知", "会议提醒", "停用的模板") if t in text}

    assert titles("") == {"发货通知", "会议提醒", "停用的模板"}
    assert titles("kind=long_term") == {"会议提醒"}
    assert titles("enabled=no") == {"停用的模板"}
    assert titles("enabled=yes&kind=one_time") == {"发货通知"}
    assert titles("scene=order") == {"发货通知"}
    assert titles("drift=any") == set()
    assert titles("q=会议") == {"会议提醒"}
    # Junk never errors: an unknown kind or drift filters nothing, and % is a character, not a wildcard.
    everything = {"发货通知", "会议提醒", "停用的模板"}
    assert titles("kind=nonsense") == everything
    assert titles("drift=%25") == everything
    assert titles("scene=%25") == set()
    assert titles("q=%25") == set()
    assert titles("kind=nonsense&drift=%25&scene=%25") == set()
    page = client.get("/templates?kind=long_term").get_data(as_text=True)
    assert 'hx-push-url="true"' in page and '<option value="long_term" selected>' in page


def test_deleting_removes_it_from_the_catalog_and_audits(app, client, marketer, auth):
    register(client)
    template = stored(app)
    auth.login("admin")  # deleting is an admin's act (tests/catalog/test_delete_confirm.py)
    response = client.post(f"/templates/{template.id}/delete", data={"confirm": "y"})
    assert response.status_code == 302
    with app.app_context():
        assert db.session.get(MessageTemplate, template.id) is None
        [event] = db.session.scalars(filtered_events(AuditFilter(action="template.deleted"))).all()
        assert event.detail == {"template_id": "manual-Tmpl_001", "title": "发货通知", "at_wechat": False}


def test_deleting_in_wechat_too_deletes_it_there_first(app, client, marketer, auth, sandbox, catalog):
    catalog.sync()
    row = sandbox.templates(type_=2)[0]
    template = catalog.get(row["priTmplId"])
    auth.login("admin")
    response = client.post(f"/templates/{template.id}/delete", data={"at_wechat": "y", "confirm": "y"})
    assert response.status_code == 302
    assert row["priTmplId"] not in {t["priTmplId"] for t in sandbox.get("/templates")["templates"]}
    assert catalog.get(row["priTmplId"]) is None


def test_a_refused_deletion_in_wechat_keeps_the_template(app, client, marketer, auth, sandbox):
    register(client)  # not in the sandbox: deltemplate answers 20002
    template = stored(app)
    auth.login("admin")
    response = client.post(f"/templates/{template.id}/delete", data={"at_wechat": "y", "confirm": "y"})
    assert response.status_code == 302
    assert "20002" in client.get(response.headers["Location"]).get_data(as_text=True)
    assert stored(app) is not None


def test_viewers_read_but_do_not_change(app, client, auth):
    auth.login("marketer")
    register(client)
    template = stored(app)
    auth.login("viewer")
    assert client.get("/templates").status_code == 200
    assert client.get(f"/templates/{template.id}").status_code == 200
    page = client.get("/templates").get_data(as_text=True)
    assert "从微信同步" not in page and "手动登记" not in page
    for url in ("/templates/new", f"/templates/{template.id}/edit", "/templates/sync", "/templates/library"):
        assert client.get(url).status_code == 403, url
    for url in (f"/templates/{template.id}/edit", f"/templates/{template.id}/delete", "/templates/new"):
        assert client.post(url, data={}).status_code == 403, url
    assert client.get("/templates/999").status_code == 404


def test_the_home_page_counts_templates(app, client, marketer, sandbox, catalog):
    catalog.sync()
    removed = sandbox.templates(type_=2)[0]["priTmplId"]
    requests.delete(f"{sandbox.url}/sandbox/api/templates/{removed}", timeout=10).raise_for_status()
    catalog.sync()
    page = client.get("/").get_data(as_text=True)
    assert '<p class="figure">5<span class="muted"> / 6</span></p>' in page
    assert "1 个在微信中已变更或已删除" in page
