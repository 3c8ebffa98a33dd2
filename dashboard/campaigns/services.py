"""Campaign services: compose, launch (the snapshot), pause, resume, cancel, and the supervisor that the
dispatch tick runs (scheduled starts, automatic pauses, completion).

Every state change goes through ``states.move``; the dispatch engine sends a campaign's delivery rows
like any other, held by ``dispatch.campaign_gate`` while the campaign may not send.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from flask import current_app

from ..audience.segments import segment_user_ids
from ..catalog.services import get_by_template_id, template_usable
from ..deliveries.opens import campaign_page_problem, count_opens, sql_open_token, tracked_page_prefix
from ..dispatch.campaign_gate import CANCELLED_HOLD
from ..extensions import db
from ..models import Delivery, DeliverySource, DeliveryState, DispatchState, WechatUser
from ..models.campaign import Campaign, CampaignState
from ..models.catalog import MessageTemplate
from ..models.dispatch import DISPATCH_STATE_ID
from ..models.segment import Segment
from ..models.types import utcnow
from . import states, values
from .states import InvalidTransition

log = logging.getLogger(__name__)
S = CampaignState
SNAPSHOT_BATCH = 1000
# The failure rate is judged once this many of a campaign's sends have an answer, not on the first few.
FAILURE_SAMPLE = 50
OPEN_STATES = (DeliveryState.pending.value, DeliveryState.retry_wait.value, DeliveryState.sending.value)
REASON_QUOTA = "WeChat's daily sending quota is used up (45009)."
REASON_OPERATOR = "Paused by an operator."


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


def create_campaign(fields: Mapping[str, Any], created_by_id: int | None = None) -> Campaign:
    """A new draft from checked ``fields`` (see ``api.v1_campaigns.parse_body``); commits."""
    template = _template(fields["template_id"])
    check_sources(template, fields.get("data") or {})
    if db.session.get(Segment, fields["segment_id"]) is None:
        raise CampaignError(404, "unknown_segment", "No segment has this id.", "segment_id")
    page = fields.get("page") if fields.get("page") is not None else (template.page or None)
    _check_page(page)
    campaign = Campaign(
        name=fields["name"],
        template_id=template.template_id,
        segment_id=fields["segment_id"],
        data=dict(fields.get("data") or {}),
        page=page,
        miniprogram_state=fields.get("miniprogram_state") or template.miniprogram_state or "formal",
        lang=fields.get("lang") or template.lang or "zh_CN",
        scheduled_at=fields.get("scheduled_at"),
        rate_per_second=fields.get("rate_per_second"),
        quiet_start=fields.get("quiet_start"),
        quiet_end=fields.get("quiet_end"),
        timezone=current_app.config.get("TIMEZONE") or "Asia/Shanghai",
        created_by_id=created_by_id,
    )
    db.session.add(campaign)
    db.session.commit()
    return campaign


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
    sources = None
    if "data" in fields:
        sources = check_sources(_template(fields.get("template_id") or campaign.template_id), fields["data"])
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
    if sources is not None and state == S.paused:
        # The recipients are fixed, their values are not: rows not yet sent go out with the new ones.
        _fill(campaign.id, sources, only_unsent=True)
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
    if campaign.scheduled_at is not None and campaign.scheduled_at > now:
        states.move(db.session, campaign_id, S.scheduled, now=now)
        db.session.commit()
    else:
        start(campaign_id, now)
    return _get(campaign_id)


def _check_launchable(campaign: Campaign) -> None:
    usable = template_usable(campaign.template_id)
    if not usable.ok:
        raise CampaignError(
            409,
            f"template_{usable.reason}",
            f"The template cannot be used now ({usable.reason}).",
            "template_id",
        )
    if campaign.segment_id is None or db.session.get(Segment, campaign.segment_id) is None:
        raise CampaignError(409, "unknown_segment", "The campaign's segment no longer exists.", "segment_id")
    check_sources(_template(campaign.template_id), campaign.data)


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
    """One INSERT … SELECT of the segment's users as pending deliveries (no user is loaded into Python);
    values with user variables are then filled in bounded batches, streaming delivery ids."""
    template = _template(campaign.template_id)
    sources = check_sources(template, campaign.data)
    segment = db.session.get(Segment, campaign.segment_id)
    constant = values.fill(sources, {}) if values.constant(sources) else {}
    if isinstance(constant, str):  # cannot happen: check_sources judged every constant value
        raise CampaignError(
            422, "invalid_value", f"{constant}: the value breaks its rule.", f"data.{constant}"
        )
    user = WechatUser.__table__.c
    t = Delivery.__table__
    columns = {
        "source": sa.literal(DeliverySource.campaign.value, sa.String),
        "campaign_id": sa.literal(campaign.id, sa.Integer),
        "user_id": user.id,
        "openid": user.openid,
        "template_id": sa.literal(campaign.template_id, sa.String),
        "data": sa.literal(constant, t.c.data.type),
        "page": sa.literal(campaign.page, sa.String),
        "miniprogram_state": sa.literal(campaign.miniprogram_state, sa.String),
        "lang": sa.literal(campaign.lang, sa.String),
        "state": sa.literal(DeliveryState.pending.value, sa.String),
        "attempts": sa.literal(0, sa.Integer),
        "reason": sa.literal("", sa.String),
        "errmsg": sa.literal("", sa.String),
        "created_at": sa.literal(now, t.c.created_at.type),
        "updated_at": sa.literal(now, t.c.updated_at.type),
    }
    # A card that opens a page carries an open token (``deliveries.opens``), one per recipient, made by
    # the database in the same INSERT; the page is completed from it right after.
    prefix = tracked_page_prefix(campaign.page)
    if prefix:
        columns["open_token"] = sql_open_token(db.session.get_bind().dialect.name)
    select = sa.select(*columns.values()).where(user.id.in_(segment_user_ids(segment.filter, now)))
    db.session.execute(sa.insert(t).from_select(list(columns), select))
    if prefix:
        db.session.execute(
            sa.update(t)
            .where(t.c.campaign_id == campaign.id)
            .values(page=sa.literal(prefix, sa.String) + t.c.open_token)
        )
    # Counted, not taken from rowcount: drivers do not all report it for INSERT … SELECT.
    recipients = db.session.scalar(
        sa.select(sa.func.count()).select_from(t).where(t.c.campaign_id == campaign.id)
    )
    if not values.constant(sources):
        _fill(campaign.id, sources)
    return recipients


def _fill(campaign_id: int, sources: list[values.KeywordSource], *, only_unsent: bool = False) -> None:
    """Each recipient's values, in batches of ids; a value its rule refuses skips that recipient.

    ``only_unsent``: only rows still waiting (pending, retry_wait), for an edit while paused.
    """
    t = Delivery.__table__
    user = WechatUser.__table__.c
    waiting = [DeliveryState.pending.value, DeliveryState.retry_wait.value]
    if only_unsent and values.constant(sources):
        constant = values.fill(sources, {})
        db.session.execute(
            sa.update(t)
            .where(t.c.campaign_id == campaign_id, t.c.state.in_(waiting))
            .values(data=constant, updated_at=utcnow())
        )
        return
    update = (
        sa.update(t)
        .where(t.c.id == sa.bindparam("b_id"))
        .values(data=sa.bindparam("b_data"), state=sa.bindparam("b_state"), reason=sa.bindparam("b_reason"))
    )
    mine = [t.c.campaign_id == campaign_id]
    if only_unsent:
        mine.append(t.c.state.in_(waiting))
    # Windows of ids, not "id > last ORDER BY id LIMIT n": right after the snapshot the planner has no
    # statistics for the new rows and would sort the whole campaign for every batch.
    low, high = db.session.execute(sa.select(sa.func.min(t.c.id), sa.func.max(t.c.id)).where(*mine)).one()
    if low is None:
        return
    for window in range(low, high + 1, SNAPSHOT_BATCH):
        rows = db.session.execute(
            sa.select(
                t.c.id, t.c.state, t.c.reason, user.openid, user.unionid, user.nickname, user.attributes
            )
            .join(WechatUser.__table__, user.id == t.c.user_id)
            .where(*mine, t.c.id >= window, t.c.id < window + SNAPSHOT_BATCH)
        ).all()
        if not rows:
            continue
        params = []
        for row in rows:
            filled = values.fill(sources, row._mapping)
            if isinstance(filled, str):
                params.append(
                    {"b_id": row.id, "b_data": {}, "b_state": "skipped", "b_reason": "invalid_value"}
                )
            else:
                # A row keeps its state (a retry_wait keeps its backoff); only its values change.
                params.append(
                    {"b_id": row.id, "b_data": filled, "b_state": row.state, "b_reason": row.reason}
                )
        db.session.execute(update, params, execution_options={"synchronize_session": False})


# -- pausing, resuming, cancelling ---------------------------------------------------------------------


def pause(campaign_id: int, reason: str = REASON_OPERATOR, now: datetime | None = None) -> Campaign:
    """The claim stops taking its rows (what is in flight finishes); commits."""
    states.move(db.session, campaign_id, S.paused, now=now, pause_reason=reason)
    db.session.commit()
    return _get(campaign_id)


def resume(campaign_id: int, now: datetime | None = None) -> Campaign:
    states.move(db.session, campaign_id, S.running, now=now, sources=(S.paused,))
    db.session.commit()
    return _get(campaign_id)


def cancel(campaign_id: int, now: datetime | None = None) -> Campaign:
    """Rows not yet claimed become skipped (``cancelled``); rows in flight finish and are recorded; commits."""
    now = now or utcnow()
    states.move(db.session, campaign_id, S.cancelled, now=now)
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


def supervise(now: datetime | None = None) -> Supervised:
    """Start scheduled campaigns whose time has come, pause running ones that fail too often or while
    WeChat's quota is out (45009) and resume the latter when sending resumes, complete those with nothing
    left to send, and skip rows of cancelled campaigns that came back from flight. Each campaign is its
    own transaction."""
    now = now or utcnow()
    done = Supervised()
    due = db.session.scalars(
        sa.select(Campaign.id).where(Campaign.state == S.scheduled, Campaign.scheduled_at <= now)
    ).all()
    for campaign_id in due:
        try:
            start(campaign_id, now)
            done.started += 1
        except InvalidTransition:  # an operator cancelled it meanwhile
            db.session.rollback()
        except CampaignError as refused:  # e.g. its template was disabled: it waits, and says why
            db.session.rollback()
            log.warning("scheduled campaign %s cannot start: %s", campaign_id, refused.message)
    running = db.session.scalars(sa.select(Campaign.id).where(Campaign.state == S.running)).all()
    quota_paused = db.session.scalar(
        sa.select(DispatchState.paused_until).where(DispatchState.id == DISPATCH_STATE_ID)
    )
    threshold = current_app.config.get("CAMPAIGN_PAUSE_FAILURE_PERCENT", 20)
    t = Delivery.__table__.c
    for campaign_id in running:
        reason = None
        if quota_paused is not None and quota_paused > now:
            reason = REASON_QUOTA
        elif threshold:
            reason = _failure_reason(campaign_id, threshold)
        try:
            if reason is not None:
                states.move(
                    db.session, campaign_id, S.paused, now=now, sources=(S.running,), pause_reason=reason
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
            sa.select(Campaign.id).where(Campaign.state == S.paused, Campaign.pause_reason == REASON_QUOTA)
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


def _failure_reason(campaign_id: int, threshold: int) -> str | None:
    t = Delivery.__table__.c
    answered = sa.func.count().filter(
        t.state.in_([DeliveryState.sent.value, DeliveryState.failed.value, DeliveryState.unknown.value])
    )
    failed = sa.func.count().filter(t.state == DeliveryState.failed.value)
    row = db.session.execute(sa.select(answered, failed).where(t.campaign_id == campaign_id)).one()
    total, failures = row
    if total >= FAILURE_SAMPLE and failures * 100 > threshold * total:
        return f"{failures} of {total} sends failed, more than the {threshold}% allowed."
    return None


# -- reading -------------------------------------------------------------------------------------------


def counts(campaign: Campaign) -> dict[str, int]:
    """``recipients`` and where they are now: pending (incl. retry_wait and in flight), sent, failed,
    skipped, unknown, which add up to ``recipients``; ``opens`` (clicks) on top."""
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
    return result


def _get(campaign_id: int) -> Campaign:
    campaign = db.session.get(Campaign, campaign_id, populate_existing=True)
    if campaign is None:
        raise LookupError(campaign_id)
    return campaign
