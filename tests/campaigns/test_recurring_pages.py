"""Recurring campaigns in the console: the compose form's "Repeat" choice (a bad cron expression is a form
error on its field), the recurring campaign's page (schedule, next occurrence in the operator's zone, its
runs with their counts and links) and a run's page, in Chinese and English."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import flask_babel
import sqlalchemy as sa

from dashboard.campaigns import services
from dashboard.extensions import db
from dashboard.models.campaign import Campaign, CampaignState
from tests.campaigns.helpers import fixed_data, granted_users, segment_of_grantees
from tests.campaigns.test_compose import campaigns, form_for

S = CampaignState


def test_a_bad_cron_expression_is_a_form_error_on_its_field(app, client, auth, sandbox, template):
    granted_users(app, sandbox, template, sandbox.openids_all()[:1])
    segment_id = segment_of_grantees(app, template)
    auth.login("marketer")
    page = client.get("/campaigns/new").get_data(as_text=True)
    assert 'value="repeat"' in page and 'name="cron"' in page and 'name="weekdays"' in page
    for cron, words in (("0 25 * * *", "无法解析该 cron 表达式"), ("*/10 * * * *", "活动最多每小时重复一次")):
        refused = client.post(
            "/campaigns/new", data=form_for(template, segment_id, when="repeat", repeat="cron", cron=cron)
        )
        text = refused.get_data(as_text=True)
        assert refused.status_code == 200 and words in text
        assert text.index(words) > text.index('name="cron"')  # shown under the cron field
    no_day = client.post(
        "/campaigns/new", data=form_for(template, segment_id, when="repeat", repeat="weekly")
    )
    assert "请至少勾选一天" in no_day.get_data(as_text=True)
    assert campaigns(app) == []


def test_a_recurring_campaign_from_the_form_to_its_runs(app, client, auth, sandbox, template):
    openids = sandbox.openids_all()[:3]
    granted_users(app, sandbox, template, openids)
    segment_id = segment_of_grantees(app, template)
    auth.login("marketer")
    saved = client.post(
        "/campaigns/new",
        data={
            **form_for(template, segment_id, when="repeat", repeat="weekly", repeat_time="08:30"),
            "weekdays": ["1", "3", "5"],
        },
    )
    assert saved.status_code == 302, saved.get_data(as_text=True)[:2000]
    (created,) = campaigns(app)
    assert created.schedule == {"repeat": "weekly", "time": "08:30", "weekdays": [1, 3, 5]}
    edit = client.get(f"/campaigns/{created.id}/edit").get_data(as_text=True)
    assert 'value="08:30"' in edit and 'checked id="weekdays-2"' in edit

    client.post(f"/campaigns/{created.id}/launch", data={"confirm": "yes"})
    with app.app_context():
        parent = db.session.get(Campaign, created.id)
        assert parent.state == S.scheduled
        following = parent.next_occurrence_at
    assert following.astimezone(UTC).strftime("%H:%M") == "00:30"  # 08:30 in Shanghai
    page = client.get(f"/campaigns/{created.id}").get_data(as_text=True)
    local = following.astimezone(ZoneInfo("Asia/Shanghai"))
    assert "每周一、周三、周五 08:30" in page and local.strftime("%Y-%m-%d %H:%M") in page
    assert "还没有发送" in page and f"/campaigns/{created.id}/pause" in page
    assert f"/campaigns/{created.id}/launch" not in page and "campaign-counts" not in page

    with app.app_context():
        services.supervise(following.replace(second=5))
        run = db.session.scalar(sa.select(Campaign).where(Campaign.parent_id == created.id))
        run_id = run.id
    page = client.get(f"/campaigns/{created.id}").get_data(as_text=True)
    assert f'href="/campaigns/{run_id}"' in page and "各次发送" in page and "发送中" in page
    run_page = client.get(f"/campaigns/{run_id}").get_data(as_text=True)
    assert "重复活动的一次发送" in run_page and f'href="/campaigns/{created.id}"' in run_page
    assert "campaign-counts" in run_page
    listing = client.get("/campaigns/").get_data(as_text=True)
    assert f'href="/campaigns/{created.id}"' in listing and f'href="/campaigns/{run_id}"' not in listing

    client.post("/language/en", data={"next": "/"})
    english = client.get(f"/campaigns/{created.id}").get_data(as_text=True)
    assert "Every Mon, Wed, Fri at 08:30" in english and "Next occurrence" in english and "Runs" in english

    client.post(f"/campaigns/{created.id}/pause", data={"confirm": "yes"})
    paused = client.get(f"/campaigns/{created.id}").get_data(as_text=True)
    assert "none: the campaign is paused" in paused and f"/campaigns/{created.id}/resume" in paused
    client.post(f"/campaigns/{created.id}/cancel", data={"confirm": "yes"})
    with app.app_context():
        assert db.session.get(Campaign, created.id).state == S.cancelled
        assert db.session.get(Campaign, run_id).state == S.running  # the run under way goes on


def test_a_missed_run_says_why_in_the_operators_language(app, client, auth, sandbox, template):
    granted_users(app, sandbox, template, sandbox.openids_all()[:1])
    segment_id = segment_of_grantees(app, template)
    auth.login("viewer")
    with app.app_context():
        parent = services.create_campaign(
            {
                "name": "Daily tip",
                "template_id": template["priTmplId"],
                "segment_id": segment_id,
                "data": fixed_data(template),
                "schedule": {"repeat": "daily", "time": "09:00"},
            }
        )
        parent_id = parent.id
        services.launch(parent_id, now=datetime(2026, 12, 1, 0, tzinfo=UTC))  # 08:00 in Shanghai
        services.supervise(datetime(2026, 12, 1, 3, tzinfo=UTC))  # 11:00: two hours late
    page = client.get(f"/campaigns/{parent_id}").get_data(as_text=True)
    assert "已错过" in page and "计划时间后 60 分钟内没有运行中的发送进程" in page


def test_the_recurring_pages_in_chinese_have_no_untranslated_message_and_no_raw_code(
    app, client, auth, sandbox, template, request
):
    """The checks of tests/test_every_word_translated.py on the pages this feature adds: a recurring
    campaign in each of its states, its runs (one running, one missed for each reason), a run's page,
    and the compose form with each repeat chosen."""
    from tests.test_every_word_translated import RecordingTranslations, raw_codes

    misses: list[str] = []
    original = flask_babel.Domain.get_translations

    def recording(self):
        translations = original(self)
        return (
            RecordingTranslations(translations, misses)
            if str(flask_babel.get_locale()) == "zh"
            else translations
        )

    request.getfixturevalue("monkeypatch").setattr(flask_babel.Domain, "get_translations", recording)
    granted_users(app, sandbox, template, sandbox.openids_all()[:2])
    segment_id = segment_of_grantees(app, template)
    pages = ["/campaigns/", "/campaigns/new"]
    with app.app_context():
        ids = []
        for schedule in (
            {"repeat": "daily", "time": "09:00"},
            {"repeat": "weekly", "time": "09:00", "weekdays": [2, 6]},
            {"repeat": "monthly", "time": "09:00", "day": 31},
            {"repeat": "cron", "cron": "0 */2 * * *"},
        ):
            parent = services.create_campaign(
                {
                    "name": "每日提醒",
                    "template_id": template["priTmplId"],
                    "segment_id": segment_id,
                    "data": fixed_data(template),
                    "schedule": schedule,
                }
            )
            ids.append(parent.id)
        app.config["RECURRING_MAX_LATENESS_MINUTES"] = 150
        services.launch(ids[3], now=datetime(2026, 12, 1, 0, 30, tzinfo=UTC))
        services.supervise(datetime(2026, 12, 1, 4, 0, 5, tzinfo=UTC))  # 02:00 superseded, 04:00 runs
        services.supervise(datetime(2026, 12, 1, 9, 0, 5, tzinfo=UTC))  # 06:00 late, 08:00 superseded
        services.launch(ids[1], now=datetime(2026, 12, 1, tzinfo=UTC))
        services.pause(ids[1])
        services.launch(ids[2], now=datetime(2026, 12, 1, tzinfo=UTC))
        services.cancel(ids[2])
        runs = db.session.scalars(sa.select(Campaign.id).where(Campaign.parent_id == ids[3])).all()
        states = set(db.session.scalars(sa.select(Campaign.hold_code).where(Campaign.parent_id == ids[3])))
    assert {"late", "superseded", ""} <= states
    pages += [f"/campaigns/{campaign_id}" for campaign_id in [*ids, *runs]]
    pages += [f"/campaigns/{ids[0]}/edit", f"/campaigns/{ids[3]}/edit"]
    auth.login("admin")
    found = []
    for url in pages:
        for headers in ({}, {"HX-Request": "true"}):
            response = client.get(url, headers=headers)
            assert response.status_code == 200, url
            found += [f"{url}: {code}" for code in raw_codes(response.get_data(as_text=True))]
    assert not misses, sorted(set(misses))
    assert not found, found
