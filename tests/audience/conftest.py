from __future__ import annotations

import pytest

from dashboard.extensions import db
from dashboard.grants.ledger import reserve_credit, spend_credit
from dashboard.grants.services import record_answers
from dashboard.models import Delivery, DeliverySource, DeliveryState, WechatUser

T_ORDER = "TMPL_order_shipped_00000000000000000000000"
T_REFUND = "TMPL_refund_000000000000000000000000000000"


@pytest.fixture
def people(app):
    """Three users: one with grants, a delivery and settings; one with attributes; one with nothing."""
    with app.app_context():
        ming = WechatUser(
            openid="oMing0000000000000000000001",
            unionid="uMing00000000000000000001",
            nickname="小明",
            tags=["vip", "北京"],
            attributes={"city": "上海", "level": "3"},
        )
        hong = WechatUser(
            openid="oHong0000000000000000000002", nickname="Hong", tags=[], attributes={"city": "Beijing"}
        )
        quiet = WechatUser(openid="oQuiet000000000000000000003", nickname="", tags=[], attributes={})
        db.session.add_all([ming, hong, quiet])
        db.session.flush()
        record_answers(ming.id, [(T_ORDER, "accept"), (T_REFUND, "reject")], source="client", scene="1001")
        record_answers(ming.id, [(T_ORDER, "accept")], source="popup_event", scenes={T_ORDER: "0"})
        record_answers(ming.id, [(T_ORDER, "accept"), (T_REFUND, "ban")], source="client")
        record_answers(hong.id, [(T_ORDER, "filter")], source="client")
        ming.main_switch, ming.item_settings = True, {T_ORDER: "accept"}
        from dashboard.models import utcnow

        ming.settings_reported_at = utcnow()
        delivery = Delivery(
            source=DeliverySource.test,
            openid=ming.openid,
            user_id=ming.id,
            template_id=T_ORDER,
            data={},
            state=DeliveryState.sent,
            errcode=0,
            errmsg="ok",
            msgid="1864323726461255680",
        )
        db.session.add(delivery)
        db.session.flush()
        assert reserve_credit(ming, T_ORDER, delivery.id).ok
        spend_credit(ming, T_ORDER, delivery.id)
        db.session.commit()
        return {"ming": ming.id, "hong": hong.id, "quiet": quiet.id}
