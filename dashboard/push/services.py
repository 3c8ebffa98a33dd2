"""What a verified push does: de-duplicate it, then feed the ledger or the deliveries.

* ``subscribe_msg_popup_event`` → one ``popup_event`` ledger entry per template (paired with the
  mini-program's report of the same prompt, so the credit counts once);
* ``subscribe_msg_change_event`` → ``change_event`` entries (WeChat pushes only ``reject``: credits to
  zero, long-term grants off);
* ``subscribe_msg_sent_event`` → ``SentReport`` rows, joined to the ``Delivery`` with the same msgid, or
  settling an ``unknown`` delivery of the same user and template (``dashboard.dispatch.sent_events``).

A push seen before (same user, CreateTime, event and items) changes nothing. Functions add to the
session; the view commits once.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from flask import current_app
from sqlalchemy import select

from ..audience.services import ensure_user
from ..dispatch.ledger_adapter import grants_ledger
from ..dispatch.sent_events import settle_with_report
from ..extensions import db
from ..grants import services as grants
from ..models import Delivery
from ..models.grants import PROMPT_STATUSES, GrantSource, SentReport, WechatPush
from ..storable import db_int
from .parsing import SUBSCRIBE_EVENTS, PushFormatError, PushMessage

log = logging.getLogger(__name__)

OPENID_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
TEMPLATE_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
MSGID_RE = re.compile(r"^[0-9A-Za-z_-]{1,32}$")
LATEST_CREATE_TIME = 32503680000  # year 3000: anything later is not a timestamp


@dataclass(frozen=True)
class PushOutcome:
    event: str
    duplicate: bool = False
    ignored: bool = False
    ledger_events: int = 0
    sent_reports: int = 0


def dedup_key(message: PushMessage) -> str:
    """FromUserName + CreateTime + Event (the documented key) + the items, so two different events
    of one user in the same second are still told apart while WeChat's retries are not."""
    items = sorted(json.dumps(item, sort_keys=True) for item in message.items)
    material = json.dumps([message.openid, message.create_time, message.event, items], ensure_ascii=True)
    return hashlib.sha256(material.encode()).hexdigest()


def handle_push(message: PushMessage, *, encrypted: bool) -> PushOutcome:
    """Apply one verified push.

    :raise PushFormatError: a subscribe event without a usable FromUserName or CreateTime.
    """
    event = message.event
    if event not in SUBSCRIBE_EVENTS:
        return PushOutcome(event=event, ignored=True)
    openid = message.openid
    if not OPENID_RE.fullmatch(openid):
        raise PushFormatError("FromUserName is not an openid")
    create_time = message.create_time
    if not 0 < create_time < LATEST_CREATE_TIME:
        raise PushFormatError("CreateTime is out of range")
    table = WechatPush.__table__
    dialect = db.session.get_bind().dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    push_id = db.session.execute(
        insert(table)
        .values(
            dedup_key=dedup_key(message),
            event=event,
            openid=openid,
            create_time=create_time,
            items=message.items,
            body_format=message.body_format,
            encrypted=encrypted,
            received_at=datetime.now(UTC),
        )
        .on_conflict_do_nothing(index_elements=["dedup_key"])
        .returning(table.c.id)
    ).scalar()
    if push_id is None:
        return PushOutcome(event=event, duplicate=True)
    occurred_at = datetime.fromtimestamp(create_time, UTC)
    if event == "subscribe_msg_sent_event":
        return PushOutcome(event=event, sent_reports=_sent_reports(push_id, message, occurred_at))
    user = ensure_user(openid)
    source = GrantSource.popup_event if event == "subscribe_msg_popup_event" else GrantSource.change_event
    answers: list[tuple[str, str]] = []
    scenes: dict[str, str] = {}
    for item in message.items:
        template_id = item.get("TemplateId", "")
        status = item.get("SubscribeStatusString", "")
        if not TEMPLATE_ID_RE.fullmatch(template_id) or status not in PROMPT_STATUSES:
            log.warning("push %s: skipped an item without a usable TemplateId/SubscribeStatusString", event)
            continue
        answers.append((template_id, status))
        if item.get("PopupScene"):
            scenes[template_id] = item["PopupScene"][:64]
    grants.record_answers(
        user.id, answers, source=source, occurred_at=occurred_at, scenes=scenes, push_id=push_id
    )
    recorded = len(answers)
    return PushOutcome(event=event, ledger_events=recorded)


def _sent_reports(push_id: int, message: PushMessage, reported_at: datetime) -> int:
    count = 0
    for item in message.items:
        msgid = item.get("MsgID", "").strip()
        if not MSGID_RE.fullmatch(msgid):
            log.warning("subscribe_msg_sent_event: skipped an item without a usable MsgID")
            continue
        try:
            errcode: int | None = db_int(item.get("ErrorCode", ""))
        except ValueError:  # not a number, or none the column can hold
            errcode = None
        report = SentReport(
            push_id=push_id,
            msgid=msgid,
            openid=message.openid,
            template_id=item.get("TemplateId", "")[:64],
            errcode=errcode,
            status=item.get("ErrorStatus", "")[:64],
            reported_at=reported_at,
        )
        db.session.add(report)
        delivery = db.session.scalar(
            select(Delivery).where(Delivery.msgid == msgid).order_by(Delivery.id.desc()).limit(1)
        )
        if delivery is not None:
            _join(report, delivery)
        else:
            # No delivery has this msgid: perhaps an ``unknown`` one whose answer (and msgid) was lost.
            db.session.flush()
            settle_with_report(
                db.session,
                grants_ledger(),
                report,
                timedelta(seconds=current_app.config["SENT_EVENT_MATCH_SECONDS"]),
            )
        count += 1
    db.session.flush()
    return count


def _join(report: SentReport, delivery: Delivery) -> None:
    report.delivery_id = delivery.id
    delivery.report_errcode = report.errcode
    delivery.report_status = report.status
    delivery.reported_at = report.reported_at


def attach_sent_report(delivery: Delivery) -> bool:
    """For the sender, after it recorded ``delivery.msgid``: join a delivery report that arrived first.

    WeChat may push ``subscribe_msg_sent_event`` before the sender's transaction with the msgid commits;
    such a report waits unjoined until this is called. :returns: whether a report was joined.
    """
    if not delivery.msgid:
        return False
    report = db.session.scalar(
        select(SentReport)
        .where(SentReport.msgid == delivery.msgid, SentReport.delivery_id.is_(None))
        .order_by(SentReport.id.desc())
        .limit(1)
    )
    if report is None:
        return False
    _join(report, delivery)
    return True
