"""Record WeChat's answers: one transaction per batch, every update fenced by the attempt number.

On PostgreSQL a batch is a constant number of statements whatever its size (issue 13): the answers
as one ``UPDATE delivery … FROM unnest(…)`` (the batch as a set, like a ``VALUES`` list, one array per
column: ``dashboard.set_writes`` says why) whose fence is in its WHERE and which RETURNS who each
written row is for (nothing is read back first), the attempts as one multi-row INSERT, and the ledger
settled in place (``GrantLedger.settle``: a reservation becomes the ``spent`` or ``released`` event,
one row per send). SQLite, in-process, keeps its executemany path (no round trips to save).

A row sent through the Official Account (``channel_used`` ``oa_template``) reserved nothing: its state is
decided by the same ``decide()``, but the ledger is not touched, and an unknown one is not matched
against the mini-program's delivery events (``sent_events``). Its job-finish event
(``TEMPLATESENDJOBFINISH``) may arrive before its msgid is recorded: it is joined in the same commit.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, NamedTuple

import sqlalchemy as sa

from ..bulk_writes import BulkWrite
from ..models import Channel, Delivery, DeliveryAttempt, DeliveryState, utcnow
from ..models.grants import SentReport
from ..models.oa import OaEvent
from ..oa.push import JOB_FINISH, job_finish_report
from ..set_writes import MultiRowInsert, one_of, unnest
from .claim import Claim, load_dispatch_state
from .ledger import CreditLedger, Settlement
from .outcomes import LedgerAction, SendResult, decide
from .sent_events import DEFAULT_MATCH_WINDOW, NewUnknown, settle_new_unknowns
from .write_lock import write_transaction

_RECORD_ANSWER = BulkWrite(
    sa.update(Delivery.__table__)
    .where(
        Delivery.__table__.c.id == sa.bindparam("b_id"),
        Delivery.__table__.c.attempts == sa.bindparam("b_attempt"),
        Delivery.__table__.c.state == sa.literal_column(f"'{DeliveryState.sending.value}'"),
    )
    .values(
        state=sa.bindparam("b_state"),
        errcode=sa.bindparam("b_errcode"),
        errmsg=sa.bindparam("b_errmsg"),
        msgid=sa.bindparam("b_msgid"),
        reason=sa.bindparam("b_reason"),
        not_before=sa.bindparam("b_not_before"),
        sent_at=sa.bindparam("b_sent_at"),
        lease_until=sa.null(),
        updated_at=sa.bindparam("b_now"),
    )
)
_INSERT_ATTEMPTS = MultiRowInsert(DeliveryAttempt.__table__)
# The answer's columns, in the order of the arrays the PostgreSQL path joins.
_ANSWER_KEYS = (
    "b_id",
    "b_attempt",
    "b_state",
    "b_errcode",
    "b_errmsg",
    "b_msgid",
    "b_reason",
    "b_not_before",
    "b_sent_at",
)
_ANSWER_COLUMNS = ("id", "attempts", "state", "errcode", "errmsg", "msgid", "reason", "not_before", "sent_at")
# Placeholders only: the rows travel as one array per column (``set_writes.unnest``).
_RECORD_ANSWER_SQL = (
    "UPDATE delivery AS d SET"  # noqa: S608
    " state = v.state, errcode = v.errcode, errmsg = v.errmsg, msgid = v.msgid, "
    "reason = v.reason, not_before = v.not_before, sent_at = v.sent_at, lease_until = NULL, "
    "updated_at = CAST(%s AS TIMESTAMP WITH TIME ZONE) "
    "FROM {values} AS v(id, attempt, state, errcode, errmsg, msgid, reason, not_before, sent_at) "
    f"WHERE d.id = v.id AND d.attempts = v.attempt AND d.state = '{DeliveryState.sending.value}' "
    "RETURNING d.id, d.user_id, d.openid, d.template_id, d.channel_used"
)
QUOTA_PAUSE_REASON = "45009: WeChat's daily send quota is used up"


def via_oa(row: Any) -> bool:
    """The row went out through the Official Account: nothing of the grant ledger is involved."""
    return row.channel_used == Channel.oa_template.value


def finalize(
    engine: sa.Engine,
    ledger: CreditLedger,
    results: Sequence[SendResult],
    now: datetime | None = None,
    match_window: timedelta = DEFAULT_MATCH_WINDOW,
) -> int:
    """Write each result whose row is still ``sending`` at the same attempt; return how many were written.

    A result for a row the reconciler (or another worker) has moved on from is dropped: the fence
    makes a late worker harmless.
    """
    if not results:
        return 0
    now = now or utcnow()
    # Everything that does not depend on the rows' current state is prepared before taking the write
    # lock, which other workers wait for.
    prepared = []
    for result in results:
        decision = decide(result, now)
        errmsg = (result.errmsg or "")[:512]
        update = {
            "b_id": result.delivery_id,
            "b_attempt": result.attempt,
            "b_state": decision.state.value,
            "b_errcode": result.errcode,
            "b_errmsg": errmsg,
            "b_msgid": result.msgid,
            "b_reason": decision.reason,
            "b_not_before": decision.not_before,
            "b_sent_at": result.finished_at if decision.state == DeliveryState.sent else None,
            "b_now": now,
        }
        attempt = {
            "delivery_id": result.delivery_id,
            "number": result.attempt,
            "started_at": result.started_at,
            "finished_at": result.finished_at,
            "outcome": decision.state,
            "errcode": result.errcode,
            "errmsg": errmsg,
            "msgid": result.msgid,
            "category": result.category,
            "elapsed_ms": int((result.finished_at - result.started_at).total_seconds() * 1000),
        }
        prepared.append((result, decision, update, attempt))
    with write_transaction(engine) as session:
        written = _record_answers(session, [update for _, _, update, _ in prepared])
        updates, attempts, settlements, unknowns = [], [], [], []
        oa_msgids: dict[str, int] = {}
        pause_until = None
        for result, decision, update, attempt in prepared:
            row = written.get(result.delivery_id)
            if row is None:
                continue
            updates.append(update)
            attempts.append(attempt)
            if via_oa(row):
                if update["b_msgid"]:
                    oa_msgids[update["b_msgid"]] = row.id
            else:
                settlements.append(
                    Settlement(row.id, row.user_id, row.openid, row.template_id, decision.ledger)
                )
            if decision.state == DeliveryState.unknown and not via_oa(row):
                unknowns.append(
                    NewUnknown(
                        row.id, result.attempt, row.user_id, row.openid, row.template_id, result.started_at
                    )
                )
            if decision.pause_until is not None:
                pause_until = max(pause_until or decision.pause_until, decision.pause_until)
        if updates:
            _INSERT_ATTEMPTS.execute(session, attempts)
            ledger.settle(session, settlements)
            _join_early_reports(
                session,
                {u["b_msgid"]: u["b_id"] for u in updates if u["b_msgid"] and u["b_msgid"] not in oa_msgids},
            )
            _join_early_job_finish(session, oa_msgids)
            settle_new_unknowns(session, ledger, unknowns, match_window)
        if pause_until is not None:
            # 45009 from either account pauses every sender until WeChat's next day (the conservative
            # choice: the two quotas are separate at WeChat, but a pause per channel needs its own state).
            state = load_dispatch_state(session, lock=True)
            state.paused_until = max(state.paused_until or pause_until, pause_until)
            state.paused_reason = QUOTA_PAUSE_REASON
        return len(updates)


def _record_answers(session, updates: Sequence[dict[str, Any]]) -> dict[int, Any]:
    """Write each answer whose row is still ``sending`` at the same attempt (the fence); return the rows
    written, by id, with the ``user_id``, ``openid``, ``template_id`` and ``channel_used`` their settlement
    needs."""
    t = Delivery.__table__.c
    if not updates:
        return {}
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        columns = [t[name] for name in _ANSWER_COLUMNS]
        values, arrays = unnest(
            connection.dialect, columns, [[update[key] for key in _ANSWER_KEYS] for update in updates]
        )
        now = updates[0]["b_now"]
        rows = connection.exec_driver_sql(_RECORD_ANSWER_SQL.format(values=values), (now, *arrays))
        return {row.id: row for row in rows}
    # SQLite: the rows are read and locked (the write lock is the database's) in-process, then written
    # with one executemany, which costs no round trips here.
    current = session.execute(
        sa.select(t.id, t.attempts, t.state, t.user_id, t.openid, t.template_id, t.channel_used).where(
            t.id.in_([update["b_id"] for update in updates])
        )
    ).all()
    attempt_of = {update["b_id"]: update["b_attempt"] for update in updates}
    written = {
        row.id: row
        for row in current
        if row.state == DeliveryState.sending and row.attempts == attempt_of[row.id]
    }
    _RECORD_ANSWER.execute(session, [update for update in updates if update["b_id"] in written])
    return written


def _join_early_reports(session, delivery_by_msgid: dict[str, int]) -> None:
    """WeChat's delivery report (subscribe_msg_sent_event) can arrive before we recorded the msgid:
    such reports wait unjoined (``dashboard.push``); join them in the same commit as the msgid."""
    if not delivery_by_msgid:
        return
    r = SentReport.__table__.c
    early = session.execute(
        sa.select(r.id, r.msgid, r.errcode, r.status, r.reported_at).where(
            one_of(r.msgid, delivery_by_msgid, session.get_bind().dialect.name), r.delivery_id.is_(None)
        )
    ).all()
    for report in early:
        delivery_id = delivery_by_msgid[report.msgid]
        session.execute(
            sa.update(SentReport.__table__).where(r.id == report.id).values(delivery_id=delivery_id)
        )
        session.execute(
            sa.update(Delivery.__table__)
            .where(Delivery.__table__.c.id == delivery_id)
            .values(
                report_errcode=report.errcode, report_status=report.status, reported_at=report.reported_at
            )
        )


def _join_early_job_finish(session, delivery_by_msgid: dict[str, int]) -> None:
    """The Official Account's ``TEMPLATESENDJOBFINISH`` can arrive before we recorded the msgid: such
    events wait unjoined (``dashboard.oa.push``); join them in the same commit as the msgid."""
    if not delivery_by_msgid:
        return
    e = OaEvent.__table__.c
    early = session.execute(
        sa.select(e.id, e.msgid, e.status, e.create_time).where(
            one_of(e.msgid, delivery_by_msgid, session.get_bind().dialect.name),
            e.event == JOB_FINISH,
            e.delivery_id.is_(None),
        )
    ).all()
    for event in early:
        delivery_id = delivery_by_msgid[event.msgid]
        session.execute(sa.update(OaEvent.__table__).where(e.id == event.id).values(delivery_id=delivery_id))
        session.execute(
            sa.update(Delivery.__table__)
            .where(Delivery.__table__.c.id == delivery_id)
            .values(**job_finish_report(event.status, event.create_time))
        )


# How far back the minute tick looks for reports that missed their delivery (see join_missed_reports).
MISSED_REPORT_LOOKBACK = timedelta(hours=1)


def join_missed_reports(engine: sa.Engine, now: datetime | None = None) -> int:
    """Join the delivery reports and job-finishes that missed their delivery; the minute tick calls it.

    The push handler looks for the msgid's delivery after writing the event, and finalize looks for
    early events in the transaction that records the msgid. On SQLite the one writer orders the two, so
    one of them sees the other; on PostgreSQL each can run before the other commits, and then neither
    sees the other and the event would wait unjoined for ever. This sweep joins what arrived in the last
    ``MISSED_REPORT_LOOKBACK`` whose msgid is now recorded (older unjoined rows are other senders'
    messages, not ours). :returns: how many were joined.
    """
    since = (now or utcnow()) - MISSED_REPORT_LOOKBACK
    d, r, e = Delivery.__table__.c, SentReport.__table__.c, OaEvent.__table__.c
    oa = Channel.oa_template.value
    with write_transaction(engine) as session:
        reports = dict(
            session.execute(
                sa.select(r.msgid, d.id)
                .join(Delivery.__table__, d.msgid == r.msgid)
                .where(
                    r.delivery_id.is_(None),
                    r.reported_at >= since,
                    sa.or_(d.channel_used.is_(None), d.channel_used != oa),
                )
            ).all()
        )
        job_finishes = dict(
            session.execute(
                sa.select(e.msgid, d.id)
                .join(Delivery.__table__, d.msgid == e.msgid)
                .where(
                    e.delivery_id.is_(None),
                    e.msgid.is_not(None),  # with the line above: the partial index ix_oa_event_unjoined
                    e.event == JOB_FINISH,
                    e.received_at >= since,
                    d.channel_used == oa,
                )
            ).all()
        )
        _join_early_reports(session, reports)
        _join_early_job_finish(session, job_finishes)
    return len(reports) + len(job_finishes)


class Reconciled(NamedTuple):
    unknown: int  # started before their worker was lost: the message may have left
    requeued: int  # claimed but never started: back to ``pending``, credit released


def reconcile_expired_leases(
    engine: sa.Engine,
    ledger: CreditLedger,
    now: datetime | None = None,
    match_window: timedelta = DEFAULT_MATCH_WINDOW,
) -> Reconciled:
    """Rows still ``sending`` after their lease belong to a worker that died (or stalled).

    A row whose start was recorded (``attempt_started_at``) may have reached WeChat: it becomes
    ``unknown``, its credit counts as spent and nothing is resent automatically (an operator can force a
    resend knowing the risk, and WeChat's delivery event may still settle it). A row claimed ahead and
    never started cannot have left (the start is committed before any byte is written), so it goes back
    to ``pending`` with its credit released; its attempt number stays used, so the lost worker, should
    it wake up, is fenced out of both starting and recording it.
    """
    now = now or utcnow()
    t = Delivery.__table__.c
    with write_transaction(engine) as session:
        rows = session.execute(
            sa.select(
                t.id, t.attempts, t.user_id, t.openid, t.template_id, t.attempt_started_at, t.channel_used
            )
            .where(t.state == DeliveryState.sending.value, t.lease_until < now)
            .with_for_update(skip_locked=True, of=Delivery.__table__)
        ).all()
        never_started = [row for row in rows if row.attempt_started_at is None]
        started = [row for row in rows if row.attempt_started_at is not None]
        _requeue(session, ledger, never_started, now)
        if started:
            session.execute(
                sa.update(Delivery.__table__)
                .where(t.id == sa.bindparam("b_id"), t.attempts == sa.bindparam("b_attempts"))
                .values(
                    state=DeliveryState.unknown.value,
                    reason="lease_expired",
                    lease_until=None,
                    updated_at=now,
                ),
                [{"b_id": row.id, "b_attempts": row.attempts} for row in started],
            )
            session.execute(
                sa.insert(DeliveryAttempt.__table__),
                [
                    {
                        "delivery_id": row.id,
                        "number": row.attempts,
                        # When the request may have left: what WeChat's delivery event is matched against.
                        "started_at": row.attempt_started_at,
                        "finished_at": now,
                        "outcome": DeliveryState.unknown,
                        "errmsg": "worker lost before recording WeChat's answer (lease expired)",
                        "category": "unknown",
                    }
                    for row in started
                ],
            )
            # An Official Account send reserved nothing, and the mini-program's events are not its own.
            subscribe = [row for row in started if not via_oa(row)]
            ledger.settle(
                session,
                [
                    Settlement(row.id, row.user_id, row.openid, row.template_id, LedgerAction.spend)
                    for row in subscribe
                ],
            )
            # WeChat's delivery event for a lost worker's send usually arrives during the lease.
            settle_new_unknowns(
                session,
                ledger,
                [
                    NewUnknown(
                        row.id, row.attempts, row.user_id, row.openid, row.template_id, row.attempt_started_at
                    )
                    for row in subscribe
                ],
                match_window,
            )
        return Reconciled(unknown=len(started), requeued=len(never_started))


def release_unstarted(engine: sa.Engine, ledger: CreditLedger, claims: Sequence[Claim]) -> int:
    """A stopping worker gives back rows it claimed ahead and never started: ``pending``, credit released.

    Only rows still ours (same attempt) and not started are touched. Returns how many went back.
    """
    if not claims:
        return 0
    now = utcnow()
    t = Delivery.__table__.c
    attempt_of = {claim.id: claim.attempt for claim in claims}
    with write_transaction(engine) as session:
        rows = session.execute(
            sa.select(t.id, t.attempts, t.user_id, t.openid, t.template_id, t.channel_used)
            .where(
                one_of(t.id, attempt_of, engine.dialect.name),
                t.state == DeliveryState.sending.value,
                t.attempt_started_at.is_(None),
            )
            .with_for_update(of=Delivery.__table__)
        ).all()
        ours = [row for row in rows if attempt_of[row.id] == row.attempts]
        _requeue(session, ledger, ours, now)
        return len(ours)


def _requeue(session, ledger: CreditLedger, rows: Sequence[Any], now: datetime) -> None:
    """Locked rows that never started go back to the queue, each fenced by its attempt number."""
    if not rows:
        return
    t = Delivery.__table__.c
    session.execute(
        sa.update(Delivery.__table__)
        .where(
            t.id == sa.bindparam("b_id"),
            t.attempts == sa.bindparam("b_attempts"),
            t.attempt_started_at.is_(None),
        )
        .values(state=DeliveryState.pending.value, lease_until=None, updated_at=now),
        [{"b_id": row.id, "b_attempts": row.attempts} for row in rows],
    )
    ledger.settle(
        session,
        [
            Settlement(row.id, row.user_id, row.openid, row.template_id, LedgerAction.release)
            for row in rows
            if not via_oa(row)
        ],
    )
