"""A scheduled campaign wakes the worker at its start time, not at the next minute tick."""

from __future__ import annotations

from datetime import timedelta

from dashboard.campaigns import services
from dashboard.dispatch.tasks import MAX_WAKE_DELAY, _schedule_wake_up
from dashboard.models import utcnow
from dashboard.models.campaign import CampaignState
from tests.campaigns.helpers import campaign, prepared_campaign


def _wake_ups(app) -> list[float]:
    """Seconds from now to each kick queued for later (the consumer moves them to its schedule)."""
    huey = app.extensions["dispatch_tasks"].huey
    now = utcnow().replace(tzinfo=None)  # huey keeps naive UTC times
    return sorted((task.eta - now).total_seconds() for task in huey.pending() if task.eta)


def test_a_campaign_scheduled_twenty_seconds_ahead_is_woken_for_then(app, sandbox, template):
    campaign_id, _ = prepared_campaign(
        app, sandbox, template, 3, scheduled_at=utcnow() + timedelta(seconds=20)
    )
    with app.app_context():
        huey = app.extensions["dispatch_tasks"].huey
        huey.flush()
        services.launch(campaign_id)
        assert campaign(app, campaign_id).state == CampaignState.scheduled
        _schedule_wake_up(app)
        wake_ups = _wake_ups(app)
    assert len(wake_ups) == 1 and 15 < wake_ups[0] <= 20, wake_ups


def test_a_campaign_scheduled_tomorrow_is_left_to_the_capped_wake_up(app, sandbox, template):
    campaign_id, _ = prepared_campaign(app, sandbox, template, 3, scheduled_at=utcnow() + timedelta(days=1))
    with app.app_context():
        app.extensions["dispatch_tasks"].huey.flush()
        services.launch(campaign_id)
        _schedule_wake_up(app)
        wake_ups = _wake_ups(app)
    assert len(wake_ups) == 1 and wake_ups[0] <= MAX_WAKE_DELAY.total_seconds()
