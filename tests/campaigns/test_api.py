"""``/api/v1/campaigns``: the shapes the issue names, over real HTTP handling and a real database."""

from __future__ import annotations

from datetime import timedelta

import pytest

from dashboard.models.types import utcnow
from tests.campaigns.helpers import fixed_data


def body(template, segment_id, **extra):
    return {
        "name": "Winter sale",
        "template_id": template["priTmplId"],
        "segment_id": segment_id,
        "data": fixed_data(template),
        **extra,
    }


def test_compose_launch_pause_resume_cancel_and_read(client, key, audience, template):
    segment_id, openids = audience
    created = client.post(
        "/api/v1/campaigns", json=body(template, segment_id, rate_per_second=1), headers=key
    )
    assert created.status_code == 201, created.json
    campaign = created.json
    assert campaign["state"] == "draft" and campaign["counts"]["recipients"] == 0
    url = f"/api/v1/campaigns/{campaign['id']}"

    launched = client.post(f"{url}/launch", headers=key)
    assert launched.status_code == 200 and launched.json["state"] == "running"
    again = client.post(f"{url}/launch", headers=key)
    assert again.status_code == 409
    assert again.json["error"]["code"] == "invalid_state"
    assert "already running" in again.json["error"]["message"]

    paused = client.post(f"{url}/pause", headers=key)
    assert paused.json["state"] == "paused" and paused.json["pause_reason"] == "Paused by an operator."
    assert client.post(f"{url}/pause", headers=key).status_code == 409
    resumed = client.post(f"{url}/resume", headers=key)
    assert resumed.json["state"] == "running" and resumed.json["pause_reason"] is None
    cancelled = client.post(f"{url}/cancel", headers=key)
    assert cancelled.json["state"] == "cancelled"
    assert client.post(f"{url}/resume", headers=key).json["error"]["code"] == "invalid_state"

    read = client.get(url, headers=key)
    assert read.status_code == 200
    counts = read.json["counts"]
    assert set(counts) == {
        "recipients",
        "pending",
        "sent",
        "failed",
        "skipped",
        "unknown",
        "opens",
        "sent_by_channel",
    }
    assert counts["recipients"] == len(openids)
    assert sum(counts[k] for k in ("pending", "sent", "failed", "skipped", "unknown")) == counts["recipients"]
    assert counts["skipped"] > 0


def test_a_campaign_scheduled_ahead_launches_as_scheduled(client, key, audience, template):
    segment_id, _ = audience
    ahead = (utcnow() + timedelta(hours=3)).astimezone().isoformat()
    created = client.post(
        "/api/v1/campaigns", json=body(template, segment_id, scheduled_at=ahead), headers=key
    )
    launched = client.post(f"/api/v1/campaigns/{created.json['id']}/launch", headers=key)
    assert launched.status_code == 200 and launched.json["state"] == "scheduled"
    assert launched.json["counts"]["recipients"] == 0


def test_a_value_that_can_never_pass_is_a_422_naming_the_keyword(client, key, audience, template):
    segment_id, _ = audience
    data = {**fixed_data(template), "thing2": {"value": "x" * 40}}  # thing: at most 20 characters
    refused = client.post("/api/v1/campaigns", json=body(template, segment_id, data=data), headers=key)
    assert refused.status_code == 422
    assert refused.json["error"]["field"] == "data.thing2" and "thing2" in refused.json["error"]["message"]
    unknown = client.post(
        "/api/v1/campaigns", json=body(template, segment_id, data={"thing99": {"value": "a"}}), headers=key
    )
    assert unknown.status_code == 422 and unknown.json["error"]["field"] == "data.thing99"


@pytest.mark.parametrize(
    "change,field",
    [
        ({"scheduled_at": "2026-12-24T09:00:00"}, "scheduled_at"),  # no offset
        ({"rate_per_second": 0}, "rate_per_second"),
        ({"quiet_hours": {"start": "25:00"}}, "quiet_hours.start"),
        ({"segment_id": "1"}, "segment_id"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_malformed_fields_are_422_naming_the_field(client, key, audience, template, change, field):
    segment_id, _ = audience
    refused = client.post("/api/v1/campaigns", json={**body(template, segment_id), **change}, headers=key)
    assert refused.status_code == 422 and refused.json["error"]["field"] == field


def test_the_campaigns_scope_is_required(client, runner, audience, template):
    result = runner.invoke(args=["create-api-key", "sender", "--scope", "send"])
    sender = {"Authorization": f"Bearer {result.output.strip().splitlines()[-1]}"}
    assert client.post("/api/v1/campaigns", json={}, headers=sender).status_code == 403
    assert client.get("/api/v1/campaigns/1").status_code == 401
    assert client.get("/api/v1/campaigns/999", headers=sender).json["error"]["code"] == "forbidden"
