"""The grant ledger: what users allowed, as an append-only record, and the balances that follow from it.

Balances change only together with a ledger event (``dashboard.grants.services``), so for every
balance ``credits == sum(credit_delta)`` over its events, and its latest event's ``kind``,
``credits_after`` and ``active_after`` are the balance's (a change of kind is an event too). Also here: the mini-program's grant reports
(one row per ``POST /api/mp/grants``, carrying its ``Idempotency-Key``), the WeChat pushes received (one
row per distinct push, for de-duplication), and the delivery reports (``subscribe_msg_sent_event``)
joined to deliveries by ``msgid``.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db
from .types import UTCDateTime, utcnow


class TemplateKindName(enum.StrEnum):
    """The two kinds of subscribe-message template, as the catalog names them."""

    one_time = "one_time"
    long_term = "long_term"


class GrantSource(enum.StrEnum):
    """Where a ledger event came from."""

    client = "client"  # the mini-program forwarded wx.requestSubscribeMessage's result
    popup_event = "popup_event"  # WeChat pushed subscribe_msg_popup_event
    change_event = "change_event"  # WeChat pushed subscribe_msg_change_event (a withdrawal)
    send_result = "send_result"  # the dispatch engine reserved, spent, released or zeroed a credit
    catalog = "catalog"  # the catalog changed the template's kind and the balance was converted


# WeChat's answers to a prompt (the glossary's grant statuses).
ACCEPT_STATUSES = ("accept", "acceptWithAudio", "acceptWithAlert")
PROMPT_STATUSES = (*ACCEPT_STATUSES, "reject", "ban", "filter")


class LedgerStatus(enum.StrEnum):
    """Statuses of ledger events that are not WeChat's prompt answers (those keep WeChat's words)."""

    reserved = "reserved"  # a send took one credit before calling WeChat (settled in place, below)
    # WeChat accepted the send (or its outcome is unknown): the credit is used. Since issue 13 the
    # reservation row itself becomes ``spent`` (−1); older history has ``reserved`` −1 then ``spent`` 0.
    spent = "spent"
    # The send failed in a way that did not use the credit: it goes back. Since issue 13 the reservation
    # row itself becomes ``released`` (0); older history, and a refund after ``spent``, append one (+1).
    released = "released"
    no_grant = "no_grant"  # WeChat answered 43101: the balance was wrong and is zeroed
    kind_changed = "kind_changed"  # the template became one-time or long-term (dashboard.grants.kinds)


class GrantReport(db.Model):
    """One grant report from the mini-program, kept for its idempotency key and as the events' origin."""

    __tablename__ = "grant_report"
    __table_args__ = (UniqueConstraint("user_id", "idempotency_key", name="uq_grant_report_user_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("wechat_user.id", ondelete="CASCADE"), index=True)
    idempotency_key: Mapped[str | None] = mapped_column(String(128))
    # SHA-256 of the canonical JSON body: the same key with another body is a client bug (409).
    body_digest: Mapped[str] = mapped_column(String(64))
    answers: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    scene: Mapped[str | None] = mapped_column(String(64))
    page: Mapped[str | None] = mapped_column(String(512))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class WechatPush(db.Model):
    """One distinct subscribe-event push from WeChat; a repeated delivery of it finds this row and stops."""

    __tablename__ = "wechat_push"

    id: Mapped[int] = mapped_column(primary_key=True)
    # sha256(FromUserName, CreateTime, Event, the List items): WeChat's retries carry the same body.
    dedup_key: Mapped[str] = mapped_column(String(64), unique=True)
    event: Mapped[str] = mapped_column(String(48))
    openid: Mapped[str] = mapped_column(String(64), index=True)
    create_time: Mapped[int] = mapped_column(BigInteger)
    items: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    body_format: Mapped[str] = mapped_column(String(8))  # "json" | "xml"
    encrypted: Mapped[bool] = mapped_column(default=False)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class GrantEvent(db.Model):
    """One entry of the ledger. Rows are only ever added, except that a send's ``reserved`` row is
    settled in place (``dashboard.grants.ledger``): one row per send.

    ``status`` is WeChat's prompt answer (accept, reject, ban, filter, acceptWithAudio, acceptWithAlert)
    or a ``LedgerStatus``. ``credit_delta`` is what the event did to the one-time credits, and
    ``credits_after`` / ``active_after`` the balance it left. ``pairs_with_id`` points at the event of the
    other source that reported the same prompt (a client report and its popup event count once).
    ``template_known`` is false when the catalog did not know the template at the time.
    """

    __tablename__ = "grant_event"
    __table_args__ = (
        Index("ix_grant_event_user_template_at", "user_id", "template_id", "occurred_at"),
        # The pairing lookup (``grants.reports``, ``services._find_partner``): the other source only.
        Index("ix_grant_event_pairing", "user_id", "template_id", "source", "occurred_at"),
        Index("ix_grant_event_template_status", "template_id", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("wechat_user.id", ondelete="CASCADE"))
    template_id: Mapped[str] = mapped_column(String(64))
    template_known: Mapped[bool] = mapped_column(default=False)
    kind: Mapped[str] = mapped_column(String(16))
    source: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(24))
    credit_delta: Mapped[int] = mapped_column(default=0)
    credits_after: Mapped[int] = mapped_column(default=0)
    active_after: Mapped[bool] = mapped_column(default=False)
    scene: Mapped[str | None] = mapped_column(String(64))
    page: Mapped[str | None] = mapped_column(String(512))
    note: Mapped[str] = mapped_column(String(120), default="")
    report_id: Mapped[int | None] = mapped_column(ForeignKey("grant_report.id", ondelete="SET NULL"))
    push_id: Mapped[int | None] = mapped_column(ForeignKey("wechat_push.id", ondelete="SET NULL"))
    delivery_id: Mapped[int | None] = mapped_column(index=True)
    pairs_with_id: Mapped[int | None] = mapped_column(
        ForeignKey("grant_event.id", ondelete="SET NULL"), index=True
    )
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    @property
    def is_accept(self) -> bool:
        return self.status in ACCEPT_STATUSES

    def __repr__(self) -> str:
        return f"<GrantEvent {self.id} {self.source} {self.template_id} {self.status} {self.credit_delta:+d}>"


class GrantBalance(db.Model):
    """A user's standing with one template: one-time ``credits``, or long-term ``active``."""

    __tablename__ = "grant_balance"
    __table_args__ = (
        UniqueConstraint("user_id", "template_id", name="uq_grant_balance_user_template"),
        # Covers a segment's grant condition (dashboard.audience.segments): who holds a live grant of one
        # template is read from the index alone (migration 0013).
        Index("ix_grant_balance_template_live", "template_id", "user_id", "kind", "credits", "active"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("wechat_user.id", ondelete="CASCADE"))
    template_id: Mapped[str] = mapped_column(String(64), index=True)
    kind: Mapped[str] = mapped_column(String(16), default=TemplateKindName.one_time.value)
    template_known: Mapped[bool] = mapped_column(default=False)
    credits: Mapped[int] = mapped_column(default=0)
    active: Mapped[bool] = mapped_column(default=False)
    last_status: Mapped[str] = mapped_column(String(24), default="")
    granted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    @property
    def is_live(self) -> bool:
        """May a message of this template be sent to this user now?"""
        if self.kind == TemplateKindName.long_term:
            return self.active
        return self.credits > 0

    def __repr__(self) -> str:
        return (
            f"<GrantBalance user={self.user_id} {self.template_id} {self.kind} {self.credits} {self.active}>"
        )


class SentReport(db.Model):
    """One item of ``subscribe_msg_sent_event``: WeChat's final word on a send, joined by ``msgid``.

    ``delivery_id`` is set when a delivery with that msgid exists; a report that arrives before the
    sender recorded the msgid is attached later (``dashboard.push.services.attach_sent_report``).
    """

    __tablename__ = "sent_report"
    __table_args__ = (
        # The minute tick's sweep of reports that missed their delivery (``finalize.join_missed_reports``).
        Index(
            "ix_sent_report_unjoined",
            "reported_at",
            postgresql_where=text("delivery_id IS NULL"),
            sqlite_where=text("delivery_id IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    push_id: Mapped[int] = mapped_column(ForeignKey("wechat_push.id", ondelete="CASCADE"), index=True)
    msgid: Mapped[str] = mapped_column(String(32), index=True)
    openid: Mapped[str] = mapped_column(String(64))
    template_id: Mapped[str] = mapped_column(String(64))
    errcode: Mapped[int | None] = mapped_column()
    status: Mapped[str] = mapped_column(String(64), default="")
    reported_at: Mapped[datetime] = mapped_column(UTCDateTime)
    delivery_id: Mapped[int | None] = mapped_column(
        ForeignKey("delivery.id", ondelete="SET NULL"), index=True
    )
