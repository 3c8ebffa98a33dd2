"""Setting up campaigns for tests: users granted in both ledgers, a segment of them, a draft campaign."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from dashboard.campaigns import recurring, services
from dashboard.extensions import db
from dashboard.models import Delivery
from dashboard.models.campaign import Campaign
from dashboard.models.segment import Segment
from tests.api.live import mp_overrides
from tests.dispatch.helpers import add_user, grant, register
from tests.sandbox_api import SandboxApi, example_data

NEW_YORK = ZoneInfo("America/New_York")


def new_york_overrides(sandbox) -> dict[str, Any]:
    """The scheduler tests' ``config_overrides``: the mini-program on the sandbox, the wall clock of New
    York (its offset changes in March and November), an occurrence at most an hour late still run."""
    return {**mp_overrides(sandbox), "TIMEZONE": "America/New_York", "RECURRING_MAX_LATENESS_MINUTES": 60}


def local(*args: int) -> datetime:
    """A wall-clock time in New York, as the aware UTC instant."""
    return datetime(*args, tzinfo=NEW_YORK).astimezone(UTC)


@pytest.fixture(autouse=True)
def no_scheduler_failure(monkeypatch):
    """A scheduler pass that fails for one campaign logs it and goes on: here any such failure (a lock
    timeout, a unique violation the ON CONFLICT should have absorbed...) fails the test. Autouse in the
    modules that import it."""
    failures: list[str] = []
    monkeypatch.setattr(recurring.log, "exception", lambda message, *args: failures.append(message % args))
    yield
    assert failures == []


def runs(app, parent_id: int) -> list[Campaign]:
    """A recurring campaign's or a date reminder's runs, in the order of their occurrence."""
    with app.app_context():
        rows = db.session.scalars(
            sa.select(Campaign).where(Campaign.parent_id == parent_id).order_by(Campaign.occurrence_at)
        ).all()
        for row in rows:
            db.session.expunge(row)
        return list(rows)


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
