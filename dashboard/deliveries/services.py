"""Recording sends as deliveries, and sending one right away (test sends).

Every path that messages a user writes the delivery row *before* calling WeChat and records WeChat's
answer on it afterwards, so a crash in between leaves a row that says "sending", never silence.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from flask import current_app
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import ColumnElement, Select, case, func, or_, select, update

from .. import csv_export
from ..campaigns import report
from ..dispatch.claim import claim_for
from ..dispatch.credits import RouteRequest, route
from ..dispatch.finalize import finalize
from ..dispatch.ledger_adapter import grants_ledger
from ..dispatch.outcomes import FELL_BACK
from ..dispatch.sender import send_one
from ..extensions import db
from ..models import Channel, Delivery, DeliverySource, DeliveryState, WechatUser, utcnow
from ..models.catalog import MessageTemplate
from ..storable import db_int
from ..wechat import get_client
from ..wechat.oa import get_oa_client


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


def send_now(delivery: Delivery, *, falling_back: bool = False) -> Delivery:
    """Send one delivery right away (a test send), through the same channel, credit and answer path as
    the engine.

    1. One commit, with whatever the caller added to the session (the audit event): the delivery's
       channel is chosen as the engine's claim chooses it (``dispatch.credits.route``): a credit is
       reserved from the grant ledger for a subscribe message, an Official Account message needs its
       person to follow. When neither can go the delivery is ``skipped`` with the reason the engine
       would give (``no_grant``, ``not_following``, ``no_channel``…), and WeChat is not called.
       Otherwise it becomes ``sending`` with a lease, a recorded start and its ``channel_used``.
    2. The synchronous client of that channel sends it (``dispatch.sender.send_one``).
    3. ``dispatch.finalize`` records the answer as it does the engine's: the state by ``decide()``, the
       attempt, and for a subscribe message the credit spent, released or zeroed (43101).

    Nothing is retried here (a person is watching); a transient answer leaves the row ``retry_wait``
    for a worker, like any send. The one exception is the channel's own fallback: a row on
    ``mp_subscribe_or_oa`` that WeChat answers 43101 is pending again (``outcomes.FELL_BACK``), and is
    routed and sent once more at once, as the engine's next claim would (to the Official Account).
    A crash between 1 and 3 leaves it ``sending`` until its lease runs out, and the reconciler calls it
    ``unknown``. Returns the delivery, reloaded.

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
    routes, _skipped = route(
        db.session,
        ledger,
        [
            RouteRequest(
                delivery.id,
                delivery.user_id,
                delivery.openid,
                delivery.template_id,
                delivery.source.value,
                delivery.attempts,
                delivery.channel,
                delivery.oa_openid,
                delivery.oa_template_id,
            )
        ],
        now,
    )
    chosen = routes.get(delivery.id)
    if chosen is None:
        db.session.commit()
        return delivery
    delivery.state = DeliveryState.sending
    delivery.attempts += 1
    delivery.lease_until = now + timedelta(seconds=current_app.config["DISPATCH_LEASE_SECONDS"])
    delivery.attempt_started_at = now  # it leaves right after this commit: a crash makes it unknown
    delivery.channel_used = chosen.channel.value
    if chosen.oa_openid:
        delivery.oa_openid = chosen.oa_openid
    claim = claim_for(delivery, delivery.attempts, chosen)
    db.session.commit()
    finalize(db.engine, ledger, [send_one(get_client(), claim, get_oa_client())])
    db.session.refresh(delivery)
    if delivery.state is DeliveryState.pending and delivery.reason == FELL_BACK and not falling_back:
        return send_now(delivery, falling_back=True)
    return delivery


def recent_for_template(template_id: str, limit: int = 20) -> list[Delivery]:
    query = (
        select(Delivery).where(Delivery.template_id == template_id).order_by(Delivery.id.desc()).limit(limit)
    )
    return list(db.session.scalars(query))


# States that are still moving: a page showing one of them refreshes itself until none is left.
MOVING_STATES = (DeliveryState.pending, DeliveryState.sending, DeliveryState.retry_wait)
# The summary chips above the list, each the states it counts and filters ("pending" is every state
# still moving, as on the home page).
CHIPS: dict[str, tuple[str, ...]] = {
    "sent": ("sent",),
    "failed": ("failed",),
    "unknown": ("unknown",),
    "pending": tuple(state.value for state in MOVING_STATES),
    "skipped": ("skipped",),
}
# Error classes a failed row may have (``campaigns.report.error_class``), and the engine's "gave up after
# its retries" that the home page counts apart.
CATEGORIES = (*report.CLASS_LABELS, "gave_up")
# Reasons an operator may filter by, in words (the rest are filtered by error class).
REASON_LABELS: dict[str, Any] = {
    **report.SKIP_LABELS,
    FELL_BACK: _l("No subscription at WeChat (43101): going through the Official Account"),
    "gave_up": _l("Given up after retries"),
    "lease_expired": report.UNKNOWN_LABELS["lease_expired"],
    "sent_event": _l("confirmed by WeChat's delivery event"),
}
RETRY_LABEL = _l("will be tried again: %(why)s")


@dataclass(frozen=True)
class DeliveryFilter:
    """The list's filters, read from the address: every one may be combined with the others.

    ``states`` (``state=``, repeatable), ``source``, ``template_id``, ``openid`` (whole or its start),
    ``errcode``, ``campaign_id``, ``day`` (``YYYY-MM-DD``, a day in the operator's zone), ``category``
    (a failed row's error class) and ``reason`` (our reason word, e.g. ``budget``).
    """

    states: tuple[str, ...] = ()
    source: str = ""
    template_id: str = ""
    openid: str = ""
    errcode: int | None = None
    campaign_id: int | None = None
    day: date | None = None
    category: str = ""
    reason: str = ""

    @classmethod
    def from_args(cls, args: Any) -> DeliveryFilter:
        def number(name: str) -> int | None:
            raw = (args.get(name) or "").strip()
            try:
                return db_int(raw) if raw.lstrip("-").isdigit() else None
            except ValueError:  # beyond the column's range: ignored, like any other non-number
                return None

        raw_states = args.getlist("state") if hasattr(args, "getlist") else [args.get("state", "")]
        states = []
        for raw in raw_states:
            for state in (raw or "").split(","):
                if state in DeliveryState.__members__ and state not in states:
                    states.append(state)
        source = args.get("source", "")
        category = args.get("category", "")
        reason = (args.get("reason") or "").strip()
        return cls(
            states=tuple(states),
            source=source if source in DeliverySource.__members__ else "",
            template_id=(args.get("template_id") or "").strip()[:64],
            openid=(args.get("openid") or "").strip()[:64],
            errcode=number("errcode"),
            campaign_id=number("campaign_id"),
            day=_day(args.get("day")),
            category=category if category in CATEGORIES else "",
            reason=reason if reason in REASON_LABELS else "",
        )

    @property
    def state(self) -> str:
        """The one state filtered by, or "" (none, or several)."""
        return self.states[0] if len(self.states) == 1 else ""

    @property
    def chip(self) -> str:
        """The summary chip these states are ("" for every state, or a set no chip stands for)."""
        if not self.states:
            return ""
        for name, states in CHIPS.items():
            if set(states) == set(self.states):
                return name
        return ""

    def to_args(self, **changes: Any) -> dict[str, Any]:
        """The filters as URL arguments (``url_for(..., **criteria.to_args())``), ``changes`` applied."""
        args: dict[str, Any] = {
            "state": list(self.states),
            "source": self.source,
            "template_id": self.template_id,
            "openid": self.openid,
            "errcode": "" if self.errcode is None else str(self.errcode),
            "campaign_id": "" if self.campaign_id is None else str(self.campaign_id),
            "day": self.day.isoformat() if self.day else "",
            "category": self.category,
            "reason": self.reason,
        }
        args.update(changes)
        return {key: value for key, value in args.items() if value}

    def conditions(self) -> list[ColumnElement[bool]]:
        d = Delivery.__table__.c
        where: list[ColumnElement[bool]] = []
        if self.states:
            where.append(d.state.in_([DeliveryState(state) for state in self.states]))
        if self.source:
            where.append(d.source == DeliverySource(self.source))
        if self.template_id:
            where.append(d.template_id == self.template_id)
        if self.openid:
            where.append(or_(d.openid == self.openid, d.openid.startswith(self.openid, autoescape=True)))
        if self.errcode is not None:
            where.append(d.errcode == self.errcode)
        if self.campaign_id is not None:
            where.append(d.campaign_id == self.campaign_id)
        if self.day is not None:
            start, end = day_bounds(self.day)
            where += [d.created_at >= start, d.created_at < end]
        if self.category == "gave_up":
            where += [d.state == DeliveryState.failed, d.reason == "gave_up"]
        elif self.category:
            where += [d.state == DeliveryState.failed, report.error_class() == self.category]
        if self.reason:
            where.append(d.reason == self.reason)
        return where

    def apply(self, query: Select) -> Select:
        return query.where(*self.conditions())


def _day(raw: str | None) -> date | None:
    try:
        return date.fromisoformat((raw or "").strip()) if raw else None
    except ValueError:
        return None


def day_bounds(day: date) -> tuple[datetime, datetime]:
    """The UTC instants of the local midnights that start and end ``day`` in the operator's zone."""
    zone = csv_export.operator_zone()
    start = datetime.combine(day, time.min, tzinfo=zone)
    end = datetime.combine(day + timedelta(days=1), time.min, tzinfo=zone)
    return start.astimezone(UTC), end.astimezone(UTC)


def filtered(criteria: DeliveryFilter) -> Select[tuple[Delivery]]:
    return criteria.apply(select(Delivery)).order_by(Delivery.id.desc())


def counts_by_state(criteria: DeliveryFilter) -> dict[str, int]:
    """How many deliveries match per state (ignoring the state filter itself), for the filter chips."""
    without_state = replace(criteria, states=())
    query = without_state.apply(select(Delivery.state, func.count()).group_by(Delivery.state))
    counts = {state.value: 0 for state in DeliveryState}
    counts.update({state.value: count for state, count in db.session.execute(query)})
    return counts


def chip_counts(counts: dict[str, int]) -> dict[str, int]:
    """The summary chips' counts from ``counts_by_state``."""
    return {name: sum(counts.get(state, 0) for state in states) for name, states in CHIPS.items()}


def any_moving(deliveries: Any) -> bool:
    """A row of ``deliveries`` may still change by itself: the page keeps refreshing."""
    return any(delivery.state in MOVING_STATES for delivery in deliveries)


@dataclass(frozen=True)
class TemplateRef:
    """A template as the deliveries pages name it: its catalog row's id (for the link) and title."""

    id: int
    title: str


def templates_for(template_ids: Any) -> dict[str, TemplateRef]:
    """The catalog's id and title of each of ``template_ids`` it knows (a deleted one is missing)."""
    wanted = sorted(set(template_ids))
    if not wanted:
        return {}
    rows = db.session.execute(
        select(MessageTemplate.template_id, MessageTemplate.id, MessageTemplate.title).where(
            MessageTemplate.template_id.in_(wanted)
        )
    ).all()
    return {template_id: TemplateRef(id, title) for template_id, id, title in rows}


def catalog_choices() -> list[tuple[str, str]]:
    """``(template_id, title)`` of every template in the catalog, for the filter's list."""
    rows = db.session.execute(
        select(MessageTemplate.template_id, MessageTemplate.title).order_by(MessageTemplate.title)
    ).all()
    return [(template_id, title) for template_id, title in rows]


def short_openid(openid: str) -> str:
    """``o6_bmj…fL2M``: the first 6 and last 4 characters, enough to tell users apart at a glance."""
    return openid if len(openid) <= 12 else f"{openid[:6]}…{openid[-4:]}"


def outcome_text(delivery: Delivery) -> str:
    """What became of a delivery, in words (the error class with its errcode, the skip reason...)."""
    state = delivery.state.value
    if state == "retry_wait" and delivery.reason:
        why = report.CLASS_LABELS.get(delivery.reason) or report.CLASS_LABELS["other"]
        return str(RETRY_LABEL) % {"why": why}
    if state == "pending" and delivery.reason.startswith("resend_of:"):
        return _("forced out again (delivery #%(id)s)", id=delivery.reason.partition(":")[2])
    return report.row_outcome(delivery)


@dataclass(frozen=True)
class CardLine:
    label: str
    value: str


@dataclass(frozen=True)
class DeliveredCard:
    """The card the user got (or would have got): the template's lines filled with the stored values,
    or, when the template is no longer in the catalog, one line per value under its key."""

    title: str
    lines: list[CardLine]
    lang: str
    footer: str
    from_template: bool


def delivered_card(delivery: Delivery) -> DeliveredCard:
    from ..catalog.preview import FOOTERS
    from ..catalog.schema import content_lines, render_line

    values = {str(key): _value_text(value) for key, value in (delivery.data or {}).items()}
    lang = delivery.lang if delivery.lang in FOOTERS else "zh_CN"
    template = db.session.scalar(
        select(MessageTemplate).where(MessageTemplate.template_id == delivery.template_id)
    )
    if template is None:
        return DeliveredCard(
            title="",
            lines=[CardLine(key, value) for key, value in values.items()],
            lang=lang,
            footer=FOOTERS[lang],
            from_template=False,
        )
    lines, shown = [], set()
    for label, keys, line in content_lines(template.content):
        lines.append(CardLine(label, render_line(line, values) if keys else ""))
        shown.update(keys)
    lines += [CardLine(key, value) for key, value in values.items() if key not in shown]
    return DeliveredCard(template.title, lines, lang, FOOTERS[lang], True)


@dataclass(frozen=True)
class DeliveredOaCard:
    """An Official Account message as its follower got it: the OA template (None when it is no longer in
    the catalog) and its card, laid out by the OA catalog's own preview."""

    template: Any
    preview: Any


def delivered_oa_card(delivery: Delivery) -> DeliveredOaCard | None:
    """The OA card of a delivery that went (or would go) through the Official Account; None otherwise."""
    # Went through the OA; or may still, or would have (not sent as a subscribe message): an OA-only
    # row, and an either-channel row that is pending, fell back or was skipped.
    could = delivery.channel in (Channel.oa_template.value, Channel.mp_subscribe_or_oa.value)
    if delivery.channel_used != Channel.oa_template.value and not (
        could and delivery.oa_template_id and delivery.channel_used is None
    ):
        return None
    from ..models.oa_template import OaTemplate
    from ..oa.templates import build_preview

    template = db.session.scalar(select(OaTemplate).where(OaTemplate.template_id == delivery.oa_template_id))
    if template is None:
        return DeliveredOaCard(None, None)
    return DeliveredOaCard(template, build_preview(template, delivery.oa_data or {}))


def _value_text(value: Any) -> str:
    """A stored value as text (``{"value": "x"}`` as WeChat's API writes it, or the text itself)."""
    if isinstance(value, dict) and "value" in value:
        value = value["value"]
    return "" if value is None else str(value)


# -- CSV -----------------------------------------------------------------------------------------------

CSV_HEADER = (
    "delivery_id",
    "created_at",
    "source",
    "campaign_id",
    "openid",
    "user_id",
    "template_id",
    "template_title",
    "state",
    "outcome",
    "reason",
    "error_class",
    "errcode",
    "errmsg",
    "msgid",
    "attempts",
    "sent_at",
    "opened_at",
)


def csv_rows(criteria: DeliveryFilter, batch: int = csv_export.BATCH) -> Iterator[str]:
    """The filtered list as CSV, newest first, streamed by ``csv_export.stream_csv``."""
    zone = csv_export.operator_zone()
    d = Delivery.__table__.c
    klass = case((d.state == DeliveryState.failed.value, report.error_class()), else_="")
    title = (
        select(MessageTemplate.title)
        .where(MessageTemplate.template_id == d.template_id)
        .limit(1)
        .scalar_subquery()
    )
    statement = select(
        d.id,
        d.created_at,
        d.source,
        d.campaign_id,
        d.openid,
        d.user_id,
        d.template_id,
        title.label("title"),
        d.state,
        d.reason,
        klass.label("klass"),
        d.errcode,
        d.errmsg,
        d.msgid,
        d.attempts,
        d.sent_at,
        d.opened_at,
    ).where(*criteria.conditions())

    def cells(rows: Any) -> Iterator[tuple]:
        for row in rows:
            state = str(getattr(row.state, "value", row.state))
            yield (
                row.id,
                csv_export.local_time(row.created_at, zone),
                str(getattr(row.source, "value", row.source)),
                row.campaign_id,
                row.openid,
                row.user_id,
                row.template_id,
                row.title or "",
                state,
                _csv_outcome(state, row.reason, row.klass, row.errcode),
                row.reason,
                row.klass or "",
                row.errcode,
                row.errmsg,
                row.msgid or "",
                row.attempts,
                csv_export.local_time(row.sent_at, zone),
                csv_export.local_time(row.opened_at, zone),
            )

    return csv_export.stream_csv(CSV_HEADER, statement, d.id, cells, batch=batch, descending=True)


def _csv_outcome(state: str, reason: str, klass: str, errcode: int | None) -> str:
    """``outcome_text`` for a CSV row (no ORM object: the class comes from SQL)."""
    if state == "failed":
        return report.class_label(klass or "other", errcode)
    if state == "skipped":
        return report.skip_label(reason)
    if state == "unknown":
        return report.unknown_label(reason)
    if state == "retry_wait" and reason:
        why = report.CLASS_LABELS.get(reason) or report.CLASS_LABELS["other"]
        return str(RETRY_LABEL) % {"why": why}
    if state == "sent" and reason == "sent_event":
        return str(REASON_LABELS["sent_event"])
    return ""


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
