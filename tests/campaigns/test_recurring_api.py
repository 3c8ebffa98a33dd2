"""``POST /api/v1/campaigns`` with a ``schedule``: a recurring campaign, its runs, and 422 naming the field."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from dashboard.campaigns import services
from tests.campaigns.test_api import body


@pytest.mark.parametrize(
    "schedule,field",
    [
        ({"repeat": "cron", "cron": "0 25 * * *"}, "schedule.cron"),
        ({"repeat": "cron", "cron": "0 9 * *"}, "schedule.cron"),
        ({"repeat": "cron", "cron": "*/5 * * * *"}, "schedule.cron"),
        ({"repeat": "hourly", "time": "09:00"}, "schedule.repeat"),
        ({"repeat": "daily", "time": "9:00"}, "schedule.time"),
        ({"repeat": "weekly", "time": "09:00", "weekdays": [0]}, "schedule.weekdays"),
        ({"repeat": "weekly", "time": "09:00", "weekdays": []}, "schedule.weekdays"),
        ({"repeat": "monthly", "time": "09:00", "day": 32}, "schedule.day"),
        ({"repeat": "daily", "time": "09:00", "cron": "0 9 * * *"}, "schedule.cron"),
    ],
)
def test_a_bad_schedule_is_422_naming_the_field_and_writes_nothing(
    client, key, audience, template, schedule, field
):
    segment_id, _ = audience
    answer = client.post("/api/v1/campaigns", json=body(template, segment_id, schedule=schedule), headers=key)
    assert answer.status_code == 422, answer.json
    assert answer.json["error"]["field"] == field
    assert answer.json["error"]["code"] == "invalid_field"
    assert client.get("/api/v1/campaigns/1", headers=key).status_code == 404


def test_a_schedule_with_scheduled_at_is_refused(client, key, audience, template):
    segment_id, _ = audience
    answer = client.post(
        "/api/v1/campaigns",
        json=body(
            template,
            segment_id,
            schedule={"repeat": "daily", "time": "09:00"},
            scheduled_at="2030-01-01T09:00:00+08:00",
        ),
        headers=key,
    )
    assert answer.status_code == 422 and answer.json["error"]["field"] == "scheduled_at"


def test_a_recurring_campaign_over_the_api(app, client, key, audience, template):
    segment_id, openids = audience
    schedule = {"repeat": "weekly", "time": "09:30", "weekdays": [5, 1, 3.0]}
    created = client.post(
        "/api/v1/campaigns", json=body(template, segment_id, schedule=schedule), headers=key
    )
    assert created.status_code == 201, created.json
    campaign = created.json
    assert campaign["schedule"] == {"repeat": "weekly", "time": "09:30", "weekdays": [1, 3, 5]}
    assert campaign["timezone"] == "Asia/Shanghai" and campaign["parent_id"] is None
    url = f"/api/v1/campaigns/{campaign['id']}"
    launched = client.post(f"{url}/launch", headers=key)
    assert launched.status_code == 200 and launched.json["state"] == "scheduled", launched.json
    following = datetime.fromisoformat(launched.json["next_occurrence_at"])
    assert following.astimezone(UTC).strftime("%H:%M") == "01:30"  # 09:30 in Shanghai
    assert following.isoweekday() in (1, 3, 5)
    with app.app_context():
        services.supervise(following.replace(second=5))
    runs = client.get(f"{url}/runs", headers=key).json["runs"]
    assert len(runs) == 1 and runs[0]["parent_id"] == campaign["id"]
    assert runs[0]["state"] == "running" and runs[0]["counts"]["recipients"] == len(openids)
    assert datetime.fromisoformat(runs[0]["occurrence_at"]) == following
    paused = client.post(f"{url}/pause", headers=key).json
    assert paused["state"] == "paused" and paused["next_occurrence_at"] is None
    resumed = client.post(f"{url}/resume", headers=key).json
    assert resumed["state"] == "scheduled" and resumed["next_occurrence_at"] is not None
    assert client.post(f"{url}/cancel", headers=key).json["state"] == "cancelled"
