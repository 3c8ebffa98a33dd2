"""Campaign services: compose, launch (the snapshot), pause, resume, cancel, and the supervisor that the
dispatch tick runs (scheduled starts, automatic pauses, completion).

Every state change goes through ``states.move``; the dispatch engine sends a campaign's delivery rows
like any other, held by ``dispatch.campaign_gate`` while the campaign may not send.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.dialects import postgresql as postgresql_dialect

from ..audience.segments import segment_user_ids
from ..catalog.services import get_by_template_id, template_usable
from ..config import oa_configured
from ..deliveries.opens import campaign_page_problem, count_opens, sql_open_token, tracked_page_prefix
from ..dispatch.campaign_gate import CANCELLED_HOLD
from ..extensions import db
from ..models import Channel, Delivery, DeliverySource, DeliveryState, DispatchState, WechatUser
from ..models.campaign import HOLD_REASONS, Campaign, CampaignState
from ..models.catalog import MessageTemplate
from ..models.delivery import SENDING_CHANNELS
from ..models.dispatch import DISPATCH_STATE_ID
from ..models.oa_template import OaTemplate
from ..models.segment import Segment
from ..models.types import utcnow
from . import recurring, reminders, states, values
from .states import InvalidTransition

log = logging.getLogger(__name__)
S = CampaignState
SNAPSHOT_BATCH = 1000
# The failure rate is judged once this many of a campaign's sends have an answer, not on the first few.
FAILURE_SAMPLE = 50
OPEN_STATES = (DeliveryState.pending.value, DeliveryState.retry_wait.value, DeliveryState.sending.value)
# Why a campaign is held: a code (``models.campaign.HOLD_REASONS``) and its numbers, said in the
# operator's language on the page and in English by the API. The REASON_ names are the API's sentences.
HOLD_OPERATOR, HOLD_QUOTA, HOLD_FAILURES = "operator", "quota", "failure_rate"
REASON_QUOTA = HOLD_REASONS[HOLD_QUOTA]
REASON_OPERATOR = HOLD_REASONS[HOLD_OPERATOR]
CHANNELS = tuple(channel.value for channel in Channel)


class CampaignError(Exception):
    """A campaign cannot be created, edited or launched as asked: ``field`` names what is wrong."""

    def __init__(self, status: int, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.field = status, code, message, field


# -- composing -----------------------------------------------------------------------------------------


def _template(template_id: str) -> MessageTemplate:
    template = get_by_template_id(template_id)
    if template is None:
        raise CampaignError(404, "unknown_template", "No registered template has this ID.", "template_id")
    return template


def check_sources(template: MessageTemplate, data: Any) -> list[values.KeywordSource]:
    try:
        return values.parse_sources(template.keyword_specs, data)
    except values.BadValue as bad:
        raise CampaignError(422, "invalid_value", bad.message, f"data.{bad.key}") from None


# -- channels (issue 15): which message a campaign's deliveries ask for ---------------------------------
#
# ``mp_subscribe``: the subscribe message, on ``template_id`` with ``data`` (as before channels).
# ``oa_template``: the Official Account's template message only, on ``oa_template_id`` with ``oa_data``;
#   such a campaign has no mini-program template: ``template_id`` is "" and ``data`` {} (on its deliveries
#   too), and nothing about the mini-program template is asked or checked.
# ``mp_subscribe_or_oa``: both, each judged by its own rules; the claim picks one per user.


def uses_mp(channel: str) -> bool:
    return channel != Channel.oa_template.value


def uses_oa(channel: str) -> bool:
    return channel != Channel.mp_subscribe.value


def oa_template_of(oa_template_id: str | None) -> OaTemplate:
    template = None
    if oa_template_id:
        template = db.session.scalar(sa.select(OaTemplate).where(OaTemplate.template_id == oa_template_id))
    if template is None:
        raise CampaignError(
            404, "unknown_oa_template", "No Official Account template has this ID.", "oa_template_id"
        )
    return template


def check_oa_sources(template: OaTemplate, data: Any, field: str = "oa_data") -> list[values.KeywordSource]:
    try:
        return values.oa_sources(template.keywords or [], data)
    except values.BadValue as bad:
        raise CampaignError(422, "invalid_value", bad.message, f"{field}.{bad.key}") from None


def oa_template_problem(oa_template_id: str | None) -> str | None:
    """Why an Official Account template cannot be sent now (``unknown``, ``removed``, ``changed`` until
    reviewed: the mini-program catalog's words), None when it can."""
    template = None
    if oa_template_id:
        template = db.session.scalar(sa.select(OaTemplate).where(OaTemplate.template_id == oa_template_id))
    if template is None:
        return "unknown"
    if template.drift is not None and template.drift.value in ("removed", "changed"):
        return template.drift.value
    return None


def _check_oa_on() -> None:
    if not oa_configured(current_app.config):
        raise CampaignError(
            409,
            "oa_off",
            "The Official Account channel is off: set WECHAT_OA_APPID and WECHAT_OA_SECRET first.",
            "channel",
        )


def channel_fields(fields: Mapping[str, Any], *, reminder: bool = False) -> dict[str, Any]:
    """``channel``, ``oa_template_id`` and ``oa_data`` as a campaign stores them, judged: the channel known,
    and for one that uses the Official Account, the channel on, the OA template known and its values
    (on a reminder, each step's ``oa_data`` is judged with its steps). :raise CampaignError: naming it."""
    channel = fields.get("channel") or Channel.mp_subscribe.value
    if channel not in CHANNELS:
        raise CampaignError(422, "invalid_field", f"channel must be one of {', '.join(CHANNELS)}.", "channel")
    if not uses_oa(channel):
        return {"channel": channel, "oa_template_id": None, "oa_data": None}
    _check_oa_on()
    template = oa_template_of(fields.get("oa_template_id"))
    oa_data = None
    if not reminder:
        oa_data = dict(fields.get("oa_data") or {})
        check_oa_sources(template, oa_data)
    return {"channel": channel, "oa_template_id": template.template_id, "oa_data": oa_data}


def oa_sources_of(campaign: Campaign) -> list[values.KeywordSource] | None:
    """The campaign's OA values judged (None: it does not use the Official Account)."""
    if not uses_oa(campaign.channel):
        return None
    return check_oa_sources(oa_template_of(campaign.oa_template_id), campaign.oa_data or {})


def create_campaign(fields: Mapping[str, Any], created_by_id: int | None = None) -> Campaign:
    """A new draft from checked ``fields`` (see ``api.v1_campaigns.parse_body``); commits.

    With a ``schedule`` (``recurring.parse_schedule``'s shape) the draft is a recurring campaign; with a
    ``reminder`` (``reminders.parse_reminder``'s shape) a date reminder, daily at its time, its segment
    optional (it narrows the users whose date is due)."""
    channel = channel_fields(fields, reminder=fields.get("reminder") is not None)
    if uses_mp(channel["channel"]):
        template: MessageTemplate | None = _template(fields.get("template_id") or "")
    elif fields.get("template_id"):
        raise CampaignError(
            422,
            "invalid_field",
            "A campaign on the oa_template channel has no mini-program template: leave template_id out.",
            "template_id",
        )
    else:
        template = None
    reminder = None
    if fields.get("reminder") is not None:
        if fields.get("schedule") is not None:
            raise CampaignError(
                422,
                "invalid_field",
                "A reminder repeats daily at reminder.time: give no schedule.",
                "schedule",
            )
        if fields.get("scheduled_at") is not None:
            raise CampaignError(
                422,
                "invalid_field",
                "A reminder sends daily at reminder.time: give no scheduled_at.",
                "scheduled_at",
            )
        reminder, daily = _judged_reminder(
            template, fields["reminder"], channel["oa_template_id"], fields.get("segment_id")
        )
        fields = {**fields, "schedule": daily, "data": {}}
    elif template is not None:
        check_sources(template, fields.get("data") or {})
    else:
        fields = {**fields, "data": {}}
    if reminder is None or fields.get("segment_id") is not None:
        if fields.get("segment_id") is None or db.session.get(Segment, fields["segment_id"]) is None:
            raise CampaignError(404, "unknown_segment", "No segment has this id.", "segment_id")
    default_page = template.page if template is not None else None
    page = fields.get("page") if fields.get("page") is not None else (default_page or None)
    _check_page(page)
    zone = current_app.config.get("TIMEZONE") or "Asia/Shanghai"
    schedule = _check_schedule(fields.get("schedule"), fields.get("scheduled_at"), zone)
    campaign = Campaign(
        name=fields["name"],
        template_id=template.template_id if template is not None else "",
        segment_id=fields["segment_id"],
        data=dict(fields.get("data") or {}),
        **channel,
        page=page,
        miniprogram_state=fields.get("miniprogram_state")
        or (template.miniprogram_state if template is not None else "")
        or "formal",
        lang=fields.get("lang") or (template.lang if template is not None else "") or "zh_CN",
        scheduled_at=fields.get("scheduled_at"),
        rate_per_second=fields.get("rate_per_second"),
        quiet_start=fields.get("quiet_start"),
        quiet_end=fields.get("quiet_end"),
        timezone=zone,
        schedule=schedule,
        reminder=reminder,
        created_by_id=created_by_id,
    )
    db.session.add(campaign)
    db.session.commit()
    return campaign


def _judged_reminder(
    template: MessageTemplate | None, reminder: Any, oa_template_id: str | None, segment_id: int | None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """A reminder as it is stored (judged, with ``in_segment``) and the daily schedule its time makes:
    the one reading of a reminder for a new draft and an edited one."""
    checked = _check_reminder(template, reminder, oa_template_id)
    checked["in_segment"] = segment_id is not None
    return checked, reminders.schedule_of(checked)


def _check_reminder(
    template: MessageTemplate | None, reminder: Any, oa_template_id: str | None = None
) -> dict[str, Any]:
    """The reminder normalised, its steps' values judged against the template and, when it uses the
    Official Account, their ``oa_data`` against the OA template (422 naming the part)."""
    try:
        normalised = reminders.parse_reminder(reminder)
        reminders.check_steps(template.keyword_specs if template is not None else [], normalised)
        if oa_template_id is not None:
            reminders.check_oa_steps(oa_template_of(oa_template_id).keywords or [], normalised)
    except reminders.BadReminder as bad:
        raise CampaignError(bad.status, bad.code, bad.message, bad.field) from None
    return normalised


def _check_schedule(
    schedule: Mapping[str, Any] | None, scheduled_at: datetime | None, zone: str
) -> dict[str, Any] | None:
    """The schedule normalised (None: a one-off campaign). It must occur, at most once an hour; a recurring
    campaign starts on launch, so it takes no ``scheduled_at``."""
    if not schedule:
        return None
    if scheduled_at is not None:
        raise CampaignError(
            422,
            "invalid_field",
            "A recurring campaign starts when launched: give schedule or scheduled_at, not both.",
            "scheduled_at",
        )
    try:
        normalised = recurring.parse_schedule(schedule)
        recurring.check(normalised, zone, utcnow())
    except recurring.BadSchedule as bad:
        raise CampaignError(422, "invalid_field", bad.message, bad.field) from None
    return normalised


def _check_page(page: str | None) -> None:
    """Every recipient's page gets its open token at launch: refuse now a page that could not take it."""
    problem = campaign_page_problem(page)
    if problem:
        raise CampaignError(422, "invalid_field", problem, "page")


def update_campaign(campaign: Campaign, fields: Mapping[str, Any]) -> Campaign:
    """Change ``fields`` of a campaign whose state allows it; commits.

    :raise InvalidTransition: the state does not allow editing these fields (says why).
    """
    states.check_edit(campaign, fields)
    if "page" in fields:
        _check_page(fields["page"])
    if fields.get("reminder") is not None:
        # Judged as a new draft's is, against the template, OA template and segment it will have.
        merged = {
            key: fields.get(key, getattr(campaign, key))
            for key in ("template_id", "channel", "oa_template_id", "oa_data", "segment_id")
        }
        channel = channel_fields(merged, reminder=True)
        template = _template(merged["template_id"] or "") if uses_mp(channel["channel"]) else None
        if merged["segment_id"] is not None and db.session.get(Segment, merged["segment_id"]) is None:
            raise CampaignError(404, "unknown_segment", "No segment has this id.", "segment_id")
        reminder, daily = _judged_reminder(
            template, fields["reminder"], channel["oa_template_id"], merged["segment_id"]
        )
        fields = {**fields, "reminder": reminder, "schedule": daily}
    if "schedule" in fields or "scheduled_at" in fields:
        schedule = _check_schedule(
            fields.get("schedule", campaign.schedule),
            fields.get("scheduled_at", campaign.scheduled_at),
            campaign.timezone,
        )
        if "schedule" in fields:
            fields = {**fields, "schedule": schedule}
    channel_keys = {"channel", "oa_template_id", "oa_data"}
    if channel_keys & set(fields):
        merged = {key: fields.get(key, getattr(campaign, key)) for key in channel_keys}
        fields = {**fields, **channel_fields(merged, reminder=campaign.is_reminder)}
    channel = fields.get("channel", campaign.channel)
    if not uses_mp(channel) and {"channel", "template_id", "data"} & set(fields):
        fields = {**fields, "template_id": "", "data": {}}  # an OA-only campaign: no mini-program template
    sources = oa = None
    if "data" in fields and uses_mp(channel):
        sources = check_sources(_template(fields.get("template_id") or campaign.template_id), fields["data"])
    if "oa_data" in fields and fields["oa_data"] is not None:
        oa = check_oa_sources(oa_template_of(fields["oa_template_id"]), fields["oa_data"])
    state = campaign.state
    # The same conditional update as a move: the edit lands only if the state is still the one checked.
    result = db.session.execute(
        sa.update(Campaign)
        .where(Campaign.id == campaign.id, Campaign.state == state)
        .values(**fields, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        db.session.rollback()
        db.session.refresh(campaign)
        raise InvalidTransition(
            campaign.state, None, "The campaign changed state meanwhile: look again before editing."
        )
    if (sources is not None or oa is not None) and state == S.paused:
        # The recipients are fixed, their values are not: rows not yet sent go out with the new ones.
        db.session.refresh(campaign)
        if sources is None:
            sources = (
                check_sources(_template(campaign.template_id), campaign.data) if uses_mp(channel) else []
            )
        if oa is None:
            oa = oa_sources_of(campaign)
        _fill(campaign.id, sources, oa, only_unsent=True)
    db.session.commit()
    db.session.refresh(campaign)
    return campaign


# -- launching -----------------------------------------------------------------------------------------


def launch(campaign_id: int, now: datetime | None = None) -> Campaign:
    """Send now (the snapshot is taken and the campaign runs) or, when ``scheduled_at`` is ahead, schedule
    it; commits. Two launches at once start it once: the other is refused (``InvalidTransition``)."""
    now = now or utcnow()
    campaign = _get(campaign_id)
    if campaign.state != S.draft:
        raise InvalidTransition(campaign.state, S.running, states.refusal(campaign.state, S.running))
    _check_launchable(campaign)
    if campaign.schedule is not None:
        # A recurring campaign: its runs start from the first occurrence from now on.
        first = recurring.next_occurrence(campaign.schedule, campaign.timezone, now)
        states.move(db.session, campaign_id, S.scheduled, now=now, next_occurrence_at=first)
        db.session.commit()
        return _get(campaign_id)
    if campaign.scheduled_at is not None and campaign.scheduled_at > now:
        states.move(db.session, campaign_id, S.scheduled, now=now)
        db.session.commit()
    else:
        start(campaign_id, now)
    return _get(campaign_id)


def _check_launchable(campaign: Campaign) -> None:
    mp = uses_mp(campaign.channel)
    if mp:
        usable = template_usable(campaign.template_id)
        if not usable.ok:
            raise CampaignError(
                409,
                f"template_{usable.reason}",
                f"The template cannot be used now ({usable.reason}).",
                "template_id",
            )
    oa_template_id = None
    if uses_oa(campaign.channel):
        _check_oa_on()
        problem = oa_template_problem(campaign.oa_template_id)
        if problem is not None:
            raise CampaignError(
                409,
                f"oa_template_{problem}",
                f"The Official Account template cannot be used now ({problem}).",
                "oa_template_id",
            )
        oa_template_id = campaign.oa_template_id
    reminder = campaign.reminder
    if reminder is None or reminder.get("in_segment"):
        if campaign.segment_id is None or db.session.get(Segment, campaign.segment_id) is None:
            raise CampaignError(
                409, "unknown_segment", "The campaign's segment no longer exists.", "segment_id"
            )
    template = _template(campaign.template_id) if mp else None
    if reminder is not None:
        _check_reminder(template, {k: reminder[k] for k in reminders.FIELDS}, oa_template_id)
    else:
        if template is not None:
            check_sources(template, campaign.data)
        oa_sources_of(campaign)


def start(campaign_id: int, now: datetime | None = None) -> int:
    """Move to running and snapshot the segment into delivery rows, in one transaction; commits.

    The conditional move comes first: a second launch waits for the first one's row lock (PostgreSQL)
    or write lock (SQLite), then finds the campaign running and is refused before any row is written.
    Returns the number of recipients.
    """
    now = now or utcnow()
    states.move(db.session, campaign_id, S.running, now=now, sources=(S.draft, S.scheduled), started_at=now)
    campaign = db.session.get(Campaign, campaign_id)
    db.session.refresh(campaign)
    try:
        recipients = _snapshot(campaign, now)
        campaign.recipients = recipients
        db.session.commit()
    except Exception:
        db.session.rollback()
        raise
    return recipients


def _snapshot(campaign: Campaign, now: datetime) -> int:
    """The segment's users as pending deliveries, each row written once with its open token and its
    tracked page, and no user held in Python beyond one window of ``SNAPSHOT_BATCH``.

    Fixed values: one INSERT … SELECT. Values with user variables: on PostgreSQL, ``_snapshot_filled``
    (each row inserted with its values); on SQLite, the INSERT … SELECT then ``_fill`` in windows of
    delivery ids (SQLite rewrites a row in place, without PostgreSQL's new row version and index entries).
    """
    if campaign.reminder is not None:  # a date reminder's run: the users whose date is due
        return reminders.snapshot(campaign, now)
    sources = (
        check_sources(_template(campaign.template_id), campaign.data) if uses_mp(campaign.channel) else []
    )
    oa_sources = oa_sources_of(campaign)
    segment = db.session.get(Segment, campaign.segment_id)
    fixed = values.constant(sources) and values.constant(oa_sources or [])
    constant = values.fill(sources, {}) if values.constant(sources) else {}
    oa_constant = values.fill(oa_sources, {}) if oa_sources is not None and fixed else None
    for refused in (constant, oa_constant):
        if isinstance(refused, str):  # cannot happen: the checks judged every constant value
            raise CampaignError(
                422, "invalid_value", f"{refused}: the value breaks its rule.", f"data.{refused}"
            )
    dialect = db.session.get_bind().dialect.name
    user = WechatUser.__table__.c
    t = Delivery.__table__
    # A card that opens a page carries an open token (``deliveries.opens``), one per recipient, made by
    # the database. The token is drawn once per user in ``recipients`` and read twice (the token column,
    # and the page built from it), so every row is written once.
    prefix = tracked_page_prefix(campaign.page)
    if dialect == "postgresql" and not fixed:
        return _snapshot_filled(campaign, sources, oa_sources, segment, now, prefix)
    chosen = [user.id.label("user_id"), user.openid.label("openid")]
    if prefix:
        chosen.append(sql_open_token(dialect).label("token"))
    recipients_query = sa.select(*chosen).where(user.id.in_(segment_user_ids(segment.filter, now)))
    if prefix and dialect != "postgresql":
        # SQLite would flatten a subquery into the outer SELECT and draw the token once per use; a
        # MATERIALIZED CTE is evaluated once. PostgreSQL never flattens a subquery whose output has a
        # volatile function (gen_random_uuid), so it needs no temporary copy of the recipients.
        recipients = recipients_query.cte("recipients").prefix_with("MATERIALIZED")
    else:
        recipients = recipients_query.subquery("recipients")
    r = recipients.c
    columns = {
        "source": sa.literal(DeliverySource.campaign.value, sa.String),
        "campaign_id": sa.literal(campaign.id, sa.Integer),
        "user_id": r.user_id,
        "openid": r.openid,
        "template_id": sa.literal(campaign.template_id, sa.String),
        "data": sa.literal(constant, t.c.data.type),
        "page": sa.literal(prefix, sa.String) + r.token if prefix else sa.literal(campaign.page, sa.String),
        "miniprogram_state": sa.literal(campaign.miniprogram_state, sa.String),
        "lang": sa.literal(campaign.lang, sa.String),
        **channel_columns(campaign, oa_constant),
        "state": sa.literal(DeliveryState.pending.value, sa.String),
        "attempts": sa.literal(0, sa.Integer),
        "reason": sa.literal("", sa.String),
        "errmsg": sa.literal("", sa.String),
        "created_at": sa.literal(now, t.c.created_at.type),
        "updated_at": sa.literal(now, t.c.updated_at.type),
    }
    if prefix:
        columns["open_token"] = r.token
    db.session.execute(sa.insert(t).from_select(list(columns), sa.select(*columns.values())))
    # Counted, not taken from rowcount: drivers do not all report it for INSERT … SELECT.
    recipients_count = db.session.scalar(
        sa.select(sa.func.count()).select_from(t).where(t.c.campaign_id == campaign.id)
    )
    if not fixed:
        _fill(campaign.id, sources, oa_sources)
    return recipients_count


def channel_columns(campaign: Campaign, oa_data: dict[str, str] | None) -> dict[str, Any]:
    """The channel columns of a campaign's delivery rows, for an INSERT … SELECT: the channel asked, the
    OA template and ``oa_data`` (the same for every row, or NULL until filled per user). The OA card opens
    the row's ``page`` (with its open token): ``oa_pagepath`` stays NULL."""
    t = Delivery.__table__
    return {
        "channel": sa.literal(campaign.channel, sa.String),
        "oa_template_id": sa.literal(campaign.oa_template_id, sa.String),
        "oa_data": sa.literal(oa_data, t.c.oa_data.type),
    }


_RECIPIENTS = "snapshot_recipients"
# ``deliveries.opens.sql_open_token`` as PostgreSQL text, for the statements below.
_DRAW_PG = str(
    sql_open_token("postgresql").compile(
        dialect=postgresql_dialect.dialect(), compile_kwargs={"literal_binds": True}
    )
)
_INSERT_FILLED = (
    "INSERT INTO delivery (source, campaign_id, user_id, openid, template_id, data, page,"
    " miniprogram_state, lang, channel, oa_template_id, oa_data, state, attempts, reason, errmsg,"
    " created_at, updated_at, open_token)"
    " SELECT :source, :campaign_id, filled.id, filled.openid, :template_id, CAST(filled.data AS JSON),"
    " {page_sql}, :miniprogram_state, :lang, :channel, CAST(:oa_template_id AS TEXT),"
    " CAST(filled.oa_data AS JSON), filled.state, 0, filled.reason, '', :now, :now, {kept_sql}"
    " FROM (SELECT given.*, {draw_sql} AS token"
    " FROM unnest(CAST(:ids AS INTEGER[]), CAST(:openids AS TEXT[]), CAST(:data AS TEXT[]),"
    " CAST(:oa_data AS TEXT[]), CAST(:states AS TEXT[]), CAST(:reasons AS TEXT[]))"
    " AS given (id, openid, data, oa_data, state, reason)) AS filled"
)
_NOW = sa.bindparam("now", type_=Delivery.__table__.c.created_at.type)
# The token is drawn once per row in the subquery (PostgreSQL never flattens a subquery whose output has a
# volatile function) and read twice: the page and the token column.
_INSERT_FILLED_TRACKED = sa.text(
    _INSERT_FILLED.format(page_sql=":prefix || filled.token", kept_sql="filled.token", draw_sql=_DRAW_PG)
).bindparams(_NOW)
_INSERT_FILLED_UNTRACKED = sa.text(
    _INSERT_FILLED.format(page_sql="CAST(:page AS TEXT)", kept_sql="NULL", draw_sql="NULL")
).bindparams(_NOW)


def _snapshot_filled(
    campaign: Campaign,
    sources: list[values.KeywordSource],
    oa_sources: list[values.KeywordSource] | None,
    segment: Segment,
    now: datetime,
    prefix: str,
) -> int:
    """PostgreSQL, values with user variables: the segment's user ids are taken once into a temporary
    table (dropped at commit), then read back in windows with the fields the values use; each window's
    rows are inserted with their filled values (or skipped, ``invalid_value``) in one statement, their
    columns as arrays. Every delivery row is written once: an UPDATE of a new row would write it again
    with all its index entries."""
    user = WechatUser.__table__.c
    db.session.execute(
        sa.text(f"CREATE TEMPORARY TABLE {_RECIPIENTS} (id INTEGER PRIMARY KEY) ON COMMIT DROP")
    )
    recipients = sa.table(_RECIPIENTS, sa.column("id", sa.Integer))
    db.session.execute(sa.insert(recipients).from_select(["id"], segment_user_ids(segment.filter, now)))
    db.session.execute(sa.text(f"ANALYZE {_RECIPIENTS}"))  # autovacuum never sees a temporary table
    insert = _INSERT_FILLED_TRACKED if prefix else _INSERT_FILLED_UNTRACKED
    # Text without variables is the same for everyone: judged once, not once per recipient (its rule
    # never refuses it: the checks did). The keys keep the template's order.
    mp_values = _Filler.of(sources)
    oa_values = _Filler.of(oa_sources) if oa_sources is not None else None
    fixed = {
        "source": DeliverySource.campaign.value,
        "campaign_id": campaign.id,
        "template_id": campaign.template_id,
        "miniprogram_state": campaign.miniprogram_state,
        "lang": campaign.lang,
        "channel": campaign.channel,
        "oa_template_id": campaign.oa_template_id,
        "now": now,
        **({"prefix": prefix} if prefix else {"page": campaign.page}),
    }
    total, last = 0, 0
    while True:
        # The window's ids first (LIMIT on the temporary table alone), then their users by primary key:
        # a join under the LIMIT may be planned as a merge join that walks every user below ``last``
        # again in each window, which grows with the square of the recipients.
        window_ids = (
            sa.select(recipients.c.id)
            .where(recipients.c.id > last)
            .order_by(recipients.c.id)
            .limit(SNAPSHOT_BATCH)
        )
        rows = db.session.execute(
            sa.select(user.id, user.openid, user.unionid, user.nickname, user.attributes)
            .where(user.id.in_(window_ids.scalar_subquery()))
            .order_by(user.id)
        ).all()
        if not rows:
            return total
        last = rows[-1].id
        window: dict[str, list] = {
            "ids": [],
            "openids": [],
            "data": [],
            "oa_data": [],
            "states": [],
            "reasons": [],
        }
        for row in rows:
            data = mp_values.fill(row._mapping)
            oa_data = oa_values.fill(row._mapping) if oa_values is not None else None
            refused = isinstance(data, str) or isinstance(oa_data, str)
            window["ids"].append(row.id)
            window["openids"].append(row.openid)
            window["data"].append("{}" if refused else json.dumps(data))
            window["oa_data"].append(None if refused or oa_data is None else json.dumps(oa_data))
            window["states"].append(DeliveryState.skipped.value if refused else DeliveryState.pending.value)
            window["reasons"].append("invalid_value" if refused else "")
        db.session.execute(insert, {**fixed, **window})
        total += len(rows)


@dataclass
class _Filler:
    """One set of values to fill per user, its text without variables judged once (``_snapshot_filled``)."""

    varying: list[values.KeywordSource]
    same: dict[str, str]
    order: list[str]

    @classmethod
    def of(cls, sources: list[values.KeywordSource]) -> _Filler:
        same = values.fill([source for source in sources if not source.variables], {})
        if isinstance(same, str):  # cannot happen: the checks judged every constant value
            raise CampaignError(422, "invalid_value", f"{same}: the value breaks its rule.", f"data.{same}")
        return cls([s for s in sources if s.variables], same, [s.key for s in sources])

    def fill(self, user: Mapping[str, Any]) -> dict[str, str] | str:
        own = values.fill(self.varying, user)
        if isinstance(own, str):
            return own
        merged = {**self.same, **own}
        return {key: merged[key] for key in self.order}


def _fill(
    campaign_id: int,
    sources: list[values.KeywordSource],
    oa_sources: list[values.KeywordSource] | None = None,
    *,
    only_unsent: bool = False,
) -> None:
    """Each recipient's values (and Official Account values), in batches of ids; a value its rule
    refuses skips that recipient.

    ``only_unsent``: only rows still waiting (pending, retry_wait), for an edit while paused.
    """
    t = Delivery.__table__
    waiting = [DeliveryState.pending.value, DeliveryState.retry_wait.value]
    if only_unsent and values.constant(sources) and values.constant(oa_sources or []):
        constant = values.fill(sources, {})
        oa_constant = values.fill(oa_sources, {}) if oa_sources is not None else None
        db.session.execute(
            sa.update(t)
            .where(t.c.campaign_id == campaign_id, t.c.state.in_(waiting))
            .values(data=constant, oa_data=oa_constant, updated_at=utcnow())
        )
        return
    mine = [t.c.campaign_id == campaign_id]
    if only_unsent:
        mine.append(t.c.state.in_(waiting))
    fill_windows(mine, sources, oa_sources)


def fill_windows(
    mine: list,
    sources: list[values.KeywordSource],
    oa_sources: list[values.KeywordSource] | None = None,
) -> None:
    """Each delivery row matching ``mine`` filled for its user, window by window of ids: ``data`` and,
    for a campaign that uses the Official Account, ``oa_data`` (else NULL); a value either rule refuses
    skips that row (``_write_filled``). Shared by campaign snapshots and reminder steps."""
    t = Delivery.__table__
    user = WechatUser.__table__.c
    # Windows of ids, not "id > last ORDER BY id LIMIT n": right after the snapshot the planner has no
    # statistics for the new rows and would sort the whole campaign for every batch.
    low, high = db.session.execute(sa.select(sa.func.min(t.c.id), sa.func.max(t.c.id)).where(*mine)).one()
    if low is None:
        return
    for window in range(low, high + 1, SNAPSHOT_BATCH):
        rows = db.session.execute(
            sa.select(t.c.id, user.openid, user.unionid, user.nickname, user.attributes)
            .join(WechatUser.__table__, user.id == t.c.user_id)
            .where(*mine, t.c.id >= window, t.c.id < window + SNAPSHOT_BATCH)
        ).all()
        filled: list[tuple[int, dict[str, str], dict[str, str] | None]] = []
        refused: list[int] = []
        for row in rows:
            data = values.fill(sources, row._mapping)
            oa_data = values.fill(oa_sources, row._mapping) if oa_sources is not None else None
            if isinstance(data, str) or isinstance(oa_data, str):
                refused.append(row.id)
            else:
                filled.append((row.id, data, oa_data))
        _write_filled(filled, refused)


_FILL_WINDOW = sa.text(
    "UPDATE delivery SET data = CAST(filled.data AS JSON), oa_data = CAST(filled.oa_data AS JSON),"
    " updated_at = :now"
    " FROM unnest(CAST(:ids AS INTEGER[]), CAST(:data AS TEXT[]), CAST(:oa_data AS TEXT[]))"
    " AS filled (id, data, oa_data)"
    " WHERE delivery.id = filled.id"
).bindparams(sa.bindparam("now", type_=Delivery.__table__.c.updated_at.type))


def _write_filled(
    filled: list[tuple[int, dict[str, str], dict[str, str] | None]], refused: list[int]
) -> None:
    """One window of ``_fill``: each filled row's values (its state and reason are kept: a retry_wait keeps
    its backoff), and the rows whose values their rule refuses skipped as ``invalid_value``."""
    t = Delivery.__table__
    now = utcnow()
    if refused:
        db.session.execute(
            sa.update(t)
            .where(t.c.id.in_(refused))
            .values(
                data={}, oa_data=None, state=DeliveryState.skipped, reason="invalid_value", updated_at=now
            )
        )
    if not filled:
        return
    if db.session.get_bind().dialect.name == "postgresql":
        # One statement per window, its rows as two arrays: an executemany of single-row UPDATEs costs a
        # round trip and an index lookup per row, and a VALUES list of 2,000 parameters costs SQLAlchemy
        # more to compile than PostgreSQL to run. This text never changes, so it is compiled once.
        db.session.execute(
            _FILL_WINDOW,
            {
                "ids": [row_id for row_id, _, _ in filled],
                "data": [json.dumps(data) for _, data, _ in filled],
                "oa_data": [None if oa is None else json.dumps(oa) for _, _, oa in filled],
                "now": now,
            },
        )
        return
    # SQLite runs an executemany in process, without round trips.
    db.session.execute(
        sa.update(t)
        .where(t.c.id == sa.bindparam("b_id"))
        .values(data=sa.bindparam("b_data"), oa_data=sa.bindparam("b_oa_data"), updated_at=now),
        [{"b_id": row_id, "b_data": data, "b_oa_data": oa} for row_id, data, oa in filled],
        execution_options={"synchronize_session": False},
    )


# -- pausing, resuming, cancelling ---------------------------------------------------------------------


def _recurring(campaign_id: int) -> bool:
    schedule = db.session.execute(sa.select(Campaign.schedule).where(Campaign.id == campaign_id)).scalar()
    return schedule is not None


def pause(campaign_id: int, code: str = HOLD_OPERATOR, now: datetime | None = None) -> Campaign:
    """The claim stops taking its rows (what is in flight finishes); commits. A recurring campaign makes
    no run while paused (its runs already made go on: each is paused on its own page)."""
    extra = {"next_occurrence_at": None} if _recurring(campaign_id) else {}
    states.move(db.session, campaign_id, S.paused, now=now, hold_code=code, hold_args={}, **extra)
    db.session.commit()
    return _get(campaign_id)


def resume(campaign_id: int, now: datetime | None = None) -> Campaign:
    """Sending goes on; a recurring campaign makes runs again from its next occurrence from now (those
    that fell in the pause are not made, and not recorded as missed: they were not meant to run)."""
    now = now or utcnow()
    campaign = _get(campaign_id)
    if campaign.schedule is not None:
        following = recurring.next_occurrence(campaign.schedule, campaign.timezone, now)
        states.move(
            db.session,
            campaign_id,
            S.scheduled,
            now=now,
            sources=(S.paused,),
            next_occurrence_at=following,
            hold_code="",
            hold_args={},
        )
    else:
        states.move(db.session, campaign_id, S.running, now=now, sources=(S.paused,))
    db.session.commit()
    return _get(campaign_id)


def cancel(campaign_id: int, now: datetime | None = None) -> Campaign:
    """Rows not yet claimed become skipped (``cancelled``); rows in flight finish and are recorded; commits.
    A recurring campaign makes no more runs (a run under way goes on: it is cancelled on its own page)."""
    now = now or utcnow()
    extra = {"next_occurrence_at": None} if _recurring(campaign_id) else {}
    states.move(db.session, campaign_id, S.cancelled, now=now, **extra)
    _skip_unclaimed(campaign_id, now)
    db.session.commit()
    return _get(campaign_id)


def _skip_unclaimed(campaign_id: int, now: datetime) -> int:
    t = Delivery.__table__.c
    return db.session.execute(
        sa.update(Delivery.__table__)
        .where(
            t.campaign_id == campaign_id,
            t.state.in_([DeliveryState.pending.value, DeliveryState.retry_wait.value]),
        )
        .values(state=DeliveryState.skipped.value, reason="cancelled", updated_at=now)
    ).rowcount


# -- the supervisor (run by the dispatch tick and before each drain) -----------------------------------


@dataclass
class Supervised:
    started: int = 0
    paused: int = 0
    completed: int = 0
    missed: int = 0


def supervise(now: datetime | None = None) -> Supervised:
    """Record the due occurrences of recurring campaigns (``recurring.record_due_occurrences``: a run
    each, or missed), start scheduled campaigns and runs whose time has come (a run too late is missed
    instead), pause running ones that fail too often or while WeChat's quota is out (45009) and resume
    the latter when sending resumes, complete those with nothing left to send, and skip rows of
    cancelled campaigns that came back from flight. Each campaign is its own transaction."""
    now = now or utcnow()
    done = Supervised()
    recorded = recurring.record_due_occurrences(now)  # recurring campaigns' runs now due, started below
    done.missed = recorded.missed
    due = db.session.scalars(
        sa.select(Campaign.id)
        .where(Campaign.state == S.scheduled, Campaign.scheduled_at <= now, Campaign.schedule.is_(None))
        .order_by(Campaign.scheduled_at)
    ).all()
    for campaign_id in due:
        try:
            campaign = _get(campaign_id)
            if campaign.parent_id is not None and recurring.too_late(campaign.scheduled_at, now):
                # A run that could not start in time (its template or segment was unusable): missed.
                limit = int(recurring.lateness().total_seconds() // 60)
                states.move(
                    db.session,
                    campaign_id,
                    S.missed,
                    now=now,
                    sources=(S.scheduled,),
                    hold_code=recurring.HOLD_LATE,
                    hold_args={"limit": limit},
                )
                db.session.commit()
                done.missed += 1
                continue
            _check_launchable(campaign)  # the template may have been disabled since the launch
            start(campaign_id, now)
            done.started += 1
        except InvalidTransition:  # an operator cancelled it meanwhile
            db.session.rollback()
        except CampaignError as refused:  # e.g. its template was disabled: it waits, and says why
            db.session.rollback()
            log.warning("scheduled campaign %s cannot start: %s", campaign_id, refused.message)
            _hold_scheduled(campaign_id, refused)
    running = db.session.scalars(sa.select(Campaign.id).where(Campaign.state == S.running)).all()
    quota_paused = db.session.scalar(
        sa.select(DispatchState.paused_until).where(DispatchState.id == DISPATCH_STATE_ID)
    )
    threshold = current_app.config.get("CAMPAIGN_PAUSE_FAILURE_PERCENT", 20)
    t = Delivery.__table__.c
    for campaign_id in running:
        reason: tuple[str, dict[str, int]] | None = None
        if quota_paused is not None and quota_paused > now:
            reason = (HOLD_QUOTA, {})
        elif threshold:
            reason = _failure_reason(campaign_id, threshold)
        try:
            if reason is not None:
                states.move(
                    db.session,
                    campaign_id,
                    S.paused,
                    now=now,
                    sources=(S.running,),
                    hold_code=reason[0],
                    hold_args=reason[1],
                )
                db.session.commit()
                done.paused += 1
                continue
            left = db.session.scalar(
                sa.select(sa.literal(1))
                .where(t.campaign_id == campaign_id, t.state.in_(OPEN_STATES))
                .limit(1)
            )
            if left is None:
                states.move(db.session, campaign_id, S.completed, now=now, sources=(S.running,))
                db.session.commit()
                done.completed += 1
        except InvalidTransition:  # an operator moved it meanwhile; theirs stands
            db.session.rollback()
    if quota_paused is None or quota_paused <= now:
        # The quota pause is WeChat's, not an operator's: its campaigns go on when sending does.
        for campaign_id in db.session.scalars(
            sa.select(Campaign.id).where(Campaign.state == S.paused, Campaign.hold_code == HOLD_QUOTA)
        ).all():
            try:
                states.move(db.session, campaign_id, S.running, now=now, sources=(S.paused,))
                db.session.commit()
            except InvalidTransition:
                db.session.rollback()
    for campaign_id in db.session.scalars(
        sa.select(Campaign.id).where(
            Campaign.state == S.cancelled, Campaign.finished_at > now - CANCELLED_HOLD
        )
    ).all():
        _skip_unclaimed(campaign_id, now)
    db.session.commit()
    return done


def _hold_scheduled(campaign_id: int, refused: CampaignError) -> None:
    """Record on a scheduled campaign why it waits past its time (written only when it changes)."""
    if refused.code.startswith("template_"):
        hold = ("template", {"why": refused.code.removeprefix("template_")})
    elif refused.code.startswith("oa_template_"):
        hold = ("oa_template", {"why": refused.code.removeprefix("oa_template_")})
    elif refused.code in ("oa_off", "unknown_oa_template"):
        hold = ("oa_off", {}) if refused.code == "oa_off" else ("oa_template", {"why": "unknown"})
    elif refused.code == "unknown_segment":
        hold = ("segment", {})
    else:
        hold = ("values", {"key": (refused.field or "").removeprefix("data.")})
    current = db.session.execute(
        sa.select(Campaign.hold_code, Campaign.hold_args).where(Campaign.id == campaign_id)
    ).one_or_none()
    if current is None or (current.hold_code, current.hold_args) == hold:
        return
    db.session.execute(
        sa.update(Campaign)
        .where(Campaign.id == campaign_id, Campaign.state == S.scheduled)
        .values(hold_code=hold[0], hold_args=hold[1], updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    db.session.commit()


def _failure_reason(campaign_id: int, threshold: int) -> tuple[str, dict[str, int]] | None:
    t = Delivery.__table__.c
    answered = sa.func.count().filter(
        t.state.in_([DeliveryState.sent.value, DeliveryState.failed.value, DeliveryState.unknown.value])
    )
    failed = sa.func.count().filter(t.state == DeliveryState.failed.value)
    row = db.session.execute(sa.select(answered, failed).where(t.campaign_id == campaign_id)).one()
    total, failures = row
    if total >= FAILURE_SAMPLE and failures * 100 > threshold * total:
        return HOLD_FAILURES, {"failed": failures, "answered": total, "threshold": threshold}
    return None


# -- reading -------------------------------------------------------------------------------------------


def counts(campaign: Campaign) -> dict[str, Any]:
    """``recipients`` and where they are now: pending (incl. retry_wait and in flight), sent, failed,
    skipped, unknown, which add up to ``recipients``; ``opens`` (clicks) on top; ``sent_by_channel``:
    ``sent`` split by the channel used (``mp_subscribe``, ``oa_template``)."""
    t = Delivery.__table__.c
    by_state = dict(
        db.session.execute(
            sa.select(t.state, sa.func.count()).where(t.campaign_id == campaign.id).group_by(t.state)
        ).all()
    )
    by_state = {str(getattr(k, "value", k)): v for k, v in by_state.items()}
    result = {
        "recipients": campaign.recipients,
        "pending": sum(by_state.get(state, 0) for state in OPEN_STATES),
        "sent": by_state.get("sent", 0),
        "failed": by_state.get("failed", 0),
        "skipped": by_state.get("skipped", 0),
        "unknown": by_state.get("unknown", 0),
    }
    result["opens"] = count_opens(campaign.id)
    # Sent rows by the channel they went out on (a row from before channels: its subscribe message).
    via = sa.func.coalesce(t.channel_used, Channel.mp_subscribe.value)
    by_channel = dict(
        db.session.execute(
            sa.select(via, sa.func.count())
            .where(t.campaign_id == campaign.id, t.state == DeliveryState.sent.value)
            .group_by(via)
        ).all()
    )
    result["sent_by_channel"] = {c.value: int(by_channel.get(c.value, 0)) for c in SENDING_CHANNELS}
    return result


def _get(campaign_id: int) -> Campaign:
    campaign = db.session.get(Campaign, campaign_id, populate_existing=True)
    if campaign is None:
        raise LookupError(campaign_id)
    return campaign
