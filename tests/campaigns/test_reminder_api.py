"""``POST /api/v1/campaigns`` with a ``reminder``: a date reminder (segment optional), its runs, and 4xx naming
the field, nothing written."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from dashboard.extensions import db
from dashboard.models.campaign import Campaign
from tests.api.live import mp_overrides
from tests.campaigns.helpers import fixed_data, granted_users, segment_of_grantees
from tests.campaigns.test_reminders import KEY, declare, launched_reminder, local, runs, set_dates, tick


@pytest.fixture
def config_overrides(sandbox):
    return {**mp_overrides(sandbox), "TIMEZONE": "America/New_York"}


def reminder(template: dict, **change) -> dict:
    steps = [
        {"offset_days": -7, "data": fixed_data(template)},
        {"offset_days": -1, "data": fixed_data(template)},
        {"offset_days": 0, "data": fixed_data(template)},
    ]
    return {"attribute": KEY, "time": "09:30", "steps": steps, **change}


def test_a_reminder_is_created_without_a_segment_and_read_back(app, client, key, template, sandbox):
    declare(app)
    granted_users(app, sandbox, template, [])
    answer = client.post(
        "/api/v1/campaigns",
        json={"name": "Expiry", "template_id": template["priTmplId"], "reminder": reminder(template)},
        headers=key,
    )
    assert answer.status_code == 201, answer.json
    made = answer.json
    assert made["segment_id"] is None and made["schedule"] == {"repeat": "daily", "time": "09:30"}
    assert made["reminder"]["attribute"] == KEY
    assert [s["offset_days"] for s in made["reminder"]["steps"]] == [-7, -1, 0]
    assert client.get(f"/api/v1/campaigns/{made['id']}", headers=key).json["reminder"] == made["reminder"]


def test_a_reminder_within_a_segment_sends_only_to_its_users(app, sandbox, template):
    declare(app)
    inside, outside = sandbox.openids_all()[:2]
    granted_users(app, sandbox, template, [inside])
    segment_id = segment_of_grantees(app, template)
    set_dates(app, {inside: "2026-12-02", outside: "2026-12-02"})
    parent_id = launched_reminder(app, template, now=local(2026, 12, 1, 8), segment_id=segment_id)
    tick(app, local(2026, 12, 1, 9, 0, 5))
    (run,) = runs(app, parent_id)
    assert run.recipients == 1 and run.segment_id == segment_id


@pytest.mark.parametrize(
    "change,status,field",
    [
        ({"attribute": "unknown_key"}, 404, "reminder.attribute"),
        ({"time": "9:30"}, 422, "reminder.time"),
        ({"steps": []}, 422, "reminder.steps"),
        ({"steps": [{"offset_days": 0}] * 4}, 422, "reminder.steps"),
        ({"steps": [{"offset_days": 400}]}, 422, "reminder.steps[0].offset_days"),
        ({"steps": [{"offset_days": 0}, {"offset_days": 0}]}, 422, "reminder.steps[1].offset_days"),
        (
            {"steps": [{"offset_days": 0, "data": {"nokey": {"value": "x"}}}]},
            422,
            "reminder.steps[0].data.nokey",
        ),
        ({"steps": [{"offset_days": 0, "data": {"k": "x"}}]}, 422, "reminder.steps[0].data.k"),
        ({"every": "day"}, 422, "reminder.every"),
    ],
)
def test_a_bad_reminder_is_refused_naming_the_field_and_writes_nothing(
    app, client, key, template, sandbox, change, status, field
):
    declare(app)
    granted_users(app, sandbox, template, [])
    answer = client.post(
        "/api/v1/campaigns",
        json={
            "name": "Expiry",
            "template_id": template["priTmplId"],
            "reminder": reminder(template, **change),
        },
        headers=key,
    )
    assert answer.status_code == status, answer.json
    assert answer.json["error"]["field"] == field
    assert client.get("/api/v1/campaigns/1", headers=key).status_code == 404


def test_a_reminder_takes_no_schedule_nor_scheduled_at_and_a_campaign_without_it_needs_a_segment(
    app, client, key, template, sandbox
):
    declare(app)
    granted_users(app, sandbox, template, [])
    base = {"name": "Expiry", "template_id": template["priTmplId"]}
    for extra, field in (
        ({"schedule": {"repeat": "daily", "time": "09:00"}}, "schedule"),
        ({"scheduled_at": "2030-01-01T09:00:00+08:00"}, "scheduled_at"),
    ):
        answer = client.post(
            "/api/v1/campaigns", json={**base, "reminder": reminder(template), **extra}, headers=key
        )
        assert answer.status_code == 422 and answer.json["error"]["field"] == field
    answer = client.post("/api/v1/campaigns", json={**base, "data": fixed_data(template)}, headers=key)
    assert answer.status_code == 422 and answer.json["error"]["field"] == "segment_id"
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Campaign)) == 0
