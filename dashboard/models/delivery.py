"""Deliveries: one row per attempt to message one user, the queue of record for every send.

Campaign sends, API (transactional) sends and test sends are all deliveries, so the Deliveries page,
a user's page and a template's page tell the same story with WeChat's own answers.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Enum, ForeignKey, Index, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from .types import UTCDateTime, utcnow


class DeliveryState(enum.StrEnum):
    """pending → sending → sent | failed | skipped | unknown; retry_wait (with not_before) loops back."""

    pending = "pending"
    sending = "sending"
    sent = "sent"
    failed = "failed"
    skipped = "skipped"
    unknown = "unknown"
    retry_wait = "retry_wait"

    @property
    def is_final(self) -> bool:
        return self in FINAL_STATES


FINAL_STATES = frozenset(
    {DeliveryState.sent, DeliveryState.failed, DeliveryState.skipped, DeliveryState.unknown}
)


class Channel(enum.StrEnum):
    """How a delivery reaches its user (issue 15; ``docs``: the README's Channels section).

    ``mp_subscribe``: the mini-program's subscribe message, spending a credit of the grant ledger (the
    default, and the only channel before the Official Account); ``oa_template``: the linked Official
    Account's template message, to a follower (no credit; the user must follow); ``mp_subscribe_or_oa``:
    a subscribe credit when the user holds one, else the Official Account when they follow, else skipped
    ``no_channel``. A delivery's ``channel_used`` is one of the first two, chosen when it is claimed.
    """

    mp_subscribe = "mp_subscribe"
    oa_template = "oa_template"
    mp_subscribe_or_oa = "mp_subscribe_or_oa"


# The channels a message can actually go out on (``Delivery.channel_used``).
SENDING_CHANNELS = (Channel.mp_subscribe, Channel.oa_template)


class DeliverySource(enum.StrEnum):
    campaign = "campaign"
    api = "api"
    test = "test"


# The rows the frequency cap counts (and its partial index holds): campaign messages sent, maybe sent
# (unknown) or in flight. Written once, so the count's WHERE repeats the index's predicate word for word
# (SQLite uses a partial index only then).
FREQUENCY_CAP_ROWS = "campaign_id IS NOT NULL AND state IN ('sending', 'sent', 'unknown')"


def _enum(kind: type[enum.Enum], length: int = 16) -> Enum:
    return Enum(kind, native_enum=False, length=length, validate_strings=True)


class Delivery(db.Model):
    __tablename__ = "delivery"
    __table_args__ = (
        # One message per user per campaign, whatever happens to workers (NULLs do not collide).
        UniqueConstraint("campaign_id", "user_id", name="uq_delivery_campaign_user"),
        # The same API idempotency key from the same key never makes a second delivery.
        UniqueConstraint("api_key_id", "idempotency_key", name="uq_delivery_api_key_idempotency"),
        Index("ix_delivery_due", "state", "not_before"),
        Index("ix_delivery_state_id", "state", "id"),
        Index("ix_delivery_created_at", "created_at"),
        # A campaign's open count is read from the index alone.
        Index("ix_delivery_campaign_opened", "campaign_id", "opened_at"),
        # The frequency cap's count at claim time (``dispatch.frequency_cap``): a user's campaign messages
        # that were or may have been sent. Partial, so it holds only those rows, not every skipped one.
        Index(
            "ix_delivery_frequency_cap",
            "user_id",
            "sent_at",
            sqlite_where=text(FREQUENCY_CAP_ROWS),
            postgresql_where=text(FREQUENCY_CAP_ROWS),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    source: Mapped[DeliverySource] = mapped_column(_enum(DeliverySource))
    campaign_id: Mapped[int | None] = mapped_column(index=True)
    # The API key that asked for an API send: only it (or a read_all key) may read the delivery. Indexed by
    # uq_delivery_api_key_idempotency, which leads with it.
    api_key_id: Mapped[int | None] = mapped_column(ForeignKey("api_key.id", ondelete="SET NULL"))
    idempotency_key: Mapped[str | None] = mapped_column(String(128))
    # A digest of the API request's JSON body: a reused Idempotency-Key must come with the same body.
    request_digest: Mapped[str | None] = mapped_column(String(64))
    requested_by_id: Mapped[int | None] = mapped_column(ForeignKey("operator.id", ondelete="SET NULL"))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("wechat_user.id", ondelete="SET NULL"), index=True)
    openid: Mapped[str] = mapped_column(String(64), index=True)
    template_id: Mapped[str] = mapped_column(String(64), index=True)
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    page: Mapped[str | None] = mapped_column(String(512))
    miniprogram_state: Mapped[str] = mapped_column(String(16), default="formal")
    lang: Mapped[str] = mapped_column(String(8), default="zh_CN")

    # Which channel was asked for (``Channel``), and which one the claim chose (NULL until then, and for a
    # row skipped before a channel was chosen). ``mp_subscribe`` rows are today's subscribe messages.
    channel: Mapped[str] = mapped_column(
        String(24), default=Channel.mp_subscribe.value, server_default="mp_subscribe"
    )
    channel_used: Mapped[str | None] = mapped_column(String(16))
    # The Official Account message: the follower's openid it goes to (the OA's, another id than ``openid``;
    # chosen at claim through the unionid, or given for a follower with no mini-program user), the OA
    # template, its values ({key: value}) and the mini-program page a tap opens when not ``page``.
    oa_openid: Mapped[str | None] = mapped_column(String(64))
    oa_template_id: Mapped[str | None] = mapped_column(String(64))
    oa_data: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True))
    oa_pagepath: Mapped[str | None] = mapped_column(String(512))

    state: Mapped[DeliveryState] = mapped_column(_enum(DeliveryState), default=DeliveryState.pending)
    # Fencing token: each claim increments it, and a result is written only by the attempt holding it.
    attempts: Mapped[int] = mapped_column(default=0)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Committed before the attempt's request may leave; NULL while a row is claimed but not started, so
    # the reconciler can tell a row that never left (back to the queue) from one that may have (unknown).
    attempt_started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    not_before: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reason: Mapped[str] = mapped_column(String(64), default="")  # why skipped/failed, in our words

    # WeChat's answer to the last attempt.
    errcode: Mapped[int | None] = mapped_column()
    errmsg: Mapped[str] = mapped_column(String(512), default="")
    msgid: Mapped[str | None] = mapped_column(String(32), index=True)
    # The asynchronous delivery report (subscribe_msg_sent_event), joined by msgid.
    report_errcode: Mapped[int | None] = mapped_column()
    report_status: Mapped[str | None] = mapped_column(String(64))
    reported_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Campaign deliveries only: the random token appended to `page` as tz=<token>, and when the
    # mini-program first reported the card opened with it (dashboard/deliveries/opens.py).
    open_token: Mapped[str | None] = mapped_column(String(32), unique=True)
    opened_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    history: Mapped[list[DeliveryAttempt]] = relationship(
        back_populates="delivery", order_by="DeliveryAttempt.number", cascade="all, delete-orphan"
    )

    def __repr__(self) -> str:
        return f"<Delivery {self.id} {self.source} {self.openid} {self.template_id} {self.state}>"


class DeliveryAttempt(db.Model):
    """One call to WeChat for a delivery, with WeChat's answer (or the lack of one)."""

    __tablename__ = "delivery_attempt"

    id: Mapped[int] = mapped_column(primary_key=True)
    delivery_id: Mapped[int] = mapped_column(ForeignKey("delivery.id", ondelete="CASCADE"), index=True)
    number: Mapped[int] = mapped_column()
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    outcome: Mapped[DeliveryState] = mapped_column(_enum(DeliveryState))
    errcode: Mapped[int | None] = mapped_column()
    errmsg: Mapped[str] = mapped_column(String(512), default="")
    msgid: Mapped[str | None] = mapped_column(String(32))
    category: Mapped[str] = mapped_column(String(16), default="")
    elapsed_ms: Mapped[int | None] = mapped_column(BigInteger)

    delivery: Mapped[Delivery] = relationship(back_populates="history")
