"""Force-resending an ``unknown`` delivery (issue 12, "no accidental damage"): the confirmation names the
delivery, its user and its template and says it spends another credit; without the ticked box the POST
(plain or htmx) changes nothing."""

from __future__ import annotations

import html

from dashboard.extensions import db
from dashboard.models import Delivery, DeliveryState
from tests.dispatch.helpers import balance, prepare, states


def unknown_delivery(app, sandbox, dispatcher, template) -> tuple[Delivery, str]:
    [openid] = prepare(app, sandbox, 1, template, sandbox_grants=2, our_grants=2)
    sandbox.faults(DROP_AFTER_READ_RATE=1)
    dispatcher.run_once()
    sandbox.faults(DROP_AFTER_READ_RATE=0)
    with app.app_context():
        [delivery] = db.session.scalars(db.select(Delivery)).all()
        db.session.expunge(delivery)
    assert delivery.state is DeliveryState.unknown
    return delivery, openid


def test_the_confirmation_names_the_delivery_its_user_and_the_credit(
    app, client, auth, sandbox, dispatcher, template
):
    delivery, openid = unknown_delivery(app, sandbox, dispatcher, template)
    auth.login("marketer")
    page = html.unescape(client.get(f"/deliveries/{delivery.id}").get_data(as_text=True))
    assert f"我已了解：用户 {openid} 可能会收到两次投递 #{delivery.id}。" in page
    assert (
        f"重发会为用户 {openid} 新建一条模板 {template['priTmplId']} 的投递，并再扣除该用户的一次可发送次数。"
        in page
    )


def test_without_the_ticked_box_nothing_is_resent(app, client, auth, sandbox, dispatcher, template):
    delivery, openid = unknown_delivery(app, sandbox, dispatcher, template)
    sent_before = len(sandbox.messages())
    credits_before = balance(app, openid, template["priTmplId"])
    auth.login("marketer")
    for headers in ({}, {"HX-Request": "true"}):
        refused = client.post(f"/deliveries/{delivery.id}/resend", data={"confirm": "no"}, headers=headers)
        assert refused.status_code == 302
    page = client.get(f"/deliveries/{delivery.id}").get_data(as_text=True)
    assert "请勾选确认" in page
    dispatcher.run_once()
    assert states(app) == {"unknown": 1}
    assert len(sandbox.messages()) == sent_before
    assert balance(app, openid, template["priTmplId"]) == credits_before
