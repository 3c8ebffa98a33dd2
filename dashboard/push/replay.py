"""One signature, one use, while fresh: the freshness window and the nonces remembered for it.

WeChat's plaintext ``signature`` covers token, timestamp and nonce, not the body, and neither signature
expires. So a signed push is accepted only within ``WECHAT_PUSH_MAX_AGE_SECONDS`` of its timestamp (either
way: a clock ahead is no better than one behind), and its (timestamp, nonce) is inserted into
``push_nonce`` in the transaction that applies it. The unique constraint decides between processes:
the second request with a pair is either the same message again (a repeat: acknowledged, not applied)
or another message under a borrowed signature (refused).
"""

from __future__ import annotations

import enum
import hashlib
import re

from sqlalchemy import delete, insert, select
from sqlalchemy.exc import IntegrityError

from ..extensions import db
from ..models import PushNonce
from ..models.types import utcnow

PRUNE_BATCH = 100  # rows forgotten per accepted push at most: bounded work, and more than one push adds
TIMESTAMP_RE = re.compile(r"^[0-9]{1,12}$")
NONCE_RE = re.compile(r"^[\x21-\x7e]{1,64}$")


class Seen(enum.Enum):
    new = "new"  # first use of the pair: go on and apply the message
    repeat = "repeat"  # the same message under the same pair was accepted before
    conflict = "conflict"  # the pair was used with another message: a forgery


def fresh_timestamp(raw: str, max_age: int, now: float) -> int | None:
    """The signed timestamp, or None when it is not a number or not within ``max_age`` seconds of now."""
    if not TIMESTAMP_RE.fullmatch(raw):
        return None
    timestamp = int(raw)
    return timestamp if abs(now - timestamp) <= max_age else None


def usable_nonce(raw: str) -> bool:
    return bool(NONCE_RE.fullmatch(raw))


def digest(message: bytes) -> str:
    return hashlib.sha256(message).hexdigest()


def claim(timestamp: int, nonce: str, message_digest: str) -> Seen:
    """Remember (timestamp, nonce) in the current transaction, or tell what used it first.

    Call it before the transaction writes anything else: on a conflict the transaction is rolled back.
    A concurrent request with the same pair waits here until the first one's transaction ends.
    """
    try:
        db.session.execute(
            insert(PushNonce).values(
                timestamp=timestamp, nonce=nonce, body_digest=message_digest, created_at=utcnow()
            )
        )
    except IntegrityError:
        db.session.rollback()
        earlier = db.session.scalar(
            select(PushNonce.body_digest).where(PushNonce.timestamp == timestamp, PushNonce.nonce == nonce)
        )
        return Seen.repeat if earlier == message_digest else Seen.conflict
    return Seen.new


def forget_expired(max_age: int, now: float) -> int:
    """Delete up to ``PRUNE_BATCH`` pairs whose timestamp is refused anyway; rows another transaction is
    deleting are skipped (PostgreSQL), so concurrent pushes never wait on each other here."""
    doomed = (
        select(PushNonce.id)
        .where(PushNonce.timestamp < int(now) - max_age)
        .order_by(PushNonce.timestamp)
        .limit(PRUNE_BATCH)
        .with_for_update(skip_locked=True)
    )
    statement = delete(PushNonce).where(PushNonce.id.in_(doomed))
    return db.session.execute(statement.execution_options(synchronize_session=False)).rowcount
