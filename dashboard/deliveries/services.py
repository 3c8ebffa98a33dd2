"""Recording sends as deliveries, and sending one right away (test sends).

Every path that messages a user writes the delivery row *before* calling WeChat and records WeChat's
answer on it afterwards, so a crash in between leaves a row that says "sending", never silence.
"""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import select

from ..extensions import db
from ..models import Delivery, DeliveryAttempt, DeliverySource, DeliveryState, WechatUser, utcnow
from ..wechat import get_client
from ..wechat.errors import WeChatError, WeChatUnknownOutcome


def create_delivery(
    *,
    source: DeliverySource,
    openid: str,
    template_id: str,
    data: dict[str, str],
    page: str | None = None,
    miniprogram_state: str = "formal",
    lang: str = "zh_CN",
    requested_by_id: int | None = None,
    **extra: Any,
) -> Delivery:
    """Add a pending delivery to the session, linked to the user when Tongzhi knows the openid."""
    user_id = db.session.scalar(select(WechatUser.id).where(WechatUser.openid == openid))
    delivery = Delivery(
        source=source,
        openid=openid,
        template_id=template_id,
        data=dict(data),
        page=page or None,
        miniprogram_state=miniprogram_state,
        lang=lang,
        requested_by_id=requested_by_id,
        user_id=user_id,
        state=DeliveryState.pending,
        **extra,
    )
    db.session.add(delivery)
    return delivery


def send_now(delivery: Delivery) -> Delivery:
    """Send one delivery synchronously and record the attempt (used for test sends).

    Commits twice: once before the call (state ``sending``), once with WeChat's answer. Never retries:
    a test send is a person watching, who can press the button again.
    """
    delivery.state = DeliveryState.sending
    delivery.attempts += 1
    attempt = DeliveryAttempt(number=delivery.attempts, outcome=DeliveryState.sending, started_at=utcnow())
    delivery.history.append(attempt)
    db.session.commit()

    started = time.monotonic()
    try:
        msgid = get_client().send_subscribe_message(
            delivery.openid,
            delivery.template_id,
            delivery.data,
            page=delivery.page,
            miniprogram_state=delivery.miniprogram_state,
            lang=delivery.lang,
        )
    except WeChatUnknownOutcome as error:
        _finish(delivery, attempt, DeliveryState.unknown, error.errcode, error.errmsg, "unknown")
    except WeChatError as error:
        _finish(delivery, attempt, DeliveryState.failed, error.errcode, error.errmsg, error.category.value)
    else:
        _finish(delivery, attempt, DeliveryState.sent, 0, "ok", "", msgid=msgid)
    attempt.elapsed_ms = int((time.monotonic() - started) * 1000)
    db.session.commit()
    return delivery


def _finish(
    delivery: Delivery,
    attempt: DeliveryAttempt,
    state: DeliveryState,
    errcode: int | None,
    errmsg: str,
    category: str,
    msgid: str | None = None,
) -> None:
    now = utcnow()
    delivery.state = attempt.outcome = state
    delivery.errcode = attempt.errcode = errcode
    delivery.errmsg = attempt.errmsg = (errmsg or "")[:512]
    delivery.msgid = attempt.msgid = msgid
    delivery.reason = category
    attempt.category = category
    attempt.finished_at = now
    if state == DeliveryState.sent:
        delivery.sent_at = now


def recent_for_template(template_id: str, limit: int = 20) -> list[Delivery]:
    query = (
        select(Delivery).where(Delivery.template_id == template_id).order_by(Delivery.id.desc()).limit(limit)
    )
    return list(db.session.scalars(query))
