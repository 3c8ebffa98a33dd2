"""Hand claims to WeChat and turn the answers into results for ``finalize``.

Campaign and API sends go through the bulk funnel (``BatchSender``); a test send, one at a time while
an operator waits, through the synchronous client (``send_one``). Both build the request and read the
answer with ``dashboard.wechat.protocol``, so a result means the same whichever path carried it.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import Future

from ..models import utcnow
from ..wechat.bulk import SendOutcome, SendRequest
from ..wechat.client import WeChatClient
from ..wechat.errors import WeChatError
from .claim import Claim
from .outcomes import SendResult


def _result(outcome: SendOutcome) -> SendResult:
    claim: Claim = outcome.key
    return SendResult(
        claim.id,
        claim.attempt,
        outcome.started_at,
        outcome.finished_at,
        outcome.errcode,
        outcome.errmsg,
        outcome.msgid,
        outcome.category,
    )


class PendingBatch:
    """A batch in flight; ``results()`` blocks until every call has an answer (or a lost answer)."""

    def __init__(self, future: Future) -> None:
        self.future = future

    def results(self) -> list[SendResult]:
        return [_result(outcome) for outcome in self.future.result()]


class BatchSender:
    """One per worker process: the bulk funnel with ``concurrency`` requests in flight."""

    def __init__(self, client: WeChatClient, concurrency: int) -> None:
        self.bulk = client.bulk_sender(concurrency)

    def submit(self, claims: Sequence[Claim]) -> PendingBatch:
        requests = [
            SendRequest(
                claim,
                claim.openid,
                claim.template_id,
                claim.data,
                claim.page,
                claim.miniprogram_state,
                claim.lang,
            )
            for claim in claims
        ]
        return PendingBatch(self.bulk.submit(requests))

    def send(self, claims: Sequence[Claim]) -> list[SendResult]:
        return self.submit(claims).results()

    def close(self) -> None:
        self.bulk.close()


def send_one(client: WeChatClient, claim: Claim) -> SendResult:
    """Send one claim through the synchronous client and return its result for ``finalize``."""
    started = utcnow()
    try:
        msgid = client.send_subscribe_message(
            claim.openid,
            claim.template_id,
            claim.data,
            page=claim.page,
            miniprogram_state=claim.miniprogram_state,
            lang=claim.lang,
        )
    except WeChatError as error:
        return SendResult(
            claim.id,
            claim.attempt,
            started,
            utcnow(),
            error.errcode,
            error.errmsg,
            None,
            error.category.value,
        )
    return SendResult(claim.id, claim.attempt, started, utcnow(), 0, "ok", msgid or None, "")
