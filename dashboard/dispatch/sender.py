"""Hand claims to the bulk send funnel and turn its outcomes into results for ``finalize``."""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import Future

from ..wechat.bulk import SendOutcome, SendRequest
from ..wechat.client import WeChatClient
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
