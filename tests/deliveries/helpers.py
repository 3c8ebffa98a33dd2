"""Deliveries as the engine leaves them, written straight to the database, and one catalog template."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from dashboard.catalog.schema import build_schema
from dashboard.extensions import db
from dashboard.models import Delivery, DeliveryAttempt, DeliverySource, DeliveryState, WechatUser, utcnow
from dashboard.models.catalog import MessageTemplate, TemplateKind, TemplateSource

TEMPLATE_ID = "Xq3Order_shipped_0000000000000000000000000a"
GONE_ID = "Zz9Gone_template_00000000000000000000000000"
CONTENT = "订单号:{{character_string1.DATA}}\n商品名称:{{thing2.DATA}}\n发货状态:{{phrase3.DATA}}"
DATA = {"character_string1": "A20261202001", "thing2": "云南小粒咖啡豆 500g", "phrase3": "已发货"}
OPENID = "oMwr9OqD3_as8K4joKUcDh-6_du0"


def add_template(template_id: str = TEMPLATE_ID, title: str = "订单发货提醒") -> int:
    row = MessageTemplate(
        template_id=template_id,
        title=title,
        kind=TemplateKind.one_time,
        content=CONTENT,
        example="",
        keywords=build_schema(CONTENT),
        source=TemplateSource.sync,
    )
    db.session.add(row)
    db.session.flush()
    return row.id


def add_user(openid: str = OPENID, nickname: str = "小明") -> int:
    user = WechatUser(openid=openid, nickname=nickname)
    db.session.add(user)
    db.session.flush()
    return user.id


def add_delivery(
    state: DeliveryState,
    *,
    openid: str = OPENID,
    user_id: int | None = None,
    template_id: str = TEMPLATE_ID,
    reason: str = "",
    errcode: int | None = None,
    errmsg: str = "",
    created_at: datetime | None = None,
    attempt_category: str = "",
    **more: Any,
) -> int:
    delivery = Delivery(
        source=more.pop("source", DeliverySource.api),
        openid=openid,
        user_id=user_id,
        template_id=template_id,
        data=more.pop("data", dict(DATA)),
        state=state,
        reason=reason,
        errcode=errcode,
        errmsg=errmsg,
        attempts=0 if state == DeliveryState.pending else 1,
        created_at=created_at or utcnow(),
        sent_at=utcnow() if state == DeliveryState.sent else None,
        msgid="2839472938472" if state == DeliveryState.sent else None,
        **more,
    )
    db.session.add(delivery)
    db.session.flush()
    if state != DeliveryState.pending:
        db.session.add(
            DeliveryAttempt(
                delivery_id=delivery.id,
                number=1,
                outcome=state if state != DeliveryState.sending else DeliveryState.unknown,
                errcode=errcode,
                errmsg=errmsg,
                category=attempt_category,
            )
        )
    return delivery.id
