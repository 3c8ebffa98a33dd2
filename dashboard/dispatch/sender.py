"""Call WeChat for a batch of claims, many in flight at once, outside any database transaction."""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from ..models import utcnow
from ..wechat.client import WeChatClient
from ..wechat.errors import ErrorCategory, WeChatError, WeChatUnknownOutcome
from .claim import Claim
from .outcomes import SendResult


def send_one(client: WeChatClient, claim: Claim) -> SendResult:
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
    except WeChatUnknownOutcome as error:
        return SendResult(
            claim.id, claim.attempt, started, utcnow(), None, error.errmsg, None, ErrorCategory.UNKNOWN.value
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
    return SendResult(claim.id, claim.attempt, started, utcnow(), 0, "ok", msgid, "")


class BatchSender:
    """A pool of threads sharing the client's connection pool; one per worker process."""

    def __init__(self, client: WeChatClient, concurrency: int) -> None:
        self.client = client
        self.concurrency = concurrency
        self.pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="tongzhi-send")

    def send(self, claims: Sequence[Claim]) -> list[SendResult]:
        return list(self.pool.map(lambda claim: send_one(self.client, claim), claims))

    def close(self) -> None:
        self.pool.shutdown(wait=True)
