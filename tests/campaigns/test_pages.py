"""The Campaigns pages: the list with its state filter, a campaign's state and counts, and the buttons
that move it only after the operator ticks the confirmation."""

from __future__ import annotations

import sqlalchemy as sa

from dashboard.extensions import db
from dashboard.models import AuditEvent
from dashboard.models.campaign import CampaignState
from dashboard.models.catalog import MessageTemplate
from tests.campaigns.helpers import campaign, campaign_states, prepared_campaign


def test_the_list_filters_by_state_and_the_detail_shows_counts(app, client, auth, sandbox, template):
    campaign_id, openids = prepared_campaign(app, sandbox, template, 4, name="Winter sale")
    auth.login("viewer")
    assert "Winter sale" in client.get("/campaigns/").get_data(as_text=True)
    running_only = client.get("/campaigns/?state=running", headers={"HX-Request": "true"}).get_data(
        as_text=True
    )
    assert "Winter sale" not in running_only and "<html" not in running_only
    page = client.get(f"/campaigns/{campaign_id}").get_data(as_text=True)
    assert "草稿" in page and "campaign-counts" in page
    # The template by its title, linked to its page, with WeChat's id beside it.
    with app.app_context():
        row = db.session.scalar(
            sa.select(MessageTemplate).where(MessageTemplate.template_id == template["priTmplId"])
        )
        assert row is not None
        assert row.title in page and f'href="/templates/{row.id}"' in page and row.template_id in page
    assert "/launch" not in page  # a viewer sees no buttons
    assert client.get("/campaigns/999999").status_code == 404
    assert client.get("/campaigns/?state=nonsense").status_code == 200


def test_buttons_move_the_campaign_only_when_confirmed(app, client, auth, sandbox, template):
    campaign_id, openids = prepared_campaign(app, sandbox, template, 4)
    auth.login("marketer")
    assert f"/campaigns/{campaign_id}/launch" in client.get(f"/campaigns/{campaign_id}").get_data(
        as_text=True
    )

    unconfirmed = client.post(f"/campaigns/{campaign_id}/launch", follow_redirects=True)
    assert "请勾选确认框" in unconfirmed.get_data(as_text=True)
    assert campaign(app, campaign_id).state == CampaignState.draft

    client.post(f"/campaigns/{campaign_id}/launch", data={"confirm": "yes"})
    assert campaign(app, campaign_id).state == CampaignState.running
    assert sum(campaign_states(app, campaign_id).values()) == len(openids)
    again = client.post(f"/campaigns/{campaign_id}/launch", data={"confirm": "yes"}, follow_redirects=True)
    assert "现在无法操作：活动状态为发送中" in again.get_data(as_text=True)

    client.post(f"/campaigns/{campaign_id}/pause", data={"confirm": "yes"})
    paused = client.get(f"/campaigns/{campaign_id}").get_data(as_text=True)
    assert "暂停原因" in paused and "/resume" in paused
    client.post(f"/campaigns/{campaign_id}/cancel", data={"confirm": "yes"})
    assert campaign(app, campaign_id).state == CampaignState.cancelled
    assert client.post(f"/campaigns/{campaign_id}/explode", data={"confirm": "yes"}).status_code == 404
    with app.app_context():
        actions = [e.action for e in db.session.query(AuditEvent).order_by(AuditEvent.id)]
    assert actions[-3:] == ["campaign.launch", "campaign.pause", "campaign.cancel"]


def test_a_viewer_cannot_move_a_campaign(app, client, auth, sandbox, template):
    campaign_id, _ = prepared_campaign(app, sandbox, template, 2)
    auth.login("viewer")
    assert client.post(f"/campaigns/{campaign_id}/launch", data={"confirm": "yes"}).status_code == 403
    assert campaign(app, campaign_id).state == CampaignState.draft
