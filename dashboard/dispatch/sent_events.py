"""Settle ``unknown`` deliveries with WeChat's delivery event (``subscribe_msg_sent_event``).

An unknown delivery has no msgid (the answer that carried it was lost), so its event cannot be joined
by msgid. It is matched instead by openid and template, and by time: the event's CreateTime falls
shortly after the attempt started (``SENT_EVENT_MATCH_SECONDS``); of several candidates the oldest is
taken. The event and the unknown can arrive in either order:

* the event first: the report waits unjoined, and ``settle_new_unknowns`` looks for it when rows
  become unknown (``finalize``, the reconciler);
* the unknown first: ``settle_with_report`` looks for it when the event arrives (``dashboard.push``).

While a delivery of that openid is still ``sending``, the event may be that send's own (its msgid is
not recorded yet): it is left for the msgid join. The engine never has two sends of one openid in
flight, so once a lost worker's row turns unknown nothing else can claim the event.

ErrorCode 0 makes the delivery ``sent`` (its credit was already counted as spent); anything else
makes it ``failed`` and gives the credit back (``LedgerAction.refund``), through the ledger's settle.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from ..models import Channel, Delivery, DeliveryAttempt, DeliveryState, utcnow
from ..models.grants import SentReport
from .ledger import CreditLedger, Settlement
from .outcomes import LedgerAction

DEFAULT_MATCH_WINDOW = timedelta(seconds=300)
# CreateTime is in whole seconds and WeChat's clock is not ours: an event may look up to this much
# older than the attempt it reports on.
CLOCK_SLACK = timedelta(seconds=5)
REASON = "sent_event"  # the delivery's reason: its outcome comes from WeChat's delivery event


@dataclass(frozen=True)
class NewUnknown:
    """A row just recorded ``unknown``: its attempt number and when that attempt may have left."""

    delivery_id: int
    attempt: int
    user_id: int | None
    openid: str
    template_id: str
    started_at: datetime


def settle_with_report(
    session: Session, ledger: CreditLedger, report: SentReport, window: timedelta = DEFAULT_MATCH_WINDOW
) -> int | None:
    """An unjoined delivery report (flushed, no delivery has its msgid): settle the oldest matching
    unknown delivery with it. Returns that delivery's id, or None when none matches."""
    if report.errcode is None:
        return None
    d, a = Delivery.__table__.c, DeliveryAttempt.__table__.c
    # Locked: if the sender is recording this row right now, wait for it, then see it unknown (a
    # statement after its commit); if we lock first, its own look for early reports runs after our
    # commit. Either way one of the two sides sees the other (PostgreSQL's READ COMMITTED).
    in_flight = session.scalar(
        sa.select(d.id)
        .where(d.openid == report.openid, d.state == DeliveryState.sending.value)
        .limit(1)
        .with_for_update(of=Delivery.__table__)
    )
    if in_flight is not None:
        return None
    row = session.execute(
        sa.select(d.id, d.attempts, d.user_id, d.openid, d.template_id)
        .join(DeliveryAttempt.__table__, sa.and_(a.delivery_id == d.id, a.number == d.attempts))
        .where(
            d.state == DeliveryState.unknown.value,
            d.openid == report.openid,
            d.template_id == report.template_id,
            # An Official Account send is not the mini-program's: its event is TEMPLATESENDJOBFINISH.
            sa.or_(d.channel_used.is_(None), d.channel_used != Channel.oa_template.value),
            a.started_at >= report.reported_at - window,
            a.started_at <= report.reported_at + CLOCK_SLACK,
        )
        .order_by(a.started_at, d.id)
        .limit(1)
        .with_for_update(of=Delivery.__table__)
    ).first()
    if row is None:
        return None
    unknown = NewUnknown(row.id, row.attempts, row.user_id, row.openid, row.template_id, report.reported_at)
    return row.id if _settle(session, ledger, unknown, report) else None


def settle_new_unknowns(
    session: Session,
    ledger: CreditLedger,
    unknowns: Sequence[NewUnknown],
    window: timedelta = DEFAULT_MATCH_WINDOW,
) -> int:
    """Rows just recorded unknown, in the caller's transaction: settle each with a delivery report
    that arrived first (the oldest unjoined match). Returns how many were settled."""
    settled = 0
    for unknown in unknowns:
        report = session.scalar(
            sa.select(SentReport)
            .where(
                SentReport.delivery_id.is_(None),
                SentReport.errcode.is_not(None),
                SentReport.openid == unknown.openid,
                SentReport.template_id == unknown.template_id,
                SentReport.reported_at >= unknown.started_at - CLOCK_SLACK,
                SentReport.reported_at <= unknown.started_at + window,
            )
            .order_by(SentReport.reported_at, SentReport.id)
            .limit(1)
        )
        if report is not None and _settle(session, ledger, unknown, report):
            settled += 1
    return settled


def _settle(session: Session, ledger: CreditLedger, unknown: NewUnknown, report: SentReport) -> bool:
    delivered = report.errcode == 0
    d = Delivery.__table__.c
    changed = session.execute(
        sa.update(Delivery.__table__)
        .where(
            d.id == unknown.delivery_id,
            d.state == DeliveryState.unknown.value,
            d.attempts == unknown.attempt,
        )
        .values(
            state=(DeliveryState.sent if delivered else DeliveryState.failed).value,
            errcode=report.errcode,
            errmsg=(report.status or "")[:512],
            msgid=report.msgid,
            reason=REASON,
            sent_at=report.reported_at if delivered else None,
            report_errcode=report.errcode,
            report_status=report.status,
            reported_at=report.reported_at,
            updated_at=utcnow(),
        )
    ).rowcount
    if changed != 1:
        return False
    session.execute(
        sa.update(SentReport.__table__)
        .where(SentReport.__table__.c.id == report.id)
        .values(delivery_id=unknown.delivery_id)
    )
    session.expire(report, ["delivery_id"])
    action = LedgerAction.spend if delivered else LedgerAction.refund
    ledger.settle(
        session,
        [Settlement(unknown.delivery_id, unknown.user_id, unknown.openid, unknown.template_id, action)],
    )
    return True
