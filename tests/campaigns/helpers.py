"""Setting up campaigns for tests: users granted in both ledgers, a segment of them, a draft campaign."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from dashboard.campaigns import services
from dashboard.extensions import db
from dashboard.models import Delivery
from dashboard.models.campaign import Campaign
from dashboard.models.segment import Segment
from tests.dispatch.helpers import add_user, grant, register
from tests.sandbox_api import SandboxApi, example_data


def granted_users(app, sandbox: SandboxApi, template: dict, openids: list[str]) -> None:
    """Users who accepted ``template`` once, in WeChat's books (the sandbox) and ours."""
    with app.app_context():
        register(template)
        for openid in openids:
            sandbox.grant(openid, template["priTmplId"])
            grant(add_user(openid), template["priTmplId"])
        db.session.commit()


def segment_of_grantees(app, template: dict, name: str = "grantees") -> int:
    with app.app_context():
        segment = Segment(
            name=name, filter={"grant": {"template_id": template["priTmplId"], "min_credits": 1}}
        )
        db.session.add(segment)
        db.session.commit()
        return segment.id


def fixed_data(template: dict) -> dict[str, dict[str, str]]:
    return {key: {"value": value} for key, value in example_data(template).items()}


def draft(app, template: dict, segment_id: int, **fields: Any) -> int:
    with app.app_context():
        campaign = services.create_campaign(
            {
                "name": fields.pop("name", "Spring sale"),
                "template_id": template["priTmplId"],
                "segment_id": segment_id,
                "data": fields.pop("data", None) or fixed_data(template),
                **fields,
            }
        )
        return campaign.id


def prepared_campaign(
    app, sandbox: SandboxApi, template: dict, count: int, **fields: Any
) -> tuple[int, list[str]]:
    """``count`` granted users, a segment of them, and a draft campaign to them."""
    openids = sandbox.openids_all()[:count]
    assert len(openids) == count
    granted_users(app, sandbox, template, openids)
    return draft(app, template, segment_of_grantees(app, template), **fields), openids


def campaign_states(app, campaign_id: int) -> dict[str, int]:
    with app.app_context():
        rows = db.session.execute(
            sa.select(Delivery.state, sa.func.count())
            .where(Delivery.campaign_id == campaign_id)
            .group_by(Delivery.state)
        ).all()
        return {state.value: count for state, count in rows}


def campaign(app, campaign_id: int) -> Campaign:
    with app.app_context():
        found = db.session.get(Campaign, campaign_id)
        db.session.expunge(found)
        return found
