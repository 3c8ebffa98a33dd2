"""Date reminders: each step once per user and value of the date (a rerun of the day sends nothing twice, a
moved date makes the step due again), the date in a keyword through ``|date``, users without a credit
counted in the forecast and skipped at send, the forecast per day and step. The clock is frozen: every call
takes ``now``."""

from __future__ import annotations

from datetime import date, datetime

import pytest
import sqlalchemy as sa

from dashboard.campaigns import recurring, reminders, services, values
from dashboard.extensions import db
from dashboard.models import Delivery, WechatUser
from dashboard.models.campaign import Campaign, CampaignState
from dashboard.models.catalog import MessageTemplate
from dashboard.models.reminder import ReminderSent
from dashboard.models.user_attribute import UserAttribute
from tests.campaigns.helpers import (
    NEW_YORK,
    granted_users,
    local,
    new_york_overrides,
    no_scheduler_failure,  # noqa: F401 (an autouse fixture)
    runs,
)
from tests.dispatch.helpers import add_user, grant, register
from tests.sandbox_api import example_data

S = CampaignState
KEY = "membership_expires_at"
OFFSETS = (-7, -1, 0)


@pytest.fixture
def config_overrides(sandbox):
    return new_york_overrides(sandbox)


def tick(app, now: datetime) -> None:
    with app.app_context():
        services.supervise(now)


def specs(app, template: dict) -> list[dict]:
    with app.app_context():
        register(template)
        db.session.commit()
        row = db.session.scalar(
            sa.select(MessageTemplate).where(MessageTemplate.template_id == template["priTmplId"])
        )
        return row.keyword_specs


def step_data(app, template: dict, label: str) -> dict:
    """Valid values for every keyword; the first ``thing`` says which step, a date keyword takes the date."""
    data = {}
    marked = False
    examples = example_data(template)
    for spec in specs(app, template):
        value = {"value": examples[spec["key"]]}
        if spec["type"] == "thing" and not marked:
            value, marked = {"value": label}, True
        elif spec["type"] in ("date", "time"):
            value = {"value": f"{{{{user.attributes.{KEY}|date}}}} 09:00", "fallback": "2026-01-01 09:00"}
        data[spec["key"]] = value
    return data


def declare(app, kind: str = "date") -> None:
    with app.app_context():
        db.session.add(UserAttribute(key=KEY, type=kind, label="Membership expires"))
        db.session.commit()


def set_dates(app, dates: dict[str, str]) -> None:
    with app.app_context():
        for openid, value in dates.items():
            user = db.session.scalar(sa.select(WechatUser).where(WechatUser.openid == openid))
            if user is None:
                user = db.session.get(WechatUser, add_user(openid))
            user.attributes = {**(user.attributes or {}), KEY: value}
        db.session.commit()


def reminder_body(app, template: dict) -> dict:
    return {
        "attribute": KEY,
        "time": "09:00",
        "steps": [
            {"offset_days": offset, "data": step_data(app, template, f"step {n}")}
            for n, offset in enumerate(OFFSETS)
        ],
    }


def launched_reminder(app, template: dict, now: datetime, segment_id: int | None = None) -> int:
    body = reminder_body(app, template)
    with app.app_context():
        campaign = services.create_campaign(
            {
                "name": "Membership expires",
                "template_id": template["priTmplId"],
                "segment_id": segment_id,
                "reminder": body,
            }
        )
        assert campaign.schedule == {"repeat": "daily", "time": "09:00"}
        assert services.launch(campaign.id, now=now).state == S.scheduled
        return campaign.id


def sent_steps(app, parent_id: int) -> list[tuple[str, int, str]]:
    """(openid, step, date value) of every reminder_sent row, in order."""
    with app.app_context():
        rows = db.session.execute(
            sa.select(WechatUser.openid, ReminderSent.step, ReminderSent.date_value)
            .join(WechatUser, WechatUser.id == ReminderSent.user_id)
            .where(ReminderSent.campaign_id == parent_id)
            .order_by(ReminderSent.id)
        ).all()
        return [tuple(row) for row in rows]


def deliveries(app, run_id: int) -> dict[str, dict]:
    with app.app_context():
        rows = db.session.execute(
            sa.select(Delivery.openid, Delivery.data, Delivery.state, Delivery.reason).where(
                Delivery.campaign_id == run_id
            )
        ).all()
        return {row.openid: row for row in rows}


def test_three_steps_each_once_per_user_and_again_after_the_date_moves(app, sandbox, template):
    declare(app)
    a, b, c, d = sandbox.openids_all()[:4]
    granted_users(app, sandbox, template, [a, b, c, d])
    set_dates(app, {a: "2026-12-08", b: "2026-12-02", c: "2026-12-01", d: "2027-01-15"})
    parent_id = launched_reminder(app, template, now=local(2026, 12, 1, 8))
    tick(app, local(2026, 12, 1, 9, 0, 5))
    (first,) = runs(app, parent_id)
    assert first.state == S.running and first.recipients == 3
    sent = deliveries(app, first.id)
    assert set(sent) == {a, b, c}
    labels = [key for key, v in step_data(app, template, "x").items() if v["value"] == "x"]
    assert labels  # each user has their step's values
    assert [sent[o].data[labels[0]] for o in (a, b, c)] == ["step 0", "step 1", "step 2"]
    dated = [s["key"] for s in specs(app, template) if s["type"] in ("date", "time")]
    assert dated  # the date keyword takes the user's date
    assert sent[a].data[dated[0]] == "2026-12-08 09:00"
    # The day run again (a second run of the same local day): nothing is sent twice.
    with app.app_context():
        parent = db.session.get(Campaign, parent_id)
        again = recurring._run_row(parent, local(2026, 12, 1, 10), local(2026, 12, 1, 10), S.scheduled)
        assert recurring.insert_runs([again]) == ["scheduled"]
        db.session.commit()
    tick(app, local(2026, 12, 1, 10, 0, 5))
    rerun = runs(app, parent_id)[-1]
    assert rerun.state == S.completed and rerun.recipients == 0 and deliveries(app, rerun.id) == {}
    # Day by day to the 8th: a gets step 1 on the 7th and step 2 on the 8th; b step 2 on the 2nd.
    for day in range(2, 9):
        tick(app, local(2026, 12, day, 9, 0, 5))
    assert sorted(sent_steps(app, parent_id)) == sorted(
        [
            (a, 0, "2026-12-08"),
            (a, 1, "2026-12-08"),
            (a, 2, "2026-12-08"),
            (b, 1, "2026-12-02"),
            (b, 2, "2026-12-02"),
            (c, 2, "2026-12-01"),
        ]
    )
    per_day = {r.occurrence_at.astimezone(NEW_YORK).day: r.recipients for r in runs(app, parent_id)[2:]}
    assert per_day == {2: 1, 3: 0, 4: 0, 5: 0, 6: 0, 7: 1, 8: 1}
    # a renews: the date moves to the 20th, and the steps are due again for the new value (once).
    set_dates(app, {a: "2026-12-20"})
    for day in (13, 13, 19, 20):
        tick(app, local(2026, 12, day, 9, 0, 5))
    with app.app_context():
        parent = db.session.get(Campaign, parent_id)
        extra = recurring._run_row(parent, local(2026, 12, 13, 11), local(2026, 12, 13, 11), S.scheduled)
        recurring.insert_runs([extra])
        db.session.commit()
    tick(app, local(2026, 12, 13, 11, 0, 5))
    assert [row for row in sent_steps(app, parent_id) if row[2] == "2026-12-20"] == [
        (a, 0, "2026-12-20"),
        (a, 1, "2026-12-20"),
        (a, 2, "2026-12-20"),
    ]
    (second,) = [r for r in runs(app, parent_id) if r.occurrence_at == local(2026, 12, 13, 11)]
    assert second.recipients == 0  # the second run on the 13th sent nothing again


def test_a_user_without_credit_is_forecast_as_granting_again_and_skipped_at_send(
    app, sandbox, template, dispatcher
):
    declare(app)
    granted, ungranted = sandbox.openids_all()[:2]
    granted_users(app, sandbox, template, [granted])
    set_dates(app, {granted: "2026-12-08", ungranted: "2026-12-08"})
    parent_id = launched_reminder(app, template, now=local(2026, 12, 1, 8))
    with app.app_context():
        parent = db.session.get(Campaign, parent_id)
        rows = reminders.forecast(parent, local(2026, 12, 1, 8))
        first = [r for r in rows if r.day == date(2026, 12, 1)]
        assert [(r.step, r.date_value, r.due, r.live, r.grant_again) for r in first] == [
            (0, "2026-12-08", 2, 1, 1),
            (1, "2026-12-02", 0, 0, 0),
            (2, "2026-12-01", 0, 0, 0),
        ]
    tick(app, local(2026, 12, 1, 9, 0, 5))
    (run,) = runs(app, parent_id)
    assert run.recipients == 2
    dispatcher.drain(20)
    sent = deliveries(app, run.id)
    assert sent[granted].state.value == "sent"
    assert sent[ungranted].state.value == "skipped" and sent[ungranted].reason == "no_grant"
    assert [m["openid"] for m in sandbox.messages_all() if m["errcode"] == 0] == [granted]


def test_forecast_counts_per_day_and_step_in_the_next_fourteen_days(app, sandbox, template):
    declare(app, "datetime")
    users = sandbox.openids_all()[:5]
    granted_users(app, sandbox, template, users[:3])
    with app.app_context():  # users[0] holds three one-time credits, the others one
        first = db.session.scalar(sa.select(WechatUser.id).where(WechatUser.openid == users[0]))
        grant(first, template["priTmplId"], times=2)
        db.session.commit()
    # Date-times are stored in TIMEZONE (the users API converts them): the first ten characters are the day.
    set_dates(
        app,
        {
            users[0]: "2026-12-10T23:30:00-05:00",
            users[1]: "2026-12-10T08:00:00-05:00",
            users[2]: "2026-12-05T12:00:00-05:00",
            users[3]: "2026-12-10T10:00:00-05:00",  # no credit
            users[4]: "2027-03-01T10:00:00-05:00",  # beyond the horizon
        },
    )
    parent_id = launched_reminder(app, template, now=local(2026, 12, 1, 8))
    with app.app_context():
        parent = db.session.get(Campaign, parent_id)
        rows = reminders.forecast(parent, local(2026, 12, 1, 8))
        assert len(rows) == 14 * 3
        found = {(r.day.day, r.offset_days): (r.due, r.live, r.grant_again) for r in rows if r.due}
        # (due, with a credit then, must grant again): a one-time credit is spent by each earlier step
        # still to come, so the 10th's later steps are live only for users[0] and its three credits.
        assert found == {
            (3, -7): (3, 2, 1),  # the 10th, seven days before: users[0], users[1]; users[3] has none
            (4, -1): (1, 1, 0),  # the 5th, one day before (its -7 step was before the launch)
            (5, 0): (1, 0, 1),  # the 5th, on the day: users[2]'s one credit went on the 4th
            (9, -1): (3, 1, 2),
            (10, 0): (3, 1, 2),
        }
        statement, key = reminders.export_statement(parent, local(2026, 12, 1, 8))
        exported = db.session.execute(statement.order_by(key)).all()
        assert [(row.openid, row.date_value, row.reason) for row in exported] == [
            (users[1], "2026-12-10", "too_few_credits"),
            (users[2], "2026-12-05", "too_few_credits"),
            (users[3], "2026-12-10", "no_credit"),
        ]
    # Once a step is sent for a value, it is no longer due.
    tick(app, local(2026, 12, 3, 9, 0, 5))
    with app.app_context():
        parent = db.session.get(Campaign, parent_id)
        rows = reminders.forecast(parent, local(2026, 12, 3, 10))
        assert [(r.day.day, r.offset_days, r.due) for r in rows if r.due and r.day.day == 3] == []


def test_the_date_filter_writes_a_date_or_date_time_as_wechat_takes_it():
    source = values.KeywordSource("date1", "date", f"{{{{user.attributes.{KEY}|date}}}}", "-", (), "reject")
    assert values.fill([source], {"attributes": {KEY: "2026-12-31"}}) == {"date1": "2026-12-31"}
    assert values.fill([source], {"attributes": {KEY: "2027-01-01T07:59:59+08:00"}}) == {
        "date1": "2027-01-01 07:59"
    }
    time_source = values.KeywordSource("time2", "time", source.value, None, (), "reject")
    assert values.fill([time_source], {"attributes": {KEY: "2027-01-01T07:59:59+08:00"}}) == {
        "time2": "2027-01-01 07:59"
    }
    assert values.fill([source], {"attributes": {KEY: "soon"}}) == "date1"  # not a date: refused
    assert values.variable_known(f"attributes.{KEY}|date")
    assert not values.variable_known(f"attributes.{KEY}|upper")


@pytest.mark.parametrize(
    "change,field",
    [
        ({"attribute": "nope"}, "reminder.attribute"),
        ({"time": "25:00"}, "reminder.time"),
        ({"steps": []}, "reminder.steps"),
        ({"steps": [{"offset_days": -1, "data": {}}] * 4}, "reminder.steps"),
        ({"steps": [{"offset_days": "x", "data": {}}]}, "reminder.steps[0].offset_days"),
        (
            {"steps": [{"offset_days": 1, "data": {}}, {"offset_days": 1, "data": {}}]},
            "reminder.steps[1].offset_days",
        ),
        ({"steps": [{"offset_days": 1, "data": {"nokey": {"value": "x"}}}]}, "reminder.steps[0].data.nokey"),
        ({"extra": 1}, "reminder.extra"),
    ],
)
def test_a_bad_reminder_is_refused_naming_the_field(app, sandbox, template, change, field):
    declare(app)
    body = {**reminder_body(app, template), **change}
    with app.app_context():
        with pytest.raises(services.CampaignError) as refused:
            services.create_campaign({"name": "R", "template_id": template["priTmplId"], "reminder": body})
        status = 404 if field == "reminder.attribute" else 422  # not declared: like an unknown segment
        assert refused.value.status == status and refused.value.field == field
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Campaign)) == 0
