"""Date reminders (issue 14): which step of which reminder each user was sent, per value of the date.

A reminder is a recurring campaign (``Campaign.reminder`` set, ``campaigns.reminders``): each day's run takes
as recipients the users whose date attribute falls ``offset_days`` after the run's local day. The row for
(reminder, step, user, date value) is written in the run's snapshot transaction with insert-or-ignore, so
a user gets a step once per value of the date: a rerun of the day finds the rows and sends nothing twice; a
renewal that moves the date makes a new value, and the step is due again.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db
from .types import UTCDateTime, utcnow


class ReminderSent(db.Model):
    __tablename__ = "reminder_sent"
    __table_args__ = (
        UniqueConstraint("campaign_id", "step", "user_id", "date_value"),
        Index("ix_reminder_sent_run_id", "run_id", "step"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # The reminder (the recurring campaign), the step's index in its ``steps``, the user, and the date's
    # value (YYYY-MM-DD, the operator's calendar day) the step was sent for.
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaign.id", ondelete="CASCADE"))
    step: Mapped[int] = mapped_column()
    user_id: Mapped[int] = mapped_column(ForeignKey("wechat_user.id", ondelete="CASCADE"))
    date_value: Mapped[str] = mapped_column(String(10))
    # The run (child campaign) whose snapshot wrote the row: its delivery rows are these users.
    run_id: Mapped[int] = mapped_column(ForeignKey("campaign.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
