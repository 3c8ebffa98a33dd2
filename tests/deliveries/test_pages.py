"""The Deliveries list and a delivery's page read at a glance: template titles, short openids with their
user, WeChat's errmsg in a tooltip, outcomes in words, chips that filter, the filters the home page links
to, self-refreshing fragments that stop once nothing moves, and the delivered card."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from dashboard.extensions import db
from dashboard.models import Delivery, DeliveryState
from dashboard.models.catalog import MessageTemplate
from tests.deliveries.helpers import GONE_ID, OPENID, TEMPLATE_ID, add_delivery, add_template, add_user

HX = {"HX-Request": "true"}
ZONE = ZoneInfo("Asia/Shanghai")


def ids_in(page: str) -> list[int]:
    return [int(n) for n in re.findall(r'<tr data-delivery="(\d+)"', page)]


def seed(app) -> dict:
    with app.app_context():
        template_pk = add_template()
        user_id = add_user()
        ids = {
            "sent": add_delivery(DeliveryState.sent, user_id=user_id, errcode=0, errmsg="ok"),
            "content": add_delivery(
                DeliveryState.failed,
                user_id=user_id,
                reason="content",
                errcode=47003,
                errmsg="argument invalid! data.thing2.value exceeds limit rid: 6571-2",
            ),
            "no_grant": add_delivery(
                DeliveryState.failed, user_id=user_id, reason="no_grant", errcode=43101, errmsg="user refuse"
            ),
            "gave_up": add_delivery(
                DeliveryState.failed,
                reason="gave_up",
                attempt_category="transient",
                openid="oOther000000000001",
            ),
            "budget": add_delivery(DeliveryState.skipped, reason="budget"),
            "unknown": add_delivery(DeliveryState.unknown, reason="lease_expired"),
            "pending": add_delivery(DeliveryState.pending, template_id=GONE_ID),
            "sending": add_delivery(DeliveryState.sending),
            "retry": add_delivery(
                DeliveryState.retry_wait, reason="transient", errcode=-1, errmsg="system busy"
            ),
        }
        db.session.commit()
    return {"template_pk": template_pk, "user_id": user_id, **ids}


def test_the_list_names_templates_shortens_openids_and_says_outcomes_in_words(app, client, auth):
    ids = seed(app)
    auth.login("viewer")
    page = html.unescape(client.get("/deliveries/").get_data(as_text=True))
    assert "订单发货提醒" in page and f"/templates/{ids['template_pk']}" in page
    assert "不在模板库中" in page  # the deleted template: its id only as a fallback, said so
    assert "oMwr9O…_du0" in page and f"/users/{ids['user_id']}" in page
    assert f'data-copy="{OPENID}"' in page and f">{OPENID}<" not in page  # whole openid: copy and title
    assert 'title="argument invalid! data.thing2.value exceeds limit rid: 6571-2"' in page
    assert "内容不合规 (47003)" in page and "用户无订阅授权 (43101)" in page
    assert "次数保留给单条发送" in page  # the skip reason "budget" in words
    assert "将重试：微信临时错误" in page or "将重试：" in page
    assert ">no_grant<" not in page and ">budget<" not in page and ">lease_expired<" not in page
    # The chips count per state; "pending" counts every state still moving.
    for chip, count in {"sent": 1, "failed": 3, "unknown": 1, "pending": 3, "skipped": 1}.items():
        assert re.search(rf'data-chip="{chip}" data-count="{count}"', page), chip


def test_chips_and_the_home_pages_links_land_on_filtered_lists(app, client, auth):
    ids = seed(app)
    auth.login("viewer")
    page = html.unescape(client.get("/deliveries/").get_data(as_text=True))
    pending_link = re.search(r'class="chip chip-pending"[^>]*href="([^"]+)"', page).group(1)
    moving = client.get(pending_link, headers=HX).get_data(as_text=True)
    assert sorted(ids_in(moving)) == sorted([ids["pending"], ids["sending"], ids["retry"]])
    assert 'aria-current="true"' in moving.split('data-chip="pending"')[1].split(">")[0]

    def listed(query: str) -> list[int]:
        response = client.get(f"/deliveries/?{query}", headers=HX)
        assert response.status_code == 200
        return sorted(ids_in(response.get_data(as_text=True)))

    # The home page's links: a state, and a state with an errcode.
    assert listed("state=unknown") == [ids["unknown"]]
    assert listed("state=failed&errcode=43101") == [ids["no_grant"]]
    # The error class (the campaigns report's SQL), the engine's "gave up", a reason.
    assert listed("category=content") == [ids["content"]]
    assert listed("category=transient") == [ids["gave_up"]]  # its last attempt's class
    assert listed("category=gave_up") == [ids["gave_up"]]
    assert listed("reason=budget") == [ids["budget"]]
    assert listed("state=pending,sending") == sorted([ids["pending"], ids["sending"]])
    assert listed(f"openid={OPENID[:8]}") == sorted(
        v for k, v in ids.items() if k not in ("template_pk", "user_id", "gave_up")
    )
    # Bad values are ignored, never a 5xx.
    for query in ("state=nonsense", "day=2026-13-40", "category=x", "reason=x", "errcode=99999999999"):
        assert client.get(f"/deliveries/?{query}").status_code == 200


def test_the_day_filter_is_a_day_in_the_operators_zone(app, client, auth):
    day = datetime(2026, 3, 10).date()
    start = datetime.combine(day, time.min, tzinfo=ZONE).astimezone(UTC)
    with app.app_context():
        add_template()
        before = add_delivery(
            DeliveryState.sent, created_at=start - timedelta(minutes=1)
        )  # 23:59 the day before
        first = add_delivery(DeliveryState.sent, created_at=start)  # 00:00 local, 16:00 UTC the day before
        last = add_delivery(DeliveryState.sent, created_at=start + timedelta(hours=23, minutes=59))
        after = add_delivery(DeliveryState.sent, created_at=start + timedelta(days=1))
        db.session.commit()
    auth.login("viewer")
    page = client.get("/deliveries/?day=2026-03-10", headers=HX).get_data(as_text=True)
    assert sorted(ids_in(page)) == [first, last]
    assert before not in ids_in(page) and after not in ids_in(page)


def test_a_list_with_moving_rows_polls_and_stops_once_they_are_final(app, client, auth):
    ids = seed(app)
    auth.login("viewer")
    fragment = client.get("/deliveries/?state=sent", headers=HX).get_data(as_text=True)
    assert "hx-trigger" not in fragment.split(">")[0]  # only final rows: no polling
    first = client.get("/deliveries/", headers=HX).get_data(as_text=True)
    opening = first.split(">")[0]
    assert 'hx-trigger="every 4s"' in opening and 'data-polling="on"' in opening
    with app.app_context():
        db.session.execute(
            sa.update(Delivery)
            .where(Delivery.id.in_([ids["pending"], ids["sending"], ids["retry"]]))
            .values(state=DeliveryState.sent)
        )
        db.session.commit()
    again = client.get("/deliveries/", headers=HX).get_data(as_text=True)
    assert 'id="deliveries-table"' in again and "hx-trigger" not in again.split(">")[0]
    # A delivery's page polls while it moves, then stops.
    detail = client.get(f"/deliveries/{ids['unknown']}", headers=HX).get_data(as_text=True)
    assert "hx-trigger" not in detail.split(">")[0]
    with app.app_context():
        moving = add_delivery(DeliveryState.sending)
        db.session.commit()
    detail = client.get(f"/deliveries/{moving}", headers=HX).get_data(as_text=True)
    assert 'hx-trigger="every 4s"' in detail.split(">", 3)[-1] or 'hx-trigger="every 4s"' in detail[:600]
    with app.app_context():
        db.session.execute(sa.update(Delivery).where(Delivery.id == moving).values(state=DeliveryState.sent))
        db.session.commit()
    detail = client.get(f"/deliveries/{moving}", headers=HX).get_data(as_text=True)
    assert "hx-trigger" not in detail[: detail.index("</h1>")]


def test_a_deliverys_page_draws_the_card_it_sent_or_its_values_when_the_template_is_gone(app, client, auth):
    ids = seed(app)
    auth.login("viewer")
    page = html.unescape(client.get(f"/deliveries/{ids['sent']}").get_data(as_text=True))
    card = page[page.index('id="delivery-card"') :]
    assert 'data-from-template="yes"' in page
    assert (
        "订单发货提醒" in card
        and "商品名称" in card
        and "云南小粒咖啡豆 500g" in card
        and "进入小程序查看" in card
    )
    assert f"/users/{ids['user_id']}" in page and f"/templates/{ids['template_pk']}" in page
    gone = html.unescape(client.get(f"/deliveries/{ids['pending']}").get_data(as_text=True))
    assert 'data-from-template="no"' in gone
    card = gone[gone.index('id="delivery-card"') :]
    assert "<code>thing2</code>" in card and "云南小粒咖啡豆 500g" in card
    with app.app_context():  # deleted from the catalog afterwards: the same plain card
        db.session.execute(sa.delete(MessageTemplate).where(MessageTemplate.template_id == TEMPLATE_ID))
        db.session.commit()
    page = client.get(f"/deliveries/{ids['sent']}").get_data(as_text=True)
    assert 'data-from-template="no"' in page and "<code>phrase3</code>" in page


def test_the_pages_speak_english_too(app, client, auth, personas):
    ids = seed(app)
    with app.app_context():
        from dashboard.models import Operator

        db.session.get(Operator, personas["viewer"].id).locale = "en"
        db.session.commit()
    auth.login("viewer")
    page = html.unescape(client.get("/deliveries/").get_data(as_text=True))
    assert "Content breaks the rules (47003)" in page and "Credit kept for transactional sends" in page
    assert "will be tried again: Temporary WeChat error" in page
    detail = html.unescape(client.get(f"/deliveries/{ids['content']}").get_data(as_text=True))
    assert (
        "errcode 47003" in detail and "published version" in detail and "Service Notifications" not in detail
    )
