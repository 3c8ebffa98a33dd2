"""Choose each row's channel before it is sent: a credit from the ledger, or the Official Account.

Shared by the engine's claim (``claim.claim_due``) and the test send (``deliveries.services.send_now``),
so a row ends the same way whichever path asked for it. ``route`` asks the ledger for a credit for the
rows whose channel may spend one (``mp_subscribe``, ``mp_subscribe_or_oa``), then, for the rows that may
go through the Official Account (``oa_template``, and ``mp_subscribe_or_oa`` the ledger refused), who
follows now; ``dispatch.channels.choose`` decides each row from those two facts. A row that goes nowhere
is ``skipped`` with the choice's reason (the ledger's ``no_grant`` / ``budget``, or ``not_following``,
``no_channel``, ``no_oa_template``), in the caller's transaction, and WeChat is never called.

A row the ledger refused holds no reservation (the ledger writes nothing for a refusal), so one that
falls back to the Official Account spends nothing: an OA message never touches the ledger.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session, scoped_session

from ..bulk_writes import BulkWrite
from ..models import Channel, Delivery, DeliveryState
from ..models.oa import OaFollower
from ..oa.followers import following_openids
from ..set_writes import one_of
from .channels import choose
from .ledger import CreditLedger, ReservationRequest

_MARK_SKIPPED = BulkWrite(
    sa.update(Delivery.__table__)
    .where(Delivery.__table__.c.id == sa.bindparam("b_id"))
    .values(state=sa.bindparam("b_state"), reason=sa.bindparam("b_reason"), updated_at=sa.bindparam("b_now"))
)


@dataclass(frozen=True)
class RouteRequest:
    """A row about to be sent: what the ledger needs, and what the Official Account needs."""

    delivery_id: int
    user_id: int | None
    openid: str
    template_id: str
    source: str  # "campaign" | "api" | "test"
    attempts: int | None
    channel: str  # the channel asked (``Channel``); NULL in old rows reads as mp_subscribe
    oa_openid: str | None = None  # given at creation for a follower with no mini-program user
    oa_template_id: str | None = None

    @property
    def asked(self) -> Channel:
        return Channel(self.channel or Channel.mp_subscribe)

    def reservation(self) -> ReservationRequest:
        return ReservationRequest(
            self.delivery_id, self.user_id, self.openid, self.template_id, self.source, self.attempts
        )


@dataclass(frozen=True)
class Route:
    """Where a row goes: ``mp_subscribe`` (a credit is reserved) or ``oa_template`` to ``oa_openid``."""

    channel: Channel
    oa_openid: str | None = None


def route(
    session: Session | scoped_session,
    ledger: CreditLedger,
    rows: Sequence[RouteRequest],
    now: datetime,
) -> tuple[dict[int, Route], dict[int, str]]:
    """Each row's channel; the rows that go nowhere are marked ``skipped``. Nothing is committed.

    A constant number of statements whatever the batch: the ledger's reservation, one query for the
    users who follow (``oa.followers.following_openids``) and one for followers with no mini-program
    user, then one write for the skipped rows.

    :returns: ``(routes, skipped)``: the route of each row that may go out, and the reason of each
        skipped one.
    """
    if not rows:
        return {}, {}
    may_spend = [row for row in rows if row.asked is not Channel.oa_template]
    verdicts = ledger.reserve(session, [row.reservation() for row in may_spend]) if may_spend else {}  # type: ignore[arg-type]
    refused = {row.delivery_id: reason for row in may_spend if (reason := verdicts.get(row.delivery_id))}
    may_follow = [
        row
        for row in rows
        if row.asked is Channel.oa_template
        or (row.asked is Channel.mp_subscribe_or_oa and row.delivery_id in refused)
    ]
    followers = _following(session, may_follow)
    routes: dict[int, Route] = {}
    skipped: dict[int, str] = {}
    for row in rows:
        choice = choose(
            row.asked,
            holds_credit=row.asked is not Channel.oa_template and row.delivery_id not in refused,
            follows=row.delivery_id in followers,
            has_oa_template=bool(row.oa_template_id),
            credit_refusal=refused.get(row.delivery_id) or "no_grant",
        )
        if choice.channel is None:
            skipped[row.delivery_id] = choice.reason
        elif choice.channel is Channel.oa_template:
            routes[row.delivery_id] = Route(Channel.oa_template, followers[row.delivery_id])
        else:
            routes[row.delivery_id] = Route(Channel.mp_subscribe)
    mark_skipped(session, skipped, now)
    return routes, skipped


def _following(session: Session | scoped_session, rows: Sequence[RouteRequest]) -> dict[int, str]:
    """The Official Account openid each row's person follows with now, by delivery id (absent: none).

    A mini-program user follows through the unionid join; a row given an OA openid at creation (a
    follower with no mini-program user, or one the join does not reach) follows when that openid does.
    """
    if not rows:
        return {}
    by_user = following_openids([row.user_id for row in rows if row.user_id is not None], session)
    found = {row.delivery_id: by_user[row.user_id] for row in rows if row.user_id in by_user}
    given = {row.oa_openid for row in rows if row.delivery_id not in found and row.oa_openid}
    if given:
        follows = set(
            session.scalars(
                sa.select(OaFollower.openid).where(
                    one_of(OaFollower.openid, sorted(given), session.get_bind().dialect.name),
                    OaFollower.following.is_(True),
                )
            )
        )
        for row in rows:
            if row.delivery_id not in found and row.oa_openid in follows:
                found[row.delivery_id] = row.oa_openid
    return found


def reserve_or_skip(
    session: Session | scoped_session,
    ledger: CreditLedger,
    requests: Sequence[ReservationRequest],
    now: datetime,
) -> dict[int, str]:
    """Reserve one credit per request; mark the refused rows ``skipped``. Nothing is committed.

    :returns: the skip reason of each refused delivery id; every other row holds its credit and may go out.
    """
    if not requests:
        return {}
    verdicts = ledger.reserve(session, requests)  # type: ignore[arg-type]
    refused = {r.delivery_id: reason for r in requests if (reason := verdicts.get(r.delivery_id))}
    mark_skipped(session, refused, now)
    return refused


def mark_skipped(session: Session | scoped_session, reasons: dict[int, str], now: datetime) -> None:
    """Make these rows ``skipped`` with their reason (the ledger's, the channel's, or ``frequency_cap``)."""
    _MARK_SKIPPED.execute(
        session,
        [
            {"b_id": delivery_id, "b_state": DeliveryState.skipped, "b_reason": reason, "b_now": now}
            for delivery_id, reason in reasons.items()
        ],
    )
