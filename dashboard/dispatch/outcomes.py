"""What each WeChat answer means for a delivery and for the grant ledger (the contract of the dispatch issue)."""

from __future__ import annotations

import enum
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from ..models import DeliveryState
from ..wechat.errors import ErrorCategory

MAX_ATTEMPTS = 8
BACKOFF_BASE_SECONDS = 5
BACKOFF_MAX_SECONDS = 3600
WECHAT_ZONE = ZoneInfo("Asia/Shanghai")  # WeChat's daily quotas reset at midnight Beijing time


class LedgerAction(enum.StrEnum):
    spend = "spend"  # the reserved credit is used up (sent, or maybe sent: unknown)
    release = "release"  # the reserved credit goes back to the user's balance
    zero = "zero"  # WeChat says the user has no grant (43101): the balance is wrong, zero it
    refund = "refund"  # an unknown counted as spent turned out failed (WeChat's delivery event): give it back


# A 43101 on a row that may fall back to the Official Account: it is pending again, for the OA.
FELL_BACK = "fell_back"


@dataclass(frozen=True)
class SendResult:
    """What one call to WeChat produced. ``errcode`` None with ``category`` set: no WeChat answer."""

    delivery_id: int
    attempt: int
    started_at: datetime
    finished_at: datetime
    errcode: int | None = None
    errmsg: str = ""
    msgid: str | None = None
    category: str = ""  # "" for success, else an ErrorCategory value
    falls_back: bool = False  # the claim's: a 43101 sends it through the Official Account next

    @property
    def ok(self) -> bool:
        return self.errcode == 0 and not self.category


@dataclass(frozen=True)
class Decision:
    state: DeliveryState
    ledger: LedgerAction
    reason: str = ""
    not_before: datetime | None = None
    pause_until: datetime | None = None


PERMANENT = {
    ErrorCategory.RECIPIENT,
    ErrorCategory.TEMPLATE,
    ErrorCategory.CONTENT,
    ErrorCategory.PAGE,
    ErrorCategory.OTHER,
}
RETRYABLE = {ErrorCategory.TRANSIENT, ErrorCategory.TOKEN, ErrorCategory.CONFIG}


def backoff(attempt: int, now: datetime) -> datetime:
    delay = min(BACKOFF_BASE_SECONDS * 2 ** max(attempt - 1, 0), BACKOFF_MAX_SECONDS)
    return now + timedelta(seconds=delay * random.uniform(0.8, 1.2))  # noqa: S311 (jitter, not security)


def next_wechat_day(now: datetime) -> datetime:
    local = now.astimezone(WECHAT_ZONE)
    midnight = (local + timedelta(days=1)).replace(hour=0, minute=5, second=0, microsecond=0)
    return midnight.astimezone(now.tzinfo)


def decide(result: SendResult, now: datetime) -> Decision:
    """Map one WeChat answer to the delivery's next state and what happens to its reserved credit.

    - 0 → sent, credit spent;
    - 43101 → failed, ledger zeroed (WeChat knows better than our balance); a row that asked
      ``mp_subscribe_or_oa`` goes back to ``pending`` instead (reason ``fell_back``), for the Official
      Account;
    - recipient/template/content/page errors and unknown codes → failed, credit released;
    - transient (-1, 43108, network before sending), token (after the client's one refresh) and
      config errors → retry_wait with backoff, credit released; failed after MAX_ATTEMPTS;
    - 45009 → retry_wait until WeChat's next day, credit released, every sender paused;
    - unknown (the request left, the answer was lost) → unknown, credit treated as spent, never resent.
    """
    if result.ok:
        return Decision(DeliveryState.sent, LedgerAction.spend)
    category = ErrorCategory(result.category) if result.category else ErrorCategory.OTHER
    if category == ErrorCategory.UNKNOWN:
        return Decision(DeliveryState.unknown, LedgerAction.spend, reason="unknown")
    if category == ErrorCategory.NO_GRANT:
        if result.falls_back:
            # Nothing reached the user, and the ledger is zeroed with this answer: the next claim finds
            # no credit and sends the Official Account's message to a follower (or skips the row).
            return Decision(DeliveryState.pending, LedgerAction.zero, reason=FELL_BACK)
        return Decision(DeliveryState.failed, LedgerAction.zero, reason="no_grant")
    if category == ErrorCategory.QUOTA:
        resume = next_wechat_day(now)
        return Decision(
            DeliveryState.retry_wait,
            LedgerAction.release,
            reason="quota",
            not_before=resume,
            pause_until=resume,
        )
    if category in RETRYABLE:
        if result.attempt >= MAX_ATTEMPTS:
            return Decision(DeliveryState.failed, LedgerAction.release, reason="gave_up")
        return Decision(
            DeliveryState.retry_wait,
            LedgerAction.release,
            reason=category.value,
            not_before=backoff(result.attempt, now),
        )
    return Decision(DeliveryState.failed, LedgerAction.release, reason=category.value)
