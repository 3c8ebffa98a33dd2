"""Sync from WeChat against the sandbox: a diff first, then apply; changes and removals become drift."""

from __future__ import annotations

import re

import requests

from dashboard.audit.services import AuditFilter, filtered_events
from dashboard.catalog.services import template_usable
from dashboard.extensions import db
from dashboard.models.catalog import Drift, TemplateKind, TemplateSource


def change_in_sandbox(sandbox, template_id: str, **fields) -> None:
    response = requests.post(f"{sandbox.url}/sandbox/api/templates/{template_id}", json=fields, timeout=10)
    response.raise_for_status()


def remove_in_sandbox(sandbox, template_id: str) -> None:
    requests.delete(f"{sandbox.url}/sandbox/api/templates/{template_id}", timeout=10).raise_for_status()


def section(html: str, name: str) -> str:
    match = re.search(rf'<section class="card sync-section" id="sync-{name}">(.*?)</section>', html, re.S)
    return match.group(1) if match else ""


def test_the_diff_lists_every_template_as_new_and_changes_nothing(app, client, auth, sandbox, catalog):
    auth.login("marketer")
    remote = sandbox.get("/templates")["templates"]
    page = client.get("/templates/sync").get_data(as_text=True)
    new = section(page, "new")
    for row in remote:
        assert row["priTmplId"] in new and row["title"] in new
    assert catalog.all() == []  # looking is not applying


def test_sync_registers_all_the_sandbox_templates(app, client, auth, sandbox, catalog):
    auth.login("marketer")
    remote = {row["priTmplId"]: row for row in sandbox.get("/templates")["templates"]}
    catalog.sync()
    registered = {t.template_id: t for t in catalog.all()}
    assert set(registered) == set(remote)
    for template_id, row in remote.items():
        template = registered[template_id]
        assert template.title == row["title"]
        assert template.kind is (TemplateKind.one_time if row["type"] == 2 else TemplateKind.long_term)
        assert template.content == row["content"]
        assert template.source is TemplateSource.sync
        assert [k["key"] for k in template.keywords] == re.findall(r"\{\{(\w+?)\.DATA\}\}", row["content"])
        assert template.drift is Drift.none and template.enabled and template.synced_at is not None
    # Enum values come from keywordEnumValueList.
    todo = next(t for t in registered.values() if any(k["type"] == "enum_string" for k in t.keywords))
    enum_spec = next(k for k in todo.keywords if k["type"] == "enum_string")
    assert enum_spec["enum_values"] == ["工作", "学习", "生活", "其他"]
    # The list shows them all.
    listing = client.get("/templates").get_data(as_text=True)
    for row in remote.values():
        assert row["title"] in listing
    with app.app_context():
        actions = [
            e.action for e in db.session.scalars(filtered_events(AuditFilter(action="template.created")))
        ]
        assert len(actions) == len(remote)


def test_a_template_changed_in_wechat_shows_in_the_diff_and_is_flagged_after_apply(
    app, client, auth, sandbox, catalog
):
    auth.login("marketer")
    catalog.sync()
    target = sandbox.templates(type_=2)[0]
    template_id = target["priTmplId"]
    new_content = target["content"] + "备注:{{thing9.DATA}}\n"
    change_in_sandbox(sandbox, template_id, title="订单已发货通知", content=new_content)

    page = client.get("/templates/sync").get_data(as_text=True)
    changed = section(page, "changed")
    assert template_id in changed
    assert "订单已发货通知" in changed and target["title"] in changed  # after and before
    badges = re.findall(r'<span class="badge warn">(.*?)</span>', changed)
    assert badges == ["标题", "内容", "关键词"]  # title, content, keywords, in the Chinese UI
    assert section(page, "new") == "" and section(page, "removed") == ""

    catalog.sync()
    template = catalog.get(template_id)
    assert template.title == "订单已发货通知"
    assert template.content == new_content
    assert template.keywords[-1]["key"] == "thing9"
    assert template.drift is Drift.changed
    assert set(template.drift_note.split(",")) >= {"title", "content", "keywords"}
    with app.app_context():
        assert template_usable(template_id) == (False, "changed")
    detail = client.get(f"/templates/{template.id}").get_data(as_text=True)
    assert "微信中已变更" in detail  # "Changed in WeChat"
    assert "微信中已变更" in client.get("/templates?drift=changed").get_data(as_text=True)

    # An operator reviews it: usable again.
    assert client.post(f"/templates/{template.id}/review").status_code == 302
    assert catalog.get(template_id).drift is Drift.none
    with app.app_context():
        assert template_usable(template_id) == (True, "ok")


def test_operator_edits_survive_a_change_in_wechat(app, client, auth, sandbox, catalog):
    auth.login("marketer")
    catalog.sync()
    target = sandbox.templates(type_=2)[0]
    template = catalog.get(target["priTmplId"])
    first = template.keywords[0]
    with app.app_context():
        from dashboard.models.catalog import MessageTemplate

        row = db.session.get(MessageTemplate, template.id)
        row.keywords = [{**first, "label": "单号", "default": "A1", "fit": "fix"}, *row.keywords[1:]]
        db.session.commit()
    change_in_sandbox(sandbox, target["priTmplId"], title="新标题")
    catalog.sync()
    kept = catalog.get(target["priTmplId"]).keywords[0]
    assert (kept["label"], kept["default"], kept["fit"]) == ("单号", "A1", "fix")
    assert catalog.get(target["priTmplId"]).drift_note == "title"


def test_a_template_removed_in_wechat_is_kept_disabled_and_flagged(app, client, auth, sandbox, catalog):
    auth.login("marketer")
    catalog.sync()
    template_id = sandbox.templates(type_=3)[0]["priTmplId"]
    with app.app_context():
        assert template_usable(template_id) == (True, "ok")
    remove_in_sandbox(sandbox, template_id)

    page = client.get("/templates/sync").get_data(as_text=True)
    assert template_id in section(page, "removed")
    catalog.sync()

    template = catalog.get(template_id)
    assert template is not None, "the row and its history are kept"
    assert template.drift is Drift.removed and not template.enabled and template.removed_at is not None
    with app.app_context():
        assert template_usable(template_id) == (False, "removed")
        assert template_usable("no-such-template") == (False, "unknown")
    listing = client.get("/templates?drift=removed").get_data(as_text=True)
    assert template.title in listing and "微信中已删除" in listing
    # A second sync has nothing more to say about it.
    page = client.get("/templates/sync").get_data(as_text=True)
    assert section(page, "removed") == ""
    assert "与微信一致" in page


def test_applying_a_stale_diff_shows_the_new_one_instead(app, client, auth, sandbox, catalog):
    auth.login("marketer")
    page = client.get("/templates/sync").get_data(as_text=True)
    fingerprint = re.search(r'name="fingerprint" value="([0-9a-f]+)"', page).group(1)
    remove_in_sandbox(sandbox, sandbox.templates(type_=2)[0]["priTmplId"])
    response = client.post("/templates/sync", data={"fingerprint": fingerprint})
    assert response.status_code == 200
    assert catalog.all() == []  # nothing applied
    assert "微信的模板在对比之后又有变化" in response.get_data(as_text=True)


def test_a_wechat_failure_is_shown_not_raised(app, client, auth, sandbox, config_overrides):
    app.config["WECHAT_SECRET"] = "wrong-secret"
    app.extensions.pop("wechat", None)
    auth.login("marketer")
    response = client.get("/templates/sync")
    assert response.status_code == 200
    assert "errcode" in response.get_data(as_text=True)
    assert "wrong-secret" not in response.get_data(as_text=True)


def test_the_command_line_sync_prints_what_changed(app, runner, sandbox, catalog):
    result = runner.invoke(args=["sync-templates", "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "Dry run: 6 new" in result.output
    assert catalog.all() == []

    result = runner.invoke(args=["sync-templates"])
    assert result.exit_code == 0, result.output
    assert result.output.count("New: ") == 6
    assert "Applied: 6 new, 0 changed, 0 removed, 0 unchanged." in result.output
    assert len(catalog.all()) == 6

    target = sandbox.templates(type_=2)[0]
    change_in_sandbox(sandbox, target["priTmplId"], title="改过的标题")
    remove_in_sandbox(sandbox, sandbox.templates(type_=3)[0]["priTmplId"])
    result = runner.invoke(args=["sync-templates"])
    assert result.exit_code == 0, result.output
    assert f"Changed: {target['priTmplId']} 改过的标题 (title)" in result.output
    assert "Removed: " in result.output
    assert "Applied: 0 new, 1 changed, 1 removed, 4 unchanged." in result.output
    with app.app_context():
        [event] = db.session.scalars(filtered_events(AuditFilter(action="catalog.synced"))).all()[:1]
        assert event.actor_email == "flask sync-templates"


def test_the_command_line_sync_fails_loudly_with_wechats_answer(app, runner, sandbox):
    app.config["WECHAT_SECRET"] = "wrong-secret"
    app.extensions.pop("wechat", None)
    result = runner.invoke(args=["sync-templates"])
    assert result.exit_code == 1
    assert "Sync failed" in result.output and "errcode" in result.output
    assert "wrong-secret" not in result.output
