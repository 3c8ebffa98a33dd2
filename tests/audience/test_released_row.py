"""Issue 13: a released reservation is one ledger row (``released``, 0); the user's page says what it was,
in both languages, and older history (``reserved`` −1 then ``released`` +1) still reads as before."""

from __future__ import annotations

from dashboard.extensions import db
from dashboard.grants.ledger import release_credit, reserve_credit
from dashboard.models import Delivery, DeliverySource, DeliveryState, WechatUser
from tests.audience.conftest import T_ORDER


def test_a_released_reservation_reads_right_on_the_users_page(app, client, auth, people):
    with app.app_context():
        hong = db.session.get(WechatUser, people["hong"])
        from dashboard.grants.services import record_answers

        record_answers(hong.id, [(T_ORDER, "accept")], source="client")
        delivery = Delivery(
            source=DeliverySource.test,
            openid=hong.openid,
            user_id=hong.id,
            template_id=T_ORDER,
            data={},
            state=DeliveryState.failed,
        )
        db.session.add(delivery)
        db.session.flush()
        assert reserve_credit(hong, T_ORDER, delivery.id).ok
        assert release_credit(hong, T_ORDER, delivery.id, note="47003")
        db.session.commit()
        delivery_id = delivery.id
    auth.login("viewer")
    page = client.get(f"/users/{people['hong']}").get_data(as_text=True)
    timeline = page[page.index('id="timeline-table"') : page.index('id="deliveries-table"')]
    assert "退回" in timeline and "为这次发送预留的次数已退回" in timeline
    assert f"#{delivery_id}" in timeline
    assert "<td>发送预留</td>" not in timeline and "<td>已退回</td>" in timeline  # one row, no reservation
    client.post("/language/en", data={"next": "/"})
    page = client.get(f"/users/{people['hong']}").get_data(as_text=True)
    timeline = page[page.index('id="timeline-table"') : page.index('id="deliveries-table"')]
    assert "Given back" in timeline and "credit reserved for this delivery and given back" in timeline
