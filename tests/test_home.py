"""The home page's figures equal what the database holds, on the operator's days (Asia/Shanghai).

Rows are written straight into the database, some at 23:30 yesterday and 00:30 today local time (a UTC
date boundary apart from the local one), and the page is read as an operator reads it.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from dashboard.campaigns import services as campaign_services
from dashboard.extensions import db
from dashboard.home.services import day_starts, home_figures
from dashboard.models import Delivery, DeliverySource, DeliveryState, DispatchState, WechatUser, utcnow
from dashboard.models.campaign import Campaign, CampaignState
from dashboard.models.catalog import Drift, MessageTemplate, TemplateKind, TemplateSource
from dashboard.models.dispatch import DISPATCH_STATE_ID
from dashboard.models.grants import ACCEPT_STATUSES, GrantBalance, GrantEvent

ZONE = ZoneInfo("Asia/Shanghai")
TEMPLATE = "tmpl-home-0000000000000000000000000000000001"


def local(days_ago: int, hour: int, minute: int = 0) -> datetime:
    """An instant in UTC: ``hour:minute`` on the local day ``days_ago`` days before today (Shanghai)."""
    today = datetime.now(ZONE).date()
    return datetime.combine(today - timedelta(days=days_ago), time(hour, minute), tzinfo=ZONE).astimezone(UTC)


def local_today() -> date:
    return datetime.now(ZONE).date()


def add_template(template_id: str = TEMPLATE, title: str = "会议提醒", drift: Drift = Drift.none):
    template = MessageTemplate(
        template_id=template_id,
        title=title,
        kind=TemplateKind.one_time,
        content="会议主题:{{thing1.DATA}}",
        keywords=[{"key": "thing1", "name": "会议主题", "type": "thing"}],
        source=TemplateSource.sync,
        drift=drift,
    )
    db.session.add(template)
    return template


def add_user(openid: str) -> WechatUser:
    user = WechatUser(openid=openid)
    db.session.add(user)
    db.session.flush()
    return user


def add_delivery(at: datetime, state: DeliveryState, errcode: int | None = None, reason: str = "", **more):
    delivery = Delivery(
        source=more.pop("source", DeliverySource.api),
        openid=more.pop("openid", "o-home"),
        template_id=TEMPLATE,
        state=state,
        errcode=errcode,
        reason=reason,
        created_at=at,
        **more,
    )
    db.session.add(delivery)
    return delivery


def pause_sending(until: datetime) -> None:
    state = db.session.get(DispatchState, DISPATCH_STATE_ID)
    if state is None:
        state = DispatchState(id=DISPATCH_STATE_ID)
        db.session.add(state)
    state.paused_until, state.paused_reason = until, "45009: WeChat's daily send quota is used up"


def text(html: str) -> str:
    """The page's words, tags and extra spaces removed."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def section(html: str, element_id: str) -> str:
    match = re.search(rf'<section[^>]*id="{element_id}".*?</section>', html, re.S)
    assert match, f"no section #{element_id}"
    return match.group(0)


def state_figures(html: str) -> dict[str, int]:
    return {k: int(v) for k, v in re.findall(r'data-state="(\w+)">(\d+)<', html)}


def test_day_boundaries_are_local_midnights_even_across_daylight_saving():
    zone = ZoneInfo("America/New_York")
    # 2026-03-08 is 23 hours long in New York; the boundaries still fall on local midnights.
    starts = day_starts(datetime(2026, 3, 9, 15, 0, tzinfo=UTC), 3, zone)
    assert [s.astimezone(zone).time() for s in starts] == [time(0)] * 4
    assert [s.astimezone(zone).date() for s in starts] == [date(2026, 3, 7 + n) for n in range(4)]
    assert starts[2] - starts[1] == timedelta(hours=23)
    shanghai = day_starts(datetime(2026, 12, 1, 16, 30, tzinfo=UTC), 1, ZONE)  # 00:30 on 2 December there
    assert shanghai == [datetime(2026, 12, 1, 16, 0, tzinfo=UTC), datetime(2026, 12, 2, 16, 0, tzinfo=UTC)]


def test_sends_today_are_the_operators_day_and_each_failure_cause_links_to_its_deliveries(app, client, auth):
    with app.app_context():
        add_template()
        for _ in range(2):  # yesterday, 23:30 local: not today's
            add_delivery(local(1, 23, 30), DeliveryState.sent)
        add_delivery(local(1, 23, 30), DeliveryState.failed, 47003, "content")
        for _ in range(3):
            add_delivery(local(0, 0, 30), DeliveryState.sent)
        for _ in range(2):
            add_delivery(local(0, 0, 30), DeliveryState.failed, 47003, "content")
        add_delivery(local(0, 0, 30), DeliveryState.failed, 43101, "no_grant")
        add_delivery(local(0, 0, 30), DeliveryState.failed, None, "gave_up")
        add_delivery(local(0, 0, 30), DeliveryState.unknown, None, "unknown")
        add_delivery(local(0, 0, 30), DeliveryState.pending)
        add_delivery(local(0, 0, 30), DeliveryState.retry_wait, None, "transient")
        add_delivery(local(0, 0, 30), DeliveryState.skipped, None, "no_credit")
        db.session.commit()

        # The oracle: every row read back and put on its local day in Python.
        today = [
            d
            for d in db.session.scalars(sa.select(Delivery))
            if d.created_at.astimezone(ZONE).date() == local_today()
        ]
        expected = {
            "sent": sum(d.state == DeliveryState.sent for d in today),
            "failed": sum(d.state == DeliveryState.failed for d in today),
            "unknown": sum(d.state == DeliveryState.unknown for d in today),
            "pending": sum(
                d.state in (DeliveryState.pending, DeliveryState.sending, DeliveryState.retry_wait)
                for d in today
            ),
            "skipped": sum(d.state == DeliveryState.skipped for d in today),
        }
    assert expected == {"sent": 3, "failed": 4, "unknown": 1, "pending": 2, "skipped": 1}

    auth.login("viewer")
    html = client.get("/").get_data(as_text=True)
    tile = section(html, "tile-sends-today")
    assert state_figures(tile) == expected
    rate = round(100 * expected["sent"] / (expected["sent"] + expected["failed"] + expected["unknown"]))
    assert f'<p class="figure">{rate}%</p>' in tile  # 3 of 8 with an outcome: 38%

    failures = re.findall(
        r'<li data-category="(\w+)" data-errcode="(-?\d*)">\s*<a href="([^"]+)">(.*?)</li>', tile, re.S
    )
    found = {(cat, code): (href.replace("&amp;", "&"), text(rest)) for cat, code, href, rest in failures}
    assert set(found) == {("content", "47003"), ("no_grant", "43101"), ("gave_up", "")}
    day = re.search(r"day=(\d{4}-\d\d-\d\d)", tile).group(1)
    href, words = found[("content", "47003")]
    assert href == f"/deliveries/?state=failed&errcode=47003&day={day}"
    assert "内容不合规" in words and "47003" in words and words.strip().endswith("2")
    assert "用户无订阅授权" in found[("no_grant", "43101")][1]
    assert found[("gave_up", "")][0] == f"/deliveries/?state=failed&category=gave_up&day={day}"
    assert "多次重试后放弃" in found[("gave_up", "")][1]

    # Each link leads to exactly the rows its figure counts: today's, in the operator's day.
    def listed(link: str) -> int:
        return len(
            re.findall(r"<tr data-delivery=", client.get(link.replace("&amp;", "&")).get_data(as_text=True))
        )

    assert listed(href) == 2
    assert listed(found[("gave_up", "")][0]) == 1
    links = dict(re.findall(r'<li class="state-(\w+)"><a href="([^"]+)">', tile))
    assert {state: listed(link) for state, link in links.items()} == expected


@pytest.mark.parametrize("config_overrides", [{"TIMEZONE": "Asia/Shanghai"}], indirect=True)
def test_grants_per_day_land_on_the_local_day_and_count_a_prompt_once(app, client, auth):
    with app.app_context():
        add_template()
        user = add_user("o-grants")

        def event(at, status, source="client", **more):
            row = GrantEvent(
                user_id=user.id,
                template_id=TEMPLATE,
                kind="one_time",
                source=source,
                status=status,
                occurred_at=at,
                **more,
            )
            db.session.add(row)
            db.session.flush()
            return row

        event(local(1, 23, 30), "accept")  # yesterday 23:30 local = 15:30 UTC yesterday
        first = event(local(0, 0, 30), "reject")  # today 00:30 local = 16:30 UTC yesterday
        event(local(0, 0, 30), "reject", source="popup_event", pairs_with_id=first.id)  # the same prompt
        event(local(0, 1, 0), "acceptWithAlert", source="popup_event")
        event(local(0, 1, 0), "ban")
        event(local(0, 1, 5), "spent", source="send_result")  # not a prompt answer
        event(local(3, 12, 0), "accept")
        event(local(3, 12, 0), "filter", source="popup_event")
        event(local(14, 12, 0), "accept")  # fifteen days ago: outside the chart
        db.session.commit()

        oracle: dict[date, dict[str, int]] = {}
        for row in db.session.scalars(sa.select(GrantEvent)):
            if row.source not in ("client", "popup_event") or row.pairs_with_id is not None:
                continue
            kind = (
                "accepts"
                if row.status in ACCEPT_STATUSES
                else "rejects"
                if row.status == "reject"
                else "others"
            )
            day = oracle.setdefault(
                row.occurred_at.astimezone(ZONE).date(), {"accepts": 0, "rejects": 0, "others": 0}
            )
            day[kind] += 1

    auth.login("viewer")
    html = section(client.get("/").get_data(as_text=True), "tile-grant-days")
    bars = re.findall(
        r'<g class="day" data-day="([\d-]+)" data-accepts="(\d+)" data-rejects="(\d+)" data-others="(\d+)">',
        html,
    )
    assert len(bars) == 14
    drawn = {
        date.fromisoformat(d): {"accepts": int(a), "rejects": int(r), "others": int(o)} for d, a, r, o in bars
    }
    assert [d for d in drawn] == [local_today() - timedelta(days=13 - n) for n in range(14)]
    empty = {"accepts": 0, "rejects": 0, "others": 0}
    assert drawn == {day: oracle.get(day, empty) for day in drawn}
    today, yesterday = local_today(), local_today() - timedelta(days=1)
    assert drawn[yesterday] == {"accepts": 1, "rejects": 0, "others": 0}
    assert drawn[today] == {"accepts": 1, "rejects": 1, "others": 1}
    # The accept rate is in each day's <title> and in the table under the chart.
    assert "接受 1 · 拒绝 1 · 其他回答 1 · 接受率 33%" in html
    row = re.search(rf'<tr data-day="{today.isoformat()}">(.*?)</tr>', html, re.S).group(1)
    assert re.findall(r"<td>([^<]*)</td>", row) == ["1", "1", "1", "33%"]
    assert 'role="img" aria-label="最近 14 天每日订阅弹窗的回答数与接受率"' in html


def test_no_alert_box_when_all_is_well(app, client, auth):
    with app.app_context():
        add_template()
        add_delivery(local(0, 0, 30), DeliveryState.sent)
        add_delivery(local(9, 12), DeliveryState.unknown)  # older than the alert looks back
        pause_sending(utcnow() - timedelta(minutes=1))
        db.session.commit()
    auth.login("admin")
    html = client.get("/").get_data(as_text=True)
    assert 'id="home-alerts"' not in html and "需要人工处理" not in html
    assert "warn-box" not in html


def test_alerts_name_what_needs_a_person_and_link_to_it(app, client, auth):
    paused_until = utcnow() + timedelta(hours=5)
    with app.app_context():
        add_template()
        add_template("tmpl-home-drifted", "订单发货", drift=Drift.changed)
        add_delivery(local(0, 0, 30), DeliveryState.unknown, None, "lease_expired")
        add_delivery(local(2, 10), DeliveryState.unknown, None, "unknown")
        pause_sending(paused_until)
        db.session.commit()
    auth.login("admin")
    html = client.get("/").get_data(as_text=True)
    alerts = section(html, "home-alerts")
    assert '<a href="/deliveries/?state=unknown">最近 7 天有 2 条投递结果未知' in alerts
    assert '<a href="/templates?drift=any">1 个模板在微信侧已更改或删除' in alerts
    when = paused_until.astimezone(ZONE)
    assert "45009" in alerts and f"{when:%H:%M}" in alerts and 'href="/settings/"' in alerts
    auth.login("viewer")  # the settings page is an admin's: a viewer is told, not sent there
    alerts = section(client.get("/").get_data(as_text=True), "home-alerts")
    assert "45009" in alerts and 'href="/settings/"' not in alerts


class TestTheConnectionCheck:
    @pytest.fixture
    def config_overrides(self, sandbox):
        return {
            "WECHAT_APPID": sandbox.appid,
            "WECHAT_SECRET": sandbox.secret,
            "WECHAT_API_BASE": sandbox.url,
        }

    def test_the_home_page_loads_the_settings_check_and_shows_nothing_when_it_passes(
        self, client, auth, sandbox
    ):
        auth.login("viewer")
        html = client.get("/").get_data(as_text=True)
        assert 'hx-get="/home/wechat-check" hx-trigger="load"' in html
        answer = client.get("/home/wechat-check").get_data(as_text=True)
        assert "warn-box" not in answer and "<html" not in answer
        client.get("/home/wechat-check")
        assert sandbox.stable_fetches() == 1  # asked once; the next view reuses the answer

    def test_a_failing_check_is_an_alert_with_wechats_errcode(self, app, client, auth, sandbox):
        app.config["WECHAT_SECRET"] = "not-the-secret"
        auth.login("admin")
        answer = client.get("/home/wechat-check").get_data(as_text=True)
        assert "微信连接检查失败" in answer and "40125" in answer and "账号或配置问题" in answer
        assert 'href="/settings/"' in answer
        assert "not-the-secret" not in answer


def test_campaign_cards_show_progress_next_times_and_the_last_result(app, client, auth):
    with app.app_context():
        add_template()
        running = Campaign(
            name="双十二预告",
            template_id=TEMPLATE,
            state=CampaignState.running,
            recipients=4,
            started_at=utcnow(),
        )
        later = Campaign(
            name="年终回顾",
            template_id=TEMPLATE,
            state=CampaignState.scheduled,
            scheduled_at=local(-1, 9, 30),
        )
        sooner = Campaign(
            name="元旦提醒", template_id=TEMPLATE, state=CampaignState.scheduled, scheduled_at=local(-1, 8, 0)
        )
        old = Campaign(
            name="上次活动",
            template_id=TEMPLATE,
            state=CampaignState.completed,
            recipients=5,
            finished_at=local(2, 10),
        )
        last = Campaign(
            name="最近活动",
            template_id=TEMPLATE,
            state=CampaignState.completed,
            recipients=5,
            finished_at=local(1, 10),
        )
        draft = Campaign(name="草稿活动", template_id=TEMPLATE, state=CampaignState.draft)
        db.session.add_all([running, later, sooner, old, last, draft])
        db.session.flush()
        for n, state in enumerate(
            [DeliveryState.sent, DeliveryState.sent, DeliveryState.failed, DeliveryState.pending]
        ):
            add_delivery(
                local(0, 0, 30),
                state,
                source=DeliverySource.campaign,
                campaign_id=running.id,
                openid=f"o-r{n}",
            )
        states = [DeliveryState.sent] * 3 + [DeliveryState.failed, DeliveryState.skipped]
        for n, state in enumerate(states):
            add_delivery(
                local(1, 9),
                state,
                source=DeliverySource.campaign,
                campaign_id=last.id,
                openid=f"o-l{n}",
                opened_at=local(1, 11) if n < 2 else None,
            )
        db.session.commit()
        ids = {c.name: c.id for c in (running, later, sooner, last)}
        expected_last = campaign_services.counts(db.session.get(Campaign, last.id))
    assert expected_last == {
        "recipients": 5,
        "pending": 0,
        "sent": 3,
        "failed": 1,
        "skipped": 1,
        "unknown": 0,
        "opens": 2,
        # Rows with no channel_used (as before channels) went out as subscribe messages.
        "sent_by_channel": {"mp_subscribe": 3, "oa_template": 0},
    }

    auth.login("viewer")
    tile = section(client.get("/").get_data(as_text=True), "tile-campaigns")
    assert f'<a href="/campaigns/{ids["双十二预告"]}">双十二预告</a>' in tile
    assert "已完成 3 / 4" in tile and 'max="4" value="3"' in tile
    scheduled = re.findall(r'<li class="campaign-scheduled" data-campaign="(\d+)">(.*?)</li>', tile, re.S)
    assert [int(i) for i, _ in scheduled] == [ids["元旦提醒"], ids["年终回顾"]]  # soonest first
    assert "08:00" in scheduled[0][1] and "09:30" in scheduled[1][1]  # in the operator's zone
    assert f'data-campaign="{ids["最近活动"]}"' in tile and "上次活动" not in tile and "草稿活动" not in tile
    shown = {k: int(v) for k, v in re.findall(r'data-count="(\w+)">(\d+)<', tile)}
    assert shown == {k: expected_last[k] for k in ("sent", "failed", "skipped", "opens")}


def test_the_page_reads_in_english_with_words_beside_every_code(app, client, auth):
    with app.app_context():
        add_template()
        add_delivery(local(0, 0, 30), DeliveryState.failed, 47003, "content")
        add_delivery(local(0, 0, 30), DeliveryState.failed, 40003, "recipient")
        db.session.commit()
    auth.login("admin")
    client.post("/language/en", data={"next": "/"})
    page = text(client.get("/").get_data(as_text=True))
    assert (
        "Sends today" in page
        and "Content breaks the rules 47003" in page
        and "Invalid recipient 40003" in page
    )
    assert "Grants per day, last 14 days" in page
    for raw in ("no_grant", "retry_wait", "gave_up"):
        assert raw not in page


def test_the_figures_are_a_few_aggregates(app):
    """No row of deliveries or grant events is loaded, however many there are: a fixed number of queries."""
    with app.app_context():
        add_template()
        user = add_user("o-many")
        for n in range(40):
            add_delivery(local(0, 0, 30), DeliveryState.sent, openid=f"o-{n}")
            db.session.add(
                GrantEvent(
                    user_id=user.id,
                    template_id=TEMPLATE,
                    kind="one_time",
                    source="client",
                    status="accept",
                    occurred_at=local(n % 14, 12),
                )
            )
        db.session.add(GrantBalance(user_id=user.id, template_id=TEMPLATE, credits=3))
        db.session.commit()
        statements: list[str] = []
        sa.event.listen(db.engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
        figures = home_figures()
    assert figures.sends_today.sent == 40
    assert sum(day.accepts for day in figures.grant_days) == 40
    assert len(statements) <= 20, statements
    for statement in statements:
        if "FROM delivery" in statement or "FROM grant_event" in statement:
            assert re.search(r"count\(", statement, re.I), statement
