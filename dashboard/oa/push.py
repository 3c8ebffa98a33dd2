"""What a verified push to ``/wechat/oa-push`` does.

* ``subscribe`` / ``unsubscribe`` → the follower follows / stops following, from the event's CreateTime
  (``dashboard.oa.followers.record_follow_event``);
* ``TEMPLATESENDJOBFINISH`` → kept as an ``oa_event`` row with its ``MsgID`` and ``Status`` (``success``,
  ``failed:user block``, ``failed:system failed`` …), and joined to the delivery sent through the
  Official Account with that msgid (its ``report_status`` and ``reported_at``); an event that arrives
  before the sender recorded the msgid waits unjoined, and ``dispatch.finalize`` joins it then (or the
  worker's minute tick, ``finalize.join_missed_reports``, when the two transactions crossed);
* anything else (menu clicks, messages the user typed) is acknowledged and ignored.

A push seen before (same openid, CreateTime, event and fields) changes nothing. Functions add to the
session; the view commits once.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from ..extensions import db
from ..models import Channel, Delivery
from ..models.oa import OaEvent
from ..push.parsing import PushFormatError, PushMessage
from .followers import record_follow_event

FOLLOW_EVENTS = {"subscribe": True, "unsubscribe": False}
JOB_FINISH = "TEMPLATESENDJOBFINISH"
HANDLED = (*FOLLOW_EVENTS, JOB_FINISH)
OPENID_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
MSGID_RE = re.compile(r"^[0-9A-Za-z_-]{1,32}$")
LATEST_CREATE_TIME = 32503680000  # year 3000
KEPT_FIELDS = 20
KEPT_FIELD_LENGTH = 256


@dataclass(frozen=True)
class OaPushOutcome:
    event: str
    duplicate: bool = False
    ignored: bool = False
    follower_changed: bool = False
    msgid: str | None = None


def dedup_key(message: PushMessage) -> str:
    """FromUserName + CreateTime + Event (WeChat's documented key) + the other fields."""
    fields = {k: str(v) for k, v in message.fields.items()}
    material = json.dumps([message.openid, message.create_time, message.event, fields], sort_keys=True)
    return hashlib.sha256(material.encode()).hexdigest()


def job_finish_report(status: str | None, create_time: int) -> dict[str, Any]:
    """A delivery's report columns from a ``TEMPLATESENDJOBFINISH``: WeChat's ``Status`` as it came
    (``success``, ``failed:user block``, ``failed:system failed``) and when. The event carries no
    errcode, so ``report_errcode`` stays empty."""
    return {
        "report_status": (status or "")[:64],
        "reported_at": datetime.fromtimestamp(create_time, UTC),
        "report_errcode": None,
    }


def handle_oa_push(message: PushMessage, *, encrypted: bool) -> OaPushOutcome:
    """Apply one verified push of the Official Account.

    :raise PushFormatError: a handled event without a usable FromUserName or CreateTime.
    """
    event = message.event
    if event not in HANDLED:
        return OaPushOutcome(event=event, ignored=True)
    openid = message.openid
    if not OPENID_RE.fullmatch(openid):
        raise PushFormatError("FromUserName is not an openid")
    create_time = message.create_time
    if not 0 < create_time < LATEST_CREATE_TIME:
        raise PushFormatError("CreateTime is out of range")
    msgid = status = None
    if event == JOB_FINISH:
        msgid = str(message.fields.get("MsgID") or message.fields.get("MsgId") or "").strip()
        if not MSGID_RE.fullmatch(msgid):
            raise PushFormatError("TEMPLATESENDJOBFINISH without a usable MsgID")
        status = str(message.fields.get("Status") or "")[:64]
    kept = {
        str(k)[:64]: str(v)[:KEPT_FIELD_LENGTH]
        for k, v in list(message.fields.items())[:KEPT_FIELDS]
        if k not in ("ToUserName", "FromUserName", "CreateTime", "MsgType", "Event", "Encrypt")
    }
    table = OaEvent.__table__
    if db.session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    event_id = db.session.execute(
        insert(table)
        .values(
            dedup_key=dedup_key(message),
            event=event,
            openid=openid,
            create_time=create_time,
            msgid=msgid,
            status=status,
            fields=kept,
            body_format=message.body_format,
            encrypted=encrypted,
            received_at=datetime.now(UTC),
        )
        .on_conflict_do_nothing(index_elements=["dedup_key"])
        .returning(table.c.id)
    ).scalar()
    if event_id is None:
        return OaPushOutcome(event=event, duplicate=True)
    if event in FOLLOW_EVENTS:
        occurred_at = datetime.fromtimestamp(create_time, UTC)
        changed = record_follow_event(openid, FOLLOW_EVENTS[event], occurred_at) is not None
        return OaPushOutcome(event=event, follower_changed=changed)
    _join_delivery(event_id, msgid, status, create_time)
    return OaPushOutcome(event=event, msgid=msgid)


def _join_delivery(event_id: int, msgid: str, status: str | None, create_time: int) -> None:
    """Put the job-finish on the Official Account delivery with that msgid, if it is recorded yet.

    Looked up after the event's row is written: on SQLite that insert waits for a finalize in progress,
    so either this sees its msgid or its own look for early events sees this row.
    """
    d = Delivery.__table__.c
    delivery_id = db.session.scalar(
        sa.select(d.id)
        .where(d.msgid == msgid, d.channel_used == Channel.oa_template.value)
        .order_by(d.id.desc())
        .limit(1)
    )
    if delivery_id is None:
        return
    db.session.execute(
        sa.update(OaEvent.__table__).where(OaEvent.id == event_id).values(delivery_id=delivery_id)
    )
    db.session.execute(
        sa.update(Delivery.__table__)
        .where(d.id == delivery_id)
        .values(**job_finish_report(status, create_time))
    )
