"""The bulk send funnel: many ``subscribeMessage.send`` calls in flight from one asyncio loop.

The synchronous client (``client.py``) costs about a millisecond of CPU per call through requests;
a campaign needs hundreds of calls in flight at a fraction of that (docs/benchmarks.md). This module
builds the same request (``build_send_body``), reads the answer the same way (``error_from_reply``),
takes tokens from the same shared token service, and never retries a send whose request may have
left: a lost answer is an unknown outcome, exactly as in the synchronous client. The connections are
``keepalive.KeepAlivePool``'s, which says whether a failed request can have reached WeChat.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple
from urllib.parse import quote

from .client import SEND_PATH, TokenSource, build_send_body, error_from_reply
from .errors import ErrorCategory, WeChatError, redact_query
from .keepalive import AnswerLost, KeepAlivePool, NotSent

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SendRequest:
    key: Any  # the caller's handle (a delivery claim), returned with the outcome
    touser: str
    template_id: str
    data: dict[str, str]
    page: str | None = None
    miniprogram_state: str = "formal"
    lang: str = "zh_CN"


@dataclass(frozen=True)
class SendOutcome:
    key: Any
    started_at: datetime
    finished_at: datetime
    msgid: str | None = None
    errcode: int | None = None
    errmsg: str = ""
    category: str = ""  # "" on success, else an ErrorCategory value

    @property
    def ok(self) -> bool:
        return not self.category


class _Answer(NamedTuple):
    msgid: str | None = None
    errcode: int | None = None
    errmsg: str = ""
    category: str = ""


class BulkSender:
    """Owns an event loop thread and a pool of at most ``concurrency`` keep-alive connections.

    ``send(requests)`` is called from ordinary (worker) threads and blocks until every request in the
    batch has an outcome; ``submit`` returns a concurrent future instead, so a caller can claim the
    next batch while this one is in flight.
    """

    def __init__(
        self,
        api_base: str,
        tokens: TokenSource,
        *,
        concurrency: int = 64,
        connect_timeout: float = 3.05,
        read_timeout: float = 10.0,
        secret: str | None = None,
    ) -> None:
        self.tokens = tokens
        self.concurrency = concurrency
        self._pool = KeepAlivePool(
            api_base, limit=concurrency, connect_timeout=connect_timeout, read_timeout=read_timeout
        )
        self._secret = secret
        self._target_token, self._target = "", ""
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="tongzhi-bulk-send", daemon=True)
        self._thread.start()

    # -- public ----------------------------------------------------------------------------------

    def submit(self, requests: Sequence[SendRequest]):
        return asyncio.run_coroutine_threadsafe(self._send_all(list(requests)), self._loop)

    def send(self, requests: Sequence[SendRequest]) -> list[SendOutcome]:
        return self.submit(requests).result()

    def close(self) -> None:
        if self._loop.is_closed():
            return
        self._loop.call_soon_threadsafe(self._pool.close)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    # -- inside the loop -------------------------------------------------------------------------

    async def _send_all(self, requests: list[SendRequest]) -> list[SendOutcome]:
        # The token service may touch the database: ask it once per batch, off the loop.
        token = await asyncio.to_thread(self.tokens.get_token)
        return list(await asyncio.gather(*(self._send_one(request, token) for request in requests)))

    async def _send_one(self, request: SendRequest, token: str) -> SendOutcome:
        body = json.dumps(
            build_send_body(
                request.touser,
                request.template_id,
                request.data,
                request.page,
                request.miniprogram_state,
                request.lang,
            ),
            ensure_ascii=False,
        ).encode("utf-8")
        started = datetime.now(UTC)
        answer = await self._post(request, body, token)
        if answer.category == ErrorCategory.TOKEN.value:
            # Refused before acting on it, so one retry with a fresh token cannot duplicate the send.
            await asyncio.to_thread(self.tokens.invalidate, token)
            fresh = await asyncio.to_thread(self.tokens.get_token)
            if fresh != token:
                answer = await self._post(request, body, fresh)
        return SendOutcome(
            request.key,
            started,
            datetime.now(UTC),
            msgid=answer.msgid,
            errcode=answer.errcode,
            errmsg=answer.errmsg,
            category=answer.category,
        )

    async def _post(self, request: SendRequest, body: bytes, token: str) -> _Answer:
        if token != self._target_token:
            self._target_token, self._target = token, f"{SEND_PATH}?access_token={quote(token, safe='')}"
        try:
            response = await self._pool.post(self._target, body, "application/json; charset=utf-8")
        except NotSent as exc:
            # The connection was never made: WeChat cannot have seen this request.
            return _Answer(errmsg=str(exc), category=ErrorCategory.TRANSIENT.value)
        except AnswerLost as exc:
            return self._unknown(request, f"{exc} after the request was sent")
        if response.status != 200:
            return self._unknown(request, f"HTTP {response.status} from POST {SEND_PATH}")
        try:
            reply = json.loads(response.body)
        except ValueError:
            reply = None
        if not isinstance(reply, dict):
            return self._unknown(request, "an answer that is not a JSON object")
        error: WeChatError | None = error_from_reply(reply, self._scrub)
        if error is not None:
            return _Answer(errcode=error.errcode, errmsg=error.errmsg, category=error.category.value)
        msgid = reply.get("msgid")
        return _Answer(msgid=None if msgid is None else str(msgid), errcode=0, errmsg="ok")

    def _unknown(self, request: SendRequest, what: str) -> _Answer:
        log.warning("WeChat send to %s: %s; outcome unknown", request.touser, what)
        return _Answer(
            errmsg=f"{what}: the message may have been delivered", category=ErrorCategory.UNKNOWN.value
        )

    def _scrub(self, text: str) -> str:
        text = redact_query(text)
        if self._secret and self._secret in text:
            text = text.replace(self._secret, "***")
        return text
