"""Campaigns: one notice on one template to the users of one segment, sent by the dispatch engine.

A campaign's recipients are fixed when it starts: its delivery rows (``source = campaign``) are the
snapshot, and from then on the engine's claim sends them like any other delivery. Which moves between
states are allowed is decided in one place, ``dashboard/campaigns/states.py``.
"""

from __future__ import annotations

import enum
from datetime import datetime, time
from typing import Any

from sqlalchemy import JSON, Enum, Float, ForeignKey, Index, String, Time, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db
from .types import UTCDateTime, utcnow


class CampaignState(enum.StrEnum):
    draft = "draft"
    scheduled = "scheduled"
    running = "running"
    paused = "paused"
    completed = "completed"
    cancelled = "cancelled"
    # An occurrence of a recurring campaign that never ran: nothing was running within
    # RECURRING_MAX_LATENESS_MINUTES of its time, or a later occurrence ran in its place (a run only).
    missed = "missed"


# Why a campaign is held, by code, in English (the API's ``pause_reason``). The console shows the same
# sentences translated (``campaigns.report.HOLD_TEXT``, the same msgids); %(name)s are ``hold_args``.
HOLD_REASONS: dict[str, str] = {
    "operator": "Paused by an operator.",
    "quota": "WeChat's daily sending quota is used up (45009).",
    "failure_rate": "%(failed)s of %(answered)s sends failed, more than the %(threshold)s%% allowed.",
    "template": "Waiting: the template cannot be used now (%(why)s).",
    "segment": "Waiting: the campaign's segment no longer exists.",
    "values": "Waiting: a keyword value breaks its rule (%(key)s).",
    # A campaign that sends through the Official Account (issue 15).
    "oa_off": "Waiting: the Official Account channel is off.",
    "oa_template": "Waiting: the Official Account template cannot be used now (%(why)s).",
    # Why an occurrence of a recurring campaign is ``missed``.
    "late": "Missed: nothing was running within %(limit)s minutes of its time.",
    "superseded": "Missed: a later occurrence ran in its place.",
}
# The words for the ``template`` hold's ``why`` (``catalog.services.template_usable``).
TEMPLATE_PROBLEMS: dict[str, str] = {
    "unknown": "not in the catalog",
    "removed": "removed at WeChat",
    "disabled": "disabled",
    "changed": "changed at WeChat",
}


def hold_sentence(code: str, args: dict[str, Any] | None) -> str:
    """The English sentence for a hold; "" for none, the code itself for one this version does not know."""
    if not code:
        return ""
    text = HOLD_REASONS.get(code)
    if text is None:
        return code
    values = dict(args or {})
    if code in ("template", "oa_template"):
        values["why"] = TEMPLATE_PROBLEMS.get(str(values.get("why")), values.get("why", ""))
    try:
        return text % values
    except (KeyError, TypeError, ValueError):
        return text.split("%(")[0].rstrip(" (") + "."


DEFAULT_QUIET_START = time(21, 0)
DEFAULT_QUIET_END = time(8, 0)


class Campaign(db.Model):
    """A one-off campaign; or a recurring one (``schedule`` set), which never sends itself: each of its
    occurrences is a run, a child campaign (``parent_id``, ``occurrence_at``) with its own snapshot,
    counters and report. ``UNIQUE (parent_id, occurrence_at)`` makes an occurrence one run, however many
    schedulers see it due (``campaigns.recurring``)."""

    __tablename__ = "campaign"
    __table_args__ = (
        Index("ix_campaign_state", "state"),
        UniqueConstraint("parent_id", "occurrence_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    # WeChat's template id (priTmplId), as deliveries carry it.
    template_id: Mapped[str] = mapped_column(String(64))
    segment_id: Mapped[int | None] = mapped_column(ForeignKey("segment.id", ondelete="SET NULL"))
    # Per keyword where its value comes from: {"thing2": {"value": "text or {{user.nickname}}",
    # "fallback": "used when a user variable is empty"}}; a keyword left out takes the template default.
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    page: Mapped[str | None] = mapped_column(String(512))
    miniprogram_state: Mapped[str] = mapped_column(String(16), default="formal")
    lang: Mapped[str] = mapped_column(String(8), default="zh_CN")
    # The channel its deliveries ask for (``models.delivery.Channel``): the subscribe message (default), the
    # Official Account's template message, or the subscribe message with the OA as the fallback. The OA
    # template and its values in the form of ``data`` (per key a value or ``{{user.*}}`` and a fallback);
    # its card opens ``page`` in the mini-program.
    channel: Mapped[str] = mapped_column(String(24), default="mp_subscribe", server_default="mp_subscribe")
    oa_template_id: Mapped[str | None] = mapped_column(String(64))
    oa_data: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True))

    state: Mapped[CampaignState] = mapped_column(
        Enum(CampaignState, native_enum=False, length=16, validate_strings=True), default=CampaignState.draft
    )
    # Why a campaign is paused, or why a scheduled one waits past its time: a code from ``HOLD_REASONS``
    # (an operator, the failure rate, WeChat's daily quota, an unusable template...) and the numbers its
    # sentence needs. The page says it in the operator's language, the API in English (``pause_reason``).
    hold_code: Mapped[str] = mapped_column(String(32), default="")
    hold_args: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    scheduled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    # Quiet hours, local times in ``timezone`` (the operator's zone when composed): no send starts between
    # quiet_start and quiet_end (the window may span midnight). Both NULL: no quiet hours.
    quiet_start: Mapped[time | None] = mapped_column(Time)
    quiet_end: Mapped[time | None] = mapped_column(Time)
    timezone: Mapped[str] = mapped_column(String(64), default="Asia/Shanghai")

    # At most this many sends per second for this campaign (under the global limit); NULL: no own limit.
    # The campaign's own token bucket, refilled and spent by the claim under the dispatch-state lock.
    rate_per_second: Mapped[int | None] = mapped_column()
    rate_tokens: Mapped[float] = mapped_column(Float, default=0.0)
    rate_tokens_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    recipients: Mapped[int] = mapped_column(default=0)

    # Recurring campaigns (``campaigns.recurring``). On the recurring campaign: its ``schedule``
    # ({"repeat": "daily" | "weekly" | "monthly" | "cron", "time", "weekdays", "day", "cron"}, read in
    # ``timezone``) and the first occurrence not yet turned into a run (NULL unless it is scheduled).
    # On a run: the recurring campaign it belongs to and the occurrence it is for.
    schedule: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True))
    next_occurrence_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("campaign.id", ondelete="CASCADE"))
    occurrence_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Date reminders (``campaigns.reminders``): {"attribute", "time", "steps": [{"offset_days", "data"}]}
    # on the reminder (a daily recurring campaign) and copied onto each of its runs.
    reminder: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True))

    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("operator.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    @property
    def pause_reason(self) -> str:
        """Why the campaign is paused or waits, as an English sentence ("" when nothing holds it)."""
        return hold_sentence(self.hold_code, self.hold_args)

    @property
    def is_recurring(self) -> bool:
        return self.schedule is not None

    @property
    def is_reminder(self) -> bool:
        return self.reminder is not None

    @property
    def has_quiet_hours(self) -> bool:
        return self.quiet_start is not None and self.quiet_end is not None

    def __repr__(self) -> str:
        return f"<Campaign {self.id} {self.name!r} {self.state}>"
