"""The Official Account (服务号) channel: its followers, and the events its push endpoint received.

A follower is known by the OA's openid (another id than the mini-program's). A follower and a
mini-program user with the same ``unionid`` are one person: the join is made when read
(``dashboard.oa.followers``), so it holds whichever of the two Tongzhi learned first.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, String, text
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db
from .types import UTCDateTime, utcnow


class OaFollower(db.Model):
    """One openid of the Official Account and whether it follows.

    ``followed_at``: since when it follows (WeChat's ``subscribe_time`` or the ``subscribe`` event);
    ``unfollowed_at``: when it last stopped. ``changed_at`` is the time of the fact ``following`` comes
    from (an event's CreateTime, or the moment a sync asked WeChat): a sync never overwrites a newer
    event's answer. ``synced_at`` is the last sync that saw it.
    """

    __tablename__ = "oa_follower"

    id: Mapped[int] = mapped_column(primary_key=True)
    openid: Mapped[str] = mapped_column(String(64), unique=True)
    unionid: Mapped[str | None] = mapped_column(String(64), index=True)
    following: Mapped[bool] = mapped_column(default=False)
    followed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    unfollowed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    synced_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    def __repr__(self) -> str:
        return f"<OaFollower {self.openid} following={self.following}>"


class OaEvent(db.Model):
    """One distinct push to ``/wechat/oa-push`` (a repeat finds this row and stops).

    ``subscribe`` / ``unsubscribe`` keep the followers current; ``TEMPLATESENDJOBFINISH`` carries
    ``msgid`` and ``status`` (``success``, ``failed:user block``, ``failed:system failed`` …), kept here
    for the delivery with that msgid. ``fields`` is the rest of the event as WeChat sent it.
    ``delivery_id``: the Official Account delivery a job-finish was joined to (NULL until its msgid is
    recorded: ``dispatch.finalize`` joins the early ones).
    """

    __tablename__ = "oa_event"
    __table_args__ = (
        # The minute tick's sweep of job-finishes that missed their delivery (``finalize.join_missed_reports``).
        Index(
            "ix_oa_event_unjoined",
            "received_at",
            postgresql_where=text("delivery_id IS NULL AND msgid IS NOT NULL"),
            sqlite_where=text("delivery_id IS NULL AND msgid IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    dedup_key: Mapped[str] = mapped_column(String(64), unique=True)
    event: Mapped[str] = mapped_column(String(48))
    openid: Mapped[str] = mapped_column(String(64), index=True)
    create_time: Mapped[int] = mapped_column(BigInteger)
    msgid: Mapped[str | None] = mapped_column(String(32), index=True)
    status: Mapped[str | None] = mapped_column(String(64))
    fields: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    body_format: Mapped[str] = mapped_column(String(8))  # "json" | "xml"
    encrypted: Mapped[bool] = mapped_column(default=False)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    delivery_id: Mapped[int | None] = mapped_column(
        ForeignKey("delivery.id", ondelete="SET NULL"), index=True
    )
