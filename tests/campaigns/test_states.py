"""The state machine: one table of moves, refused moves and edits say why, a move happens once."""

from __future__ import annotations

import itertools
import threading

import pytest

from dashboard.campaigns import services, states
from dashboard.campaigns.states import InvalidTransition
from dashboard.extensions import db
from dashboard.models.campaign import Campaign, CampaignState
from tests.campaigns.helpers import campaign, campaign_states, prepared_campaign

S = CampaignState
EXPECTED = {
    (S.draft, S.scheduled),
    (S.draft, S.running),
    (S.scheduled, S.running),
    (S.running, S.completed),
    (S.running, S.paused),
    (S.paused, S.running),
    (S.completed, S.running),  # retrying transient failures (campaigns.retry)
    (S.draft, S.cancelled),
    (S.scheduled, S.cancelled),
    (S.running, S.cancelled),
    (S.paused, S.cancelled),
}


def test_the_table_allows_exactly_the_products_moves():
    moves = {(a, b) for a, b in itertools.product(S, S) if states.allowed(a, b)}
    assert moves == EXPECTED


@pytest.mark.parametrize("source,target", sorted(set(itertools.product(S, S)) - EXPECTED))
def test_a_forbidden_move_is_refused_and_changes_nothing(app, source, target):
    with app.app_context():
        row = Campaign(name="c", template_id="t", state=source)
        db.session.add(row)
        db.session.commit()
        with pytest.raises(InvalidTransition) as refused:
            states.move(db.session, row.id, target)
        db.session.rollback()
        assert db.session.get(Campaign, row.id, populate_existing=True).state == source
        assert f"cannot become {target.value}" in refused.value.message


def test_only_a_draft_and_a_paused_campaigns_values_and_rate_may_be_edited(app, sandbox, template):
    campaign_id, _ = prepared_campaign(app, sandbox, template, 2)
    with app.app_context():
        row = db.session.get(Campaign, campaign_id)
        services.update_campaign(row, {"name": "Renamed draft"})
        services.launch(campaign_id)
        row = db.session.get(Campaign, campaign_id)
        with pytest.raises(InvalidTransition) as refused:
            services.update_campaign(row, {"rate_per_second": 5})
        assert "already running" in refused.value.message and "Only a draft" in refused.value.message
        services.pause(campaign_id)
        row = db.session.get(Campaign, campaign_id)
        services.update_campaign(row, {"rate_per_second": 5})
        with pytest.raises(InvalidTransition) as refused:
            services.update_campaign(row, {"segment_id": row.segment_id, "rate_per_second": 6})
        assert "only its values and its rate" in refused.value.message
    found = campaign(app, campaign_id)
    assert (found.name, found.rate_per_second, found.state) == ("Renamed draft", 5, S.paused)


def test_two_launches_at_once_start_one_run(app, sandbox, template):
    campaign_id, openids = prepared_campaign(app, sandbox, template, 30)
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def launch():
        with app.app_context():
            barrier.wait()
            try:
                services.launch(campaign_id)
                outcomes.append("started")
            except InvalidTransition as refused:
                outcomes.append(refused.message)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=launch) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(outcomes)[0].startswith("The campaign is already running"), outcomes
    assert sorted(outcomes)[1] == "started", outcomes
    assert campaign_states(app, campaign_id) == {"pending": len(openids)}
    assert campaign(app, campaign_id).recipients == len(openids)
