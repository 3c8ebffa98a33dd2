"""Recording sends as deliveries, and sending one right away (test sends).

Every path that messages a user writes the delivery row *before* calling WeChat and records WeChat's
answer on it afterwards, so a crash in between leaves a row that says "sending", never silence.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from flask import current_app
from sqlalchemy import Select, func, select, update

from ..dispatch.claim import Claim
from ..dispatch.credits import reserve_or_skip
from ..dispatch.finalize import finalize
from ..dispatch.ledger import ReservationRequest
from ..dispatch.ledger_adapter import grants_ledger
from ..dispatch.sender import send_one
from ..extensions import db
from ..models import Delivery, DeliverySource, DeliveryState, WechatUser, utcnow
from ..storable import db_int
from ..wechat import get_client


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
    """Send one delivery right away (a test send), through the same credit and answer path as the engine.

    1. One commit, with whatever the caller added to the session (the audit event): a credit is
       reserved from the grant ledger. Without one the delivery is ``skipped`` with the ledger's
       reason, exactly as the engine's claim skips it (``dispatch.credits``), and WeChat is not called.
       With one it becomes ``sending`` with a lease and a recorded start, like a claimed row.
    2. The synchronous client sends it (``dispatch.sender.send_one``).
    3. ``dispatch.finalize`` records the answer as it does the engine's: the state by ``decide()``, the
       attempt, and the credit spent, released or zeroed (43101).

    Nothing is retried here (a person is watching); a transient answer leaves the row ``retry_wait``
    for a worker, like any send. A crash between 1 and 3 leaves it ``sending`` until its lease runs
    out, and the reconciler calls it ``unknown``. Returns the delivery, reloaded.

    :raise ValueError: the delivery is not ``pending`` (a worker has it, or it was sent already).
    """
    ledger = grants_ledger()
    db.session.flush()  # the delivery needs its id for the ledger
    now = utcnow()
    # Take the row as a claim would: locked until the first commit, and only while it is pending, so
    # a worker can never claim and send it too.
    taken = db.session.execute(
        update(Delivery)
        .where(Delivery.id == delivery.id, Delivery.state == DeliveryState.pending)
        .values(updated_at=now)
        .execution_options(synchronize_session=False)
    )
    if taken.rowcount != 1:
        raise ValueError(f"delivery {delivery.id} is not pending: it cannot be sent now")
    refused = reserve_or_skip(
        db.session,
        ledger,
        [
            ReservationRequest(
                delivery.id,
                delivery.user_id,
                delivery.openid,
                delivery.template_id,
                delivery.source.value,
                delivery.attempts,
            )
        ],
        now,
    )
    if refused:
        db.session.commit()
        return delivery
    delivery.state = DeliveryState.sending
    delivery.attempts += 1
    delivery.lease_until = now + timedelta(seconds=current_app.config["DISPATCH_LEASE_SECONDS"])
    delivery.attempt_started_at = now  # it leaves right after this commit: a crash makes it unknown
    claim = Claim(
        delivery.id,
        delivery.attempts,
        delivery.openid,
        delivery.template_id,
        dict(delivery.data),
        delivery.page,
        delivery.miniprogram_state,
        delivery.lang,
    )
    db.session.commit()
    finalize(db.engine, ledger, [send_one(get_client(), claim)])
    db.session.refresh(delivery)
    return delivery


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
            try:
                return db_int(raw) if raw.lstrip("-").isdigit() else None
            except ValueError:  # beyond the column's range: ignored, like any other non-number
                return None

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
