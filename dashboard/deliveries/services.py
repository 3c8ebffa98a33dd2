"""Recording sends as deliveries, and sending one right away (test sends).

Every path that messages a user writes the delivery row *before* calling WeChat and records WeChat's
answer on it afterwards, so a crash in between leaves a row that says "sending", never silence.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, func, select

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


@dataclass(frozen=True)
class DeliveryFilter:
    state: str = ""
    source: str = ""
    template_id: str = ""
    openid: str = ""
    errcode: int | None = None
    campaign_id: int | None = None

    @classmethod
    def from_args(cls, args: Mapping[str, str]) -> DeliveryFilter:
        def number(name: str) -> int | None:
            raw = (args.get(name) or "").strip()
            return int(raw) if raw.lstrip("-").isdigit() else None

        state = args.get("state", "")
        source = args.get("source", "")
        return cls(
            state=state if state in DeliveryState.__members__ else "",
            source=source if source in DeliverySource.__members__ else "",
            template_id=(args.get("template_id") or "").strip(),
            openid=(args.get("openid") or "").strip(),
            errcode=number("errcode"),
            campaign_id=number("campaign_id"),
        )

    def apply(self, query: Select) -> Select:
        if self.state:
            query = query.where(Delivery.state == DeliveryState(self.state))
        if self.source:
            query = query.where(Delivery.source == DeliverySource(self.source))
        if self.template_id:
            query = query.where(Delivery.template_id == self.template_id)
        if self.openid:
            query = query.where(Delivery.openid == self.openid)
        if self.errcode is not None:
            query = query.where(Delivery.errcode == self.errcode)
        if self.campaign_id is not None:
            query = query.where(Delivery.campaign_id == self.campaign_id)
        return query


def filtered(criteria: DeliveryFilter) -> Select[tuple[Delivery]]:
    return criteria.apply(select(Delivery)).order_by(Delivery.id.desc())


def counts_by_state(criteria: DeliveryFilter) -> dict[str, int]:
    """How many deliveries match per state (ignoring the state filter itself), for the filter chips."""
    without_state = DeliveryFilter(**{**criteria.__dict__, "state": ""})
    query = without_state.apply(select(Delivery.state, func.count()).group_by(Delivery.state))
    counts = {state.value: 0 for state in DeliveryState}
    counts.update({state.value: count for state, count in db.session.execute(query)})
    return counts


class ResendRefused(ValueError):
    """Only an ``unknown`` delivery may be forced out again; the message is for people."""


def force_resend(original: Delivery, operator_id: int | None) -> Delivery:
    """Queue a new delivery with the same message as an ``unknown`` one. The caller commits and kicks.

    The original may have reached the user (its answer was lost), so this can message them twice: the
    page says so and asks for a confirmation. The new row needs a credit of its own from the ledger
    (the original's counts as spent); without one it is skipped, never sent on credit we do not have.
    It is a row of its own (no campaign, no idempotency key), so the one-per-campaign rule stays intact.
    """
    from flask_babel import lazy_gettext as _l

    from ..audit.services import record

    if original.state != DeliveryState.unknown:
        raise ResendRefused(_l("Only a delivery whose outcome is unknown can be forced out again."))
    resend = create_delivery(
        source=original.source,
        openid=original.openid,
        template_id=original.template_id,
        data=original.data,
        page=original.page,
        miniprogram_state=original.miniprogram_state,
        lang=original.lang,
        requested_by_id=operator_id,
        reason=f"resend_of:{original.id}",
    )
    db.session.flush()
    record("delivery.force_resent", original, resend_id=resend.id, openid=original.openid)
    return resend
