"""Reach: of a segment's users, how many a campaign of one template could message now, and why not the rest."""

from __future__ import annotations

import pytest

from dashboard.audience.segments import UNREACHABLE_REASONS, reach, validate_filter
from dashboard.extensions import db
from dashboard.grants.services import has_live_grant
from dashboard.models.catalog import MessageTemplate, TemplateKind
from tests.segments.conftest import NOW, T_LONG, T_ONE, oracle


def add_template(template_id: str, kind: TemplateKind, budget: int) -> None:
    db.session.add(
        MessageTemplate(
            template_id=template_id,
            title="t",
            kind=kind,
            content="{{thing1.DATA}}",
            source="sync",
            credit_budget=budget,
        )
    )
    db.session.commit()


def expected_reason(person, template_id: str, budget: int) -> str | None:
    """The oracle: the switch and "always" settings first, then the ledger's own rule (``has_live_grant``)."""
    if person.main_switch is False:
        return "main_switch_off"
    if (person.item_settings or {}).get(template_id) in ("reject", "ban"):
        return "always_reject"
    if has_live_grant(person.id, template_id, keep=budget):
        return None
    if 0 < person.credits.get(template_id, 0) <= budget:
        return "budget"
    return "no_credit"


@pytest.mark.parametrize(
    "template_id,kind,budget",
    [
        (T_ONE, TemplateKind.one_time, 0),
        (T_ONE, TemplateKind.one_time, 2),
        (T_LONG, TemplateKind.long_term, 0),
    ],
)
@pytest.mark.parametrize("doc", [{"all": []}, {"tag": "vip"}, {"not": {"has_unionid": True}}], ids=str)
def test_reach_counts_each_reason_like_the_ledger(app, people, template_id, kind, budget, doc):
    with app.app_context():
        add_template(template_id, kind, budget)
        members = [p for p in people if oracle(doc, p)]
        reasons = [expected_reason(p, template_id, budget) for p in members]
        result = reach(validate_filter(doc), template_id, NOW)
        assert result.total == len(members)
        assert result.reachable == reasons.count(None)
        assert result.unreachable == {name: reasons.count(name) for name in UNREACHABLE_REASONS}
        assert result.reachable + sum(result.unreachable.values()) == result.total


def test_the_budget_holds_credits_back_only_when_set(app, people):
    with app.app_context():
        everyone = validate_filter({"all": []})
        add_template(T_ONE, TemplateKind.one_time, 0)
        free = reach(everyone, T_ONE, NOW)
        assert free.unreachable["budget"] == 0
        db.session.query(MessageTemplate).update({"credit_budget": 2})
        db.session.commit()
        held = reach(everyone, T_ONE, NOW)
        assert held.unreachable["budget"] > 0
        assert held.reachable == free.reachable - held.unreachable["budget"]
        assert held.unreachable["always_reject"] > 0 and held.unreachable["main_switch_off"] > 0


def test_an_unknown_template_reaches_nobody(app, people):
    with app.app_context():
        result = reach(validate_filter({"all": []}), "TMPL_unknown", NOW)
        assert result.reachable == 0 and result.total == len(people)
