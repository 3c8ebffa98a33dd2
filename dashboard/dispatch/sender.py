"""Hand claims to WeChat and turn the answers into results for ``finalize``.

Campaign and API sends go through the bulk funnel (``BatchSender``); a test send, one at a time while
an operator waits, through the synchronous client (``send_one``). Both build the request and read the
answer with ``dashboard.wechat.protocol``, so a result means the same whichever path carried it.

A claim's ``channel_used`` picks the message: the mini-program's subscribe message, or the linked
Official Account's template message (``/cgi-bin/message/template/send`` with the OA's access token) to
the follower's OA openid, opening the mini-program (``miniprogram {appid, pagepath}``) and carrying the
delivery's ``client_msg_id`` so a resend of the same delivery inside WeChat's de-dup window is not
delivered twice.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from concurrent.futures import Future
from typing import Any

from ..models import utcnow
from ..wechat.bulk import BulkRequest, JsonRequest, SendOutcome, SendRequest
from ..wechat.client import WeChatClient
from ..wechat.errors import WeChatError, WeChatNotConfigured
from ..wechat.oa import OA_SEND_PATH, OfficialAccountClient, build_template_send_body
from .channels import client_msg_id
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
        claim.falls_back,
    )


def oa_message(claim: Claim, miniprogram_appid: str | None) -> dict[str, Any]:
    """The arguments of the Official Account's template message for ``claim`` (both send paths)."""
    return {
        "miniprogram_appid": miniprogram_appid or None,
        "pagepath": claim.oa_pagepath or claim.page or None,
        "client_msg_id": client_msg_id(claim.id),
    }


class PendingBatch:
    """A batch in flight; ``results()`` blocks until every call has an answer (or a lost answer)."""

    def __init__(self, future: Future, written: threading.Event) -> None:
        self.future = future
        self.written = written

    def wait_written(self, timeout: float) -> None:
        """Block (at most ``timeout`` seconds) until every request of the batch has been written.

        The sending loop runs on its own thread but needs the interpreter to write; database work on the
        caller's thread would hold it off for milliseconds at a time (Python's GIL hands over every 5 ms),
        and the batch's round trip would start that much later (docs/benchmarks.md, dispatch: at 64 in
        flight on SQLite the engine went from 0.70–0.72 to 0.79–0.82 of the bare client).
        """
        self.written.wait(timeout)

    def results(self) -> list[SendResult]:
        return [_result(outcome) for outcome in self.future.result()]


class BatchSender:
    """One per worker process: the bulk funnel with ``concurrency`` requests in flight.

    ``oa_client``: the linked Official Account's client, whose token source carries the claims that go
    through the OA (the same keep-alive pool and answer rules as the subscribe messages).
    """

    def __init__(
        self, client: WeChatClient, concurrency: int, oa_client: OfficialAccountClient | None = None
    ) -> None:
        self.bulk = client.bulk_sender(concurrency, also_for=oa_client)
        self.miniprogram_appid = client.appid
        self.oa_tokens = oa_client.tokens if oa_client is not None else None

    def request(self, claim: Claim) -> BulkRequest:
        if claim.via_oa:
            return JsonRequest(
                claim,
                claim.oa_openid or "",
                OA_SEND_PATH,
                build_template_send_body(
                    claim.oa_openid or "",
                    claim.oa_template_id or "",
                    claim.oa_data or {},
                    **oa_message(claim, self.miniprogram_appid),
                ),
                self.oa_tokens or _NoOfficialAccount(),
            )
        return SendRequest(
            claim,
            claim.openid,
            claim.template_id,
            claim.data,
            claim.page,
            claim.miniprogram_state,
            claim.lang,
        )

    def submit(self, claims: Sequence[Claim]) -> PendingBatch:
        written = threading.Event()
        return PendingBatch(self.bulk.submit([self.request(claim) for claim in claims], written), written)

    def send(self, claims: Sequence[Claim]) -> list[SendResult]:
        return self.submit(claims).results()

    def close(self) -> None:
        self.bulk.close()


class _NoOfficialAccount:
    """The token source of a sender built without the Official Account: nothing can go through it (the
    claim is answered ``config``, not sent, and retried later like any set-up problem)."""

    def get_token(self) -> str:
        raise WeChatNotConfigured("This worker has no Official Account client: the OA message was not sent.")

    def invalidate(self, failed_token: str) -> None:
        return None


def send_one(
    client: WeChatClient, claim: Claim, oa_client: OfficialAccountClient | None = None
) -> SendResult:
    """Send one claim through the synchronous client (the OA's for an OA claim) and return its result
    for ``finalize``."""
    started = utcnow()
    try:
        if claim.via_oa:
            if oa_client is None:
                raise WeChatNotConfigured("No Official Account client: the OA message was not sent.")
            msgid = oa_client.send_template_message(
                claim.oa_openid or "",
                claim.oa_template_id or "",
                claim.oa_data or {},
                **oa_message(claim, client.appid),
            )
        else:
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
            claim.falls_back,
        )
    return SendResult(claim.id, claim.attempt, started, utcnow(), 0, "ok", msgid or None, "")
