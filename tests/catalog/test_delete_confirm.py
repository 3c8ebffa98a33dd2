"""Deleting a template (issue 12, "no accidental damage"): an admin's act, behind a confirmation page that
names the template and what refers to it; an unticked POST changes nothing, here or at WeChat; the
template's history (deliveries, grants, campaigns) stays and comes back with a later sync.
"""

from __future__ import annotations

import html

import pytest
from sqlalchemy import func, select

from dashboard.audit.services import AuditFilter, filtered_events
from dashboard.extensions import db
from dashboard.grants.services import record_answers
from dashboard.models import Delivery, DeliverySource, DeliveryState, WechatUser
from dashboard.models.campaign import Campaign, CampaignState
from dashboard.models.grants import GrantBalance


@pytest.fixture
def synced(app, client, auth, sandbox, catalog):
    """The sandbox's templates in the catalog; one of them has a delivery, a live grant and a draft
    campaign referring to it by its WeChat ID."""
    auth.login("marketer")
    catalog.sync()
    row = sandbox.templates(type_=2)[0]
    template = catalog.get(row["priTmplId"])
    openid = sandbox.openids()[0]
    with app.app_context():
        user = WechatUser(openid=openid)
        db.session.add(user)
        db.session.flush()
        record_answers(user.id, [(template.template_id, "accept")], source="client")
        db.session.add(
            Delivery(
                openid=openid,
                user_id=user.id,
                template_id=template.template_id,
                data={},
                source=DeliverySource.test,
                state=DeliveryState.sent,
                msgid="4242",
            )
        )
        db.session.add(Campaign(name="双十一预热", template_id=template.template_id, data={}))
        db.session.add(
            Campaign(
                name="上月活动", template_id=template.template_id, data={}, state=CampaignState.completed
            )
        )
        db.session.commit()
    return row, template


def counts(app, template_id: str) -> tuple[int, int, int]:
    with app.app_context():
        return tuple(
            db.session.scalar(select(func.count()).select_from(model).where(model.template_id == template_id))
            for model in (Delivery, GrantBalance, Campaign)
        )


def test_marketers_and_viewers_cannot_delete(app, client, auth, synced, catalog):
    _row, template = synced
    for role in ("marketer", "viewer"):
        auth.login(role)
        assert client.get(f"/templates/{template.id}/delete").status_code == 403, role
        response = client.post(f"/templates/{template.id}/delete", data={"confirm": "y"})
        assert response.status_code == 403, role
    assert catalog.get(template.template_id) is not None
    auth.login("marketer")
    page = client.get(f"/templates/{template.id}").get_data(as_text=True)
    assert "只有管理员可以删除模板" in page and f"/templates/{template.id}/delete" not in page
    auth.login("admin")
    page = client.get(f"/templates/{template.id}").get_data(as_text=True)
    assert f'href="/templates/{template.id}/delete"' in page


def test_the_confirmation_names_the_template_and_what_refers_to_it(app, client, auth, synced):
    _row, template = synced
    auth.login("admin")
    page = html.unescape(client.get(f"/templates/{template.id}/delete").get_data(as_text=True))
    assert f"删除模板“{template.title}”？" in page and template.template_id in page
    assert "1 个用户持有它的有效订阅授权" in page
    assert "已记录 1 条使用它的投递" in page
    assert "1 个未结束的群发活动使用它" in page and "双十一预热" in page and "草稿" in page
    assert "上月活动" not in page  # finished campaigns are history, not a consequence
    assert f"我已了解：从模板库中删除“{template.title}”" in page
    # In English too.
    with client.session_transaction() as session:
        session["locale"] = "en"
    english = html.unescape(client.get(f"/templates/{template.id}/delete").get_data(as_text=True))
    assert f"Delete the template “{template.title}”?" in english
    assert "1 campaigns not finished use it" in english and "(draft)" in english


def test_an_unticked_deletion_changes_nothing_here_or_at_wechat(app, client, auth, synced, sandbox, catalog):
    row, template = synced
    auth.login("admin")
    response = client.post(f"/templates/{template.id}/delete", data={"at_wechat": "y"})
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "请勾选确认框后再删除；没有删除任何内容。" in page
    assert catalog.get(template.template_id) is not None
    assert row["priTmplId"] in {t["priTmplId"] for t in sandbox.get("/templates")["templates"]}
    with app.app_context():
        assert db.session.scalars(filtered_events(AuditFilter(action="template.deleted"))).all() == []


def test_after_deletion_the_history_stays_and_a_sync_brings_the_template_back(
    app, client, auth, synced, catalog
):
    _row, template = synced
    before = counts(app, template.template_id)
    assert before == (1, 1, 2)
    auth.login("admin")
    response = client.post(f"/templates/{template.id}/delete", data={"confirm": "y"})
    assert response.status_code == 302
    assert catalog.get(template.template_id) is None
    assert counts(app, template.template_id) == before  # deliveries, grants and campaigns are kept
    with app.app_context():
        delivery_id = db.session.scalar(
            select(Delivery.id).where(Delivery.template_id == template.template_id)
        )
    assert client.get(f"/deliveries/{delivery_id}").status_code == 200
    # Not deleted at WeChat: the next sync registers it again, and its send history shows on its page.
    catalog.sync()
    again = catalog.get(template.template_id)
    assert again is not None
    assert "4242" in client.get(f"/templates/{again.id}").get_data(as_text=True)
